"""The target's objects around a table: the schemas, the tool's tables and the lookup
functions every table shares (made one at a time), pgvector, the existing table's
shape, and a link's constraint.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from xata_migration.errors import LoadError
from xata_migration.load import ddl, sync
from xata_migration.load.schema import create_extensions_and_types
from xata_migration.load.stage import stage_table
from xata_migration.pg.objects import ID, ensure_tool_tables, foreign_key_name, target_table
from xata_migration.pg.stage import cast_by_the_write
from xata_migration.plan.model import MAPPING_SCHEMA, Column, Plan, Table


def target_shape(target, schema: str, name: str) -> dict[str, str] | None:
    rows = target.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
        (schema, name)).fetchall()
    return dict(rows) if rows else None


def expected_shape(target, table: Table, columns: list[Column]) -> dict[str, str]:
    staged = dict(target.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attnum > 0",
        (stage_table(target).as_string(target),)).fetchall())
    shape = {} if table.kept else {ID: "bigint"}
    for index, column in enumerate(columns):
        planned = column.rewritten or cast_by_the_write(column)
        shape[column.target] = column.type if planned else staged[f"c{index}"]
    for column in table.generated_columns:  # compared without typmod: see base_types
        shape[column.target] = target.execute("SELECT format_type(to_regtype(%s), NULL)",
                                              (column.type,)).fetchone()[0]
    return shape


def base_types(target, schema: str, name: str, columns: list[str]) -> dict[str, str]:
    """{column: its type without typmod} of an existing table's `columns`."""
    return dict(target.execute(
        "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass(%s) AND a.attname = ANY(%s)",
        (sql.Identifier(schema, name).as_string(target), columns)).fetchall())


def prepare_target(target, plan: Plan, table: Table) -> None:
    """The objects every table shares: the tool's schemas and tables (where loads also
    stage their rows), the xata_id_map and target schemas, the pgvector extension if the
    table needs it, and the lookup functions. A short transaction of its own, one at a
    time (under the lock ensure_tool_tables takes)."""
    with target.transaction():
        ensure_tool_tables(target)
        schemas = (MAPPING_SCHEMA, plan.target_schema)
        *schemas_exist, lookups_exist = target.execute(
            "SELECT to_regnamespace(%s) IS NOT NULL, to_regnamespace(%s) IS NOT NULL,"
            " coalesce(obj_description(to_regprocedure('xata_id_map.new_id(text, text)'),"
            " 'pg_proc') = %s AND to_regprocedure('xata_id_map.xata_id(text, bigint)')"
            " IS NOT NULL, false)",
            (*[sql.Identifier(s).as_string(target) for s in schemas], ddl.NEW_ID_COMMENT)
        ).fetchone()
        for schema, exists in zip(schemas, schemas_exist):
            if not exists:
                target.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(schema)))
        if any(c.is_pgvector for c in table.columns):
            require_pgvector(target, table)
        create_extensions_and_types(target, plan)
        if not lookups_exist:
            target.execute(ddl.LOOKUP_FUNCTIONS_SQL)


def require_pgvector(target, table: Table) -> None:
    try:
        with target.transaction():  # a savepoint: the error must reach the user, not abort
            target.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as error:
        names = [c.name for c in table.columns if c.is_pgvector]
        raise LoadError(
            f"Table {table.name!r}: the plan stores {names} as pgvector's `vector`, but the "
            f"target cannot have the extension ({str(error).strip()}). Install pgvector on "
            "the target server (or let an administrator CREATE EXTENSION vector), or keep "
            "those columns as real[] in the plan. Nothing was written.") from None


def target_table_missing(target, plan: Plan, table: Table, columns: list[Column]) -> bool:
    """Whether the target table is missing (True: the write makes it); if present, it must
    be the one this table's loads made, with the plan's shape."""
    existing = target_shape(target, plan.target_schema, table.target)
    if existing is None:
        return True
    if not sync.made_by_a_load(target, plan, table):
        raise LoadError(
            f"Target table {plan.target_schema}.{table.target} already exists, and "
            f"xata-migration did not make it (no load of table {table.name!r} is recorded in "
            "xata_migration_load.sync_state): it is left alone. Drop or rename that table in "
            "the target, or give the table another `target` name in the plan. Nothing was "
            "written.")
    expected = expected_shape(target, table, columns)
    existing.update(base_types(target, plan.target_schema, table.target,
                               [c.target for c in table.generated_columns]))
    if existing != expected:
        raise LoadError(
            f"Target table {plan.target_schema}.{table.target} already exists with another "
            f"shape: expected columns {expected}, found {existing}. Drop or rename that table "
            "in the target, or give the table another `target` name in the plan. Nothing "
            "was written.")
    return False


def constraint_exists(target, plan: Plan, table: Table, column: Column) -> bool:
    return target.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = %s"
        " AND conrelid = to_regclass(%s))",
        (foreign_key_name(table, column),
         target_table(plan, table).as_string(target))).fetchone()[0]
