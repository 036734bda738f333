"""Views and materialized views of the source schema, for the plan: read from the catalog
(the server's own pg_get_viewdef), their query parsed (pglast) and rewritten for the key
change, column by column.

Every column a query names is found in the table its FROM clause gives it (by alias, or
the one table that has it), and renamed as the plan renames it: a record id becomes `id`,
a link stays a link, now to the parent's new id. Comparing ids with ids (`o.xata_id =
a.org`, the usual join of Xata tables), testing them for NULL, grouping, ordering and
selecting them are the same on new ids: selected, they return the new id (and the view's
check reads it back through the mapping). Any other use of an id (as text: `||`, LIKE,
a function's argument) is `review`, as is a query this reading cannot follow (a
subquery, a WITH, a set operation, a column it cannot place).
"""

from __future__ import annotations

import psycopg
from pglast import ast, parser
from pglast.parser import ParseError

from xata_migration.plan.definitions import ColumnRole, render
from xata_migration.plan.introspect_objects import column_roles
from xata_migration.plan.model import Plan, View

_VIEWS_SQL = """
SELECT c.relname AS name, c.relkind, pg_get_viewdef(c.oid, true) AS query,
       ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
             AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
       ARRAY(SELECT DISTINCT format('%%s.%%s', rn.nspname, rc.relname) FROM pg_rewrite r
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
             JOIN pg_class rc ON rc.oid = d.refobjid AND rc.oid <> c.oid
             JOIN pg_namespace rn ON rn.oid = rc.relnamespace
             WHERE r.ev_class = c.oid AND rc.relkind IN ('r', 'p', 'v', 'm')) AS reads
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('v', 'm')
ORDER BY c.relname
"""

# Where an id keeps its meaning as a new bigint id: compared for equality with another
# id, tested for NULL, selected, grouped, ordered.
_ID_OPERATORS = ("=", "<>")


class Unreadable(Exception):
    """A query this reading cannot follow: `review`, with the reason."""


