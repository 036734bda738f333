"""Move one table: stream it into the target, give new ids, rewrite links, write rows.

Everything for one table happens in one target transaction, so a failure or a crash
leaves the target exactly as before. The data never passes through Python whole: COPY
streams it from the source into a staging table of the target, and the rest is
set-based SQL there. The phases, each in its module of this package:

  stage.stage_source_rows      lock the table; source rows -> the stage (COPY, streamed;
                               on a first load sent in the id order, numbered as they come;
                               a big table's first load read in ranges at once: split.py)
  ids.check_ids                no NULL and no duplicate source id
  objects.target_table_missing  a new table? (the write makes it) else the existing one
                               must have the plan's shape
  links.skip_rows_with_missing_links   `on_missing: skip` rows leave before getting ids
  ids.allocate_ids             extend xata_id_map.<table> for ids not yet mapped
                               (append-only; a new one made from the stage's numbering)
  links.handle_missing_links   link values whose record does not exist: counted (null)
  write.write_rows             CREATE TABLE AS (new) or upsert (existing), links rewritten;
                               a link to no record stops it (fail)
  deletions.handle_deleted_rows  mapped ids gone from the source: recorded, counted and,
                               if planned, deleted
  then, on a new table, its generated columns and the tool's keys; the plan's constraints,
  indexes and triggers where missing or changed (schema.py); the identity and the table's
  sequences moved past the highest value.

The table's triggers never fire on the tool's writes: an existing table's enabled ones are
disabled for the load's transaction (schema.pause_triggers) and enabled again before it
commits, so no other session sees them off; a new table's are made after its rows.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from xata_migration.load import (ddl, deletions, ids, kept, links, objects, schema, split,
                                 stage, sync, write)
from xata_migration.load.result import LoadResult
from xata_migration.pg.objects import count_rows, mapping_table, tables_exist_each, target_table
from xata_migration.pg.stage import stage_name
from xata_migration.pg.translate import join_new_ids
from xata_migration.plan.introspect import check_source_matches_plan
from xata_migration.plan.model import Column, Plan, Table
from xata_migration.plan.validation import require_nothing_to_review
from xata_migration.snapshot import SourceSnapshot, watermark


class PhaseClock:
    """The seconds each phase of a load took, into `seconds` (name -> seconds); each
    phase's end is told to `on_phase(name)`, if given."""

    def __init__(self, seconds: dict[str, float], on_phase=None):
        self.seconds, self._last, self.on_phase = seconds, time.monotonic(), on_phase

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now
        if self.on_phase:
            self.on_phase(name)


