"""The target's objects by name, and the tool's own schemas and tables.

Every name goes through psycopg.sql.Identifier. The tool keeps, beside the migrated
tables (plan.target_schema) and the permanent mapping (xata_id_map):

  xata_migration_load    what the loads keep between runs, and their staging tables
    sync_state           per table: the target table its loads made, the last load's
                         watermark, plan signature, source time, and whether its checks
                         passed (load/sync.py); its id column and its kept `xata_id`
                         column, where the lookup functions find an old Xata id
                         that no mapping holds
    deleted_in_source    per table: mapped ids the source no longer had at the last load
                         (the checks leave those target rows out)
  xata_migration_checks  what the checks found
    findings             the rows of a failed check (verify/findings.py)

A target written by an earlier version kept all of it in xata_migration_checks: its
tables are moved, rows and all, the first time this version touches the target.
"""

from __future__ import annotations

from psycopg import sql

from xata_migration.plan.model import MAPPING_SCHEMA, Column, Plan, Table
from xata_migration.plan.names import derived_name, lock_key

ID = "id"
LOAD_SCHEMA = "xata_migration_load"
STAGE_PREFIX = "load_stage_"  # + the loading session's pid: a load's stage (load/stage.py)
CHECKS_SCHEMA = "xata_migration_checks"
SYNC_STATE = sql.Identifier(LOAD_SCHEMA, "sync_state")
DELETED_IN_SOURCE = sql.Identifier(LOAD_SCHEMA, "deleted_in_source")
FINDINGS = sql.Identifier(CHECKS_SCHEMA, "findings")
# Guards the objects every table shares: two steps starting together would otherwise both
# create the same schema, and the second fail on PostgreSQL's unique catalog index.
SHARED_OBJECTS_LOCK = lock_key("xata_id_map shared objects")


def foreign_key_name(table: Table, column: Column) -> str:
    """The FOREIGN KEY the tool makes for a link."""
    return derived_name(table.target, column.target, "fkey")


def target_table(plan: Plan, table: Table) -> sql.Identifier:
    return sql.Identifier(plan.target_schema, table.target)


def mapping_table(table_name: str) -> sql.Identifier:
    return sql.Identifier(MAPPING_SCHEMA, table_name)


def tables_exist(conn, *names: sql.Identifier) -> bool:
    """Whether every named table exists."""
    return all(tables_exist_each(conn, *names))


def tables_exist_each(conn, *names: sql.Identifier) -> list[bool]:
    """Whether each named table exists, in one query."""
    return list(conn.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL("to_regclass({}) IS NOT NULL").format(sql.Literal(n.as_string(conn)))
        for n in names))).fetchone())


def count_rows(conn, table: sql.Composable) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]


TOOL_TABLES_SQL = sql.SQL(
    "CREATE SCHEMA IF NOT EXISTS {load};"
    " CREATE SCHEMA IF NOT EXISTS {checks};"
    " CREATE TABLE IF NOT EXISTS {findings} (scope text NOT NULL,"
    " check_name text NOT NULL, xata_id text, new_id bigint, column_name text,"
    " source_value text, target_value text, problem text NOT NULL,"
    " found_at timestamptz NOT NULL DEFAULT now());"
    " CREATE INDEX IF NOT EXISTS findings_scope_check ON {findings} (scope, check_name);"
    " CREATE TABLE IF NOT EXISTS {deleted} (table_name text NOT NULL,"
    ' xata_id text COLLATE "C" NOT NULL, PRIMARY KEY (table_name, xata_id));'
    " CREATE TABLE IF NOT EXISTS {state} (table_name text PRIMARY KEY,"
    " plan_signature text NOT NULL, watermark timestamptz,"
    " verified boolean NOT NULL DEFAULT false, source_as_of timestamptz,"
    " target_table text, id_column text, xata_id_column text)").format(
    load=sql.Identifier(LOAD_SCHEMA), checks=sql.Identifier(CHECKS_SCHEMA), findings=FINDINGS,
    deleted=DELETED_IN_SOURCE, state=SYNC_STATE)


# sync_state's columns that earlier versions' tables lack, and their types
ADDED_SINCE = {"source_as_of": "timestamptz", "target_table": "text", "id_column": "text",
               "xata_id_column": "text"}


def ensure_tool_tables(target) -> None:
    """The tool's schemas and tables, those of an earlier version moved into place first.
    In the caller's transaction, under SHARED_OBJECTS_LOCK. DDL only where needed: it
    would wait for every load in progress."""
    target.execute("SELECT pg_advisory_xact_lock(%s)", (SHARED_OBJECTS_LOCK,))
    if _tool_tables_in_place(target):
        return
    target.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(LOAD_SCHEMA)))
    for name in ("sync_state", "deleted_in_source"):
        earlier, now = sql.Identifier(CHECKS_SCHEMA, name), sql.Identifier(LOAD_SCHEMA, name)
        if tables_exist(target, earlier) and not tables_exist(target, now):
            target.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                earlier, sql.Identifier(LOAD_SCHEMA)))
    target.execute(TOOL_TABLES_SQL)
    for column in ADDED_SINCE:
        if not _has_column(target, SYNC_STATE, column):
            target.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                SYNC_STATE, sql.Identifier(column), sql.SQL(ADDED_SINCE[column])))


def _tool_tables_in_place(target) -> bool:
    """The tool's tables exist, sync_state with every column ADDED_SINCE (one query)."""
    return target.execute(
        "SELECT to_regclass(%(sync)s) IS NOT NULL AND to_regclass(%(deleted)s) IS NOT NULL"
        " AND to_regclass(%(findings)s) IS NOT NULL AND (SELECT count(*) FROM pg_attribute"
        "  WHERE attrelid = to_regclass(%(sync)s) AND attname = ANY(%(added)s)"
        "  AND NOT attisdropped) = %(columns)s",
        {"sync": SYNC_STATE.as_string(target), "deleted": DELETED_IN_SOURCE.as_string(target),
         "findings": FINDINGS.as_string(target), "added": list(ADDED_SINCE),
         "columns": len(ADDED_SINCE)}).fetchone()[0]


def _has_column(target, table: sql.Identifier, column: str) -> bool:
    return target.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s)"
        " AND attname = %s AND NOT attisdropped)",
        (table.as_string(target), column)).fetchone()[0]
