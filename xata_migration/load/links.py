"""Links in the load: each written as its parent's new id (rewritten_link,
rewritten_array, over pg/translate.py), and link values whose record does not exist:
counted, set NULL, skipped with their row or stopping the load, as the plan's
`on_missing` says (MissingLinks).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from xata_migration.errors import LoadError
from xata_migration.load import sync
from xata_migration.load.result import LoadResult
from xata_migration.load.stage import EXAMPLES, stage_table
from xata_migration.pg.objects import mapping_table, tables_exist, target_table
from xata_migration.pg.stage import row_key, stage_name
from xata_migration.pg.translate import link_elements, link_values, new_ids_of_array
from xata_migration.plan.model import Column, Plan, Table


def rewritten_link(column: Column, index: int, alias: sql.Identifier) -> sql.Composed:
    """The written value of a staged scalar link (its parent's mapping joined as `alias`,
    join_new_ids): the new id; for a link that must not point nowhere, a value with no
    record stops the write (no second pass over the stage to look for them first)."""
    if not caught_by_write(column):
        return sql.SQL("{}.new_id").format(alias)
    return sql.SQL("coalesce({}.new_id, pg_temp.xata_migration_missing_link(s.{}))").format(
        alias, stage_name(index))


def rewritten_array(column: Column, index: int) -> sql.Composed:
    """The written value of a staged array link (a missing id NULL: only reached with
    on_missing: null)."""
    return new_ids_of_array(column.link.table, sql.SQL("s.{}").format(stage_name(index)))


def require_parent_mapping(target: psycopg.Connection, table: Table, column: Column) -> None:
    if not tables_exist(target, mapping_table(column.link.table)):
        raise LoadError(
            f"Table {table.name!r}, column {column.name!r} links to table "
            f"{column.link.table!r}, which has not been migrated yet (no mapping "
            f"{mapping_table(column.link.table).as_string(target)}). Materialize "
            f"{column.link.table!r} first (`migrate_all` does it in the right order).")


def find_missing(target: psycopg.Connection, column: Column, index: int,
                 stage: sql.Identifier | None = None) -> tuple[int, list[tuple[str, str]]]:
    """Count link values whose record is not in the parent's mapping, with examples
    (old id of the row, the value); in the load's stage unless another is named."""
    count, examples = target.execute(sql.SQL(
        "SELECT count(*), coalesce((array_agg(ARRAY[xid, v] ORDER BY xid, v))[1:%s], '{{}}')"
        " FROM (SELECT s.xid, {values} AS v FROM {s} s) linked WHERE v IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM {map} m WHERE m.xata_id = v)").format(
        values=link_values(column, index), s=stage or stage_table(target),
        map=mapping_table(column.link.table)), (EXAMPLES,)).fetchone()
    return count, [tuple(pair) for pair in examples]


class MissingLinks(LoadError):
    """Link values whose record does not exist, with `on_missing: fail`: nothing written."""

    def __init__(self, plan: Plan, table: Table, column: Column, count: int,
                 examples: list[tuple[str, str]]):
        self.table, self.column, self.count, self.examples = table, column, count, examples
        self.source_sql = missing_links_query(plan, table, column)
        super().__init__(
            f"Table {table.name!r}, column {column.name!r}: {count} link value(s) point to "
            f"records that do not exist in {column.link.table!r} (e.g. "
            f"{[value for _, value in examples[:5]]}). Nothing was written. Fix the source, "
            "or choose in the plan what to do with such values: `on_missing: null` on this "
            "link sets them to NULL, `on_missing: skip` leaves those rows out (either is "
            "counted in the metadata and the checks).")

    def explain_older_parent(self, target, as_of) -> None:
        """If the parent table was last loaded from an older source snapshot than this
        load's, the missing records may just be newer than it: say so, and what to do."""
        try:
            parent_as_of = sync.source_as_of(target, self.column.link.table)
        finally:
            target.rollback()
        if as_of is None or parent_as_of is None or parent_as_of >= as_of:
            return
        hint = (f" Note: {self.column.link.table!r} was last loaded from the source as of "
                f"{parent_as_of.isoformat()}, this table as of {as_of.isoformat()}: records "
                "created in between are not in it yet. Run migrate_all (every table of a "
                "run reads the source at one point in time) to bring both to the same time.")
        self.args = (self.args[0] + hint,)


def missing_links_query(plan: Plan, table: Table, column: Column) -> str:
    """SQL for the source: every row whose link points to no record."""
    value = link_elements(column, sql.SQL("s.{}").format(sql.Identifier(column.name)))
    parent = plan.table(column.link.table)
    return sql.SQL(
        "SELECT xata_id, value FROM (SELECT {id} AS xata_id, {value} AS value"
        " FROM {table} s) linked WHERE value IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM {parent} p WHERE p.{pid}::text = linked.value::text)"
        " ORDER BY xata_id").format(
        id=row_key(table, "s"), value=value,
        table=sql.Identifier(plan.source_schema, table.name),
        parent=sql.Identifier(plan.source_schema, parent.name),
        pid=sql.Identifier(column.link.column or parent.id_column)).as_string(None)


