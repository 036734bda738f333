"""Plan -> Dagster assets and asset checks.

One asset per source table, keyed by the table's name; its upstream deps are the tables
it links to, so Dagster derives the load order. One asset per view, downstream of what
it reads. A link that closes a cycle is written by
a small asset of its own (`[table, column]`) once both tables exist. Every check is
blocking with ERROR severity: a failed check fails the step, downstream tables wait, and
"re-execute from failure" picks up from there.

Every source connection of a step reads the run's source snapshot, held by the
project's executor (executor.py); without one, the step reads in one of its own and warns.
"""


from contextlib import contextmanager

import dagster as dg

from xata_migration import api
from xata_migration.asset_names import asset_key_part, dagster_name
from xata_migration.defs.executor import problem_from_tags, snapshot_from_tags
from xata_migration.defs.resources import TargetDatabase, XataSource
from xata_migration.plan import Column, Plan, Table, View
from xata_migration.verify import CHECKS, FINDING_COLUMNS, check_names

POOL = "xata_target"  # caps how many steps write to the target at once


def _described(check_name: str) -> str:
    proves = CHECKS[check_name]
    return f"{proves[0].upper()}{proves[1:]}."


def table_key(table_name: str) -> dg.AssetKey:
    return dg.AssetKey([asset_key_part(table_name)])


def link_key(table: Table, column: Column) -> dg.AssetKey:
    return dg.AssetKey([asset_key_part(table.name), asset_key_part(column.name)])


def _metadata_value(value):
    if isinstance(value, (dict, list)):
        return dg.MetadataValue.json(value)
    return value


def metadata_table(header: tuple, rows: list) -> dg.MetadataValue:
    """A small table the UI shows inline (every cell as text; NULL spelled out)."""
    names = [name.replace(" ", "_") for name in header]
    return dg.MetadataValue.table(
        records=[dg.TableRecord({n: "NULL" if v is None else str(v) for n, v in zip(names, row)})
                 for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(n, "string") for n in names]))


def check_result(outcome: api.CheckOutcome, key: dg.AssetKey) -> dg.AssetCheckResult:
    metadata = {"comparison": metadata_table(("compared", "source", "target"),
                                             outcome.compared)}
    metadata.update({k: _metadata_value(v) for k, v in outcome.metadata.items()})
    if outcome.examples:
        metadata["examples"] = metadata_table(
            ("old id", "new id", "column", "source value", "target value", "problem"),
            [tuple(e[c] for c in FINDING_COLUMNS) for e in outcome.examples])
        metadata["all_findings_sql"] = dg.MetadataValue.text(
            f"Run on the {outcome.findings_on} to see every finding: {outcome.findings_sql};")
    return dg.AssetCheckResult(
        asset_key=key, check_name=outcome.name, passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR, description=outcome.summary, metadata=metadata)


# The tags the executor added to a run, which this process read once (runs, newest last)
_TAGS_OF_RUN: dict[str, dict] = {}
_RUNS_KEPT = 8


def _run_tags(context) -> dict:
    """The run's tags as stored (the executor adds its snapshot's after the run began, so
    not those of `context.run`), read once per run by each process."""
    if context.run_id not in _TAGS_OF_RUN:
        run = context.instance.get_run_by_id(context.run_id)
        _TAGS_OF_RUN[context.run_id] = dict(run.tags) if run else {}
        for old in list(_TAGS_OF_RUN)[:-_RUNS_KEPT]:
            del _TAGS_OF_RUN[old]
    return _TAGS_OF_RUN[context.run_id]


@contextmanager
def table_connections(context, xata_source: XataSource, target_database: TargetDatabase,
                      label: str):
    """A step's api.TableConnections, its source connections in the run's snapshot (the
    executor's, found in the run's tags); without one, in one of the step's own, and the
    step warns. Also yields the `source_snapshot` metadata saying which."""
    tags = _run_tags(context)
    with api.open_connections(xata_source.resolved_url(), target_database.resolved_url(), label,
                              snapshot_from_tags(tags), problem_from_tags(tags)) as connections:
        if connections.own_snapshot:
            context.log.warning(f"{label}: reads the source in a snapshot of its own, "
                                f"not one shared by the whole run: {connections.problem}")
            note = f"this step's own: {connections.problem}"
        else:
            note = "the run's"
        yield connections, {"source_snapshot": note}


