"""The Dagster code location (`dagster job execute -m xata_migration.definitions`).

Built when Dagster loads it, from the plan file named by XATA_MIGRATION_PLAN; nothing
touches a database then (the multiprocess executor loads it again for every step).
"""

import dagster as dg

from xata_migration.defs import build_definitions, definitions_of_plan_file


@dg.definitions
def defs() -> dg.Definitions:
    return definitions_of_plan_file(build_definitions)
