"""Definitions of the objects around the rows (types, sequences, constraints, indexes,
generated expressions) as SQL text in a plan: parsed by PostgreSQL's own parser (pglast),
rewritten for the key change on the parse tree, and rendered for the target from that
tree, never pasted.

A definition must be exactly one statement of its kind, for the object it names, on the
table it belongs to. What the target runs is pglast's rendering of that tree, with the
target schema set on it; what `schema_intact` compares is the same rendering of both
sides, so layout, quoting and the schema do not count as differences.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, parser, stream
from pglast.enums import ConstrType
from pglast.parser import ParseError

from xata_migration.plan.sql_text import SqlTextError, check_expression

TYPE_KINDS = ("enum", "domain", "composite")
CONSTRAINT_KINDS = {"primary_key": ConstrType.CONSTR_PRIMARY,
                    "unique": ConstrType.CONSTR_UNIQUE, "check": ConstrType.CONSTR_CHECK,
                    "exclusion": ConstrType.CONSTR_EXCLUSION,
                    "foreign_key": ConstrType.CONSTR_FOREIGN}
TABLE_OBJECT_KINDS = (*CONSTRAINT_KINDS, "index", "trigger", "policy")
_STATEMENTS = {"enum": ast.CreateEnumStmt, "domain": ast.CreateDomainStmt,
               "composite": ast.CompositeTypeStmt, "sequence": ast.CreateSeqStmt,
               "index": ast.IndexStmt, "trigger": ast.CreateTrigStmt,
               "policy": ast.CreatePolicyStmt,
               "function": ast.CreateFunctionStmt,
               **{k: ast.AlterTableStmt for k in CONSTRAINT_KINDS}}
_WHAT = {"enum": "CREATE TYPE ... AS ENUM", "domain": "CREATE DOMAIN",
         "composite": "CREATE TYPE ... AS (...)", "sequence": "CREATE SEQUENCE",
         "index": "CREATE INDEX", "trigger": "CREATE TRIGGER", "policy": "CREATE POLICY",
         "function": "CREATE FUNCTION or PROCEDURE",
         "primary_key": "ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY",
         "unique": "ALTER TABLE ... ADD CONSTRAINT ... UNIQUE",
         "check": "ALTER TABLE ... ADD CONSTRAINT ... CHECK",
         "exclusion": "ALTER TABLE ... ADD CONSTRAINT ... EXCLUDE",
         "foreign_key": "ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY"}


def render(node: ast.Node) -> str:
    return stream.RawStream()(node)


# ---------------------------------------------------------------- one statement, of its kind


def parse_definition(text: str, kind: str, name: str, table: str | None = None) -> ast.Node:
    """The one statement `text` is, if it is a `kind` named `name` (on `table`, for a
    constraint or an index); else SqlTextError saying what it is instead."""
    what = f"one {_WHAT[kind]} statement"
    try:
        statements = parser.parse_sql(text)
    except ParseError as error:
        raise SqlTextError(what, f"what PostgreSQL's parser refuses ({error})") from None
    if len(statements) != 1:
        raise SqlTextError(what, f"{len(statements)} statements")
    statement = statements[0].stmt
    if not isinstance(statement, _STATEMENTS[kind]):
        raise SqlTextError(what, f"a {type(statement).__name__}")
    if kind in CONSTRAINT_KINDS:
        _check_one_constraint(statement, kind, what)
    found = object_name(statement)
    if found != (name.split("(")[0] if kind == "function" else name):
        raise SqlTextError(what, f"a definition of {found!r}, not of {name!r}")
    if table is not None and (_relation(statement).relname != table
                              or _relation(statement).schemaname):
        raise SqlTextError(what, f"a statement on table {_relation_text(statement)!r}, not on "
                                 f"{table!r} (write the table's target name, unqualified)")
    return statement


def _check_one_constraint(statement: ast.AlterTableStmt, kind: str, what: str) -> None:
    commands = statement.cmds or ()
    if len(commands) != 1 or not isinstance(commands[0].def_, ast.Constraint):
        raise SqlTextError(what, f"{len(commands)} ALTER TABLE actions, or another action "
                                 "than ADD CONSTRAINT")
    if commands[0].def_.contype != CONSTRAINT_KINDS[kind]:
        raise SqlTextError(what, f"a {commands[0].def_.contype.name} constraint")


def object_name(statement: ast.Node) -> str:
    if isinstance(statement, ast.AlterTableStmt):
        return statement.cmds[0].def_.conname
    if isinstance(statement, ast.IndexStmt):
        return statement.idxname
    if isinstance(statement, ast.CreateTrigStmt):
        return statement.trigname
    if isinstance(statement, ast.CreatePolicyStmt):
        return statement.policy_name
    if isinstance(statement, ast.CreateFunctionStmt):
        return statement.funcname[-1].sval
    if isinstance(statement, ast.CreateEnumStmt):
        return _dotted(statement.typeName)
    if isinstance(statement, ast.CreateDomainStmt):
        return _dotted(statement.domainname)
    if isinstance(statement, ast.CompositeTypeStmt):
        return _qualified(statement.typevar)
    return _qualified(statement.sequence)


def _dotted(names) -> str:
    return ".".join(n.sval for n in names)


def _qualified(relation: ast.RangeVar) -> str:
    return f"{relation.schemaname}.{relation.relname}" if relation.schemaname else \
        relation.relname


def _relation(statement: ast.Node) -> ast.RangeVar:
    """The table a constraint, index, trigger or policy is on."""
    if isinstance(statement, ast.CreatePolicyStmt):
        return statement.table
    return statement.relation


def _relation_text(statement: ast.Node) -> str:
    return _qualified(_relation(statement))


# ---------------------------------------------------------------- for the target


def in_schema(statement: ast.Node, schema: str) -> ast.Node:
    """The statement with its object (types, sequences) or its table (constraints,
    indexes) qualified by `schema`."""
    if isinstance(statement, (ast.AlterTableStmt, ast.IndexStmt, ast.CreateTrigStmt,
                              ast.CreatePolicyStmt)):
        _relation(statement).schemaname = schema
    elif isinstance(statement, ast.CreateFunctionStmt):
        statement.funcname = (ast.String(schema), *statement.funcname[-1:])
    elif isinstance(statement, ast.CreateEnumStmt):
        statement.typeName = (ast.String(schema), *statement.typeName[-1:])
    elif isinstance(statement, ast.CreateDomainStmt):
        statement.domainname = (ast.String(schema), *statement.domainname[-1:])
    elif isinstance(statement, ast.CompositeTypeStmt):
        statement.typevar.schemaname = schema
    elif isinstance(statement, ast.CreateSeqStmt):
        statement.sequence.schemaname = schema
    return statement


def target_statement(text: str, kind: str, name: str, schema: str,
                     table: str | None = None) -> str:
    """What the target runs for a planned definition: its parse, in `schema`, rendered."""
    return render(in_schema(parse_definition(text, kind, name, table), schema))


def comparable(text: str, kind: str, name: str, table: str | None = None) -> str:
    """A definition as schema_intact compares it: rendered from its parse, unqualified."""
    statement = parse_definition(text, kind, name, table)
    if isinstance(statement, (ast.AlterTableStmt, ast.IndexStmt, ast.CreateTrigStmt,
                              ast.CreatePolicyStmt)):
        _relation(statement).schemaname = None
    elif isinstance(statement, ast.CreateFunctionStmt):
        statement.funcname = statement.funcname[-1:]
    return render(statement)


# ---------------------------------------------------------------- the key change


@dataclass
class ColumnRole:
    """What a source column becomes: its target name, and whether its values change
    (`id`: the record id, now bigint; `link`: now the parent's bigint id) or it is gone."""
    target: str
    role: str = "value"  # value | id | link | dropped


@dataclass
class Rewritten:
    text: str
    review: str = ""        # why a person must look at it; "" if it carries as is
    columns: tuple = ()     # the target columns it reads


def rewrite_definition(text: str, kind: str, name: str, table_target: str,
                       roles: dict[str, ColumnRole]) -> Rewritten:
    """A source definition (pg_get_*def) for the target: on the table's target name, its
    columns renamed; `review` says why it cannot be carried as is."""
    statement = parse_definition(text, kind, name)
    _relation(statement).schemaname, _relation(statement).relname = None, table_target
    if kind == "foreign_key":
        return Rewritten(render(statement), "a foreign key that is not one of the plan's "
                         "links (it references another key than a record id): recreate it "
                         "by hand after the migration, or drop it")
    reasons, columns = _rewrite_columns(statement, roles)
    return Rewritten(render(statement), "; ".join(dict.fromkeys(reasons)), tuple(columns))


def rewrite_expression(text: str, roles: dict[str, ColumnRole]) -> Rewritten:
    """A generated column's expression for the target, as rewrite_definition does."""
    check_expression(text)
    expression = parser.parse_sql(f"SELECT ({text})")[0].stmt.targetList[0].val
    holder = ast.ResTarget(val=expression)
    reasons, columns = _rewrite_columns(holder, roles)
    return Rewritten(render(holder.val), "; ".join(dict.fromkeys(reasons)), tuple(columns))


def columns_read(text: str, kind: str, name: str, table: str | None = None) -> set[str]:
    """The columns a planned definition reads (names as written)."""
    statement = parse_definition(text, kind, name, table)
    return {name for _, _, name in _column_names(statement)}


def expression_columns(text: str) -> set[str]:
    expression = parser.parse_sql(f"SELECT ({text})")[0].stmt.targetList[0].val
    return {value for _, _, value in _column_names(ast.ResTarget(val=expression))}


def _rewrite_columns(tree: ast.Node, roles: dict[str, ColumnRole]) -> tuple[list, list]:
    reasons, columns = [], []
    for holder, place, source_name in list(_column_names(tree)):
        role = roles.get(source_name)
        if role is None:
            reasons.append(f"reads {source_name!r}, which the table does not have")
            continue
        if role.role == "dropped":
            reasons.append(f"reads column {source_name!r}, which the plan drops")
        elif role.role in ("id", "link") and place == "value":
            what = "the record id" if role.role == "id" else f"the link {source_name!r}"
            reasons.append(f"uses {what} as a text value, and it becomes a bigint id")
        _rename(holder, role.target)
        columns.append(role.target)
    return reasons, columns


def _rename(holder, name: str) -> None:
    if isinstance(holder, ast.String):
        holder.sval = name
    elif isinstance(holder, ast.IndexElem):
        holder.name = name
    else:  # a ColumnRef
        holder.fields = (*holder.fields[:-1], ast.String(name))


def _column_names(tree: ast.Node):
    """(holder, place, name) for every column a definition names. `place` is "key" where
    only the column's identity counts (an index or constraint key, a NULL test), and
    "value" where its value is used in an expression."""
    yield from _walk(tree, None)


def _walk(node, parent):
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item, parent)
        return
    if not isinstance(node, ast.Node):
        return
    if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
        yield node, "key" if isinstance(parent, ast.NullTest) else "value", \
            node.fields[-1].sval
        return
    if isinstance(node, ast.IndexElem) and node.name:
        plain = not node.opclass and not node.collation
        yield node, "key" if plain else "value", node.name
    if isinstance(node, ast.CreateTrigStmt):  # UPDATE OF columns, and the WHEN clause
        for item in node.columns or ():
            yield item, "key", item.sval
        yield from _walk(node.whenClause, node)
        return
    if isinstance(node, ast.Constraint):
        for attribute in ("keys", "including", "fk_attrs"):
            for item in getattr(node, attribute, None) or ():
                yield item, "key", item.sval
        # pk_attrs name the referenced table's columns; exclusions are (element, operator)
        for pair in node.exclusions or ():
            yield from _walk(pair[0], node)
        yield from _walk(node.raw_expr, node)
        yield from _walk(node.where_clause, node)
        return
    for attribute in node:
        if attribute in ("relation", "typeName", "pktable", "table"):
            continue
        yield from _walk(getattr(node, attribute), node)


