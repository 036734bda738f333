"""Move one table: stream it into the target, give new ids, rewrite links, write rows.

Everything for one table happens in one target transaction, so a failure or a crash
leaves the target exactly as before. The data never passes through Python whole: COPY
streams it from the source into a staging table of the target, and the rest is
set-based SQL there.

  stage_source_rows             lock the table; source rows -> the stage (stage_table)
                                (COPY, streamed; on a first load sent in the id order
                                and numbered as they arrive)
  check_ids                     no NULL and no duplicate source id (on a new mapping, its
                                keys find them)
  target_table_missing          a new table? (the write makes it) else check the existing
                                one has the plan's shape
  skip_rows_with_missing_links  `on_missing: skip` rows leave the stage before getting ids
  allocate_ids                  extend xata_id_map.<table> for ids not yet mapped
                                (append-only; a new one made from the stage's numbering)
  handle_missing_links          link values whose record does not exist: count (null)
  write_rows                    CREATE TABLE AS (new) or upsert (existing), links rewritten;
                                a link to no record stops it (fail), then is counted
  handle_deleted_rows           record the mapped ids gone from the source (for the checks),
                                count their rows and, if planned, delete them
  then, on a new table, the primary key, UNIQUE, FOREIGN KEYs and indexes, and the identity
  moved past the highest id.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from xata_migration import ddl, sync
from xata_migration.errors import XataMigrationError
from xata_migration.fingerprint import LoadSnapshotFingerprint
from xata_migration.introspect import check_source_matches_plan
from xata_migration.names import lock_key
from xata_migration.plan import Column, Plan, Table
from xata_migration.relay import copy_between
from xata_migration.snapshot import SourceSnapshot

FIRST_USER_OID = 16384  # types below this are built in and have the same binary format
EXAMPLES = 10


class LoadError(XataMigrationError, RuntimeError):
    """The table cannot be written as the plan says; nothing was written."""


@dataclass
class LoadResult:
    source_rows: int = 0
    new_ids: int = 0
    inserted: int = 0
    updated: int = 0
    created_table: bool = False
    nulled_missing: dict[str, int] = field(default_factory=dict)
    skipped_rows: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    deleted_in_source: int = 0
    deleted_in_target: int = 0
    target_rows: int = 0
    rows_read: int = 0              # source rows read: all, or on a delta those written since
    delta_since: object = None      # the watermark a delta read from (None: a full load)
    source_as_of: object = None     # the time of the source snapshot the rows were read in
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def unchanged(self) -> int:
        return self.source_rows - self.skipped_rows - self.inserted - self.updated


def stage_table(target: psycopg.Connection) -> sql.Identifier:
    """The load's staging table: unlogged, in the tool's schema, named after the session
    (loads of several tables at once never meet), made and dropped inside the load's
    transaction (load_transaction), so never committed. Not a temporary table, because
    PostgreSQL's parallel workers cannot read those (see parallel_plan)."""
    return sql.Identifier(ddl.BOOKKEEPING_SCHEMA, f"load_stage_{target.info.backend_pid}")


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
# CREATE TABLE AS. Yet on 2 cores, with workers reading the stage (and joining the
# parents' mappings) while the session writes, a 1M-row table was written in 1.3-1.9 s
# instead of 2.4-4.3 s, and its mapping in 0.5-0.8 s instead of 0.9-1.0 s.
FREE_PARALLEL_PLAN = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0"}


@contextmanager
def parallel_plan(target):
    """Inside: the planner takes parallel workers wherever the query allows (as many as
    the server's max_parallel_workers_per_gather lets it, none if it is 0). After: the
    settings as they were. On an error they are left to the enclosing savepoint's
    rollback, which restores them (a failed transaction runs no more statements)."""
    before = {name: target.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]
              for name in FREE_PARALLEL_PLAN}
    for name, value in FREE_PARALLEL_PLAN.items():
        target.execute("SELECT set_config(%s, %s, true)", (name, value))
    yield
    for name, value in before.items():
        target.execute("SELECT set_config(%s, %s, true)", (name, value))


