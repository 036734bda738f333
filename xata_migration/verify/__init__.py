"""Proving a migrated table equals its source: the four checks and what they found.

  fingerprint.py  order-independent fingerprints of both sides, computed where the rows are
  checks.py       row_counts, id_mapping, links_intact, values_unchanged
  rows.py         the row-by-row comparison, when the fingerprints differ
  findings.py     what a failed check found, in xata_migration_checks.findings
  report.py       every check of every table, as a Markdown report

May import: errors, connections, plan, load (its stage and link translation). Never
defs, api or the CLI.
"""