def target_expression(text: str) -> str:
    """A generated column's expression as the target receives it: its parse, rendered."""
    check_expression(text)
    return render(parser.parse_sql(f"SELECT ({text})")[0].stmt.targetList[0].val)


def array_length_check(text: str, name: str) -> tuple[str, int] | None:
    """(column, n) if the CHECK constraint `text` is exactly array_length(column, 1) = n
    (how Xata bounds a vector's length), else None."""
    check = parse_definition(text, "check", name).cmds[0].def_.raw_expr
    if not (isinstance(check, ast.A_Expr) and len(check.name) == 1
            and check.name[0].sval == "=" and isinstance(check.lexpr, ast.FuncCall)
            and _dotted(check.lexpr.funcname) in ("array_length", "pg_catalog.array_length")
            and _integer(check.rexpr) is not None):
        return None
    args = check.lexpr.args or ()
    if (len(args) == 2 and isinstance(args[0], ast.ColumnRef) and _integer(args[1]) == 1
            and isinstance(args[0].fields[-1], ast.String)):
        return args[0].fields[-1].sval, _integer(check.rexpr)
    return None


def _integer(node) -> int | None:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer):
        return node.val.ival
    return None


def trigger_function(text: str, name: str) -> str:
    """The name of the function a CREATE TRIGGER executes (without its schema)."""
    return parse_definition(text, "trigger", name).funcname[-1].sval


