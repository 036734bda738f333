"""Rows gone from the source since the last load: recorded for the checks, counted,
and deleted from the target if the plan says `deleted_rows: delete`. Their mapping rows
always stay, so old references still resolve.
"""

from __future__ import annotations

from psycopg import sql

from xata_migration.load.result import LoadResult
from xata_migration.load.stage import stage_table
from xata_migration.pg.objects import DELETED_IN_SOURCE, mapping_table, target_table
from xata_migration.pg.stage import row_key
from xata_migration.plan.model import Plan, Table


def record_deleted_ids(target, table: Table, ids: sql.Identifier | None) -> None:
    """Keep the table's list of mapped ids that are not in the source: from `ids`, a
    table of every source id; without it (a delta with no row deleted since), the ids
    written again leave the list."""
    deleted, name = DELETED_IN_SOURCE, (table.name,)
    if ids is None:
        target.execute(sql.SQL("DELETE FROM {} d WHERE table_name = %s AND EXISTS"
                               " (SELECT 1 FROM {} s WHERE s.xid = d.xata_id)").format(
            deleted, stage_table(target)), name)
        return
    forget_deleted_ids(target, table)
    target.execute(sql.SQL(
        "INSERT INTO {deleted} (table_name, xata_id) SELECT %s, m.xata_id FROM {map} m"
        " WHERE NOT EXISTS (SELECT 1 FROM {ids} s WHERE s.xid = m.xata_id)").format(
        deleted=deleted, map=mapping_table(table.name), ids=ids), name)


def forget_deleted_ids(target, table: Table) -> None:
    target.execute(sql.SQL("DELETE FROM {} WHERE table_name = %s").format(
        DELETED_IN_SOURCE), (table.name,))


def handle_deleted_rows(target, plan: Plan, table: Table, result: LoadResult,
                        ids: sql.Identifier | None) -> None:
    """Count target rows whose source row is gone; delete them if the plan says so.
    Their mapping rows always stay, so old references still resolve."""
    record_deleted_ids(target, table, ids)
    gone = sql.SQL(
        "EXISTS (SELECT 1 FROM {deleted} d JOIN {map} m ON m.xata_id = d.xata_id"
        " WHERE d.table_name = {name} AND m.new_id = t.id)").format(
        deleted=DELETED_IN_SOURCE, map=mapping_table(table.name),
        name=sql.Literal(table.name))
    _count_and_delete(target, plan, table, result, gone)


def _count_and_delete(target, plan: Plan, table: Table, result: LoadResult,
                      gone: sql.Composable) -> None:
    """Count the target rows (t) that are `gone` from the source; delete them if the
    plan says so."""
    result.deleted_in_source = target.execute(sql.SQL(
        "SELECT count(*) FROM {} t WHERE {}").format(
        target_table(plan, table), gone)).fetchone()[0]
    if result.deleted_in_source and table.deleted_rows == "delete":
        result.deleted_in_target = target.execute(sql.SQL("DELETE FROM {} t WHERE {}").format(
            target_table(plan, table), gone)).rowcount


def handle_deleted_kept_rows(target, plan: Plan, table: Table, result: LoadResult) -> None:
    """A table whose ids are kept, after a full load: target rows whose key the source no
    longer has are recorded (by the key's text), counted, and deleted if the plan says so."""
    forget_deleted_ids(target, table)
    key = row_key(table, "t", names="target")
    target.execute(sql.SQL(
        "INSERT INTO {deleted} (table_name, xata_id) SELECT %s, {key} FROM {t} t"
        " WHERE NOT EXISTS (SELECT 1 FROM {s} s WHERE s.xid = {key})").format(
        deleted=DELETED_IN_SOURCE, key=key, t=target_table(plan, table),
        s=stage_table(target)), (table.name,))
    gone = sql.SQL("EXISTS (SELECT 1 FROM {} d WHERE d.table_name = {} AND d.xata_id = {})"
                   ).format(DELETED_IN_SOURCE, sql.Literal(table.name), key)
    _count_and_delete(target, plan, table, result, gone)