def stage_name(index: int) -> sql.Identifier:
    """Staging columns have positional names, so no user name needs quoting there."""
    return sql.Identifier(f"c{index}")


# JSON's binary COPY input is a parse of its text, done by the one backend COPY has:
# staged as text, it is parsed by the write, which parallel workers run (for the
# benchmark's 5M rows, about 4 s less for the transfer, no measurable more for the write).
PARSED_BY_THE_WRITE = ("json", "jsonb")


def stage_type(column: Column) -> str:
    """Links are staged as the source's ids (text, or text[]), values in their target
    type, except the few types the write casts (cast_by_the_write)."""
    if column.link:
        return "text[]" if column.is_array_link else "text"
    if column.is_pgvector:  # the source has no pgvector: cast in the target
        return "real[]"
    if column.type in PARSED_BY_THE_WRITE:
        return "text"
    return column.type


def cast_by_the_write(column: Column) -> bool:
    """A value staged in another type than its target column's."""
    return not column.link and stage_type(column) != column.type


def source_select(plan: Plan, table: Table, columns: list[Column],
                  extra: list[sql.Composable] = ()) -> sql.Composed:
    """The source rows (alias `src`) as the stage holds them: id as text, links as text,
    values cast, then any `extra` fields."""
    fields = [sql.SQL("src.{}::text").format(sql.Identifier(table.id_column))]
    for column in columns:
        fields.append(sql.SQL("src.{}::{}").format(sql.Identifier(column.name),
                                                    sql.SQL(stage_type(column))))
    return sql.SQL("SELECT {} FROM {} src").format(
        sql.SQL(", ").join(fields + list(extra)), sql.Identifier(plan.source_schema, table.name))


def create_temp_table(target, name: sql.Identifier, definitions: list[sql.Composable]) -> None:
    # Dropped first: a savepoint inside a longer transaction does not drop it on commit.
    target.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(name))
    target.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        name, sql.SQL(", ").join(definitions)))


def create_stage(target: psycopg.Connection, stage: sql.Identifier,
                 columns: list[Column], extra: list[sql.Composable] = (),
                 temporary: bool = True) -> bool:
    """Create the staging table (xid, c0.., then `extra` column definitions): a temporary
    one, or else (the load's) an unlogged one; True if every column type allows binary
    COPY."""
    definitions = [sql.SQL("xid text")] + [
        sql.SQL("{} {}").format(stage_name(i), sql.SQL(stage_type(c)))
        for i, c in enumerate(columns)] + list(extra)
    if temporary:
        create_temp_table(target, stage, definitions)
    else:
        target.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
        target.execute(sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(
            stage, sql.SQL(", ").join(definitions)))
    row = target.execute(
        "SELECT bool_and(atttypid < %s) FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attnum > 0",
        (FIRST_USER_OID, ("pg_temp." if temporary else "") + stage.as_string(target))
    ).fetchone()
    return bool(row[0])


def check_ids(target: psycopg.Connection, table: Table) -> None:
    nulls, duplicates, examples = target.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {s} WHERE xid IS NULL),"
        " count(*), (array_agg(xid ORDER BY xid))[1:%s]"
        " FROM (SELECT xid FROM {s} WHERE xid IS NOT NULL GROUP BY xid HAVING count(*) > 1) d"
    ).format(s=stage_table(target)), (EXAMPLES,)).fetchone()
    if nulls or duplicates:
        raise LoadError(
            f"Table {table.name!r}: the source id column {table.id_column!r} has {nulls} NULL "
            f"value(s) and {duplicates} id(s) used by more than one row (e.g. {examples}). "
            "A record id must be unique and present: repair those rows in the source, then "
            "run again. Nothing was written.")


