"""Proving a migrated table equals its source: the five checks and what they found.

  checks.py       row_counts, id_mapping (ids_unchanged), links_intact, values_unchanged,
                  schema_intact,
                  and what each proves (CHECKS)
  schema.py       schema_intact: the plan's objects on the target as planned
  fingerprint.py  order-independent fingerprints of both sides, computed where the rows are
  fingerprint_ranges.py  the same for a big table, by ranges of its pages at once
  rows.py         the row-by-row comparison, when the fingerprints differ
  kept.py         the same for a table whose ids are kept: ids_unchanged for id_mapping
  views.py        view_rows: a view returns the source's rows, ids read back as old ids
  findings.py     what a failed check found, in xata_migration_checks.findings
  report.py       the checks' outcomes as a Markdown and HTML report

May import: errors, masking, connections, plan, pg. Never load (the two stand side by
side on pg/; api hands results between them), snapshot, api, defs or the CLI.
"""

from xata_migration.verify.checks import (CHECKS, check_names, link_check,
                                          missing_links_outcome, proves, table_checks)
from xata_migration.verify.findings import FINDING_COLUMNS, CheckOutcome
from xata_migration.verify.fingerprint import SourceFingerprint, source_side_of, target_side_of
from xata_migration.verify.fingerprint_ranges import (SourceRanges, TargetRanges,
                                                      target_side_in_ranges)
from xata_migration.verify.report import TableReport, write_report
from xata_migration.verify.views import view_rows

__all__ = ["CHECKS", "FINDING_COLUMNS", "CheckOutcome", "SourceFingerprint", "SourceRanges",
           "TableReport", "TargetRanges", "check_names", "link_check", "missing_links_outcome",
           "proves", "source_side_of", "table_checks", "target_side_in_ranges",
           "target_side_of", "view_rows", "write_report"]
