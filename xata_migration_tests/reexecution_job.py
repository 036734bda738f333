"""migrate_all as a reconstructable job (what Dagster's re-execution API needs), built
like the code location is: from XATA_MIGRATION_PLAN and the URL environment variables."""

from xata_migration.pipeline import build_definitions, plan_from_environment


def migrate_all():
    return build_definitions(plan_from_environment()).resolve_job_def("migrate_all")