def id_offset(target, plan: Plan, table: Table) -> int:
    """New ids start after the highest id given or used in the target table (if any)."""
    mapping, target_table = ddl.mapping_table(table.name), ddl.target_table(plan, table)
    highest = [sql.SQL("0")] + [
        sql.SQL("(SELECT coalesce(max({}), 0) FROM {})").format(sql.Identifier(column), name)
        for column, name in ((ddl.ID, target_table), ("new_id", mapping))
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
        map=ddl.mapping_table(table.name), offset=sql.Literal(id_offset(target, plan, table)),
        order=sql.SQL(", ").join(order), s=stage_table(target))).rowcount


def numbered_in_id_order(table: Table) -> bool:
    """Can a first load take its ids from the stage's numbering (see stage_source_rows)?
    Not when rows may still leave the stage (`on_missing: skip`) before ids are given."""
    return not any(c.link and c.link.on_missing == "skip" for c in table.columns)


def allocate_first_ids(target, plan: Plan, table: Table, columns: list[Column],
                       offset: int | None) -> int:
    """A new mapping: every staged row gets an id, then the mapping gets its keys. A NULL
    or repeated source id breaks those (cheaper than looking for them first): then
    check_ids says which. With an `offset`, the stage is numbered in the id order (see
    stage_source_rows): the mapping is made as that number plus the offset, with no sort
    here; without, ensure_mapping made it and allocate_ids fills it."""
    try:
        with target.transaction():  # a savepoint: the stage survives for check_ids
            if offset is None:
                given = allocate_ids(target, plan, table, columns)
            else:
                with parallel_plan(target):
                    given = target.execute(ddl.create_mapping_as_sql(table, sql.SQL(
                        "SELECT xid, n + {} FROM {}").format(
                        sql.Literal(offset), stage_table(target)))).rowcount
            target.execute(ddl.mapping_keys_sql(table))
    except (psycopg.errors.NotNullViolation, psycopg.errors.UniqueViolation):
        check_ids(target, table)
        raise
    return given


def tables_exist(conn, *names: sql.Identifier) -> bool:
    """Whether every named table exists."""
    return conn.execute("SELECT bool_and(to_regclass(name) IS NOT NULL) FROM unnest(%s::text[])"
                        " name", ([n.as_string(conn) for n in names],)).fetchone()[0]


def require_parent_mapping(target: psycopg.Connection, table: Table, column: Column) -> None:
    if not tables_exist(target, ddl.mapping_table(column.link.table)):
        raise LoadError(
            f"Table {table.name!r}, column {column.name!r} links to table "
            f"{column.link.table!r}, which has not been migrated yet (no mapping "
            f"{ddl.mapping_table(column.link.table).as_string(target)}). Materialize "
            f"{column.link.table!r} first (`migrate_all` does it in the right order).")


def link_values(column: Column, index: int) -> sql.Composed:
    """The staged id(s) of a link, one per row (or per array element), as `v`."""
    template = "unnest(s.{})" if column.is_array_link else "s.{}"
    return sql.SQL(template).format(stage_name(index))


def find_missing(target: psycopg.Connection, column: Column, index: int,
                 stage: sql.Identifier | None = None) -> tuple[int, list[tuple[str, str]]]:
    """Count link values whose record is not in the parent's mapping, with examples
    (old id of the row, the value); in the load's stage unless another is named."""
    count, examples = target.execute(sql.SQL(
        "SELECT count(*), coalesce((array_agg(ARRAY[xid, v] ORDER BY xid, v))[1:%s], '{{}}')"
        " FROM (SELECT s.xid, {values} AS v FROM {s} s) linked WHERE v IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM {map} m WHERE m.xata_id = v)").format(
        values=link_values(column, index), s=stage or stage_table(target),
        map=ddl.mapping_table(column.link.table)), (EXAMPLES,)).fetchone()
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
    value = sql.SQL("unnest(s.{})" if column.is_array_link else "s.{}").format(
        sql.Identifier(column.name))
    parent = plan.table(column.link.table)
    return sql.SQL(
        "SELECT xata_id, value FROM (SELECT s.{id}::text AS xata_id, {value} AS value"
        " FROM {table} s) linked WHERE value IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM {parent} p WHERE p.{pid}::text = linked.value)"
        " ORDER BY xata_id").format(
        id=sql.Identifier(table.id_column), value=value,
        table=sql.Identifier(plan.source_schema, table.name),
        parent=sql.Identifier(plan.source_schema, parent.name),
        pid=sql.Identifier(parent.id_column)).as_string(None)


