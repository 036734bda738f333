"""The objects around a table's rows on the target, in pg_dump's order: extensions and
user types before any table; a table's sequences before its rows; its generated columns,
constraints, indexes and comments after them; its sequences moved past the highest
value last.

Each is made from the plan's definition as parsed and rendered by plan/definitions.py,
only where it is missing or differs from the plan, so a rerun or a delta recreates
nothing that is already right.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from xata_migration.errors import LoadError
from xata_migration.load import ddl
from xata_migration.pg.objects import target_table
from xata_migration.plan import catalog
from xata_migration.plan.definitions import (comparable, policy_roles, target_expression,
                                             target_statement)
from xata_migration.plan.model import Plan, Table
from xata_migration.plan.objects import SchemaObject

def create_extensions_and_types(target, plan: Plan) -> None:
    """The extensions the plan's columns need, its user types, where missing, and its
    functions, where missing or different (before any table: triggers and defaults may
    call them)."""
    for extension in plan.extensions:
        _create_extension(target, extension)
    for item in plan.types:
        if item.carried and not _type_exists(target, plan, item):
            target.execute(target_statement(item.definition, item.kind, item.name,
                                             plan.target_schema))
    for item in plan.functions:
        if item.carried and not _same_function(target, plan, item):
            target.execute(target_statement(item.definition, "function", item.name,
                                            plan.target_schema))


def _same_function(target, plan: Plan, item: SchemaObject) -> bool:
    found = catalog.functions(target, plan.target_schema, item.name).get(item.name)
    return found is not None and comparable(found, "function", item.name) == comparable(
        item.definition, "function", item.name)


def _create_extension(target, extension: str) -> None:
    try:
        with target.transaction():  # a savepoint: the error must reach the user, not abort
            target.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(
                sql.Identifier(extension)))
    except psycopg.Error as error:
        raise LoadError(
            f"The plan's columns use types of the extension {extension!r}, which the target "
            f"cannot have ({str(error).strip()}). Install it on the target server (or let an "
            f"administrator CREATE EXTENSION {extension}), or change those columns' `type` in "
            "the plan. Nothing was written.") from None


def _type_exists(target, plan: Plan, item: SchemaObject) -> bool:
    return target.execute("SELECT to_regtype(%s) IS NOT NULL", (
        catalog.qualified(plan.target_schema, item.name),)).fetchone()[0]


def create_sequences(target, plan: Plan, table: Table) -> None:
    """The sequences the table's defaults call, where missing (before its rows)."""
    for item in table.sequences:
        exists = target.execute("SELECT to_regclass(%s) IS NOT NULL", (
            catalog.qualified(plan.target_schema, item.name),)).fetchone()[0]
        if item.carried and not exists:
            target.execute(target_statement(item.definition, "sequence", item.name,
                                            plan.target_schema))


def add_generated_columns(target, plan: Plan, table: Table) -> None:
    """A new table's generated columns, computed by the target from the rows just written."""
    for column in table.generated_columns:
        target.execute(sql.SQL(
            "ALTER TABLE {} ADD COLUMN {} {} GENERATED ALWAYS AS ({}) STORED").format(
            target_table(plan, table), sql.Identifier(column.target), sql.SQL(column.type),
            sql.SQL(target_expression(column.generated))))


def ensure_table_objects(target, plan: Plan, table: Table) -> list[str]:
    """Every carried constraint and index of the table, made where missing and remade
    where it differs from the plan; its comments; its sequences' owners. Returns the names
    of the objects made."""
    carried = any(item.carried for item in table.objects)
    existing = (catalog.objects_by_name(target, plan.target_schema, table.target)
                if carried else {})
    made = []
    for item in table.objects:
        if not item.carried:
            continue
        found = existing.get(item.name)
        if found is not None and _same(found, item, table):
            continue
        if found is not None:
            _drop(target, plan, table, found)
        target.execute(target_statement(item.definition, item.kind, item.name,
                                        plan.target_schema, table.target))
        if item.disabled:
            target.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
                target_table(plan, table), sql.Identifier(item.name)))
        made.append(item.name)
    _set_comments(target, plan, table)
    for item in table.sequences:
        if item.carried and item.owned_by:
            target.execute(sql.SQL("ALTER SEQUENCE {} OWNED BY {}.{}").format(
                sql.Identifier(plan.target_schema, item.name), target_table(plan, table),
                sql.Identifier(item.owned_by)))
    return made


def _same(found: catalog.CatalogObject, item: SchemaObject, table: Table) -> bool:
    if found.kind != item.kind:
        return False
    return comparable(found.definition, found.kind, found.name) == comparable(
        item.definition, item.kind, item.name, table.target)


def _drop(target, plan: Plan, table: Table, found: catalog.CatalogObject) -> None:
    if found.kind in ("trigger", "policy"):
        target.execute(sql.SQL("DROP {} {} ON {}").format(
            sql.SQL(found.kind.upper()), sql.Identifier(found.name), target_table(plan, table)))
    elif found.kind == "index":
        target.execute(sql.SQL("DROP INDEX {}").format(
            sql.Identifier(plan.target_schema, found.name)))
    else:
        target.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            target_table(plan, table), sql.Identifier(found.name)))


def _set_comments(target, plan: Plan, table: Table) -> None:
    name = target_table(plan, table)
    current = catalog.column_comments(target, plan.target_schema, table.target)
    if table.comment is not None and table.comment != catalog.table_comment(
            target, plan.target_schema, table.target):
        target.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(
            name, sql.Literal(table.comment)))
    for column in table.columns:
        if column.comment is not None and column.comment != current.get(column.target):
            target.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                name, sql.Identifier(column.target), sql.Literal(column.comment)))


