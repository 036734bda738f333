"""Move a Xata-shaped PostgreSQL database to plain PostgreSQL with bigint ids.

The package, lowest layer first; a module imports only from layers below its own
(xata_migration_tests/test_layout.py holds the rules):

  errors.py, masking.py, connections.py, embedded.py   the error base; passwords out of
              every text; connecting, every wait bounded; the embedded PostgreSQL server
  plan/       what each source table and view becomes (Plan, YAML); knows nothing of
              Dagster
  sources/    a dump, CSV exports or the demo made into a Xata-shaped source
  snapshot/   the source side: a held snapshot, connections reading in it, the watermark
  pg/         PostgreSQL building blocks that load/ and verify/ share
  load/       writing one table (new ids or kept ids), a view: stage, links, write,
              deletions, delta state
  verify/     the checks, their findings, the report; beside load/, never under it
  asset_names.py  Dagster's names for tables;  jobs.py  migrate_all run from outside
  api.py      the operations, one call each: what the CLI, the assets and the tests call
  defs/       the Dagster assets, checks, job, resources and executor
  definitions.py  the Dagster code location; cli.py the `xata-migration` command
"""

from xata_migration.plan import Plan, load_plan, save_plan

__all__ = ["Plan", "load_plan", "save_plan"]
