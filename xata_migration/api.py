"""The tool's core operations, one call each. The CLI, the Dagster assets, the report and
the tests call these; everything else in the package is how they are done.

    plan = describe_source(source_url)            # the source's catalog -> a Plan
    save_plan(plan, "plan.yaml"); plan = load_plan("plan.yaml")
    run = migrate_table(plan, table, connections)  # load, then every check of the table
    outcomes = check_table(plan, table, source, target)   # the checks alone, now
    new_id = lookup(target, "posts", "rec_...")

A table's operations take open connections (`TableConnections`), so that whoever calls
them decides what the source reads: the run's one snapshot (the assets), or the source as
it is now (the report, the tests).
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import psycopg

from xata_migration.connections import connect
from xata_migration.errors import UsageError, XataMigrationError
from xata_migration.load import LoadResult, MissingLinks, load_deferred_link, load_table
from xata_migration.load.snapshot import SourceSnapshot
from xata_migration.plan import Column, Plan, PlanError, Table, load_plan, save_plan
from xata_migration.plan.introspect import introspect
from xata_migration.verify import checks
from xata_migration.verify.checks import check_table
from xata_migration.verify.findings import CheckOutcome
from xata_migration.verify.fingerprint import LoadSnapshotFingerprint

__all__ = ["CheckOutcome", "LoadResult", "MissingLinks", "Plan", "PlanError", "TableRun",
           "TableConnections", "UsageError", "XataMigrationError", "check_table",
           "describe_source", "load_plan", "lookup", "migrate_table", "open_connections",
           "save_plan", "write_deferred_link"]


def describe_source(source_url: str, schema: str = "public") -> Plan:
    """The plan of the source's Xata-shaped tables, as `xata-migration plan` writes it."""
    with connect(source_url, "source", read_only=True) as conn:
        plan, _ = introspect(conn, schema)
    return plan


@dataclass
class TableConnections:
    """What one table's operations use: two source connections reading the same
    snapshot (the second computes the source's fingerprint while the first loads), the
    target, and that snapshot when it is the run's (None: each transaction its own)."""
    source: psycopg.Connection
    second_source: psycopg.Connection
    target: psycopg.Connection
    snapshot: SourceSnapshot | None = None


@contextmanager
def open_connections(source_url: str, target_url: str, label: str = ""):
    """TableConnections to the source as it is now, closed on leaving."""
    with ExitStack() as stack:
        source, second = (stack.enter_context(connect(source_url, "source", read_only=True,
                                                      label=label)) for _ in range(2))
        yield TableConnections(source, second, stack.enter_context(
            connect(target_url, "target", label=label)))


@dataclass
class TableRun:
    """A table migrated and checked: the load's counts (None if it stopped before writing),
    every check's outcome, the error that stopped it, and the load's time."""
    load: LoadResult | None
    outcomes: list[CheckOutcome] = field(default_factory=list)
    error: MissingLinks | None = None
    load_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outcomes)


def _stopped_by(missing: MissingLinks, started: float) -> TableRun:
    """A load that links to no record stopped, nothing written: its failed `links_intact`."""
    return TableRun(None, [checks.missing_links_outcome(missing)], missing,
                    time.monotonic() - started)


def migrate_table(plan: Plan, table: Table, connections: TableConnections,
                  log=None) -> TableRun:
    """Load one table (one target transaction: all or nothing) and run its checks against
    the snapshot the load read. Links that point nowhere (`on_missing: fail`) stop the load
    with nothing written: the run then holds them as a failed `links_intact`."""
    started = time.monotonic()
    c = connections
    with LoadSnapshotFingerprint(c.second_source, plan, table,
                                 pinned=c.snapshot is not None) as source_fingerprint:
        try:
            result = load_table(c.source, c.target, plan, table, log=log,
                                fingerprint=source_fingerprint, snapshot=c.snapshot)
        except MissingLinks as missing:
            return _stopped_by(missing, started)
        run = TableRun(result, load_seconds=time.monotonic() - started)
        run.outcomes = checks.table_checks(c.source, c.target, plan, table,
                                           source_fingerprint.side())
    return run


def write_deferred_link(plan: Plan, table: Table, column: Column,
                        connections: TableConnections, log=None) -> TableRun:
    """Write a link that closes a cycle, once both its tables are loaded, and check it."""
    started = time.monotonic()
    c = connections
    try:
        result = load_deferred_link(c.source, c.target, plan, table, column, log=log,
                                    snapshot=c.snapshot)
    except MissingLinks as missing:
        return _stopped_by(missing, started)
    run = TableRun(result, load_seconds=time.monotonic() - started)
    run.outcomes = [checks.link_check(c.source, c.target, plan, table, column)]
    return run


def lookup(target: psycopg.Connection, table: str, old_id: str | None = None,
           new_id: int | None = None):
    """The new id of an old Xata id, or (given `new_id`) the old id of a new one; None if
    the mapping does not hold it. UsageError if the table has no mapping."""
    try:
        if new_id is not None:
            return target.execute("SELECT xata_id_map.xata_id(%s, %s)",
                                  (table, new_id)).fetchone()[0]
        return target.execute("SELECT xata_id_map.new_id(%s, %s)",
                              (table, old_id)).fetchone()[0]
    except psycopg.Error as error:
        target.rollback()
        raise UsageError(f"Lookup failed: {str(error).strip().splitlines()[0]}") from None
