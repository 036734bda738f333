"""Move one table whose ids are kept (`ids: keep`): an ORM's integer or uuid ids, a
natural key, a join table. Its rows are copied as they are, its rewritten links (to
tables whose ids were remapped) written as the parents' new ids, in one target
transaction, as table.py does for remapped tables; no new ids and no mapping.

On a rerun, rows are matched on the plan's `key`: new ones inserted, changed ones
updated, rows gone from the source kept or deleted as `deleted_rows` says. A table
without a key (a join table whose pair is rewritten) has all its rows replaced.
"""

from __future__ import annotations

from xata_migration.load import deletions, ids, links, objects, schema, stage, sync, write
from xata_migration.load.result import LoadResult
from xata_migration.pg.objects import count_rows, target_table
from xata_migration.plan.introspect import check_source_matches_plan
from xata_migration.plan.model import Plan, Table
from xata_migration.plan.validation import require_nothing_to_review
from xata_migration.snapshot import SourceSnapshot, watermark


def load_kept_table(source, target, plan: Plan, table: Table, clock,
                    snapshot: SourceSnapshot | None = None, log=None) -> LoadResult:
    """Migrate one kept table in one target transaction. Re-running it changes nothing."""
    result = LoadResult(seconds=clock.seconds)
    columns = table.written_by_load
    require_nothing_to_review(plan)
    check_source_matches_plan(source, plan, table, snapshot)
    objects.prepare_target(target, plan, table)
    schema.require_row_security_rights(target, plan, table)
    target.commit()
    mark = snapshot.watermark if snapshot else watermark(source)
    with stage.load_transaction(target):
        staged = stage.stage_source_rows(source, target, plan, table, columns, log)
        result.source_rows = result.rows_read = staged.source_rows
        result.source_as_of = snapshot.as_of if snapshot else staged.as_of
        clock.done("transfer")
        if table.key:
            ids.check_ids(target, table)
        result.created_table = objects.target_table_missing(target, plan, table, columns)
        paused = schema.pause_triggers(target, plan, table)
        schema.create_sequences(target, plan, table)
        links.handle_missing_links(target, plan, table, columns, result)
        links.check_copied_links(target, plan, table, columns)
        result.inserted, result.updated = write.write_rows(
            target, plan, table, columns, fresh=result.created_table)
        if table.key and not result.created_table:
            deletions.handle_deleted_kept_rows(target, plan, table, result)
        elif not table.key:
            deletions.forget_deleted_ids(target, table)
        clock.done("write_rows")
        result.objects_made = schema.complete_table(source, target, plan, table,
                                                    result.created_table)
        result.target_rows = count_rows(target, target_table(plan, table))
        schema.resume_triggers(target, plan, table, paused)
        sync.record_load(target, plan, table, mark, result.source_as_of)
        clock.done("constraints")
    return result