def _missing_condition(table: Table, column: Column, index: int,
                       stage: sql.Identifier) -> sql.Composed:
    """True for a staged row whose link (or an element of it) has no record to point to.
    Before ids are given, a self-link's record may also be another staged row."""
    known = sql.SQL("EXISTS (SELECT 1 FROM {} m WHERE m.xata_id = v)").format(
        ddl.mapping_table(column.link.table))
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
    skip = [(i, c) for i, c in enumerate(columns) if c.link and c.link.on_missing == "skip"]
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


def caught_by_write(column: Column) -> bool:
    """A link whose missing records the write itself stops at (see _rewritten_link)."""
    return (column.link.on_missing == "fail" and not column.is_array_link
            and not column.link.deferred)


def handle_missing_links(target, plan: Plan, table: Table, columns: list[Column],
                         result: LoadResult, deferred_too: bool = False) -> None:
    for index, column in enumerate(columns):
        if not column.link or (column.link.deferred and not deferred_too):
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


def _row_select(plan: Plan, table: Table, columns: list[Column], stage: sql.Identifier,
                offset: int | None, every_column: bool = False) -> sql.Composed:
    """SELECT new id, values and rewritten links from the `stage`, for written columns
    (`every_column`: for all, a deferred link as NULL, each of its type, to make the
    table from). The new id is the mapping's, or with an `offset` the stage's number
    plus it."""
    if offset is None:
        fields = [sql.SQL("m.new_id")]
        joins = [sql.SQL("JOIN {} m ON m.xata_id = s.xid").format(
            ddl.mapping_table(table.name))]
    else:
        fields, joins = [sql.SQL("s.n + {}").format(sql.Literal(offset))], []
    for index, column in enumerate(columns):
        if column.link and column.link.deferred:
            if every_column:
                fields.append(sql.SQL("NULL::{}").format(sql.SQL(column.type)))
            continue
        if column.is_array_link:
            field = rewritten_array(column, index)
        elif column.link:
            alias = sql.Identifier(f"p{index}")
            joins.append(sql.SQL("LEFT JOIN {} {} ON {}.xata_id = s.{}").format(
                ddl.mapping_table(column.link.table), alias, alias, stage_name(index)))
            field = _rewritten_link(column, index, alias)
        else:
            field = sql.SQL("s.{}").format(stage_name(index))
        if every_column or cast_by_the_write(column):
            field = sql.SQL("CAST({} AS {})").format(field, sql.SQL(column.type))
        fields.append(field)
    return sql.SQL("SELECT {} FROM {} s {}").format(
        sql.SQL(", ").join(fields), stage, sql.SQL(" ").join(joins))


def _rewritten_link(column: Column, index: int, alias: sql.Identifier) -> sql.Composed:
    """The parent's new id; for a link that must not point nowhere, a value with no
    record stops the write (no second pass over the stage to look for them first)."""
    if not caught_by_write(column):
        return sql.SQL("{}.new_id").format(alias)
    return sql.SQL("coalesce({}.new_id, pg_temp.xata_migration_missing_link(s.{}))").format(
        alias, stage_name(index))


def rewritten_array(column: Column, index: int) -> sql.Composed:
    """A text[] of ids as bigint[] of new ids: same order, NULL elements kept, and a
    missing id NULL (only reached with on_missing: null)."""
    return sql.SQL(
        "CASE WHEN s.{c} IS NULL THEN NULL ELSE ARRAY(SELECT p.new_id FROM unnest(s.{c})"
        " WITH ORDINALITY u(v, n) LEFT JOIN {map} p ON p.xata_id = u.v ORDER BY u.n) END"
    ).format(c=stage_name(index), map=ddl.mapping_table(column.link.table))


