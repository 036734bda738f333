"""The Dagster code location (`dagster job execute -m xata_migration.definitions`).

Built when Dagster loads it, from the plan file named by XATA_MIGRATION_PLAN; nothing
touches a database then (the multiprocess executor loads it again for every step).
"""

import gc

import dagster as dg

from xata_migration.defs import build_definitions, plan_from_environment


@dg.definitions
def defs() -> dg.Definitions:
    definitions = build_definitions(plan_from_environment())
    # What is loaded by now (Dagster, its storage, these definitions: some 200,000
    # objects) lives as long as the process. Out of the garbage collector's sight, its
    # full collections, and the one when the process exits, do not walk it again.
    gc.freeze()
    return definitions
