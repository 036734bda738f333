"""New ids: the append-only mapping xata_id_map.<table> (old id -> new bigint id).

A source id keeps the new id it was given once, forever; new source ids get ids after
the highest one given, in the plan's id_order, then the id's bytes, so the same source
always gets the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from xata_migration.errors import LoadError
from xata_migration.load import ddl
from xata_migration.load.stage import EXAMPLES, parallel_plan, stage_table
from xata_migration.pg.objects import ID, mapping_table, tables_exist, target_table
from xata_migration.pg.stage import stage_name
from xata_migration.plan.model import Column, Plan, Table


def check_ids(target: psycopg.Connection, table: Table) -> None:
    nulls, duplicates, examples = target.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {s} WHERE xid IS NULL),"
        " count(*), (array_agg(xid ORDER BY xid))[1:%s]"
        " FROM (SELECT xid FROM {s} WHERE xid IS NOT NULL GROUP BY xid HAVING count(*) > 1) d"
    ).format(s=stage_table(target)), (EXAMPLES,)).fetchone()
    if nulls or duplicates:
        what = (f"the source id column {table.id_column!r}" if table.id_column else
                f"the key {table.key} of its kept ids")
        raise LoadError(
            f"Table {table.name!r}: {what} has {nulls} NULL "
            f"value(s) and {duplicates} id(s) used by more than one row (e.g. {examples}). "
            "A record id must be unique and present: repair those rows in the source, then "
            "run again. Nothing was written.")


def id_offset(target, plan: Plan, table: Table) -> int:
    """New ids start after the highest id given or used in the target table (if any)."""
    mapping, table_name = mapping_table(table.name), target_table(plan, table)
    highest = [sql.SQL("0")] + [
        sql.SQL("(SELECT coalesce(max({}), 0) FROM {})").format(sql.Identifier(column), name)
        for column, name in ((ID, table_name), ("new_id", mapping))
        if tables_exist(target, name)]
    return target.execute(sql.SQL("SELECT greatest({})").format(
        sql.SQL(", ").join(highest))).fetchone()[0]


def allocate_ids(target: psycopg.Connection, plan: Plan, table: Table,
                 columns: list[Column]) -> int:
    """Give new ids, after the highest id already given, to source ids not yet mapped.

    New ids follow the plan's id_order columns, then the source id (byte order), so the
    same source always gets the same ids.
    """
    order = [stage_name(columns.index(table.column(name))) for name in table.id_order]
    order.append(sql.SQL('xid COLLATE "C"'))
    return target.execute(sql.SQL(
        "INSERT INTO {map} (xata_id, new_id)"
        " SELECT s.xid, {offset} + row_number() OVER (ORDER BY {order}) FROM {s} s"
        " WHERE NOT EXISTS (SELECT 1 FROM {map} m WHERE m.xata_id = s.xid)").format(
        map=mapping_table(table.name), offset=sql.Literal(id_offset(target, plan, table)),
        order=sql.SQL(", ").join(order), s=stage_table(target))).rowcount


def numbered_in_id_order(table: Table) -> bool:
    """Can a first load take its ids from the stage's numbering (see stage_source_rows)?
    Not when rows may still leave the stage (`on_missing: skip`) before ids are given."""
    return not any(c.link and c.link.on_missing == "skip" for c in table.columns)


@dataclass(frozen=True)
class NewIds:
    """Where a load's staged rows find their new ids: in the mapping, joined on the old id
    (`offset` None); or, on a first load whose stage is numbered in the id order (see
    stage_source_rows), the stage's number plus `offset`, the highest id the target
    already holds, with no sort. A stage numbered by ranges (split.py) adds the rows
    before the row's range: `part_offsets`, by its `part` (from 1)."""
    offset: int | None = None
    part_offsets: tuple[int, ...] = ()

    @classmethod
    def for_load(cls, target, plan: Plan, table: Table, numbered: bool,
                 part_offsets: tuple[int, ...] = ()) -> NewIds:
        return cls(id_offset(target, plan, table), part_offsets) if numbered else cls()

    def of_staged_row(self, table: Table) -> tuple[sql.Composable, list[sql.Composable]]:
        """The new id of stage row `s`, and the join it needs."""
        if self.offset is None:
            return sql.SQL("m.new_id"), [sql.SQL("JOIN {} m ON m.xata_id = s.xid").format(
                mapping_table(table.name))]
        if not self.part_offsets:
            return sql.SQL("s.n + {}").format(sql.Literal(self.offset)), []
        # An expression, not a join to a VALUES list: the planner takes such a join to
        # keep a few rows of the stage, and then looks up the parents' mappings row by row.
        rows_before = sql.SQL(" ").join(sql.SQL("WHEN {} THEN {}").format(
            sql.Literal(number), sql.Literal(before))
            for number, before in enumerate(self.part_offsets, start=1))
        return sql.SQL("s.n + {} + CASE s.part {} END").format(
            sql.Literal(self.offset), rows_before), []


def allocate_first_ids(target, plan: Plan, table: Table, columns: list[Column],
                       new_ids: NewIds) -> int:
    """A new mapping: every staged row gets an id, then the mapping gets its keys. A NULL
    or repeated source id breaks those (cheaper than looking for them first): then
    check_ids says which. Numbered ids make the mapping from the stage's numbers, with no
    sort here; otherwise ensure_mapping made it and allocate_ids fills it."""
    try:
        with target.transaction():  # a savepoint: the stage survives for check_ids
            if new_ids.offset is None:
                given = allocate_ids(target, plan, table, columns)
            else:
                new_id, joins = new_ids.of_staged_row(table)
                with parallel_plan(target):
                    given = target.execute(ddl.create_mapping_as_sql(table, sql.SQL(
                        "SELECT xid, {} FROM {} s {}").format(
                        new_id, stage_table(target), sql.SQL(" ").join(joins)))).rowcount
            target.execute(ddl.mapping_keys_sql(table))
    except (psycopg.errors.NotNullViolation, psycopg.errors.UniqueViolation):
        check_ids(target, table)
        raise
    return given


def ensure_mapping(target, table: Table, numbered: bool) -> bool:
    """Whether the mapping table is missing (True). If so and the stage is not `numbered`
    in the id order, create it, without keys yet, for allocate_ids to fill (numbered ids
    make it in one write: allocate_first_ids)."""
    if tables_exist(target, mapping_table(table.name)):
        return False
    if not numbered:
        target.execute(ddl.create_mapping_sql(table))
    return True
