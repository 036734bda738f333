"""A big table's rows staged by several connections at once, each a range of the table.

A full load of a table of at least the plan's `split_rows` rows, read in a held snapshot,
is staged by `split_workers` pairs of connections, each its own source session importing
that snapshot and its own target session streaming its range into the load's stage with
COPY (pg/relay.copy_between), then committing. So the stage, unlike an unsplit load's, is
a committed table: made before the ranges by a session of its own, dropped by the load's
transaction (or, if the load fails, after it; if the process dies, by the next load:
drop_abandoned_stages). Nothing else is committed before the load's transaction commits:
the target's tables and mappings are written by that transaction alone.

The ranges, each holding every row the snapshot sees exactly once:
- on a first load, ranges of the id order (key_ranges): bounded by the order keys of
  rows sampled from the table, each bound named by that row's ctid, so no value leaves
  the source. Each range is sent numbered in the id order (row_number()) with its part;
  a row's place in the whole order is its number plus the rows of the parts before it,
  so the new ids are those an unsplit load gives, with no sort in the target. Only when
  the id and every id_order column are NOT NULL (a NULL falls outside every range).
- otherwise, ranges of the table's pages (pg/ranges.py), TID range scans, the last one
  open at its end; ids are then given over the whole stage (ids.allocate_ids), in the
  same order rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from xata_migration.connections import connect
from xata_migration.pg.objects import LOAD_SCHEMA, STAGE_PREFIX
from xata_migration.pg.ranges import Bounds, page_conditions, table_pages
from xata_migration.pg.relay import copy_between
from xata_migration.pg.stage import (create_stage, id_order, id_order_keys, source_select,
                                    stage_name)
from xata_migration.plan.catalog import estimated_rows
from xata_migration.plan.model import Column, Plan, Table
from xata_migration.snapshot import SourceSnapshot, open_source

# A table never analyzed: counted up to this many pages (100 MB), else estimated from a
# sample of SAMPLE_PERCENT of its pages
COUNTED_PAGES, SAMPLE_PERCENT = 12_800, 1
# Rows sampled to place the bounds of ranges in the id order
SAMPLED_KEYS = 20_000
# The stage's columns of a numbered split: the row's number in its range, and the range
NUMBERED_PARTS = [sql.SQL("n bigint"), sql.SQL("part integer")]


@dataclass(frozen=True)
class RangeReaders:
    """Where a split load opens its other sessions: the two databases' URLs and the
    snapshot every range reads (a split needs one: without it, no split). If given,
    `fingerprint_part(source, rows, parts)` is handed each of up to as many ranges' source
    sessions once its range is staged, with a range of the table's pages (`rows`, a
    condition on `src`) of `parts`: the checks' fingerprint of the source, by parts
    (verify.SourceRanges). It takes the session over (and closes it), so the load goes on
    while the source computes them."""
    source_url: str
    target_url: str
    snapshot: SourceSnapshot | None
    fingerprint_part: Callable[[psycopg.Connection, sql.Composable, int], None] | None = None


@dataclass
class StagedRanges:
    rows: int
    ranges: int
    # numbered in the id order: the rows before each part (stage column `part`, from 1)
    part_offsets: list[int] = field(default_factory=list)


def source_rows(source: psycopg.Connection, plan: Plan, table: Table) -> int:
    """The table's rows as the server estimates them. Never analyzed (a restored dump,
    say): counted if it is small, else estimated from a sample of its pages."""
    rows = estimated_rows(source, plan.source_schema, table.name)
    if rows is not None:
        return rows
    name = sql.Identifier(plan.source_schema, table.name)
    if table_pages(source, name) <= COUNTED_PAGES:
        return source.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()[0]
    return source.execute(sql.SQL(
        "SELECT count(*) * {} FROM {} TABLESAMPLE SYSTEM ({})").format(
        sql.Literal(100 // SAMPLE_PERCENT), name, sql.Literal(SAMPLE_PERCENT))).fetchone()[0]


def should_split(source, plan: Plan, table: Table, readers: RangeReaders | None,
                 since) -> bool:
    """A full load of a big table, read in a held snapshot, with more than one worker."""
    return (readers is not None and readers.snapshot is not None and since is None
            and bool(readers.source_url and readers.target_url)
            and plan.split_workers > 1 and source_rows(source, plan, table) >= plan.split_rows)


def order_never_null(source: psycopg.Connection, plan: Plan, table: Table) -> bool:
    """The id and every id_order column are NOT NULL in the source."""
    names = [table.id_column] + list(table.id_order)
    return source.execute(
        "SELECT count(*) FILTER (WHERE attnotnull) = %s FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attname = ANY(%s) AND NOT attisdropped",
        (len(names), sql.Identifier(plan.source_schema, table.name).as_string(source),
         names)).fetchone()[0]


def key_ranges(source: psycopg.Connection, plan: Plan, table: Table,
               workers: int) -> list[Bounds]:
    """Up to `workers` ranges of the id order, [first, end), each bound the ctid of a row
    whose order key starts the range; the first and last open."""
    rows = max(source_rows(source, plan, table), 1)
    percent = min(100.0, SAMPLED_KEYS * 100.0 / rows)
    sampled = [r[0] for r in source.execute(sql.SQL(
        "SELECT src.ctid::text FROM {} src TABLESAMPLE SYSTEM ({}) ORDER BY {}").format(
        sql.Identifier(plan.source_schema, table.name), sql.Literal(percent),
        id_order(table))).fetchall()]
    bounds = list(dict.fromkeys(sampled[len(sampled) * k // workers]
                                for k in range(1, workers) if sampled))
    return list(zip([None] + bounds, bounds + [None]))


def key_condition(plan: Plan, table: Table, first: str | None,
                  end: str | None) -> sql.Composable:
    """Rows whose order key is at least that of row `first` and below that of row `end`
    (row-wise comparisons, each field in the order's own collation)."""
    def key_of(ctid: str) -> sql.Composable:
        return sql.SQL("ROW({})").format(sql.SQL(", ").join(
            sql.SQL("(SELECT {} FROM {} b WHERE b.ctid = {}::tid)").format(
                field, sql.Identifier(plan.source_schema, table.name), sql.Literal(ctid))
            for field in id_order_keys(table, "b")))
    key = sql.SQL("ROW({})").format(id_order(table))
    parts = ([sql.SQL("{} >= {}").format(key, key_of(first))] if first else []) + (
        [sql.SQL("{} < {}").format(key, key_of(end))] if end else [])
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def create_committed_stage(target_url: str, stage: sql.Identifier, columns: list[Column],
                           label: str, numbered: bool) -> bool:
    """The stage, made and committed by a session of its own (the ranges' sessions write
    into it); True if every column allows binary COPY."""
    with connect(target_url, "target", label=f"{label} (stage)") as conn:
        binary = create_stage(conn, stage, columns, NUMBERED_PARTS if numbered else [],
                              temporary=False)
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
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = to_regnamespace(%s)"
        " AND c.relkind = 'r' AND starts_with(c.relname, %s)"
        " AND NOT EXISTS (SELECT 1 FROM pg_stat_get_activity(CASE WHEN"
        "   substr(c.relname, %s) ~ '^[0-9]{1,9}$' THEN substr(c.relname, %s)::int END) a"
        "   WHERE a.pid IS NOT NULL)",
        (LOAD_SCHEMA, STAGE_PREFIX, len(STAGE_PREFIX) + 1, len(STAGE_PREFIX) + 1)).fetchall()]
    for name in names:
        target.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
            sql.Identifier(LOAD_SCHEMA, name)))
    target.commit()
    return names