def table_run_results(run: api.TableRun, key: dg.AssetKey):
    """The checks' results; then the error that stopped the load, if one did (its failed
    `links_intact` shows where people look, and the step fails)."""
    for outcome in run.outcomes:
        yield check_result(outcome, key)
    if run.error:
        raise run.error


def _column_schema(table: Table) -> dg.TableSchema:
    columns = [] if table.kept else [dg.TableColumn("id", "bigint",
                                                    description="new primary key")]
    for column in table.columns:
        description = (f"link -> {column.link.table}.{column.link.column or 'id'}"
                       if column.link else f"from {column.name}")
        columns.append(dg.TableColumn(column.target, column.type, description=description))
    return dg.TableSchema(columns=columns)


def _load_metadata(plan: Plan, table: Table, result: api.LoadResult, seconds: float) -> dict:
    metadata = {
        "dagster/row_count": result.target_rows,
        "load": (f"delta: rows written since {result.delta_since.isoformat()}"
                 if result.delta_since else "full" + (
                     f", read in {result.ranges} ranges at once" if result.ranges > 1 else "")),
        "new_ids": result.new_ids, "inserted": result.inserted, "updated": result.updated,
        "unchanged": result.unchanged, "created_table": result.created_table,
        "deleted_in_source": result.deleted_in_source,
        "deleted_in_target": result.deleted_in_target,
        "source_as_of": result.source_as_of.isoformat(),
        "duration_seconds": round(seconds, 3),
    }
    # what the row count does not already say: the source's rows where they differ, and
    # on a delta the rows it read
    if result.delta_since or result.source_rows != result.target_rows:
        metadata["source_rows"] = result.source_rows
    if result.delta_since:
        metadata["rows_read"] = result.rows_read
    # one number per phase, which the UI can plot across runs
    metadata.update({f"seconds_{phase}": dg.MetadataValue.float(float(value))
                     for phase, value in result.seconds.items()})
    if result.objects_made:
        metadata["objects_made"] = dg.MetadataValue.json(result.objects_made)
    if result.nulled_missing:
        metadata["links_set_null_missing"] = dg.MetadataValue.json(result.nulled_missing)
    if result.skipped_rows:
        metadata["rows_skipped_missing_links"] = result.skipped_rows
        metadata["rows_skipped_examples"] = dg.MetadataValue.json(result.skipped_examples)
    return metadata


def table_asset(plan: Plan, table: Table) -> dg.AssetsDefinition:
    key = table_key(table.name)
    check_specs = [dg.AssetCheckSpec(name, asset=key, blocking=True,
                                     description=_described(name))
                   for name in check_names(table)]
    spec = dg.AssetSpec(key, deps=[table_key(p) for p in plan.parents(table)],
                        description=f"Source table {plan.source_schema}.{table.name} "
                                    + ("with its ids kept" if table.kept else
                                       "with new bigint ids")
                                    + f", as {plan.target_schema}.{table.target}.",
                        kinds={"postgres"}, group_name="xata_tables",
                        # the definition's: the same in every run (stored once, not per step)
                        metadata={"dagster/table_name": f"{plan.target_schema}.{table.target}",
                                  "dagster/column_schema": _column_schema(table)})

    @dg.multi_asset(name=dagster_name(table.name), specs=[spec], check_specs=check_specs,
                    pool=POOL)
    def migrate_table(context: dg.AssetExecutionContext, xata_source: XataSource,
                      target_database: TargetDatabase):
        with table_connections(context, xata_source, target_database, table.name) as (
                connections, snapshot_note):
            run = api.migrate_table(plan, table, connections, log=context.log)
        if run.load:
            result = run.load
            passed = sum(o.passed for o in run.outcomes)
            ids = "ids kept" if table.kept else f"{result.new_ids:,} new ids"
            context.log.info(f"{table.name}: loaded in {run.load_seconds:.1f} s, "
                             f"{result.source_rows:,} rows, {ids}, "
                             f"{result.inserted:,} inserted, {result.updated:,} updated, checks "
                             f"{passed}/{len(run.outcomes)} passed, source as of "
                             f"{result.source_as_of.isoformat()}")
            yield dg.MaterializeResult(asset_key=key, metadata=_load_metadata(
                plan, table, result, run.load_seconds) | snapshot_note)
        yield from table_run_results(run, key)

    return migrate_table


