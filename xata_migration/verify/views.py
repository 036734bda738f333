"""view_rows: a view (or materialized view) on the target returns the same rows as in
the source, its id columns read back as old ids through their tables' mappings.

Each side hashes its rows (md5 of the row's text); the source's hashes are streamed into
the target, and the two are compared as multisets (a view's rows have no key): the
counts per hash must be equal.
"""

from __future__ import annotations

from psycopg import sql

from xata_migration.pg.objects import mapping_table
from xata_migration.pg.relay import copy_between
from xata_migration.pg.stage import create_temp_table
from xata_migration.plan.model import Plan, View
from xata_migration.verify.findings import CheckOutcome

SOURCE_HASHES = sql.Identifier("xata_migration_view_source")


def _row_hash(view: View, translated: bool) -> sql.Composed:
    fields = []
    for column in view.columns:
        value = sql.SQL("v.{}").format(sql.Identifier(column))
        if translated and column in view.id_columns:
            value = sql.SQL("(SELECT m.xata_id FROM {} m WHERE m.new_id = {})").format(
                mapping_table(view.id_columns[column]), value)
        fields.append(value)
    return sql.SQL("md5(ROW({})::text)").format(sql.SQL(", ").join(fields))


def view_rows(source, target, plan: Plan, view: View) -> CheckOutcome:
    try:
        with target.transaction():
            create_temp_table(target, SOURCE_HASHES, [sql.SQL("h text")])
            copy_between(source, target, sql.SQL("SELECT {} FROM {} v").format(
                _row_hash(view, False), sql.Identifier(plan.source_schema, view.name)),
                SOURCE_HASHES, binary=False)
            source_rows, target_rows, only_source, only_target = target.execute(sql.SQL(
                "SELECT coalesce(sum(s.n), 0), coalesce(sum(t.n), 0),"
                " coalesce(sum(greatest(coalesce(s.n, 0) - coalesce(t.n, 0), 0)), 0),"
                " coalesce(sum(greatest(coalesce(t.n, 0) - coalesce(s.n, 0), 0)), 0)"
                " FROM (SELECT h, count(*) AS n FROM {s} GROUP BY h) s FULL JOIN"
                " (SELECT {hash} AS h, count(*) AS n FROM {v} v GROUP BY 1) t ON t.h = s.h"
            ).format(s=SOURCE_HASHES, hash=_row_hash(view, True),
                     v=sql.Identifier(plan.target_schema, view.name))).fetchone()
    finally:
        source.commit()
    passed = not only_source and not only_target
    summary = (f"{int(source_rows)} rows, the same on both sides" if passed else
               f"{int(only_source)} source rows missing, {int(only_target)} target rows "
               "not in the source")
    return CheckOutcome("view_rows", passed, summary, {
        "source_rows": int(source_rows), "target_rows": int(target_rows),
        "rows_only_in_source": int(only_source), "rows_only_in_target": int(only_target),
        "id_columns_translated": sorted(view.id_columns)},
        compared=[("rows", int(source_rows), int(target_rows)),
                  ("rows on one side only", int(only_source), int(only_target))])
