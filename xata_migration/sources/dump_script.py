"""A pg_dump SQL script, read as what it is and cut down to the application's part.

The script is read item by item: a psql meta-command line (`\\restrict`, `\\connect`), a
statement (its end found by PostgreSQL's own scanner, pglast, so quotes, dollar quotes
and comments count), or the data lines of a `COPY ... FROM stdin`. Each statement is
parsed, and left out when it belongs to Xata or to the hosting platform:

  Xata's schemas          xata, xata_private (the tool provides xid(), the metadata
                          trigger's function and the file domains itself), and the
                          platform's (pgstream, pgroll): every object in them, its rows,
                          its comments, and the extensions installed into them
  owners and privileges   OWNER TO, GRANT, REVOKE, default privileges, and
                          SET/RESET SESSION AUTHORIZATION (as pg_restore --no-owner
                          --no-acl; the target's owner is the role that imports)
  schema public           CREATE SCHEMA public: every database has it
  unknown settings        SET of a parameter the target server does not know (a newer
                          server's, such as transaction_timeout before PostgreSQL 17)
  meta-commands           \\restrict, \\unrestrict, \\connect (the script runs in one
                          session, in one transaction)

Everything else is kept, in its order. Each kept line remembers its line in the dump, so
an error names the dump's own line.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Iterator

from pglast import ast, parser
from pglast.enums import AlterTableType, ObjectType, VariableSetKind
from pglast.parser import ParseError

XATA_SCHEMAS = ("xata", "xata_private")
PLATFORM_SCHEMAS = ("pgstream", "pgroll")
LEFT_OUT_SCHEMAS = XATA_SCHEMAS + PLATFORM_SCHEMAS
OWNER_KIND, PRIVILEGE_KIND = "owners (OWNER TO)", "grants and revokes"


# Types of the extensions the bundled server has, by the extension that makes them: a
# `pg_dump --schema=public` leaves out CREATE EXTENSION, and a table still uses the type.
EXTENSION_TYPES = {"citext": "citext", "hstore": "hstore", "ltree": "ltree",
                   "lquery": "ltree", "ltxtquery": "ltree", "cube": "cube", "seg": "seg",
                   "isbn": "isn", "issn": "isn", "ean13": "isn", "upc": "isn",
                   "vector": "vector", "halfvec": "vector", "sparsevec": "vector"}


@dataclass
class Filtered:
    """What the filter kept and left out."""
    left_out: Counter = field(default_factory=Counter)     # kind -> statements
    extensions_created: set[str] = field(default_factory=set)
    types_used: set[str] = field(default_factory=set)
    # (first output line, its line in the dump) for each kept run of lines
    _runs: list[tuple[int, int]] = field(default_factory=list)
    lines_written: int = 0

    def keep(self, out: IO[str], lines: list[str], first_line: int) -> None:
        self._runs.append((self.lines_written + 1, first_line))
        out.writelines(lines)
        self.lines_written += len(lines)

    def dump_line(self, output_line: int) -> int:
        """The dump's line of a line of the filtered script."""
        start, origin = self._run_of(output_line)
        return origin + output_line - start

    def item_start(self, output_line: int) -> int:
        """The first line (of the filtered script) of the item holding `output_line`."""
        return self._run_of(output_line)[0]

    def _run_of(self, output_line: int) -> tuple[int, int]:
        index = bisect_right(self._runs, (output_line, float("inf"))) - 1
        return self._runs[index] if index >= 0 else (output_line, output_line)

    @property
    def extensions_missing(self) -> list[str]:
        """Extensions whose types the kept statements use and that the dump lacks."""
        return sorted({EXTENSION_TYPES[t] for t in self.types_used if t in EXTENSION_TYPES}
                      - self.extensions_created)

    def summary(self) -> str:
        return ", ".join(f"{kind}: {n}" for kind, n in sorted(self.left_out.items()))


@dataclass
class Item:
    kind: str          # "meta", "statement", "copy data", "blank"
    lines: list[str]
    first_line: int


def read_items(script: IO[str]) -> Iterator[Item]:
    """The script's meta-commands, statements (each with the comments before it) and
    COPY data blocks, in order."""
    pending: list[str] = []
    first = 0
    copy_data = False
    for number, line in enumerate(script, start=1):
        if copy_data:
            pending.append(line)
            if line.rstrip("\r\n") == "\\.":
                yield Item("copy data", pending, first)
                pending, copy_data = [], False
            continue
        if line.startswith("\\") and _only_comments(pending):
            if pending:
                yield Item("statement", pending, first)
            yield Item("meta", [line], number)
            pending, first = [], number + 1
            continue
        if not pending:
            first = number
        pending.append(line)
        if ";" in line and _complete("".join(pending)):
            text = "".join(pending)
            yield Item("statement", pending, first)
            copy_data = _copies_from_stdin(text)
            pending, first = [], number + 1
    if pending:
        yield Item("statement" if not copy_data else "copy data", pending, first)


