"""The Dagster side: a plan becomes assets, checks, the migrate_all job, resources and
the executor that holds the run's source snapshot.

  pipeline.py   build_definitions(plan): the Definitions
  assets.py     one asset per table (and per deferred link), its checks' results
  resources.py  XataSource and TargetDatabase (connections; passwords masked)
  executor.py   the in-process / multiprocess executor that holds one source snapshot
  names.py      asset keys and op names for table names
  storage.py    dagster-postgres's run storage with its connections kept open

May import: everything below it (api first). Nothing imports it but the code location
(xata_migration/definitions.py), the CLI and the tests.
"""
