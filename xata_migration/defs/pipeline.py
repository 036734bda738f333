"""Plan -> Dagster Definitions: assets, checks, the `migrate_all` job and resources.

Built from the plan file named by XATA_MIGRATION_PLAN; nothing here touches a database at
import time (the multiprocess executor re-imports this module for every step).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from xata_migration.asset_names import check_step_names
from xata_migration.defs.assets import build_assets
from xata_migration.defs.executor import IN_PROCESS_BY_DEFAULT, with_run_snapshot
from xata_migration.defs.resources import resources_from_environment
from xata_migration.errors import UsageError
from xata_migration.plan import Plan, load_plan, validate_plan

PLAN_VARIABLE = "XATA_MIGRATION_PLAN"


def build_definitions(plan: Plan, resources: dict | None = None,
                      executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """The Definitions of `plan`. `executor`: the Dagster executor the runs use (default:
    in-process, or multiprocess by run config); whichever it is, it holds one source
    snapshot for each run (executor.with_run_snapshot)."""
    validate_plan(plan)
    check_step_names(plan)
    migrate_all = dg.define_asset_job(
        "migrate_all", selection=dg.AssetSelection.all(),
        description="Migrate every table of the plan, with every check.")
    resources = resources or resources_from_environment()
    return dg.Definitions(assets=build_assets(plan), jobs=[migrate_all], resources=resources,
                          executor=with_run_snapshot(executor or IN_PROCESS_BY_DEFAULT,
                                                     resources["xata_source"],
                                                     resources["target_database"]))


def plan_from_environment() -> Plan:
    path = os.environ.get(PLAN_VARIABLE)
    if not path:
        raise UsageError(f"{PLAN_VARIABLE} is not set. Write a plan with `xata-migration plan "
                         f"--source-url URL --output plan.yaml`, then `export "
                         f"{PLAN_VARIABLE}=$PWD/plan.yaml` (`xata-migration migrate` takes "
                         "it as --plan PATH).")
    return load_plan(path)


# The definitions each code location built, by the plan file's name and content
_BUILT: dict[tuple, dg.Definitions] = {}


def definitions_of_plan_file(build: Callable[[Plan], dg.Definitions]) -> dg.Definitions:
    """`build(plan)` of the plan file XATA_MIGRATION_PLAN names, for a code location.
    Dagster loads a code location several times in one process (five in one `dagster job
    execute`): built once for each content of the file."""
    path = os.environ.get(PLAN_VARIABLE, "")
    if not path or not Path(path).is_file():
        return build(plan_from_environment())  # which says what is wrong
    key = (build, path, Path(path).read_bytes())
    if key not in _BUILT:
        if _BUILT:  # the plan file changed (a long-lived code server): the old ones may go
            _BUILT.clear()
            gc.unfreeze()
        _BUILT[key] = build(plan_from_environment())
        # What is loaded by now (Dagster, its storage, these definitions: some 200,000
        # objects) lives as long as the process. Out of the garbage collector's sight,
        # its full collections, and the one when the process exits, do not walk it again.
        gc.freeze()
    return _BUILT[key]
