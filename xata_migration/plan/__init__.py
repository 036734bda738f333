"""The plan: what each source table becomes in the target, as a YAML file a person
reviews.

  model.py       Plan, Table, Column, Link; load_plan, save_plan, validate_plan
  introspect.py  the source's catalog -> a Plan (Xata's shape, links, types)
  graph.py       the order of tables and the cycles among their links
  names.py       PostgreSQL identifiers that fit in 63 bytes; advisory lock keys
  sql_text.py    a plan's SQL text (types, defaults) parsed as exactly what it claims

May import: errors. Knows nothing of Dagster, of the target or of loading.
"""

from xata_migration.plan.introspect import introspect, use_pgvector
from xata_migration.plan.model import (Column, Link, Plan, PlanError, Table, load_plan,
                                       save_plan, validate_plan)
from xata_migration.plan.names import (MAX_IDENTIFIER_BYTES, derived_name, fit_identifier,
                                       lock_key)

__all__ = ["MAX_IDENTIFIER_BYTES", "Column", "Link", "Plan", "PlanError", "Table",
           "derived_name", "fit_identifier", "introspect", "load_plan", "lock_key",
           "save_plan", "use_pgvector", "validate_plan"]
