"""A big table's rows staged by several connections at once, each a range of its pages.

A first (full) load of a table of at least the plan's `split_rows` rows, read in a held
snapshot, is staged by `split_workers` pairs of connections, each its own source session
importing that snapshot and its own target session: source pages [a, b) are read with a
TID range scan (`ctid >= '(a,0)' AND ctid < '(b,0)'`), the last range open at its end, so
every row the snapshot sees is in exactly one range. Each pair streams its range into the
load's stage with COPY (pg/relay.copy_between) and commits, so the stage, unlike an unsplit
load's, is a committed table: made before the ranges by a session of its own and dropped
by the load's transaction (or, if the load fails, after it; if the process dies, by the
next load: drop_abandoned_stages). Nothing else is committed before the load's transaction
commits: the target's tables and mappings are written by that transaction alone.

The rows arrive in no order, so new ids are given by ids.allocate_ids over the whole
stage, in the same order rule as an unsplit load's numbering: the same ids.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from xata_migration.connections import connect
from xata_migration.pg.objects import LOAD_SCHEMA
from xata_migration.pg.relay import copy_between
from xata_migration.pg.stage import create_stage, source_select, stage_name
from xata_migration.plan.catalog import estimated_rows
from xata_migration.plan.model import Column, Plan, Table
from xata_migration.snapshot import SourceSnapshot, open_source

STAGE_PREFIX = "load_stage_"
# A table never analyzed: counted up to this many pages (100 MB), else estimated from a
# sample of SAMPLE_PERCENT of its pages
COUNTED_PAGES, SAMPLE_PERCENT = 12_800, 1


@dataclass(frozen=True)
class RangeReaders:
    """Where a split load opens its other sessions: the two databases' URLs and the
    snapshot every range reads (a split needs one: without it, no split)."""
    source_url: str
    target_url: str
    snapshot: SourceSnapshot | None


def source_rows(source: psycopg.Connection, plan: Plan, table: Table) -> int:
    """The table's rows as the server estimates them. Never analyzed (a restored dump,
    say): counted if it is small, else estimated from a sample of its pages."""
    rows = estimated_rows(source, plan.source_schema, table.name)
    if rows is not None:
        return rows
    name = sql.Identifier(plan.source_schema, table.name)
    if _pages(source, plan, table) <= COUNTED_PAGES:
        return source.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()[0]
    return source.execute(sql.SQL(
        "SELECT count(*) * {} FROM {} TABLESAMPLE SYSTEM ({})").format(
        sql.Literal(100 // SAMPLE_PERCENT), name, sql.Literal(SAMPLE_PERCENT))).fetchone()[0]


def _pages(source: psycopg.Connection, plan: Plan, table: Table) -> int:
    return source.execute(
        "SELECT pg_relation_size(to_regclass(%s)) / current_setting('block_size')::bigint",
        (sql.Identifier(plan.source_schema, table.name).as_string(source),)).fetchone()[0]


def should_split(source, plan: Plan, table: Table, readers: RangeReaders | None,
                 since) -> bool:
    """A full load of a big table, read in a held snapshot, with more than one worker."""
    return (readers is not None and readers.snapshot is not None and since is None
            and readers.source_url and readers.target_url
            and plan.split_workers > 1 and source_rows(source, plan, table) >= plan.split_rows)


def page_ranges(source: psycopg.Connection, plan: Plan, table: Table,
                workers: int) -> list[tuple[int | None, int | None]]:
    """`workers` ranges of the table's pages, [first, end): None for no bound. The first
    starts at the table's start, the last has no end (pages added since are in it)."""
    pages = _pages(source, plan, table)
    step = max(1, -(-pages // workers))  # ceiling
    bounds = [min(k * step, pages) for k in range(1, workers)]
    starts, ends = [None] + bounds, bounds + [None]
    return [(a, b) for a, b in zip(starts, ends) if a is None or b is None or a < b]


def _range_condition(first: int | None, end: int | None) -> sql.Composed:
    parts = []
    if first is not None:
        parts.append(sql.SQL("src.ctid >= {}::tid").format(sql.Literal(f"({first},0)")))
    if end is not None:
        parts.append(sql.SQL("src.ctid < {}::tid").format(sql.Literal(f"({end},0)")))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def create_committed_stage(target_url: str, stage: sql.Identifier,
                           columns: list[Column], label: str) -> bool:
    """The stage, made and committed by a session of its own (the ranges' sessions write
    into it); True if every column allows binary COPY."""
    with connect(target_url, "target", label=f"{label} (stage)") as conn:
        binary = create_stage(conn, stage, columns, temporary=False)
        conn.commit()
    return binary


def drop_stage(target_url: str, stage: sql.Identifier, label: str) -> None:
    with connect(target_url, "target", label=f"{label} (stage)") as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
        conn.commit()


@contextmanager
def stage_dropped_on_failure(readers: RangeReaders | None, stage: sql.Identifier,
                             label: str):
    """Around a split load's transaction: if it fails, its committed stage is dropped
    once the transaction has rolled back. (`readers` None: not a split load.)"""
    try:
        yield
    except BaseException:
        if readers is not None:
            drop_stage(readers.target_url, stage, label)
        raise


def drop_abandoned_stages(target: psycopg.Connection) -> list[str]:
    """Committed stages of split loads whose session is gone (its process was killed):
    dropped, in their own transaction. A live session's stage is left alone."""
    names = [row[0] for row in target.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname LIKE %s"
        " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a"
        "   WHERE c.relname = %s || a.pid::text)",
        (LOAD_SCHEMA, STAGE_PREFIX + "%", STAGE_PREFIX)).fetchall()]
    for name in names:
        target.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
            sql.Identifier(LOAD_SCHEMA, name)))
    target.commit()
    return names


def _copy_range(readers: RangeReaders, plan: Plan, table: Table, columns: list[Column],
                stage: sql.Identifier, binary: bool, bounds, number: int, count: int,
                log) -> int:
    label = f"{table.name} (range {number} of {count})"
    select = source_select(plan, table, columns) + sql.SQL(" WHERE ") + _range_condition(
        *bounds)
    into = sql.SQL("{} ({})").format(stage, sql.SQL(", ").join(
        [sql.Identifier("xid")] + [stage_name(i) for i in range(len(columns))]))
    with open_source(readers.source_url, label, readers.snapshot.snapshot_id) as source, \
            connect(readers.target_url, "target", label=label) as target:
        rows = copy_between(source, target, select, into, binary, log, label=label)
        target.commit()
    return rows


def stage_in_ranges(readers: RangeReaders, source, plan: Plan, table: Table,
                    columns: list[Column], stage: sql.Identifier, binary: bool,
                    log=None) -> tuple[int, int]:
    """Every row of the table into the committed `stage`, the ranges at once: the rows
    staged and the ranges. A range's error is raised once the others have ended."""
    ranges = page_ranges(source, plan, table, plan.split_workers)
    if log:
        log.info(f"{table.name}: read in {len(ranges)} ranges of its pages at once")
    with ThreadPoolExecutor(max_workers=len(ranges),
                            thread_name_prefix="xata-migration-range") as pool:
        futures = [pool.submit(_copy_range, readers, plan, table, columns, stage, binary,
                               bounds, number, len(ranges), log)
                   for number, bounds in enumerate(ranges, start=1)]
        return sum(future.result() for future in futures), len(ranges)