def record_deleted_ids(target, table: Table, ids: sql.Identifier | None) -> None:
    """Keep the table's list of mapped ids that are not in the source: from `ids`, a
    table of every source id; without it (a delta with no row deleted since), the ids
    written again leave the list."""
    deleted, name = ddl.DELETED_IN_SOURCE, (table.name,)
    if ids is None:
        target.execute(sql.SQL("DELETE FROM {} d WHERE table_name = %s AND EXISTS"
                               " (SELECT 1 FROM {} s WHERE s.xid = d.xata_id)").format(
            deleted, stage_table(target)), name)
        return
    forget_deleted_ids(target, table)
    target.execute(sql.SQL(
        "INSERT INTO {deleted} (table_name, xata_id) SELECT %s, m.xata_id FROM {map} m"
        " WHERE NOT EXISTS (SELECT 1 FROM {ids} s WHERE s.xid = m.xata_id)").format(
        deleted=deleted, map=ddl.mapping_table(table.name), ids=ids), name)


def forget_deleted_ids(target, table: Table) -> None:
    target.execute(sql.SQL("DELETE FROM {} WHERE table_name = %s").format(
        ddl.DELETED_IN_SOURCE), (table.name,))


def handle_deleted_rows(target, plan: Plan, table: Table, result: LoadResult,
                        ids: sql.Identifier | None) -> None:
    """Count target rows whose source row is gone; delete them if the plan says so.
    Their mapping rows always stay, so old references still resolve."""
    record_deleted_ids(target, table, ids)
    gone = sql.SQL(
        "EXISTS (SELECT 1 FROM {deleted} d JOIN {map} m ON m.xata_id = d.xata_id"
        " WHERE d.table_name = {name} AND m.new_id = t.id)").format(
        deleted=ddl.DELETED_IN_SOURCE, map=ddl.mapping_table(table.name),
        name=sql.Literal(table.name))
    result.deleted_in_source = target.execute(sql.SQL(
        "SELECT count(*) FROM {} t WHERE {}").format(
        ddl.target_table(plan, table), gone)).fetchone()[0]
    if result.deleted_in_source and table.deleted_rows == "delete":
        result.deleted_in_target = target.execute(sql.SQL("DELETE FROM {} t WHERE {}").format(
            ddl.target_table(plan, table), gone)).rowcount


def written_columns(table: Table) -> list[Column]:
    """Columns the table's own asset writes: all but deferred links (written later)."""
    return [c for c in table.columns if not (c.link and c.link.deferred)]


def write_rows(target, plan: Plan, table: Table, columns: list[Column],
               fresh: bool, offset: int | None = None) -> tuple[int, int]:
    """Insert new rows and update changed ones; unchanged rows are not touched. Stopped by
    a link to no record: then MissingLinks says which and how many."""
    target.execute(MISSING_LINK_FUNCTION)
    try:
        with target.transaction():  # a savepoint: the stage survives to be looked at
            return _write_rows(target, plan, table, columns, fresh, offset)
    except psycopg.Error as error:
        if error.sqlstate != MISSING_LINK_STATE:
            raise
    for index, column in enumerate(columns):
        if column.link and caught_by_write(column):
            count_missing_links(target, plan, table, column, index, LoadResult())
    raise LoadError(f"Table {table.name!r}: a link pointed to no record during the write, "
                    "but none does now. Nothing was written; run again.")


