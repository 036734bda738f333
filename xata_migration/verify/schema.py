"""schema_intact: every object the plan carries for a table exists on the target with
the planned definition.

The target's objects are read by the same catalog reading that wrote the plan from the
source (plan/catalog.py): the server's own pg_get_*def, and CREATE statements made from
the catalog for types and sequences. Both sides are compared as pglast renders their
parse (plan/definitions.py), so layout, quoting and the schema do not count, and any
other difference does. Compared: the user types the table's columns name, its
sequences, constraints, indexes and triggers (and the functions they execute), generated
columns, comments, and each link's FOREIGN KEY with its ON DELETE and ON UPDATE actions.
"""

from __future__ import annotations

from xata_migration.pg.objects import foreign_key_name
from xata_migration.plan import catalog
from xata_migration.plan.definitions import comparable, target_expression, trigger_function
from xata_migration.plan.model import DEFERRABLE_SQL, Plan, Table
from xata_migration.plan.sql_text import SqlTextError
from xata_migration.verify.findings import CheckOutcome

MISSING = "missing"

_GENERATED_SQL = """
SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a
JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = to_regclass(%s) AND a.attgenerated = 's'
"""

_LINK_ACTIONS_SQL = """
SELECT conname, confdeltype, confupdtype, condeferrable, condeferred FROM pg_constraint
WHERE conrelid = to_regclass(%s) AND contype = 'f'
"""


def schema_intact(target, plan: Plan, table: Table) -> CheckOutcome:
    compared: list[tuple[str, str, str]] = []   # (object, planned, found)
    compared += _types(target, plan, table)
    compared += _sequences(target, plan, table)
    compared += _table_objects(target, plan, table)
    compared += _functions(target, plan, table)
    compared += _row_security(target, plan, table)
    compared += _generated(target, plan, table)
    compared += _comments(target, plan, table)
    compared += _link_actions(target, plan, table)
    differing = [c for c in compared if c[1] != c[2]]
    summary = ("no objects besides the rows and the tool's keys" if not compared else
               f"{len(compared)} objects as planned" if not differing else
               f"{len(differing)} of {len(compared)} objects differ: "
               + ", ".join(c[0] for c in differing[:5]))
    metadata = {"objects_compared": [c[0] for c in compared],
                "objects_differing": len(differing), "compared_by": "catalog"}
    if differing:
        metadata["differences"] = [{"object": o, "planned": p, "found": f}
                                   for o, p, f in differing]
    return CheckOutcome("schema_intact", not differing, summary, metadata,
                        compared=[(o, p, f) for o, p, f in (differing or compared)][:50])


def _comparable(text: str | None, kind: str, name: str, table: str | None = None) -> str:
    if text is None:
        return MISSING
    try:
        return comparable(text, kind, name, table)
    except SqlTextError as error:  # e.g. an object of that name, but of another kind
        return f"{text} ({error})"


def _types(target, plan: Plan, table: Table) -> list[tuple]:
    named = {c.type.removesuffix("[]") for c in table.columns}
    found = []
    for item in plan.types:
        if item.carried and item.name in named:
            on_target = catalog.type_definition(target, plan.target_schema, item.name)
            found.append((f"type {item.name}",
                          _comparable(item.definition, item.kind, item.name),
                          _comparable(on_target, item.kind, item.name)))
    return found


def _sequences(target, plan: Plan, table: Table) -> list[tuple]:
    found = []
    for item in table.sequences:
        if item.carried:
            on_target = catalog.sequence_definition(target, plan.target_schema, item.name)
            found.append((f"sequence {item.name}",
                          _comparable(item.definition, "sequence", item.name),
                          _comparable(on_target, "sequence", item.name)))
    return found


def _table_objects(target, plan: Plan, table: Table) -> list[tuple]:
    existing = catalog.objects_by_name(target, plan.target_schema, table.target)
    found = []
    for item in table.objects:
        if not item.carried:
            continue
        on_target = existing.get(item.name)
        kind = on_target.kind if on_target else item.kind
        found.append((f"{item.kind} {item.name}",
                       _comparable(item.definition, item.kind, item.name, table.target),
                       _comparable(on_target and on_target.definition, kind, item.name)))
    return found


def _row_security(target, plan: Plan, table: Table) -> list[tuple]:
    found = catalog.row_security(target, plan.target_schema, table.target)
    if not (table.row_security or found):
        return []
    return [("row level security", table.row_security or "off", found or "off")]


def _functions(target, plan: Plan, table: Table) -> list[tuple]:
    """The functions the table's carried triggers execute."""
    called = {trigger_function(o.definition, o.name) for o in table.objects
              if o.kind == "trigger" and o.carried}
    found = []
    for item in plan.functions:
        if item.carried and item.name.split("(")[0] in called:
            there = catalog.functions(target, plan.target_schema, item.name).get(item.name)
            found.append((f"function {item.name}", _comparable(item.definition, "function",
                                                               item.name),
                          _comparable(there, "function", item.name)))
    return found


def _generated(target, plan: Plan, table: Table) -> list[tuple]:
    on_target = dict(target.execute(_GENERATED_SQL, (
        catalog.qualified(plan.target_schema, table.target),)).fetchall())
    found = []
    for column in table.columns:
        if column.generated is not None or column.target in on_target:
            planned = (target_expression(column.generated) if column.generated is not None
                       else "not generated")
            there = on_target.get(column.target)
            found.append((f"generated column {column.target}", planned,
                          target_expression(there) if there else "not generated"))
    return found


def _comments(target, plan: Plan, table: Table) -> list[tuple]:
    found = []
    if table.comment is not None:
        found.append(("comment on the table", table.comment,
                      catalog.table_comment(target, plan.target_schema, table.target)))
    commented = [c for c in table.columns if c.comment is not None]
    if commented:
        current = catalog.column_comments(target, plan.target_schema, table.target)
        found += [(f"comment on column {c.target}", c.comment, current.get(c.target))
                  for c in commented]
    return found


def _link_actions(target, plan: Plan, table: Table) -> list[tuple]:
    """The FOREIGN KEY of each link the table's own load writes (a deferred link's is
    made by its own asset, after this check)."""
    keys = {row[0]: row[1:] for row in target.execute(_LINK_ACTIONS_SQL, (
        catalog.qualified(plan.target_schema, table.target),))}
    found = []
    for column in table.links:
        if column.is_array_link or column.link.deferred:
            continue
        key = keys.get(foreign_key_name(table, column))
        planned = (f"ON DELETE {column.link.on_delete} ON UPDATE {column.link.on_update}"
                   + DEFERRABLE_SQL[column.link.deferrable])
        actions = catalog.FK_ACTIONS
        deferrable = ("deferred" if key[3] else "immediate") if key and key[2] else ""
        there = (f"ON DELETE {actions[key[0]]} ON UPDATE {actions[key[1]]}"
                 + DEFERRABLE_SQL[deferrable] if key else MISSING)
        found.append((f"foreign key of link {column.target}", planned, there))
    return found
