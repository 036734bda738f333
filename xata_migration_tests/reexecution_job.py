"""migrate_all as a reconstructable job (what Dagster's re-execution API and its
executors need), built like the code location is: from XATA_MIGRATION_PLAN and the URL
environment variables."""

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob

from xata_migration.defs import build_definitions, plan_from_environment


def migrate_all():
    return build_definitions(plan_from_environment()).resolve_job_def("migrate_all")


def reconstructable_migrate_all() -> ReconstructableJob:
    """The job for this test's environment: Dagster keeps the last job it reconstructed
    in this process (an earlier test's plan), so that is forgotten first."""
    return reconstructable(migrate_all)


def celery_migrate_all():
    from dagster_celery import celery_executor

    return build_definitions(plan_from_environment(),
                             executor=celery_executor).resolve_job_def("migrate_all")


def reconstructable_celery_migrate_all() -> ReconstructableJob:
    """migrate_all on dagster-celery's executor, as a team's definitions.py would give it."""
    return reconstructable(celery_migrate_all)


def configured_migrate_all():
    no_retries = dg.in_process_executor.configured({"retries": {"disabled": {}}},
                                                   name="in_process_no_retries")
    return build_definitions(plan_from_environment(),
                             executor=no_retries).resolve_job_def("migrate_all")


def reconstructable(function) -> ReconstructableJob:
    """One of this module's job functions, reconstructable (cache cleared as above)."""
    ReconstructableJob.get_definition.cache_clear()
    ReconstructableJob.get_repository_definition.cache_clear()
    return dg.reconstructable(function)
