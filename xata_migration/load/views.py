"""A view or materialized view on the target, once the tables it reads are loaded: made
where missing, remade where its query differs from the plan's, and a materialized view
refreshed on every run. One transaction; the query is the plan's, rendered from its parse.
"""

from __future__ import annotations

from psycopg import sql

from xata_migration.plan.definitions import view_query
from xata_migration.plan.model import Plan, View

_EXISTING_SQL = """
SELECT c.relkind, pg_get_viewdef(c.oid, true) FROM pg_class c
WHERE c.oid = to_regclass(%s) AND c.relkind IN ('v', 'm')
"""


def make_view(target, plan: Plan, view: View) -> str:
    """Make, remake or refresh the view; what was done: created, replaced, refreshed or
    unchanged."""
    name = sql.Identifier(plan.target_schema, view.name)
    query = view_query(view)
    materialized = view.kind == "materialized"
    kind = sql.SQL("MATERIALIZED VIEW" if materialized else "VIEW")
    with target.transaction():
        found = target.execute(_EXISTING_SQL, (name.as_string(target),)).fetchone()
        same = found is not None and found[0] == ("m" if materialized else "v") and \
            view_query(View(view.name, view.kind, found[1].strip().rstrip(";"))) == query
        if same and not materialized:
            return "unchanged"
        if same:
            target.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(name))
            return "refreshed"
        if found is not None:
            target.execute(sql.SQL("DROP {} {}").format(
                sql.SQL("MATERIALIZED VIEW" if found[0] == "m" else "VIEW"), name))
        target.execute(sql.SQL("CREATE {} {} AS {}").format(kind, name, sql.SQL(query)))
        return "replaced" if found is not None else "created"