def deferred_link_asset(plan: Plan, table: Table, column: Column) -> dg.AssetsDefinition:
    key = link_key(table, column)
    spec = dg.AssetSpec(key, deps=[table_key(table.name), table_key(column.link.table)],
                        description=f"Link {table.name}.{column.name} -> {column.link.table}, "
                                    "written after both tables (it closes a cycle).",
                        kinds={"postgres"}, group_name="xata_tables")
    check_spec = dg.AssetCheckSpec("links_intact", asset=key, blocking=True,
                                   description=_described("links_intact"))

    @dg.multi_asset(name=dagster_name(table.name, column.name), specs=[spec],
                    check_specs=[check_spec], pool=POOL)
    def write_deferred_link(context: dg.AssetExecutionContext, xata_source: XataSource,
                            target_database: TargetDatabase):
        with table_connections(context, xata_source, target_database,
                               f"{table.name}.{column.name}") as (connections, snapshot_note):
            run = api.write_deferred_link(plan, table, column, connections, log=context.log)
        if run.load:
            result = run.load
            metadata = {"links_updated": result.updated, "source_rows": result.source_rows,
                        "source_as_of": result.source_as_of.isoformat(),
                        "duration_seconds": round(run.load_seconds, 3)} | snapshot_note
            if result.nulled_missing:
                metadata["links_set_null_missing"] = dg.MetadataValue.json(result.nulled_missing)
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)
        yield from table_run_results(run, key)

    return write_deferred_link


def view_asset(plan: Plan, view: View) -> dg.AssetsDefinition:
    """A view or materialized view, downstream of the tables and views it reads."""
    key = table_key(view.name)
    what = "Materialized view" if view.kind == "materialized" else "View"
    spec = dg.AssetSpec(key, deps=[table_key(name) for name in view.reads],
                        description=f"{what} {plan.source_schema}.{view.name}, made on the "
                                    f"target after the tables it reads"
                                    + (", refreshed on every run." if view.kind ==
                                       "materialized" else "."),
                        kinds={"postgres"}, group_name="xata_views")
    check_spec = dg.AssetCheckSpec("view_rows", asset=key, blocking=True,
                                   description=_described("view_rows"))

    @dg.multi_asset(name=dagster_name(view.name), specs=[spec], check_specs=[check_spec],
                    pool=POOL)
    def make_view(context: dg.AssetExecutionContext, xata_source: XataSource,
                  target_database: TargetDatabase):
        with table_connections(context, xata_source, target_database, view.name) as (
                connections, snapshot_note):
            run = api.migrate_view(plan, view, connections)
        context.log.info(f"{view.name}: {run.done} in {run.seconds:.1f} s")
        yield dg.MaterializeResult(asset_key=key, metadata={
            "view": run.done, "duration_seconds": round(run.seconds, 3)} | snapshot_note)
        for outcome in run.outcomes:
            yield check_result(outcome, key)

    return make_view


def build_assets(plan: Plan) -> list[dg.AssetsDefinition]:
    assets = [table_asset(plan, table) for table in plan.tables]
    assets += [view_asset(plan, view) for view in plan.views if view.carried]
    assets += [deferred_link_asset(plan, table, column)
               for table in plan.tables for column in table.links if column.link.deferred]
    return assets