def describe_views(conn: psycopg.Connection, plan: Plan) -> None:
    """Fill in plan.views, each after the views it reads."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(_VIEWS_SQL, {"schema": plan.source_schema}).fetchall()
    conn.commit()
    names = {row["name"] for row in rows}
    while rows:
        made = {v.name for v in plan.views}
        ready = [r for r in rows if all(n.split(".", 1)[1] in made or n.split(".", 1)[1]
                                        not in names for n in r["reads"])] or rows
        for row in ready:
            plan.views.append(view_from_source(plan, row))
        rows = [r for r in rows if r not in ready]


def view_from_source(plan: Plan, row: dict) -> View:
    kind = "materialized" if row["relkind"] == "m" else "view"
    reads = [name.split(".", 1)[1] for name in row["reads"]]
    view = View(row["name"], kind, row["query"].strip().rstrip(";"), reads=reads,
                columns=list(row["columns"]))
    outside = [n for n in row["reads"] if n.split(".", 1)[0] != plan.source_schema]
    if outside:
        view.fate, view.reason = "review", f"it reads {outside}, of another schema"
        return view
    try:
        view.query, view.id_columns = rewrite_query(view.query, plan)
    except Unreadable as why:
        view.fate, view.reason = "review", str(why)
    return view


def rewrite_query(query: str, plan: Plan) -> tuple[str, dict[str, str]]:
    """The query for the target, and its output columns that are remapped ids ({column:
    table}); Unreadable if it cannot be rewritten with certainty."""
    try:
        statements = parser.parse_sql(query)
    except ParseError as error:
        raise Unreadable(f"its query does not parse ({error})") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        raise Unreadable("its query is not one SELECT")
    select = statements[0].stmt
    if select.op != 0 or select.withClause or select.valuesLists:  # 0: SETOP_NONE
        raise Unreadable("its query is a set operation, a WITH or VALUES, which this tool "
                         "does not rewrite: edit it for the new ids and set `fate: carry`")
    scope = _scope(select.fromClause or (), plan)
    ids: dict[str, str] = {}
    renames = []
    for ref, parent in list(_column_refs(select)):
        table_name, column = _place(ref, scope)
        role = _roles(plan, table_name).get(column)
        if role is None:
            raise Unreadable(f"it reads {table_name}.{column}, which the plan does not have")
        if role.role == "dropped":
            raise Unreadable(f"it reads {table_name}.{column}, which the plan drops")
        target = role.target
        if isinstance(parent, ast.ResTarget) and not parent.name and target != column:
            parent.name = column  # the view keeps its column's name
        if role.role in ("id", "link"):
            if not _keeps_meaning(ref, parent, scope, plan):
                what = "the record id" if role.role == "id" else f"the link {column!r}"
                raise Unreadable(f"it uses {what} of {table_name!r} as a value, and it "
                                 "becomes a bigint id: edit the query and set `fate: carry`")
            if any(parent is item for item in select.targetList):
                ids[parent.name or column] = _id_table(plan, table_name, column, role)
        renames.append((ref, target))
    for ref, target in renames:  # after every use was judged on the source's names
        ref.fields = (*ref.fields[:-1], ast.String(target))
    return render(select), ids


def _scope(from_clause, plan: Plan) -> dict[str, str]:
    """{alias or name: table} of a FROM clause of tables, views and joins."""
    scope: dict[str, str] = {}
    known = {t.name for t in plan.tables} | {v.name for v in plan.views}
    for item in from_clause:
        for relation in _relations(item):
            if relation.relname not in known:
                raise Unreadable(f"it reads {relation.relname!r}, which the plan does not "
                                 "migrate")
            alias = relation.alias.aliasname if relation.alias else relation.relname
            scope[alias] = relation.relname
    return scope


def _relations(item):
    if isinstance(item, ast.RangeVar):
        yield item
    elif isinstance(item, ast.JoinExpr):
        yield from _relations(item.larg)
        yield from _relations(item.rarg)
    else:
        raise Unreadable("its FROM clause has a subquery or a function, which this tool "
                         "does not rewrite: edit it for the new ids and set `fate: carry`")


def _column_refs(node, parent=None):
    """(ColumnRef, the node holding it) everywhere in a query; Unreadable at a subquery."""
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _column_refs(item, parent)
        return
    if not isinstance(node, ast.Node):
        return
    if isinstance(node, (ast.SubLink, ast.RangeSubselect)):
        raise Unreadable("its query has a subquery, which this tool does not rewrite: edit "
                         "it for the new ids and set `fate: carry`")
    if isinstance(node, ast.ColumnRef):
        if isinstance(node.fields[-1], ast.A_Star):
            raise Unreadable("it selects `*`, whose columns this tool does not follow")
        yield node, parent
        return
    for attribute in node:
        if attribute not in ("fromClause",):
            yield from _column_refs(getattr(node, attribute), node)
    if isinstance(node, ast.SelectStmt):
        for item in node.fromClause or ():
            yield from _join_conditions(item)


def _join_conditions(item):
    if isinstance(item, ast.JoinExpr):
        yield from _join_conditions(item.larg)
        yield from _join_conditions(item.rarg)
        yield from _column_refs(item.quals, item)


def _place(ref: ast.ColumnRef, scope: dict[str, str]) -> tuple[str, str]:
    names = [f.sval for f in ref.fields]
    if len(names) == 2 and names[0] in scope:
        return scope[names[0]], names[1]
    if len(names) == 1 and len(set(scope.values())) == 1:
        return next(iter(scope.values())), names[0]
    raise Unreadable(f"it names {'.'.join(names)!r}, whose table this tool cannot tell: "
                     "qualify it with its table in the source view, or edit the query")


def _roles(plan: Plan, name: str) -> dict[str, ColumnRole]:
    for table in plan.tables:
        if table.name == name:
            return column_roles(table)
    view = next(v for v in plan.views if v.name == name)
    return {c: ColumnRole(c, "link" if c in view.id_columns else "value")
            for c in view.columns}


def _id_table(plan: Plan, table_name: str, column: str, role: ColumnRole) -> str:
    """The table whose mapping names the value of an id or link column."""
    for table in plan.tables:
        if table.name == table_name:
            return table.name if role.role == "id" else table.column(column).link.table
    return next(v for v in plan.views if v.name == table_name).id_columns[column]


def _keeps_meaning(ref, parent, scope, plan: Plan) -> bool:
    if isinstance(parent, (ast.ResTarget, ast.NullTest, ast.SortBy)):
        return True
    if isinstance(parent, ast.SelectStmt):  # GROUP BY
        return True
    if isinstance(parent, ast.A_Expr) and parent.kind == 0 and len(parent.name) == 1 \
            and parent.name[0].sval in _ID_OPERATORS:
        other = parent.rexpr if parent.lexpr is ref else parent.lexpr
        if isinstance(other, ast.ColumnRef):
            try:
                table_name, column = _place(other, scope)
            except Unreadable:
                return False
            role = _roles(plan, table_name).get(column)
            return role is not None and role.role in ("id", "link")
    return False
