"""Benchmark (e): Dagster alone. The plan's asset graph as the project builds it (the
same asset keys, deps, blocking checks, pool and in-process executor), but every step
only reports success: it opens no connection and touches no database. Timing
`dagster job execute` on it gives what Dagster costs for that graph, under (d)."""

import dagster as dg

from xata_migration.defs import definitions_of_plan_file, link_key, table_key
from xata_migration.asset_names import dagster_name
from xata_migration.plan import Plan
from xata_migration.verify import check_names


def _asset(name: str, key: dg.AssetKey, deps: list[dg.AssetKey], checks: list[str]):
    @dg.multi_asset(name=name, specs=[dg.AssetSpec(key, deps=deps, kinds={"postgres"})],
                    check_specs=[dg.AssetCheckSpec(c, asset=key, blocking=True) for c in checks],
                    pool="xata_target")
    def step(context: dg.AssetExecutionContext):
        yield dg.MaterializeResult(asset_key=key, metadata={"dagster/row_count": 0})
        for check in checks:
            yield dg.AssetCheckResult(asset_key=key, check_name=check, passed=True)
    return step


def noop_assets(plan: Plan) -> list:
    assets = [_asset(dagster_name(t.name), table_key(t.name),
                     [table_key(p) for p in plan.parents(t)], check_names(t))
              for t in plan.tables]
    assets += [_asset(dagster_name(t.name, c.name), link_key(t, c),
                      [table_key(t.name), table_key(c.link.table)], ["links_intact"])
               for t in plan.tables for c in t.links if c.link.deferred]
    return assets


def noop_definitions(plan: Plan) -> dg.Definitions:
    migrate_all = dg.define_asset_job("migrate_all", selection=dg.AssetSelection.all())
    return dg.Definitions(assets=noop_assets(plan), jobs=[migrate_all],
                          executor=dg.in_process_executor)


@dg.definitions
def defs() -> dg.Definitions:
    # built once per process and out of the garbage collector's sight, as the project's
    # code location is: (e) is Dagster in the same process
    return definitions_of_plan_file(noop_definitions)
