"""Move a Xata-shaped PostgreSQL database to plain PostgreSQL with bigint ids.

The package, lowest layer first; a module imports only from layers below its own:

  errors.py, connections.py   the error base; connecting with passwords masked
  plan/       what each source table becomes (Plan, YAML); knows nothing of Dagster
  sources/    a dump, CSV exports or the demo made into a Xata-shaped source
  load/       writing one table: stage, new ids, link translation, write, deletions
  verify/     the four checks, their findings, the report
  api.py      the core operations, one call each: what the CLI, the assets and the
              tests call
  defs/       the Dagster assets, checks, job, resources and executor
  definitions.py  the Dagster code location; cli.py the `xata-migration` command;
  embedded.py the embedded PostgreSQL server of the demo and the tests
"""

from xata_migration.plan import Plan, load_plan, save_plan

__all__ = ["Plan", "load_plan", "save_plan"]
