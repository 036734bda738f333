"""The plan: what each source table becomes in the target, as a YAML file a person
reviews.

  model.py       Plan, Table, Column, Link
  files.py       the plan as YAML: save_plan, load_plan
  validation.py  validate_plan, require_nothing_to_review: every problem named
  introspect.py  the source's catalog -> a Plan (Xata's shape, links, types)
  graph.py       the order of tables and the cycles among their links
  names.py       PostgreSQL identifiers that fit in 63 bytes; advisory lock keys
  sql_text.py    a plan's SQL text (types, defaults) parsed as exactly what it claims
  objects.py     the objects around the rows (types, sequences, constraints, indexes) and
                 their fate: carry, drop or review
  definitions.py their definitions: parsed, rewritten for the key change, rendered
  catalog.py     those objects read from a server's catalog (the source, or the target)
  introspect_objects.py  the source's objects -> the plan's, each with its fate
  views.py       the source's views, their queries rewritten for the new ids

May import: errors. Knows nothing of Dagster, of the target or of loading.
"""

from xata_migration.plan.introspect import introspect, use_pgvector
from xata_migration.plan.introspect_objects import review_policies_without_roles
from xata_migration.plan.files import load_plan, save_plan
from xata_migration.plan.model import SPLIT_ROWS, Column, Link, Plan, PlanError, Table, View
from xata_migration.plan.validation import require_nothing_to_review, validate_plan
from xata_migration.plan.objects import SchemaObject
from xata_migration.plan.names import (MAX_IDENTIFIER_BYTES, derived_name, fit_identifier,
                                       lock_key)

__all__ = ["MAX_IDENTIFIER_BYTES", "SPLIT_ROWS", "Column", "Link", "Plan", "PlanError",
           "SchemaObject", "Table", "View", "derived_name", "fit_identifier", "introspect",
           "load_plan", "lock_key", "require_nothing_to_review",
           "review_policies_without_roles", "save_plan", "use_pgvector", "validate_plan"]
