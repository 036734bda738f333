"""The Dagster side: a plan becomes assets, checks, the migrate_all job, resources and
the executor that holds the run's source snapshot.

  pipeline.py   build_definitions(plan): the Definitions; a code location's, built once
  assets.py     one asset per table (and per deferred link, per view), its checks' results
  resources.py  XataSource and TargetDatabase (where the databases are)
  executor.py   with_run_snapshot: any Dagster executor (in-process by default) holding
                one source snapshot, and the run tags that hand it to every step
  storage.py    dagster-postgres's run storage with its connections kept open

May import: everything below it; the work of each step is one api call. Nothing imports
it but the code location (xata_migration/definitions.py) and the tests.
"""

from xata_migration.defs.assets import link_key, table_key
from xata_migration.defs.executor import (AS_OF_TAG, PROBLEM_TAG, SNAPSHOT_TAG, run_tags,
                                         with_run_snapshot)
from xata_migration.defs.pipeline import (build_definitions, definitions_of_plan_file,
                                         plan_from_environment)
from xata_migration.defs.resources import TargetDatabase, XataSource

__all__ = ["AS_OF_TAG", "PROBLEM_TAG", "SNAPSHOT_TAG", "TargetDatabase", "XataSource",
           "build_definitions", "definitions_of_plan_file", "link_key", "plan_from_environment",
           "run_tags", "table_key", "with_run_snapshot"]