def _write_rows(target, plan: Plan, table: Table, columns: list[Column],
                fresh: bool, offset: int | None) -> tuple[int, int]:
    stage = stage_table(target)
    if fresh:
        make, *attributes = ddl.create_table_as_sql(
            plan, table, _row_select(plan, table, columns, stage, offset, every_column=True))
        with parallel_plan(target):
            inserted = target.execute(make).rowcount
        for statement in attributes:
            target.execute(statement)
        return inserted, 0
    names = [sql.Identifier(c.target) for c in written_columns(table)]
    insert = sql.SQL("INSERT INTO {} AS t ({}) {}").format(
        ddl.target_table(plan, table), sql.SQL(", ").join([sql.Identifier(ddl.ID)] + names),
        _row_select(plan, table, columns, stage, offset))
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


def target_shape(target, schema: str, name: str) -> dict[str, str] | None:
    rows = target.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
        (schema, name)).fetchall()
    return dict(rows) if rows else None


def expected_shape(target, table: Table, columns: list[Column]) -> dict[str, str]:
    staged = dict(target.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attnum > 0",
        (stage_table(target).as_string(target),)).fetchall())
    shape = {ddl.ID: "bigint"}
    for index, column in enumerate(columns):
        planned = column.link or cast_by_the_write(column)
        shape[column.target] = column.type if planned else staged[f"c{index}"]
    return shape


SHARED_OBJECTS_LOCK = lock_key("xata_id_map shared objects")


def prepare_target(target, plan: Plan, table: Table) -> None:
    """The objects every table shares: the xata_id_map and target schemas, the pgvector
    extension if the table needs it, the tool's bookkeeping schema (where loads also
    stage their rows) and tables, and the lookup functions. A short transaction of its
    own, one at a time: two assets starting together would otherwise both try to create the
    same schema, and the second would fail on PostgreSQL's unique catalog index."""
    with target.transaction():
        target.execute("SELECT pg_advisory_xact_lock(%s)", (SHARED_OBJECTS_LOCK,))
        for schema in (ddl.MAPPING_SCHEMA, plan.target_schema):
            target.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(schema)))
        if any(c.is_pgvector for c in table.columns):
            require_pgvector(target, table)
        ddl.create_bookkeeping(target)
        if not target.execute("SELECT to_regprocedure('xata_id_map.new_id(text, text)') IS NOT"
                              " NULL AND to_regprocedure('xata_id_map.xata_id(text, bigint)')"
                              " IS NOT NULL").fetchone()[0]:
            target.execute(ddl.LOOKUP_FUNCTIONS_SQL)


def require_pgvector(target, table: Table) -> None:
    try:
        with target.transaction():  # a savepoint: the error must reach the user, not abort
            target.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as error:
        names = [c.name for c in table.columns if c.is_pgvector]
        raise LoadError(
            f"Table {table.name!r}: the plan stores {names} as pgvector's `vector`, but the "
            f"target cannot have the extension ({str(error).strip()}). Install pgvector on "
            "the target server (or let an administrator CREATE EXTENSION vector), or keep "
            "those columns as real[] in the plan. Nothing was written.") from None


def ensure_mapping(target, table: Table, numbered: bool) -> bool:
    """Whether the mapping table is missing (True). If so and the stage is not `numbered`
    in the id order, create it, without keys yet, for allocate_ids to fill (numbered ids
    make it in one write: allocate_first_ids)."""
    if tables_exist(target, ddl.mapping_table(table.name)):
        return False
    if not numbered:
        target.execute(ddl.create_mapping_sql(table))
    return True


def target_table_missing(target, plan: Plan, table: Table, columns: list[Column]) -> bool:
    """Whether the target table is missing (True: the write makes it); if present, it must
    have the plan's shape."""
    existing = target_shape(target, plan.target_schema, table.target)
    if existing is None:
        return True
    expected = expected_shape(target, table, columns)
    if existing != expected:
        raise LoadError(
            f"Target table {plan.target_schema}.{table.target} already exists with another "
            f"shape: expected columns {expected}, found {existing}. Drop or rename that table "
            "in the target, or give the table another `target` name in the plan. Nothing "
            "was written.")
    return False


