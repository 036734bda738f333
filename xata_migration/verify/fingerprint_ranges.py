"""A big table's fingerprints computed by ranges of it, several sessions at once.

Each side's fingerprint (fingerprint.py) is counts and sums over rows, so a table's is the
total of its ranges' when every row is in exactly one range. On the source, the sessions
that read a split load's ranges (load/split.py) compute a part each once their rows are
sent, in the load's snapshot, over ranges of the table's pages (pg/ranges.py):
`SourceRanges` adds them up. On the target, `target_side_in_ranges` opens its sessions,
all reading one exported snapshot, so the parts are of one state of the table; the first
also counts the mapping, which is the whole table's. There the ranges are of the new ids,
each session joining only its range's part of the mapping (a range of pages would join
the whole mapping in every session); a kept table, which has no mapping, is read by
ranges of pages.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
from psycopg import sql

from xata_migration.connections import connect
from xata_migration.pg.objects import ID, target_table
from xata_migration.pg.ranges import page_conditions, within
from xata_migration.plan.model import Plan, Table
from xata_migration.verify.fingerprint import (Side, TargetSide, deleted_ids_of,
                                               proven_by_foreign_key, source_side_of,
                                               target_side_from, target_sql)


class SourceRanges:
    """The source's fingerprint of a table, added up from its ranges' parts. Handed each
    range's source session (load/split.py) with the part's condition (on `src`) and how
    many parts there are, it computes that part in a thread of its own and then closes
    the session, while the load goes on; `side` waits for them and gives the whole
    table's, or None if no part came (the load was not split). Use it as a context
    manager: on leaving, parts nobody waited for (the load failed) are stopped."""

    def __init__(self, plan: Plan, table: Table):
        self.plan, self.table = plan, table
        self._pool = ThreadPoolExecutor(max_workers=64,
                                        thread_name_prefix="xata-migration-fingerprint")
        self._parts: list[tuple[psycopg.Connection, Future]] = []
        self._expected = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> bool:
        return bool(self._parts)

    def __call__(self, source: psycopg.Connection, rows: sql.Composable, parts: int) -> None:
        with self._lock:
            self._expected = parts
            self._parts.append((source, self._pool.submit(self._part, source, rows)))

    def _part(self, source: psycopg.Connection, rows: sql.Composable) -> Side:
        try:
            return source_side_of(source, self.plan, self.table, rows)
        finally:
            source.close()

    def side(self) -> Side | None:
        if not self._parts:
            return None
        parts = [future.result() for _, future in self._parts]
        if len(parts) != self._expected:  # a range that failed fails its load first
            raise RuntimeError(f"{self.table.name}: {len(parts)} of {self._expected} "
                               "parts of the source's fingerprint computed")
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total

    def __enter__(self) -> SourceRanges:
        return self

    def __exit__(self, *exc) -> None:
        for source, future in self._parts:
            if not future.done():
                source.cancel_safe()
        self._pool.shutdown(wait=True)


def _import_snapshot(conn: psycopg.Connection, snapshot_id: str) -> psycopg.Connection:
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
    return conn


def _part(target_url: str, snapshot_id: str, label: str, query: sql.Composable) -> tuple:
    with connect(target_url, "target", label=label) as conn:
        _import_snapshot(conn, snapshot_id)
        return conn.execute(query).fetchone()


@dataclass(frozen=True)
class TargetRanges:
    """Where the target's fingerprint of a big table opens its sessions, and how many."""
    url: str
    workers: int


def id_ranges(conn: psycopg.Connection, plan: Plan, table: Table,
              workers: int) -> list[tuple[sql.Composable, sql.Composable]]:
    """Up to `workers` ranges of the target table's ids, each as a condition on its rows
    (`t`) and one on their mapping rows (`m`): equal spans of the ids from the lowest to
    the highest, the first also holding a NULL id, so every row is in exactly one."""
    low, high = conn.execute(sql.SQL("SELECT min({id}), max({id}) FROM {t}").format(
        id=sql.Identifier(ID), t=target_table(plan, table))).fetchone()
    if low is None or workers <= 1:
        return [(sql.SQL("true"), sql.SQL("true"))]
    step = -(-(high - low + 1) // workers)  # ceiling: at least 1
    bounds = [sql.Literal(low + k * step) for k in range(1, workers)
              if low + k * step <= high]
    starts, ends = [None] + bounds, bounds + [None]
    t_id, m_id = sql.SQL("t.{}").format(sql.Identifier(ID)), sql.SQL("m.new_id")
    ranges = [(within(t_id, first, end), within(m_id, first, end))
              for first, end in zip(starts, ends)]
    first_rows, first_mapped = ranges[0]
    ranges[0] = (sql.SQL("({} OR {} IS NULL)").format(first_rows, t_id), first_mapped)
    return ranges


def target_side_in_ranges(ranges: TargetRanges, plan: Plan, table: Table) -> TargetSide:
    """The target's side of `table` (fingerprint.target_side_of), from up to
    `ranges.workers` ranges of it (id_ranges; a kept table's pages) read at once, each by
    a session of its own, all in one snapshot."""
    label, target_url = f"{table.name} (fingerprint)", ranges.url
    with connect(target_url, "target", label=label) as first:
        first.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        first.read_only = True
        snapshot_id = first.execute("SELECT pg_export_snapshot()").fetchone()[0]
        deleted_ids = deleted_ids_of(first, table)
        proven = proven_by_foreign_key(first, plan, table)
        if table.kept:
            conditions = [(rows, sql.SQL("true")) for rows in page_conditions(
                first, target_table(plan, table), ranges.workers, alias="t")]
        else:
            conditions = id_ranges(first, plan, table, ranges.workers)
        queries = [target_sql(plan, table, proven, deleted_ids > 0, rows, whole=(i == 0),
                              mapped=mapped)
                   for i, (rows, mapped) in enumerate(conditions)]
        with ThreadPoolExecutor(max_workers=max(1, len(queries) - 1),
                                thread_name_prefix="xata-migration-fingerprint") as pool:
            others = [pool.submit(_part, target_url, snapshot_id,
                                  f"{label} (range {i} of {len(queries)})", query)
                      for i, query in enumerate(queries[1:], start=2)]
            parts = [first.execute(queries[0]).fetchone()]
            parts += [future.result() for future in others]
        first.rollback()
    return target_side_from(table, parts, deleted_ids)
