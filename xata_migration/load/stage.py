"""The load's staging table: the source rows, streamed into the target by COPY.

The stage (pg/stage.py) is an unlogged table of the loads' schema, named after the
session, made and dropped inside the load's transaction.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from xata_migration.connections import set_all
from xata_migration.load import split, sync
from xata_migration.load.split import RangeReaders
from xata_migration.pg.objects import (DELETED_IN_SOURCE, LOAD_SCHEMA, STAGE_PREFIX,
                                       count_rows, mapping_table)
from xata_migration.pg.relay import copy_between
from xata_migration.pg.stage import (create_stage, create_temp_table, id_order, source_select,
                                    stage_name)
from xata_migration.plan.catalog import estimated_rows
from xata_migration.plan.model import Column, Plan, Table
from xata_migration.plan.names import lock_key

EXAMPLES = 10


def stage_table(target: psycopg.Connection) -> sql.Identifier:
    """The load's staging table: unlogged, in the loads' schema, named after the session
    (loads of several tables at once never meet), made and dropped inside the load's
    transaction (load_transaction), so never committed. Not a temporary table, because
    PostgreSQL's parallel workers cannot read those (see parallel_plan)."""
    return sql.Identifier(LOAD_SCHEMA, f"{STAGE_PREFIX}{target.info.backend_pid}")


@contextmanager
def load_transaction(target: psycopg.Connection):
    """One target transaction (or savepoint) for a load; the stage goes before it ends.
    On an error nothing is dropped by hand: the rollback takes the stage with the rest."""
    with target.transaction():
        yield
        target.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage_table(target)))


# What PostgreSQL's planner charges for starting parallel workers and for each row they
# pass on. Charged per row, a whole table passed on to the process that writes it always
# looks dearer than one process doing it all, so the planner never chooses them for
# CREATE TABLE AS. Yet even on 2 cores, workers reading the stage (and joining the
# parents' mappings) while the session writes make a large table's write and its mapping
# markedly faster (benchmarks/NOTES.md).
FREE_PARALLEL_PLAN = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0"}


@contextmanager
def parallel_plan(target):
    """Inside: the planner takes parallel workers wherever the query allows (as many as
    the server's max_parallel_workers_per_gather lets it, none if it is 0). After: the
    settings as they were. On an error they are left to the enclosing savepoint's
    rollback, which restores them (a failed transaction runs no more statements)."""
    names = list(FREE_PARALLEL_PLAN)
    before = dict(zip(names, target.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL("current_setting({})").format(sql.Literal(name)) for name in names))
    ).fetchone()))
    set_all(target, FREE_PARALLEL_PLAN, local=True)
    yield
    set_all(target, before, local=True)


@dataclass
class Staged:
    read: int                          # source rows in the stage
    source_rows: int                   # rows in the source snapshot
    as_of: object                      # when the source transaction that read them began
    ids: sql.Identifier | None = None  # a table of every source id: the stage on a full
    ranges: int = 1                    # sessions that read the source at once (split.py)
    numbered: bool = False             # the stage's rows numbered in the id order (n)
    part_offsets: tuple[int, ...] = ()  # numbered by range: rows before each `part`


# The stage numbers the rows as they arrive; its sequence hands this many numbers to the
# session at a time, instead of updating the sequence for every row.
NUMBERS_CACHED = 10_000


def stage_source_rows(source, target, plan: Plan, table: Table, columns: list[Column],
                      log=None, since=None, numbered: bool = False,
                      ranges: RangeReaders | None = None) -> Staged:
    """Inside the target transaction: take the table's lock, stream the source rows into
    the stage (on a delta, those written since `since`), all in one source transaction.
    `numbered`: the source sends the rows in the id order
    and the stage numbers them as they arrive (stage column n, from 1), so that a first
    load's ids need no sort and no join here. (Not row_number() in the source: a window
    leaves its other columns, JSON turned into text among them, to the one process that
    also sends the rows; sorted with ORDER BY, the parallel workers compute them.)"""
    target.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(table.target),))
    as_of = source.execute("SELECT now()").fetchone()[0]
    if ranges is not None:  # a full load split in ranges (split.py)
        return _stage_in_ranges(ranges, source, target, plan, table, columns, as_of, log,
                                numbered)
    extra = [sql.SQL("n bigint GENERATED ALWAYS AS IDENTITY (CACHE {})").format(
        sql.Literal(NUMBERS_CACHED))] if numbered else []
    stage = stage_table(target)
    binary = create_stage(target, stage, columns, extra, temporary=False)
    select = source_select(plan, table, columns)
    if since is not None:
        select += sql.SQL(" WHERE src.{} >= {}").format(sql.Identifier(sync.UPDATED_AT),
                                                       sql.Literal(since))
    if numbered:
        select += sql.SQL(" ORDER BY {}").format(id_order(table))
    staged_columns = sql.SQL("{} ({})").format(stage, sql.SQL(", ").join(
        [sql.Identifier("xid")] + [stage_name(i) for i in range(len(columns))]))
    try:
        expected = estimated_rows(source, plan.source_schema, table.name) if since is None \
            else None
        read = copy_between(source, target, select, staged_columns, binary, log,
                            label=table.name, expected=expected)
        if since is None:
            return Staged(read, read, as_of, stage, numbered=numbered)
        staged = Staged(read, count_rows(source, sql.Identifier(plan.source_schema, table.name)),
                        as_of)
        if staged.source_rows != _expected_source_rows(target, table):
            staged.ids = _stage_source_ids(source, target, plan, table)
        return staged
    finally:
        source.commit()


def _stage_in_ranges(ranges: RangeReaders, source, target, plan: Plan, table: Table,
                     columns: list[Column], as_of, log, numbered: bool) -> Staged:
    stage = stage_table(target)
    try:
        staged = split.stage_in_ranges(ranges, source, plan, table, columns, stage, numbered,
                                       log)
    finally:
        source.commit()
    return Staged(staged.rows, staged.rows, as_of, stage, staged.ranges,
                  numbered=bool(staged.part_offsets), part_offsets=tuple(staged.part_offsets))


def _expected_source_rows(target, table: Table) -> int:
    """On a delta: how many rows the source has if none was deleted since the last load.
    Every unchanged source row is mapped and not listed as deleted (no skip links here),
    every changed or new one is in the stage."""
    return target.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {map})"
        " + (SELECT count(*) FROM {s} s WHERE NOT EXISTS"
        "    (SELECT 1 FROM {map} m WHERE m.xata_id = s.xid))"
        " - (SELECT count(*) FROM {deleted} d WHERE d.table_name = %s AND NOT EXISTS"
        "    (SELECT 1 FROM {s} s WHERE s.xid = d.xata_id))").format(
        map=mapping_table(table.name), s=stage_table(target),
        deleted=DELETED_IN_SOURCE),
        (table.name,)).fetchone()[0]


SOURCE_ID_LIST = sql.Identifier("xata_migration_source_id_list")


def _stage_source_ids(source, target, plan: Plan, table: Table) -> sql.Identifier:
    """Every source id (only the id), to find the rows deleted since the last load."""
    create_temp_table(target, SOURCE_ID_LIST, [sql.SQL("xid text")])
    copy_between(source, target, sql.SQL("SELECT {}::text FROM {}").format(
        sql.Identifier(table.id_column), sql.Identifier(plan.source_schema, table.name)),
        SOURCE_ID_LIST, binary=True)
    return SOURCE_ID_LIST
