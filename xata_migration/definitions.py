"""The Dagster code location (`dagster job execute -m xata_migration.definitions`).

Built from the plan file named by XATA_MIGRATION_PLAN; nothing touches a database at import
time (the multiprocess executor re-imports this module for every step).
"""

from xata_migration.pipeline import build_definitions, plan_from_environment

defs = build_definitions(plan_from_environment())
