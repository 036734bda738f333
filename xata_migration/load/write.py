"""The staged rows into the target table, with new ids and rewritten links.

A new table is made by CREATE TABLE AS (parallel workers allowed); an existing one gets
an upsert that inserts new rows and updates changed ones, leaving unchanged rows alone.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from xata_migration.errors import LoadError
from xata_migration.load import ddl
from xata_migration.load.ids import NewIds
from xata_migration.load.links import (MISSING_LINK_FUNCTION, MISSING_LINK_STATE,
                                       caught_by_write, count_missing_links, rewritten_array,
                                       rewritten_link)
from xata_migration.load.result import LoadResult
from xata_migration.load.stage import parallel_plan, stage_table
from xata_migration.pg.objects import ID, target_table
from xata_migration.pg.stage import cast_by_the_write, stage_name
from xata_migration.pg.translate import join_new_ids
from xata_migration.plan.model import Column, Plan, Table


def _row_select(plan: Plan, table: Table, columns: list[Column], stage: sql.Identifier,
                new_ids: NewIds, every_column: bool = False) -> sql.Composed:
    """SELECT new id, values and rewritten links from the `stage`, for written columns
    (`every_column`: for all, a deferred link as NULL, each of its type, to make the
    table from)."""
    fields, joins = [], []
    if not table.kept:
        new_id, joins = new_ids.of_staged_row(table)
        fields.append(new_id)
    for index, column in enumerate(columns):
        if column.rewritten and column.link.deferred:
            if every_column:
                fields.append(sql.SQL("NULL::{}").format(sql.SQL(column.type)))
            continue
        if column.is_array_link:
            field = rewritten_array(column, index)
        elif column.rewritten:
            alias = sql.Identifier(f"p{index}")
            joins.append(join_new_ids(alias, column.link.table,
                                      sql.SQL("s.{}").format(stage_name(index))))
            field = rewritten_link(column, index, alias)
        else:
            field = sql.SQL("s.{}").format(stage_name(index))
        if every_column or cast_by_the_write(column):
            field = sql.SQL("CAST({} AS {})").format(field, sql.SQL(column.type))
        fields.append(field)
    return sql.SQL("SELECT {} FROM {} s {}").format(
        sql.SQL(", ").join(fields), stage, sql.SQL(" ").join(joins))


def written_columns(table: Table) -> list[Column]:
    """Columns the table's own asset writes: all but deferred links (written later) and
    generated columns (the target computes them)."""
    return [c for c in table.written_by_load if not (c.rewritten and c.link.deferred)]


def write_rows(target, plan: Plan, table: Table, columns: list[Column],
               fresh: bool, new_ids: NewIds = NewIds()) -> tuple[int, int]:
    """Insert new rows and update changed ones; unchanged rows are not touched. Stopped by
    a link to no record: then MissingLinks says which and how many."""
    target.execute(MISSING_LINK_FUNCTION)
    try:
        with target.transaction():  # a savepoint: the stage survives to be looked at
            return _write_rows(target, plan, table, columns, fresh, new_ids)
    except psycopg.Error as error:
        if error.sqlstate != MISSING_LINK_STATE:
            raise
    for index, column in enumerate(columns):
        if column.rewritten and caught_by_write(column):
            count_missing_links(target, plan, table, column, index, LoadResult())
    raise LoadError(f"Table {table.name!r}: a link pointed to no record during the write, "
                    "but none does now. Nothing was written; run again.")


def _write_rows(target, plan: Plan, table: Table, columns: list[Column],
                fresh: bool, new_ids: NewIds) -> tuple[int, int]:
    stage = stage_table(target)
    if fresh:
        make, *attributes = ddl.create_table_as_sql(
            plan, table, _row_select(plan, table, columns, stage, new_ids, every_column=True))
        with parallel_plan(target):
            inserted = target.execute(make).rowcount
        with target.pipeline():  # sent together, run in order, one wait for them all
            for statement in attributes:
                target.execute(statement)
        return inserted, 0
    if table.kept:
        return _write_kept_rows(target, plan, table, columns, stage)
    names = [sql.Identifier(c.target) for c in written_columns(table)]
    insert = sql.SQL("INSERT INTO {} AS t ({}) {}").format(
        target_table(plan, table), sql.SQL(", ").join([sql.Identifier(ID)] + names),
        _row_select(plan, table, columns, stage, new_ids))
    if names:
        conflict = sql.SQL(" ON CONFLICT (id) DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})"
                           ).format(
            sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(n, n) for n in names),
            sql.SQL(", ").join(sql.SQL("t.{}").format(n) for n in names),
            sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(n) for n in names))
    else:
        conflict = sql.SQL(" ON CONFLICT (id) DO NOTHING")
    row = target.execute(sql.SQL(
        "WITH written AS ({} RETURNING (xmax = 0) AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)"
        " FROM written").format(insert + conflict)).fetchone()
    return row[0], row[1]


def _write_kept_rows(target, plan: Plan, table: Table, columns: list[Column],
                     stage: sql.Identifier) -> tuple[int, int]:
    """Into an existing table whose ids are kept: rows matched on the table's `key`, new
    ones inserted and changed ones updated; without a key, every row replaced."""
    written = written_columns(table)
    names = [sql.Identifier(c.target) for c in written]
    rows = sql.SQL("({}) x({})").format(
        _row_select(plan, table, columns, stage, NewIds()), sql.SQL(", ").join(names))
    overriding = sql.SQL(" OVERRIDING SYSTEM VALUE" if any(
        c.identity == "always" for c in written) else "")
    insert = sql.SQL("INSERT INTO {t} ({names}){overriding} SELECT x.* FROM {rows}").format(
        t=target_table(plan, table), names=sql.SQL(", ").join(names), overriding=overriding,
        rows=rows)
    if not table.key:
        target.execute(sql.SQL("DELETE FROM {}").format(target_table(plan, table)))
        return target.execute(insert).rowcount, 0
    key = [table.column(name).target for name in table.key]
    same_row = sql.SQL(" AND ").join(sql.SQL("t.{c} = x.{c}").format(c=sql.Identifier(c))
                                     for c in key)
    changing = [n for c, n in zip(written, names) if c.target not in key and not c.identity]
    update = sql.SQL("SELECT 1 WHERE false") if not changing else sql.SQL(
        "UPDATE {t} t SET {set} FROM {rows} WHERE {same} AND ({old}) IS DISTINCT FROM ({new})"
        " RETURNING 1").format(
        t=target_table(plan, table), rows=rows, same=same_row,
        set=sql.SQL(", ").join(sql.SQL("{n} = x.{n}").format(n=n) for n in changing),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(n) for n in changing),
        new=sql.SQL(", ").join(sql.SQL("x.{}").format(n) for n in changing))
    row = target.execute(sql.SQL(
        "WITH updated AS ({update}), inserted AS ({insert} WHERE NOT EXISTS"
        " (SELECT 1 FROM {t} t WHERE {same}) RETURNING 1)"
        " SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated)").format(
        update=update, insert=insert, t=target_table(plan, table), same=same_row)).fetchone()
    return row[0], row[1]