def function_names(text: str, name: str, identifier: str) -> bool:
    """Whether the body of a CREATE FUNCTION names `identifier` (read by PostgreSQL's
    scanner, for SQL and PL/pgSQL bodies alike: a word, not a part of a string)."""
    statement = parse_definition(text, "function", name)
    bodies = [option.arg for option in statement.options or () if option.defname == "as"]
    for body in bodies:
        for part in body if isinstance(body, (list, tuple)) else (body,):
            source = part.sval if isinstance(part, ast.String) else ""
            try:
                tokens = parser.scan(source)
            except ParseError:
                continue
            if any(t.name == "IDENT" and source[t.start:t.end + 1] == identifier
                   for t in tokens):
                return True
    return False


def policy_roles(text: str, name: str) -> list[str]:
    """The roles a CREATE POLICY names (PUBLIC, CURRENT_USER and the like aside)."""
    statement = parse_definition(text, "policy", name)
    return [r.rolename for r in statement.roles or () if r.rolename]


def view_query(view) -> str:
    """A view's query as the target receives it: exactly one SELECT, rendered from its
    parse."""
    what = "one SELECT"
    try:
        statements = parser.parse_sql(view.query)
    except ParseError as error:
        raise SqlTextError(what, f"what PostgreSQL's parser refuses ({error})") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        raise SqlTextError(what, f"{len(statements)} statements, or not a SELECT")
    return render(statements[0].stmt)
