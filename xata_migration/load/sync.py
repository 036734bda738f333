"""Delta loads: read only the source rows written since the last verified load.

Just before a load's source snapshot is taken, the *watermark* is noted
(snapshot/watermark.py); the next load reads only rows with `xata_updatedat >= watermark`,
a superset of what changed since.

A load is a delta only when all of this can be relied on; otherwise it is a full load:
  - the source table has `xata_updatedat` and Xata's metadata trigger, enabled;
  - every link has `on_missing: fail` (with `null` or `skip`, a row's outcome depends on
    other tables, not only on its own changes);
  - the previous load's watermark is known, its plan entry is the same, and its checks
    passed (`verified`). A delta that missed a row fails its checks, so the load after
    it is a full one.

State per table: `xata_migration_load.sync_state` in the target. Whoever ran the checks
records that they passed (record_verified).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from psycopg import sql

from xata_migration.pg.objects import SYNC_STATE, target_table
from xata_migration.plan.files import table_to_dict
from xata_migration.plan.model import Plan, Table

UPDATED_AT = "xata_updatedat"
XATA_TRIGGER_FUNCTION = "maintain_metadata_trigger_pgroll"


def plan_signature(plan: Plan, table: Table) -> str:
    text = json.dumps([plan.source_schema, plan.target_schema, table_to_dict(table)],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _eligible(source, plan: Plan, table: Table) -> bool:
    if UPDATED_AT not in {c.name for c in table.columns}:
        return False
    if any(c.link.on_missing != "fail" for c in table.links):
        return False
    try:
        return source.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid"
            " WHERE g.tgrelid = %s::regclass AND p.proname = %s AND g.tgenabled <> 'D')",
            (sql.Identifier(plan.source_schema, table.name).as_string(source),
             XATA_TRIGGER_FUNCTION)).fetchone()[0]
    finally:
        source.commit()


def delta_since(source, target, plan: Plan, table: Table) -> datetime | None:
    """The watermark of the last verified load, if this load can be a delta."""
    row = target.execute(sql.SQL(
        "SELECT plan_signature, watermark, verified FROM {} WHERE table_name = %s").format(
        SYNC_STATE), (table.name,)).fetchone()
    target.commit()
    if not row or not row[2] or row[1] is None or row[0] != plan_signature(plan, table):
        return None
    return row[1] if _eligible(source, plan, table) else None


def record_load(target, plan: Plan, table: Table, mark: datetime | None,
                as_of: datetime | None) -> None:
    """In the load's transaction: the target table it wrote, this load's watermark and
    source time, not yet verified."""
    target.execute(sql.SQL(
        "INSERT INTO {} (table_name, plan_signature, watermark, verified, source_as_of,"
        " target_table, id_column, xata_id_column) VALUES (%s, %s, %s, false, %s, %s, %s, %s)"
        " ON CONFLICT (table_name) DO UPDATE"
        " SET plan_signature = EXCLUDED.plan_signature, watermark = EXCLUDED.watermark,"
        " verified = false, source_as_of = EXCLUDED.source_as_of,"
        " target_table = EXCLUDED.target_table, id_column = EXCLUDED.id_column,"
        " xata_id_column = EXCLUDED.xata_id_column").format(SYNC_STATE),
        (table.name, plan_signature(plan, table), mark, as_of, _written(target, plan, table),
         *_lookup_columns(table)))


INTEGER_TYPES = ("smallint", "integer", "bigint")


def _lookup_columns(table: Table) -> tuple[str | None, str | None]:
    """(the target column of a row's id, of its kept Xata id) where the lookup functions
    find an old Xata id no mapping holds: a table whose record id is another key than
    `xata_id` keeps that column. The id: the new `id`, or a kept single integer key."""
    xata_id = next((c.target for c in table.columns if c.name == "xata_id"
                    and not c.link), None)
    if not table.kept:
        return "id", xata_id
    if len(table.key) == 1 and table.column(table.key[0]).type in INTEGER_TYPES:
        return table.column(table.key[0]).target, xata_id
    return None, xata_id


def _written(target, plan: Plan, table: Table) -> str:
    return target_table(plan, table).as_string(target)


def made_by_a_load(target, plan: Plan, table: Table) -> bool:
    """Whether the existing target table is the one the table's loads made: the state
    names it (or, written by a version that did not name it, has the table's row)."""
    row = target.execute(sql.SQL("SELECT target_table FROM {} WHERE table_name = %s").format(
        SYNC_STATE), (table.name,)).fetchone()
    return row is not None and row[0] in (None, _written(target, plan, table))


def source_as_of(target, table_name: str) -> datetime | None:
    """When the source snapshot of the table's last load was taken (None: not known)."""
    row = target.execute(sql.SQL("SELECT source_as_of FROM {} WHERE table_name = %s").format(
        SYNC_STATE), (table_name,)).fetchone()
    return row[0] if row else None


def record_verified(target, table: Table) -> None:
    """Every check of the table's last load passed: the next load may be a delta."""
    target.execute(sql.SQL("UPDATE {} SET verified = true WHERE table_name = %s").format(
        SYNC_STATE), (table.name,))
