"""The code location to deploy on Kubernetes: the project's assets and checks, each step
in a Kubernetes Job of its own (dagster-k8s's k8s_job_executor), every run reading the
source as of one snapshot held by the run's own pod.

Copy it into your deployment's image beside plan.yaml, and name it in your workspace
(`python_file: definitions.py`, or a module of yours). See README.md, "Running on several
machines"."""

import dagster as dg
from dagster_k8s import k8s_job_executor

from xata_migration.defs import build_definitions, plan_from_environment

# Each step's pod: the URLs from a Secret (never in the run config), and what it may use.
STEP_POD_CONFIG = {
    "env_secrets": ["xata-migration-urls"],       # XATA_SOURCE_URL, TARGET_DATABASE_URL
    "env_vars": ["XATA_MIGRATION_PLAN=/opt/app/plan.yaml"],
    "max_concurrent": 4,                          # step pods at once, per run
    "step_k8s_config": {
        "container_config": {"resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"memory": "1Gi"}}}},
}
STEP_PODS = k8s_job_executor.configured(STEP_POD_CONFIG, name="k8s_steps")


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(plan_from_environment(), executor=STEP_PODS)