def _missing_condition(table: Table, column: Column, index: int,
                       stage: sql.Identifier) -> sql.Composed:
    """True for a staged row whose link (or an element of it) has no record to point to.
    Before ids are given, a self-link's record may also be another staged row."""
    known = sql.SQL("EXISTS (SELECT 1 FROM {} m WHERE m.xata_id = v)").format(
        mapping_table(column.link.table))
    if column.link.table == table.name:
        known = sql.SQL("({} OR EXISTS (SELECT 1 FROM {} o WHERE o.xid = v))").format(
            known, stage)
    return sql.SQL("EXISTS (SELECT 1 FROM (SELECT {} AS v) x WHERE v IS NOT NULL"
                   " AND NOT {})").format(link_values(column, index), known)


def skip_rows_with_missing_links(target, table: Table, columns: list[Column],
                                 result: LoadResult) -> None:
    """Leave out rows whose `on_missing: skip` link has no record, before they get ids.

    Repeated until nothing changes: a row whose self-link points at a left-out row is
    itself left out.
    """
    skip = [(i, c) for i, c in enumerate(columns) if c.rewritten and c.link.on_missing == "skip"]
    if not skip:
        return
    for column in (c for _, c in skip):
        require_parent_mapping(target, table, column)
    stage = stage_table(target)
    condition = sql.SQL(" OR ").join(_missing_condition(table, c, i, stage) for i, c in skip)
    while True:
        removed = target.execute(sql.SQL("DELETE FROM {} s WHERE {} RETURNING s.xid").format(
            stage, condition)).fetchall()
        if not removed:
            return
        result.skipped_rows += len(removed)
        result.skipped_examples = sorted(
            result.skipped_examples + [r[0] for r in removed])[:EXAMPLES]


def check_copied_links(target, plan: Plan, table: Table, columns: list[Column]) -> None:
    """Links copied as they are (to a parent whose ids are kept): every staged value must
    be a row of the parent in the target (or, for a self-link, another staged row), else
    MissingLinks; the FOREIGN KEY made after the write then holds."""
    stage = stage_table(target)
    for index, column in enumerate(columns):
        if not column.link or column.rewritten:
            continue
        parent = plan.table(column.link.table)
        written = target_table(plan, parent)
        if not tables_exist(target, written):
            raise LoadError(
                f"Table {table.name!r}, column {column.name!r} links to table "
                f"{parent.name!r}, which has not been migrated yet. Materialize "
                f"{parent.name!r} first (`migrate_all` does it in the right order).")
        known = sql.SQL("EXISTS (SELECT 1 FROM {} p WHERE p.{} = s.{})").format(
            written, sql.Identifier(parent.column(column.link.column).target),
            stage_name(index))
        if parent.name == table.name:
            own = columns.index(table.column(column.link.column))
            known = sql.SQL("({} OR EXISTS (SELECT 1 FROM {} o WHERE o.{} = s.{}))").format(
                known, stage, stage_name(own), stage_name(index))
        count, examples = target.execute(sql.SQL(
            "SELECT count(*), coalesce((array_agg(ARRAY[s.xid, s.{c}::text]"
            " ORDER BY s.xid, s.{c}))[1:%s], '{{}}') FROM {s} s"
            " WHERE s.{c} IS NOT NULL AND NOT {known}").format(
            c=stage_name(index), s=stage, known=known), (EXAMPLES,)).fetchone()
        if count:
            raise MissingLinks(plan, table, column, count, [tuple(p) for p in examples])


def caught_by_write(column: Column) -> bool:
    """A link whose missing records the write itself stops at (see rewritten_link)."""
    return (column.link.on_missing == "fail" and not column.is_array_link
            and not column.link.deferred)


def handle_missing_links(target, plan: Plan, table: Table, columns: list[Column],
                         result: LoadResult, deferred_too: bool = False) -> None:
    for index, column in enumerate(columns):
        if not column.rewritten or (column.link.deferred and not deferred_too):
            continue
        require_parent_mapping(target, table, column)
        if column.link.on_missing == "skip" or caught_by_write(column):
            continue  # rows left out before ids were given / the write stops at one
        count_missing_links(target, plan, table, column, index, result)


def count_missing_links(target, plan: Plan, table: Table, column: Column, index: int,
                        result: LoadResult) -> None:
    """Count the link's values that point to no record: MissingLinks if it must not have
    any, else the count goes into the result."""
    count, examples = find_missing(target, column, index)
    if count and column.link.on_missing == "fail":
        raise MissingLinks(plan, table, column, count, examples)
    result.nulled_missing[column.name] = count


# Raised by the write when a link's record does not exist (a user-defined SQLSTATE);
# PARALLEL SAFE, so it does not keep the write from parallel workers (they pass the error
# on, SQLSTATE included).
MISSING_LINK_STATE = "XM001"


MISSING_LINK_FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION pg_temp.xata_migration_missing_link(text) RETURNS bigint"
    " LANGUAGE plpgsql STRICT PARALLEL SAFE AS $$ BEGIN RAISE EXCEPTION"
    " 'no record with id %', $1 USING ERRCODE = {}; END $$").format(
    sql.Literal(MISSING_LINK_STATE))