@dataclass(frozen=True)
class _Range:
    number: int
    count: int
    condition: sql.Composable
    numbered: bool
    pages: sql.Composable | None = None  # its part of the fingerprint's page ranges
    fingerprint_parts: int = 0


def _copy_range(readers: RangeReaders, plan: Plan, table: Table, columns: list[Column],
                stage: sql.Identifier, binary: bool, part: _Range, log) -> int:
    label = f"{table.name} (range {part.number} of {part.count})"
    names = [sql.Identifier("xid")] + [stage_name(i) for i in range(len(columns))]
    extra = []
    if part.numbered:
        extra = [sql.SQL("row_number() OVER (ORDER BY {})").format(id_order(table)),
                 sql.Literal(part.number)]
        names += [sql.Identifier("n"), sql.Identifier("part")]
    select = source_select(plan, table, columns, extra) + sql.SQL(" WHERE ") + part.condition
    into = sql.SQL("{} ({})").format(stage, sql.SQL(", ").join(names))
    source = open_source(readers.source_url, label, readers.snapshot.snapshot_id)
    handed_over = False
    try:
        with connect(readers.target_url, "target", label=label) as target:
            rows = copy_between(source, target, select, into, binary, log, label=label)
            target.commit()
        if readers.fingerprint_part and part.pages is not None:
            readers.fingerprint_part(source, part.pages, part.fingerprint_parts)
            handed_over = True
    finally:
        if not handed_over:
            source.close()
    return rows


def stage_in_ranges(readers: RangeReaders, source, plan: Plan, table: Table,
                    columns: list[Column], stage: sql.Identifier, numbered: bool,
                    log=None) -> StagedRanges:
    """Every row of the table into the stage (made here, committed), the ranges at once;
    `numbered` (a first load): in ranges of the id order, if the order allows it (see
    the module). A range's error is raised once the others have ended."""
    numbered = numbered and order_never_null(source, plan, table)
    name = sql.Identifier(plan.source_schema, table.name)
    if numbered:
        bounds = key_ranges(source, plan, table, plan.split_workers)
        conditions = [key_condition(plan, table, *b) for b in bounds]
        pages = page_conditions(source, name, len(conditions))
    else:
        conditions = pages = page_conditions(source, name, plan.split_workers)
    binary = create_committed_stage(readers.target_url, stage, columns, table.name, numbered)
    parts = [_Range(number, len(conditions), condition, numbered,
                    pages[number - 1] if number <= len(pages) else None, len(pages))
             for number, condition in enumerate(conditions, start=1)]
    if log:
        log.info(f"{table.name}: read in {len(parts)} ranges of its "
                 f"{'id order' if numbered else 'pages'} at once")
    with ThreadPoolExecutor(max_workers=len(parts),
                            thread_name_prefix="xata-migration-range") as pool:
        futures = [pool.submit(_copy_range, readers, plan, table, columns, stage, binary,
                               part, log) for part in parts]
        counts = [future.result() for future in futures]
    offsets = list(itertools.accumulate([0] + counts[:-1])) if numbered else []
    return StagedRanges(sum(counts), len(parts), offsets)
