"""Delta loads: read only the source rows written since the last verified load.

Xata's trigger sets a row's `xata_updatedat` to now(), the start time of the transaction
that inserts or updates it. Just before a load takes its source snapshot, it notes the
*watermark*: the start of the oldest transaction then open on the source database (or now
if none). A row that the snapshot does not see is written by a transaction open then or
started later, so its `xata_updatedat` is at or after the watermark. The next load reads
only rows with `xata_updatedat >= watermark`: a superset of what changed since.

A load is a delta only when all of this can be relied on; otherwise it is a full load:
  - the source table has `xata_updatedat` and Xata's metadata trigger, enabled;
  - every link has `on_missing: fail` (with `null` or `skip`, a row's outcome depends on
    other tables, not only on its own changes);
  - the previous load's watermark is known, its plan entry is the same, and its checks
    passed (`verified`). A delta that missed a row fails its checks, so the load after
    it is a full one.
The watermark is not known when the source shows sessions whose transactions we may not
see (another role's, without pg_read_all_stats) or has prepared transactions.

State per table: `xata_migration_checks.sync_state` in the target.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from psycopg import sql

from xata_migration.load.ddl import SYNC_STATE
from xata_migration.plan.model import Plan, Table, plan_to_dict

UPDATED_AT = "xata_updatedat"
XATA_TRIGGER_FUNCTION = "maintain_metadata_trigger_pgroll"


def plan_signature(plan: Plan, table: Table) -> str:
    entry = next(t for t in plan_to_dict(plan)["tables"] if t["name"] == table.name)
    text = json.dumps([plan.source_schema, plan.target_schema, entry], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def watermark(source) -> datetime | None:
    """The time from which the next load must read; None if it cannot be known. Its own
    transaction, so it is taken before the load's snapshot."""
    try:
        now, oldest, hidden, prepared = source.execute(
            "SELECT now(), (SELECT min(xact_start) FROM pg_stat_activity"
            "   WHERE datname = current_database() AND pid <> pg_backend_pid()),"
            " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            "   AND backend_type = 'client backend' AND state IS NULL),"
            " (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database())"
        ).fetchone()
    finally:
        source.commit()
    if hidden or prepared:
        return None
    return min(now, oldest) if oldest else now


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
    """In the load's transaction: this load's watermark and source time, not yet verified."""
    target.execute(sql.SQL(
        "INSERT INTO {} (table_name, plan_signature, watermark, verified, source_as_of)"
        " VALUES (%s, %s, %s, false, %s) ON CONFLICT (table_name) DO UPDATE SET"
        " plan_signature = EXCLUDED.plan_signature, watermark = EXCLUDED.watermark,"
        " verified = false, source_as_of = EXCLUDED.source_as_of").format(SYNC_STATE),
        (table.name, plan_signature(plan, table), mark, as_of))


def source_as_of(target, table_name: str) -> datetime | None:
    """When the source snapshot of the table's last load was taken (None: not known)."""
    row = target.execute(sql.SQL("SELECT source_as_of FROM {} WHERE table_name = %s").format(
        SYNC_STATE), (table_name,)).fetchone()
    return row[0] if row else None


def mark_verified(target, table: Table) -> None:
    """In the checks' transaction, when every check of the table passed."""
    target.execute(sql.SQL("UPDATE {} SET verified = true WHERE table_name = %s").format(
        SYNC_STATE), (table.name,))