def _only_comments(lines: list[str]) -> bool:
    """Lines between statements: blank, or `--` comments."""
    return all(not line.strip() or line.lstrip().startswith("--") for line in lines)


def _complete(text: str) -> bool:
    """Whether `text` ends with a whole statement: its last token (comments aside) is a
    `;` outside any parentheses, string or comment."""
    try:
        tokens = [t for t in parser.scan(text) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    except ParseError:  # an unterminated quote or comment: more lines to come
        return False
    depth = sum(t.name == "ASCII_40" for t in tokens) - sum(t.name == "ASCII_41" for t in tokens)
    return bool(tokens) and tokens[-1].name == "ASCII_59" and depth == 0


def _copies_from_stdin(text: str) -> bool:
    try:
        statements = parser.parse_sql(text)
    except ParseError:
        return False
    last = statements[-1].stmt if statements else None
    return isinstance(last, ast.CopyStmt) and last.is_from and not last.filename


class Classifier:
    """Why a statement is left out (its kind), or None to keep it. `known_settings`: the
    target server's parameters."""

    def __init__(self, known_settings: set[str]):
        self.known_settings = known_settings
        self.left_out_extensions: set[str] = set()
        self.left_out_event_triggers: set[str] = set()

    def __call__(self, statement: ast.Node) -> str | None:
        if isinstance(statement, ast.VariableSetStmt):
            return self._setting(statement)
        if isinstance(statement, (ast.GrantStmt, ast.GrantRoleStmt,
                                  ast.AlterDefaultPrivilegesStmt)):
            return PRIVILEGE_KIND
        if isinstance(statement, ast.AlterOwnerStmt) or _changes_owner(statement):
            return OWNER_KIND
        if isinstance(statement, ast.CreateSchemaStmt):
            if statement.schemaname in LEFT_OUT_SCHEMAS:
                return "Xata's and the platform's schemas"
            return "schema public (the database has it)" if statement.schemaname == \
                "public" else None
        if isinstance(statement, ast.CreateExtensionStmt):
            return self._extension(statement)
        if isinstance(statement, ast.CommentStmt) and self._about_left_out(statement):
            return "comments on what is left out"
        schema = defined_in(statement)
        if schema in LEFT_OUT_SCHEMAS:
            return f"objects of schema {schema}"
        if isinstance(statement, ast.CreateEventTrigStmt) and \
                _qualifier(statement.funcname) in LEFT_OUT_SCHEMAS:
            self.left_out_event_triggers.add(statement.trigname)
            return "event triggers of the platform's schemas"
        if isinstance(statement, ast.AlterEventTrigStmt) and \
                statement.trigname in self.left_out_event_triggers:
            return "event triggers of the platform's schemas"
        return None

    def _setting(self, statement: ast.VariableSetStmt) -> str | None:
        name = (statement.name or "").lower()
        if name == "session_authorization":  # SET and RESET SESSION AUTHORIZATION
            return "session authorizations"
        if statement.kind == VariableSetKind.VAR_SET_VALUE and "." not in name \
                and name not in self.known_settings:
            return "settings the target server does not know"
        return None

    def _extension(self, statement: ast.CreateExtensionStmt) -> str | None:
        for option in statement.options or ():
            if option.defname == "schema" and _string(option.arg) in LEFT_OUT_SCHEMAS:
                self.left_out_extensions.add(statement.extname)
                return "extensions installed in Xata's schemas"
        return None

    def _about_left_out(self, statement: ast.CommentStmt) -> bool:
        target = statement.object
        if statement.objtype == ObjectType.OBJECT_EXTENSION:
            return _string(target) in self.left_out_extensions
        if statement.objtype == ObjectType.OBJECT_SCHEMA:
            return _string(target) in LEFT_OUT_SCHEMAS
        if statement.objtype == ObjectType.OBJECT_EVENT_TRIGGER:
            return _string(target) in self.left_out_event_triggers
        return _object_schema(target) in LEFT_OUT_SCHEMAS


def _changes_owner(statement: ast.Node) -> bool:
    """ALTER TABLE / SEQUENCE / VIEW ... OWNER TO (an AlterTableStmt of that one action)."""
    return isinstance(statement, ast.AlterTableStmt) and all(
        c.subtype == AlterTableType.AT_ChangeOwner for c in statement.cmds or ())


def _string(node) -> str | None:
    if isinstance(node, ast.String):
        return node.sval
    if isinstance(node, (list, tuple)) and node and isinstance(node[-1], ast.String):
        return node[-1].sval
    return None


def _qualifier(names) -> str | None:
    """The schema of a qualified name list (schema, name), if given."""
    names = [n.sval for n in names or () if isinstance(n, ast.String)]
    return names[0] if len(names) > 1 else None


def _object_schema(target) -> str | None:
    if isinstance(target, ast.ObjectWithArgs):
        return _qualifier(target.objname)
    if isinstance(target, ast.TypeName):
        return _qualifier(target.names)
    if isinstance(target, (list, tuple)):
        return _qualifier(target)
    return None


_RELATION_FIELDS = {
    ast.CreateStmt: "relation", ast.IndexStmt: "relation", ast.AlterTableStmt: "relation",
    ast.CreateSeqStmt: "sequence", ast.AlterSeqStmt: "sequence", ast.ViewStmt: "view",
    ast.CompositeTypeStmt: "typevar", ast.CreateTrigStmt: "relation",
    ast.CopyStmt: "relation", ast.RuleStmt: "relation", ast.CreatePolicyStmt: "table",
}
_NAME_FIELDS = {
    ast.CreateFunctionStmt: "funcname", ast.DefineStmt: "defnames",
    ast.CreateDomainStmt: "domainname", ast.CreateEnumStmt: "typeName",
    ast.AlterDomainStmt: "typeName",
}


def defined_in(statement: ast.Node) -> str | None:
    """The schema of the object a statement creates, changes or fills (None: unqualified,
    or a statement about no one object)."""
    for kind, attribute in _RELATION_FIELDS.items():
        if isinstance(statement, kind):
            relation = getattr(statement, attribute)
            return relation.schemaname if relation is not None else None
    for kind, attribute in _NAME_FIELDS.items():
        if isinstance(statement, kind):
            return _qualifier(getattr(statement, attribute))
    if isinstance(statement, ast.CreateTableAsStmt):
        return statement.into.rel.schemaname
    if isinstance(statement, ast.AlterFunctionStmt):
        return _qualifier(statement.func.objname)
    if isinstance(statement, ast.SelectStmt):
        return _setval_schema(statement)
    return None


def _setval_schema(statement: ast.SelectStmt) -> str | None:
    """`SELECT pg_catalog.setval('schema.sequence', ...)`, as pg_dump writes it: the
    sequence's schema (the name is a literal, parsed as PostgreSQL reads a regclass)."""
    for target in statement.targetList or ():
        call = target.val
        if isinstance(call, ast.FuncCall) and call.funcname[-1].sval == "setval" \
                and call.args and isinstance(call.args[0], ast.A_Const) \
                and isinstance(call.args[0].val, ast.String):
            name = parser.parse_sql(f"SELECT 1 FROM {call.args[0].val.sval}")[0]
            return name.stmt.fromClause[0].schemaname
    return None


def _note_types_and_extensions(statement: ast.Node, filtered: Filtered) -> None:
    if isinstance(statement, ast.CreateExtensionStmt):
        filtered.extensions_created.add(statement.extname)
    elif isinstance(statement, (ast.CreateStmt, ast.AlterTableStmt, ast.CreateDomainStmt,
                                ast.CompositeTypeStmt)):
        for node in _type_names(statement):
            names = [n.sval for n in node.names if isinstance(n, ast.String)]
            if names and (len(names) == 1 or names[0] == "public"):
                filtered.types_used.add(names[-1])


def _type_names(node) -> Iterator[ast.TypeName]:
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _type_names(item)
    elif isinstance(node, ast.TypeName):
        yield node
    elif isinstance(node, ast.Node):
        for attribute in node:
            yield from _type_names(getattr(node, attribute))


def filter_script(script: IO[str], out: IO[str], known_settings: set[str]) -> Filtered:
    """Write to `out` the application's part of the pg_dump script `script`."""
    filtered = Filtered()
    classify = Classifier(known_settings)
    skip_copy_data = False
    for item in read_items(script):
        if item.kind == "meta":
            filtered.left_out["psql meta-commands"] += 1
        elif item.kind == "copy data":
            if not skip_copy_data:
                filtered.keep(out, item.lines, item.first_line)
        else:
            skip_copy_data = _keep_statement(item, out, filtered, classify)
    return filtered


def _keep_statement(item: Item, out: IO[str], filtered: Filtered, classify) -> bool:
    """Keep the item's statements that belong to the application; True if it ends with a
    COPY whose data must be left out too."""
    text = "".join(item.lines)
    try:
        statements = parser.parse_sql(text)
    except ParseError:  # not ours to judge: the server says what is wrong, with its line
        filtered.keep(out, item.lines, item.first_line)
        return False
    kinds = [classify(s.stmt) for s in statements]
    for kind in filter(None, kinds):
        filtered.left_out[kind] += 1
    for statement, kind in zip(statements, kinds):
        if kind is None:
            _note_types_and_extensions(statement.stmt, filtered)
    if not any(kinds):
        filtered.keep(out, item.lines, item.first_line)
    elif not all(kinds):  # several statements on the lines, some left out: keep the rest
        for statement, kind in zip(statements, kinds):
            if kind is None:  # pglast's locations count characters
                end = statement.stmt_location + (statement.stmt_len or len(text))
                kept = text[statement.stmt_location:end].strip() + ";\n"
                filtered.keep(out, [kept], item.first_line)
    return bool(statements) and kinds[-1] is not None and isinstance(
        statements[-1].stmt, ast.CopyStmt)