@dataclass
class Staged:
    read: int                          # source rows in the stage
    source_rows: int                   # rows in the source snapshot
    as_of: object                      # when the source transaction that read them began
    ids: sql.Identifier | None = None  # a table of every source id: the stage on a full
                                       # load; on a delta, only when rows were deleted since


def _count(conn, table: sql.Composable) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]


def id_order(table: Table) -> sql.Composed:
    """The order new ids follow: the plan's id_order columns, then the id's bytes."""
    order = [sql.SQL("src.{}").format(sql.Identifier(name)) for name in table.id_order]
    order.append(sql.SQL('src.{}::text COLLATE "C"').format(sql.Identifier(table.id_column)))
    return sql.SQL(", ").join(order)


# The stage numbers the rows as they arrive; its sequence hands this many numbers to the
# session at a time, instead of updating the sequence for every row.
NUMBERS_CACHED = 10_000


def stage_source_rows(source, target, plan: Plan, table: Table, columns: list[Column],
                      log=None, since=None, numbered: bool = False,
                      fingerprint: LoadSnapshotFingerprint | None = None) -> Staged:
    """Inside the target transaction: take the table's lock, stream the source rows into
    the stage (on a delta, those written since `since`), all in one source snapshot,
    which `fingerprint` shares. `numbered`: the source sends the rows in the id order
    and the stage numbers them as they arrive (stage column n, from 1), so that a first
    load's ids need no sort and no join here. (Not row_number() in the source: a window
    leaves its other columns, JSON turned into text among them, to the one process that
    also sends the rows; sorted with ORDER BY, the parallel workers compute them.)"""
    target.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(table.target),))
    as_of = source.execute("SELECT now()").fetchone()[0]
    if fingerprint:
        fingerprint.share(source)
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
        read = copy_between(source, target, select, staged_columns, binary, log)
        if since is None:
            return Staged(read, read, as_of, stage)
        staged = Staged(read, _count(source, sql.Identifier(plan.source_schema, table.name)),
                        as_of)
        if staged.source_rows != _expected_source_rows(target, table):
            staged.ids = _stage_source_ids(source, target, plan, table)
        return staged
    finally:
        source.commit()


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
        map=ddl.mapping_table(table.name), s=stage_table(target),
        deleted=ddl.DELETED_IN_SOURCE),
        (table.name,)).fetchone()[0]


SOURCE_ID_LIST = sql.Identifier("xata_migration_source_id_list")


def _stage_source_ids(source, target, plan: Plan, table: Table) -> sql.Identifier:
    """Every source id (only the id), to find the rows deleted since the last load."""
    create_temp_table(target, SOURCE_ID_LIST, [sql.SQL("xid text")])
    copy_between(source, target, sql.SQL("SELECT {}::text FROM {}").format(
        sql.Identifier(table.id_column), sql.Identifier(plan.source_schema, table.name)),
        SOURCE_ID_LIST, binary=True)
    return SOURCE_ID_LIST


class PhaseClock:
    """The seconds each phase of a load took, into `seconds` (name -> seconds)."""

    def __init__(self, seconds: dict[str, float]):
        self.seconds, self._last = seconds, time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now


