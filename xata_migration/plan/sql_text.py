"""SQL text in a plan, parsed as exactly what it claims to be before it reaches a server.

A column's `type` and `default` are placed into the target's DDL and the load's SQL.
Each is read by PostgreSQL's own parser (pglast, the parser as a library) and accepted
only if it is exactly one thing of its kind: a type name, or one expression. Its tokens
must also stand on their own wherever the text is placed: no comment, no `;`, no `,`
outside parentheses, and every parenthesis and bracket closed, so the text can neither
end the statement around it nor hide the rest of it. A default is also placed in
parentheses. Anything else raises SqlTextError, saying what was found.
"""

from __future__ import annotations

from pglast import ast, parser
from pglast.parser import ParseError

TYPE_NAME, EXPRESSION = "a type name", "one expression"
_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
_OPENING, _CLOSING = {"ASCII_40": "(", "ASCII_91": "["}, {"ASCII_41": "(", "ASCII_93": "["}
_SEMICOLON, _COMMA = "ASCII_59", "ASCII_44"
_CLAUSES = {"distinctClause": "DISTINCT", "intoClause": "INTO", "fromClause": "FROM",
            "whereClause": "WHERE", "groupClause": "GROUP BY", "havingClause": "HAVING",
            "windowClause": "WINDOW", "sortClause": "ORDER BY", "limitCount": "LIMIT",
            "limitOffset": "OFFSET", "lockingClause": "FOR UPDATE", "withClause": "WITH",
            "valuesLists": "VALUES", "larg": "UNION", "rarg": "UNION"}


class SqlTextError(ValueError):
    """The text is not exactly one `kind` of thing; `found` says what it holds instead."""

    def __init__(self, kind: str, found: str):
        self.kind, self.found = kind, found
        super().__init__(f"not exactly {kind}: found {found}")


def _check_tokens(text: str, kind: str) -> None:
    try:
        tokens = parser.scan(text)
    except ParseError as error:
        raise SqlTextError(kind, f"what PostgreSQL's parser cannot read ({error})") from None
    if not tokens:
        raise SqlTextError(kind, "nothing")
    depth = []
    for token in tokens:
        if token.name in _COMMENTS:
            raise SqlTextError(kind, f"a comment ({text[token.start:].splitlines()[0]!r})")
        if token.name == _SEMICOLON:
            raise SqlTextError(kind, "a `;`, which would end the statement")
        if token.name == _COMMA and not depth:
            raise SqlTextError(kind, "a `,` outside parentheses")
        if token.name in _OPENING:
            depth.append(_OPENING[token.name])
        elif token.name in _CLOSING:
            if not depth or depth.pop() != _CLOSING[token.name]:
                raise SqlTextError(kind, f"a closing {text[token.start]!r} that closes "
                                         "nothing it opened")
    if depth:
        raise SqlTextError(kind, f"a {depth[-1]!r} never closed")


def _only_target(wrapped: str, kind: str):
    """The one target of the one SELECT that `wrapped` must be, with nothing else."""
    try:
        statements = parser.parse_sql(wrapped)
    except ParseError as error:
        raise SqlTextError(kind, f"what PostgreSQL's parser refuses ({error})") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        raise SqlTextError(kind, f"{len(statements)} statements")
    select = statements[0].stmt
    clauses = [words for name, words in _CLAUSES.items() if getattr(select, name, None)]
    if clauses:
        raise SqlTextError(kind, f"a {clauses[0]} clause")
    if len(select.targetList or ()) != 1 or select.targetList[0].name:
        raise SqlTextError(kind, "more than one value, or a name given to it (AS)")
    return select.targetList[0].val


def check_type_name(text: str) -> None:
    """SqlTextError unless `text` is exactly one PostgreSQL type name."""
    _check_tokens(text, TYPE_NAME)
    cast = _only_target(f"SELECT NULL::{text}", TYPE_NAME)
    if not (isinstance(cast, ast.TypeCast) and isinstance(cast.arg, ast.A_Const)
            and cast.arg.isnull):
        raise SqlTextError(TYPE_NAME, "more than a type name")


def check_expression(text: str) -> None:
    """SqlTextError unless `text` is exactly one SQL expression (a default's, say)."""
    _check_tokens(text, EXPRESSION)
    _only_target(f"SELECT ({text})", EXPRESSION)
