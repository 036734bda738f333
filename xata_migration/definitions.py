"""The Dagster code location (`dagster job execute -m xata_migration.definitions`).

Built when Dagster loads it, from the plan file named by XATA_MIGRATION_PLAN; nothing
touches a database then (the multiprocess executor loads it again for every step).
"""

import dagster as dg

from xata_migration.defs import build_definitions, plan_from_environment


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(plan_from_environment())