def load_table(source: psycopg.Connection, target: psycopg.Connection, plan: Plan,
               table: Table, log=None, fingerprint: LoadSnapshotFingerprint | None = None,
               snapshot: SourceSnapshot | None = None) -> LoadResult:
    """Migrate one table in one target transaction. Re-running it changes nothing.
    With a `fingerprint`, the source's side of the checks is computed from the rows read,
    while the target writes them. With the run's `snapshot` (the source connections read
    in it), the watermark is the run's; without, the load notes its own."""
    result = LoadResult()
    columns = list(table.columns)
    clock = PhaseClock(result.seconds)
    check_source_matches_plan(source, plan, table)
    prepare_target(target, plan, table)
    mapping, target_table = ddl.mapping_table(table.name), ddl.target_table(plan, table)
    loaded_before, mapped_before = (tables_exist(target, mapping, target_table),
                                    tables_exist(target, mapping))
    target.commit()
    since = sync.delta_since(source, target, plan, table) if loaded_before else None
    mark = snapshot.watermark if snapshot else sync.watermark(source)
    numbered = not mapped_before and numbered_in_id_order(table)
    try:
        with load_transaction(target):
            staged = stage_source_rows(source, target, plan, table, columns, log, since,
                                       numbered, fingerprint)
            result.source_rows, result.rows_read, result.delta_since = (
                staged.source_rows, staged.read, since)
            result.source_as_of = snapshot.as_of if snapshot else staged.as_of
            if fingerprint:
                fingerprint.start()
            clock.done("transfer")
            new_mapping = ensure_mapping(target, table, numbered)
            if not new_mapping:
                check_ids(target, table)
            result.created_table = target_table_missing(target, plan, table, columns)
            skip_rows_with_missing_links(target, table, columns, result)
            # Ids straight from the stage's numbering: only if the mapping was still new
            # once the table's lock was held (another run may have created it meanwhile).
            offset = id_offset(target, plan, table) if numbered and new_mapping else None
            if new_mapping:
                result.new_ids = allocate_first_ids(target, plan, table, columns, offset)
            else:
                result.new_ids = allocate_ids(target, plan, table, columns)
            clock.done("allocate_ids")
            handle_missing_links(target, plan, table, columns, result)
            result.inserted, result.updated = write_rows(
                target, plan, table, columns, fresh=result.created_table, offset=offset)
            if result.created_table:
                forget_deleted_ids(target, table)
            else:
                handle_deleted_rows(target, plan, table, result, staged.ids)
            clock.done("write_rows")
            if result.created_table:
                for statement in ddl.table_constraints_sql(plan, table):
                    target.execute(statement)
            target.execute(ddl.position_identity_sql(plan, table))
            result.target_rows = (result.inserted if result.created_table
                                  else _count(target, target_table))
            sync.record_load(target, plan, table, mark, result.source_as_of)
            clock.done("constraints")
    except MissingLinks as missing:
        missing.explain_older_parent(target, result.source_as_of)
        raise
    return result


def load_deferred_link(source, target, plan: Plan, table: Table, column: Column,
                       log=None, snapshot: SourceSnapshot | None = None) -> LoadResult:
    """Write one deferred link once both tables are loaded, then add its FOREIGN KEY."""
    result = LoadResult()
    columns = [column]
    check_source_matches_plan(source, plan, table)
    prepare_target(target, plan, table)  # the stage's schema, whatever ran before
    with load_transaction(target):
        staged = stage_source_rows(source, target, plan, table, columns, log)
        result.source_rows = staged.source_rows
        result.source_as_of = snapshot.as_of if snapshot else staged.as_of
        handle_missing_links(target, plan, table, columns, result, deferred_too=True)
        result.updated = target.execute(sql.SQL(
            "UPDATE {t} t SET {c} = p.new_id FROM {s} s JOIN {map} m ON m.xata_id = s.xid"
            " LEFT JOIN {pmap} p ON p.xata_id = s.c0"
            " WHERE t.id = m.new_id AND t.{c} IS DISTINCT FROM p.new_id").format(
            t=ddl.target_table(plan, table), c=sql.Identifier(column.target),
            s=stage_table(target),
            map=ddl.mapping_table(table.name),
            pmap=ddl.mapping_table(column.link.table))).rowcount
        if not _constraint_exists(target, plan, table, column):
            for statement in ddl.link_constraints_sql(plan, table, column):
                target.execute(statement)
    return result


def _constraint_exists(target, plan: Plan, table: Table, column: Column) -> bool:
    return target.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = %s"
        " AND conrelid = to_regclass(%s))",
        (ddl.foreign_key_name(table, column),
         ddl.target_table(plan, table).as_string(target))).fetchone()[0]