def load_table(source: psycopg.Connection, target: psycopg.Connection, plan: Plan,
               table: Table, snapshot: SourceSnapshot | None = None, log=None,
               on_phase=None, readers: split.RangeReaders | None = None) -> LoadResult:
    """Migrate one table in one target transaction. Re-running it changes nothing.
    `snapshot`: the one `source` reads in (snapshot.source_readers), whose watermark the
    next delta reads from; without one, the load notes its own. `on_phase(name)` is
    called as each phase ends ("transfer": every row read from the source is staged;
    "allocate_ids", "write_rows", "constraints"), inside the load's transaction.
    `readers`: where a big table's first load opens the sessions that read it in ranges
    at once (split.py); without them, one session reads it."""
    result = LoadResult()
    columns = table.written_by_load
    clock = PhaseClock(result.seconds, on_phase)
    if table.kept:
        return kept.load_kept_table(source, target, plan, table, clock, snapshot, log)
    require_nothing_to_review(plan)
    check_source_matches_plan(source, plan, table, snapshot)
    objects.prepare_target(target, plan, table)
    schema.require_row_security_rights(target, plan, table)
    mapping, written = mapping_table(table.name), target_table(plan, table)
    mapped_before, written_before = tables_exist_each(target, mapping, written)
    loaded_before = mapped_before and written_before
    target.commit()
    since = sync.delta_since(source, target, plan, table) if loaded_before else None
    mark = snapshot.watermark if snapshot else watermark(source)
    split.drop_abandoned_stages(target)
    ranges = readers if split.should_split(source, plan, table, readers, since) else None
    numbered = not mapped_before and ids.numbered_in_id_order(table)
    try:
        with split.stage_dropped_on_failure(ranges, stage.stage_table(target), table.name), \
                stage.load_transaction(target):
            staged = stage.stage_source_rows(source, target, plan, table, columns, log, since,
                                             numbered, ranges)
            result.source_rows, result.rows_read, result.delta_since, result.ranges = (
                staged.source_rows, staged.read, since, staged.ranges)
            result.source_as_of = snapshot.as_of if snapshot else staged.as_of
            clock.done("transfer")
            numbered = staged.numbered  # a split in ranges of pages is not
            new_mapping = ids.ensure_mapping(target, table, numbered)
            if not new_mapping:
                ids.check_ids(target, table)
            result.created_table = objects.target_table_missing(target, plan, table, columns)
            # a table the write makes has no trigger yet
            paused = [] if result.created_table else schema.pause_triggers(target, plan, table)
            schema.create_sequences(target, plan, table)
            links.skip_rows_with_missing_links(target, table, columns, result)
            links.check_copied_links(target, plan, table, columns)
            # Ids straight from the stage's numbering: only if the mapping was still new
            # once the table's lock was held (another run may have created it meanwhile).
            new_ids = ids.NewIds.for_load(target, plan, table, numbered and new_mapping,
                                          staged.part_offsets)
            if new_mapping:
                result.new_ids = ids.allocate_first_ids(target, plan, table, columns, new_ids)
            else:
                result.new_ids = ids.allocate_ids(target, plan, table, columns)
            clock.done("allocate_ids")
            links.handle_missing_links(target, plan, table, columns, result)
            result.inserted, result.updated = write.write_rows(
                target, plan, table, columns, fresh=result.created_table, new_ids=new_ids)
            if result.created_table:
                deletions.forget_deleted_ids(target, table)
            else:
                deletions.handle_deleted_rows(target, plan, table, result, staged.ids)
            clock.done("write_rows")
            result.objects_made = schema.complete_table(source, target, plan, table,
                                                        result.created_table)
            result.target_rows = (result.inserted if result.created_table
                                  else count_rows(target, written))
            schema.resume_triggers(target, plan, table, paused)
            sync.record_load(target, plan, table, mark, result.source_as_of)
            clock.done("constraints")
    except links.MissingLinks as missing:
        missing.explain_older_parent(target, result.source_as_of)
        raise
    return result


def load_deferred_link(source, target, plan: Plan, table: Table, column: Column,
                       snapshot: SourceSnapshot | None = None, log=None) -> LoadResult:
    """Write one deferred link once both tables are loaded, then add its FOREIGN KEY."""
    result = LoadResult()
    columns = [column]
    check_source_matches_plan(source, plan, table, snapshot)
    objects.prepare_target(target, plan, table)  # the stage's schema, whatever ran before
    with stage.load_transaction(target):
        staged = stage.stage_source_rows(source, target, plan, table, columns, log)
        result.source_rows = staged.source_rows
        result.source_as_of = snapshot.as_of if snapshot else staged.as_of
        links.handle_missing_links(target, plan, table, columns, result, deferred_too=True)
        paused = schema.pause_triggers(target, plan, table)
        result.updated = target.execute(sql.SQL(
            "UPDATE {t} t SET {c} = p.new_id FROM {s} s JOIN {map} m ON m.xata_id = s.xid"
            " {parent} WHERE t.id = m.new_id AND t.{c} IS DISTINCT FROM p.new_id").format(
            t=target_table(plan, table), c=sql.Identifier(column.target),
            s=stage.stage_table(target), map=mapping_table(table.name),
            parent=join_new_ids(sql.Identifier("p"), column.link.table,
                                sql.SQL("s.{}").format(stage_name(0))))).rowcount
        schema.resume_triggers(target, plan, table, paused)
        if not objects.constraint_exists(target, plan, table, column):
            for statement in ddl.link_constraints_sql(plan, table, column):
                target.execute(statement)
    return result