_SEQUENCE_USERS_SQL = """
SELECT a.attname FROM pg_attrdef d
JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid
  AND dep.refobjid = to_regclass(%(sequence)s)
JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE d.adrelid = to_regclass(%(table)s)
"""


def position_sequences(source, target, plan: Plan, table: Table) -> None:
    """Each of the table's sequences past the last value the source gave, past the
    highest value its columns hold, and never back: the application's next INSERT works."""
    for item in table.sequences:
        if item.carried:
            _position(source, target, plan, table, item.name)


def _position(source, target, plan: Plan, table: Table, name: str) -> None:
    try:
        with source.transaction():  # a savepoint: the load's snapshot stays usable
            last, called = catalog.sequence_position(source, plan.source_schema, name)
    except psycopg.Error as error:
        raise LoadError(
            f"Table {table.name!r}: cannot read the source's sequence {name!r} "
            f"({str(error).strip()}). Grant the source role SELECT on it (or "
            "pg_read_all_data), or set the sequence to `fate: drop` in the plan. Nothing was "
            "written.") from None
    sequence = catalog.qualified(plan.target_schema, name)
    increment = target.execute("SELECT seqincrement FROM pg_sequence WHERE seqrelid ="
                               " to_regclass(%s)", (sequence,)).fetchone()[0]
    used = [last] if called else []  # a sequence never called has given out nothing
    if increment > 0:
        users = [r[0] for r in target.execute(_SEQUENCE_USERS_SQL, {
            "sequence": sequence, "table": target_table(plan, table).as_string(target)})]
        used += [sql.SQL("(SELECT max({}) FROM {})").format(
            sql.Identifier(u), target_table(plan, table)) for u in users]
    target_last, target_called = catalog.sequence_position(target, plan.target_schema, name)
    if target_called:
        used.append(target_last)
    if not used:
        return
    furthest = sql.SQL("greatest({})" if increment > 0 else "least({})").format(
        sql.SQL(", ").join(u if isinstance(u, sql.Composable) else sql.Literal(u)
                           for u in used))
    target.execute(sql.SQL("SELECT setval({}::regclass, v, true) FROM (SELECT {} AS v) s"
                           " WHERE v IS NOT NULL").format(sql.Literal(sequence), furthest))


def complete_table(source, target, plan: Plan, table: Table, created: bool) -> list[str]:
    """After the rows: on a new table, its generated columns and the tool's keys; the
    plan's constraints and indexes where missing or changed; the identities and the
    table's sequences moved past the highest value. Returns the objects made."""
    if created:
        add_generated_columns(target, plan, table)
        with target.pipeline():  # sent together, run in order, one wait for them all
            for statement in ddl.table_constraints_sql(plan, table):
                target.execute(statement)
    made = ensure_table_objects(target, plan, table)
    set_row_security(target, plan, table)
    for statement in ddl.position_identity_sql(plan, table):
        target.execute(statement)
    position_sequences(source, target, plan, table)
    return made


def pause_triggers(target, plan: Plan, table: Table) -> list[str]:
    """In the load's transaction: disable the target table's enabled triggers (the plan's
    and any made on the target), so they never fire on the tool's own writes; no other
    session sees them off. Returns their names for resume_triggers."""
    paused = [o.name for o in catalog.table_objects(target, plan.target_schema, table.target)
              if o.kind == "trigger" and o.enabled == "O"]
    for name in paused:
        target.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
            target_table(plan, table), sql.Identifier(name)))
    return paused


def resume_triggers(target, plan: Plan, table: Table, paused: list[str]) -> None:
    for name in paused:
        target.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(
            target_table(plan, table), sql.Identifier(name)))


ROW_SECURITY_SQL = {"": "NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY",
                    "enabled": "NO FORCE ROW LEVEL SECURITY, ENABLE ROW LEVEL SECURITY",
                    "forced": "ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"}


def set_row_security(target, plan: Plan, table: Table) -> None:
    """The table's ROW LEVEL SECURITY as planned, after its rows and policies."""
    if catalog.row_security(target, plan.target_schema, table.target) != table.row_security:
        target.execute(sql.SQL("ALTER TABLE {} {}").format(
            target_table(plan, table), sql.SQL(ROW_SECURITY_SQL[table.row_security])))


def require_row_security_rights(target, plan: Plan, table: Table) -> None:
    """Before anything is written: every role the table's policies name exists on the
    target, and a table whose row security is forced on its owner is loaded and checked
    by a role that bypasses it (else the tool would see only some of the rows)."""
    missing = {}
    for item in table.objects:
        if item.kind == "policy" and item.carried:
            roles = policy_roles(item.definition, item.name)
            absent = [r for r, found in target.execute(
                "SELECT r, to_regrole(quote_ident(r)) IS NOT NULL FROM unnest(%s::text[]) r",
                (roles,)).fetchall() if not found]
            if absent:
                missing[item.name] = absent
    if missing:
        raise LoadError(
            f"Table {table.name!r}: policies name roles the target does not have: "
            + "; ".join(f"{name} names {roles}" for name, roles in missing.items())
            + ". Create those roles on the target (CREATE ROLE ...), or edit the policies' "
            "roles in the plan, or set their `fate: drop`. Nothing was written.")
    if table.row_security == "forced" and not target.execute(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()[0]:
        raise LoadError(
            f"Table {table.name!r} forces row-level security on its owner (row_security: "
            "forced), so the tool's target role would read and write only the rows its "
            "policies show. Give that role BYPASSRLS (ALTER ROLE ... BYPASSRLS, as a "
            "superuser), or set `row_security: enabled` in the plan. Nothing was written.")
