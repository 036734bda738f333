"""Verification of one migrated table against its source.

  row_counts         source rows = mapping rows = target rows (rows left out by a skip
                     link, or deleted at the source since, are counted and accounted for)
  id_mapping         the mapping is 1:1: every source id has exactly one new id, every
                     new id is one target row, every target row has a mapping
  links_intact       every link equals the new id of the record it pointed to in the
                     source, NULL stays NULL, and no target link points to a missing row
  values_unchanged   every other column of every row equals the source's value
  schema_intact      every object the plan carries is on the target as planned (schema.py)

First each side's fingerprint (fingerprint.py): when they match, every check passes on
that, with no row crossing the network. Otherwise the rows are compared one by one: each
source row's id, its link values and an md5 of its other values are streamed into the
target, where counts and the mapping are compared exactly by anti-joins, links through
both mappings (pg/translate.py), and each row's hash with the target row's. When hashes
differ, the source's values are streamed across to name the rows and columns. The row-by-row
streaming is in rows.py; what a failed check found goes to findings.py.
"""

from __future__ import annotations

import time

from psycopg import sql

from xata_migration.pg.objects import mapping_table, target_table
from xata_migration.pg.relay import copy_between
from xata_migration.pg.stage import create_stage, source_select, stage_name
from xata_migration.pg.translate import (elements_without_row, join_new_ids, link_elements,
                                         mapped_old_ids, old_ids_of_array)
from xata_migration.plan.model import Column, Plan, Table
from xata_migration.verify import fingerprint
from xata_migration.verify.fingerprint_ranges import TargetRanges, target_side_in_ranges
from xata_migration.verify.findings import (CheckOutcome, clear_findings, ensure_bookkeeping,
                                            record_findings, with_findings)
from xata_migration.verify.kept import kept_identical_outcomes, kept_outcomes
from xata_migration.verify.schema import schema_intact
from xata_migration.verify.rows import (ABSENT, CHECK_STAGE, SOURCE_IDS, Absent,
                                        record_differing_rows, row_hashes, stream_source)

# What each check proves, as the UI, the report and the README's table of checks say it.
CHECKS = {
    "row_counts": "source rows = mapping rows = target rows (a table whose ids are kept: "
                  "source rows = target rows)",
    "ids_unchanged": "a table whose ids are kept: every source id (its key) is exactly one "
                     "target row's, and every target row's is a source id",
    "id_mapping": "every source id has exactly one new id, every new id is exactly one "
                  "target row, every target row has a mapping",
    "links_intact": "every link equals the new id of the record it pointed to in the source "
                    "(compared through both mappings), NULL stays NULL, and no link points "
                    "to a missing row",
    "values_unchanged": "every other column of every row equals the source's value, text "
                        "for text, compared in the source's own type (so NaN, -0, "
                        "microseconds, JSON and array NULLs count)",
    "view_rows": "the view returns the same rows as in the source, its id columns read back "
                 "through the mappings as the old ids",
    "schema_intact": "every type, function, sequence, constraint, index, trigger, policy, "
                     "row-level security setting, generated column, comment and link action "
                     "the plan carries exists on the target with the planned definition",
}


def row_counts(target, plan: Plan, table: Table, absent: Absent) -> CheckOutcome:
    source_rows, target_rows, mapped = target.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {}), (SELECT count(*) FROM {}), (SELECT count(*) FROM {})"
    ).format(SOURCE_IDS, target_table(plan, table), mapping_table(table.name))
    ).fetchone()
    removed = absent.deleted if table.deleted_rows == "delete" else 0
    passed = (mapped == source_rows - absent.skipped + absent.deleted
              and target_rows == mapped - removed and not absent.unexplained)
    metadata = {"source_rows": source_rows, "target_rows": target_rows, "mapping_rows": mapped}
    summary = f"source {source_rows}, target {target_rows}, mapping {mapped}"
    if absent.skipped:
        metadata["skipped_rows"] = absent.skipped
        summary += f", {absent.skipped} left out by on_missing: skip"
    if absent.unexplained:  # e.g. rows added to the source since the load: run it again
        metadata["source_rows_without_mapping"] = absent.unexplained
        summary += f", {absent.unexplained} source rows not migrated"
    if absent.deleted:
        metadata.update(deleted_in_source=absent.deleted,
                        deleted_rows_policy=table.deleted_rows)
        summary += f", {absent.deleted} deleted in the source ({table.deleted_rows} in target)"
    outcome = CheckOutcome("row_counts", passed, summary, metadata, compared=[
        ("rows", source_rows, target_rows), ("mapping rows (old id -> new id)", "", mapped)])
    if absent.skipped:
        outcome.compared.append(("left out by on_missing: skip", absent.skipped, ""))
    if absent.deleted:
        outcome.compared.append(("deleted in the source since", "", absent.deleted))
    if not passed:
        record_findings(target, table.name, "row_counts", sql.SQL(
            "SELECT a.xid, m.new_id, NULL, CASE a.reason WHEN 'deleted' THEN NULL ELSE"
            " 'present' END, CASE WHEN t.id IS NULL THEN NULL ELSE 'present' END,"
            " CASE a.reason WHEN 'deleted' THEN 'no longer in the source'"
            " WHEN 'skipped' THEN 'left out: a skip link points nowhere'"
            " ELSE 'in the source, not migrated' END"
            " FROM {absent} a LEFT JOIN {map} m ON m.xata_id = a.xid LEFT JOIN {t} t"
            " ON t.id = m.new_id").format(absent=ABSENT, map=mapping_table(table.name),
                                          t=target_table(plan, table)))
        record_findings(target, table.name, "row_counts", _mapping_without_row(plan, table))
    return outcome


def _mapping_without_row(plan: Plan, table: Table) -> sql.Composed:
    return sql.SQL(
        "SELECT m.xata_id, m.new_id, NULL, NULL, NULL, 'mapped, but no target row'"
        " FROM {map} m WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE t.id = m.new_id)"
        " AND NOT EXISTS (SELECT 1 FROM {absent} a WHERE a.xid = m.xata_id"
        " AND a.reason = 'deleted')").format(map=mapping_table(table.name),
                                             t=target_table(plan, table), absent=ABSENT)


def id_mapping(target, plan: Plan, table: Table, absent: Absent) -> CheckOutcome:
    """Exact, by anti-joins over the source's ids (streamed into the target)."""
    without_row, deleted_still_there, unmapped, repeated_new, repeated_old = target.execute(
        sql.SQL(
            "SELECT (SELECT count(*) FROM {map} m WHERE NOT EXISTS"
            "   (SELECT 1 FROM {t} t WHERE t.id = m.new_id) AND NOT EXISTS"
            "   (SELECT 1 FROM {absent} a WHERE a.xid = m.xata_id AND a.reason = 'deleted')),"
            " (SELECT count(*) FROM {map} m JOIN {absent} a ON a.xid = m.xata_id"
            "   AND a.reason = 'deleted' WHERE EXISTS (SELECT 1 FROM {t} t WHERE t.id = m.new_id)),"
            " (SELECT count(*) FROM {t} t WHERE NOT EXISTS"
            "   (SELECT 1 FROM {map} m WHERE m.new_id = t.id)),"
            " (SELECT count(*) - count(DISTINCT new_id) FROM {map}),"
            " (SELECT count(*) - count(DISTINCT xata_id) FROM {map})").format(
            map=mapping_table(table.name), t=target_table(plan, table),
            absent=ABSENT)).fetchone()
    should_be_gone = deleted_still_there if table.deleted_rows == "delete" else 0
    metadata = {"source_ids_without_mapping": absent.unexplained,
                "mapped_without_target_row": without_row,
                "target_rows_without_mapping": unmapped,
                "deleted_in_source_still_in_target": deleted_still_there,
                "new_ids_used_twice": repeated_new, "old_ids_used_twice": repeated_old}
    passed = not (absent.unexplained or without_row or unmapped or should_be_gone
                  or repeated_new or repeated_old)
    outcome = CheckOutcome(
        "id_mapping", passed, "1:1" if passed else "the mapping is not 1:1 with source and target",
        metadata, compared=[("ids without a new id", absent.unexplained, ""),
                            ("new ids without a target row", "", without_row),
                            ("target rows without an old id", "", unmapped),
                            ("new ids given to two old ids", "", repeated_new),
                            ("old ids given two new ids", "", repeated_old)])
    if not passed:
        written, mapping = target_table(plan, table), mapping_table(table.name)
        record_findings(target, table.name, "id_mapping", sql.SQL(
            "SELECT a.xid, NULL::bigint, NULL, 'present', NULL, 'source id without a new id'"
            " FROM {absent} a WHERE a.reason = 'unexplained'").format(absent=ABSENT))
        record_findings(target, table.name, "id_mapping", _mapping_without_row(plan, table))
        record_findings(target, table.name, "id_mapping", sql.SQL(
            "SELECT NULL, t.id, NULL, NULL, 'present', 'target row without an old id'"
            " FROM {t} t WHERE NOT EXISTS (SELECT 1 FROM {map} m WHERE m.new_id = t.id)"
            " UNION ALL SELECT m.xata_id, m.new_id, NULL, NULL, NULL,"
            " 'new id given to several old ids' FROM {map} m WHERE m.new_id IN"
            " (SELECT new_id FROM {map} GROUP BY new_id HAVING count(*) > 1)"
            " UNION ALL SELECT m.xata_id, m.new_id, NULL, NULL, NULL,"
            " 'old id given several new ids' FROM {map} m WHERE m.xata_id IN"
            " (SELECT xata_id FROM {map} GROUP BY xata_id HAVING count(*) > 1)").format(
            t=written, map=mapping))
    return outcome


def values_unchanged(source, target, plan: Plan, table: Table,
                     absent: Absent) -> CheckOutcome:
    """Each row's hash (streamed with the ids) against the target row's, joined by id."""
    source_rows, target_rows, differing = target.execute(sql.SQL(
        "SELECT count(xid), count(xata_id), count(*) FILTER (WHERE source_h IS DISTINCT FROM"
        " target_h) FROM ({}) r").format(row_hashes(plan, table))).fetchone()
    columns = len(table.value_columns)
    metadata = {"columns_compared": columns, "source_rows": source_rows,
                "target_rows": target_rows, "rows_differing": differing}
    compared = [("columns compared", columns, columns),
                ("rows compared", source_rows, target_rows), ("rows that differ", "", differing)]
    if differing:  # name the rows and columns: stream the source's values across
        record_differing_rows(source, target, plan, table)
    return CheckOutcome("values_unchanged", not differing,
                        f"{differing} rows differ" if differing else
                        f"{source_rows} rows identical", metadata, compared=compared)


def _link_expressions(column: Column, index: int) -> dict:
    """SQL (over stage s and target t) for one link: is it wrong, how many ids are missing.

    An array link is compared the other way round from how it was written: each target
    element is mapped back to its old id and the array compared with the source's.
    """
    parent = column.link.table
    staged, written = sql.SQL("s.{}").format(stage_name(index)), sql.SQL("t.{}").format(
        sql.Identifier(column.target))
    if not column.is_array_link:
        return {"join": join_new_ids(sql.Identifier("p"), parent, staged),
                "wrong": sql.SQL("{} IS DISTINCT FROM p.new_id").format(written),
                "missing": sql.SQL("({} IS NOT NULL AND p.xata_id IS NULL)::int").format(staged)}
    return {"join": sql.SQL(""),
            "wrong": sql.SQL("({}) IS DISTINCT FROM ({})").format(
                old_ids_of_array(parent, written), mapped_old_ids(parent, staged)),
            "missing": elements_without_row(staged, mapping_table(parent), "xata_id")}


def _pointing_nowhere(target, plan: Plan, table: Table, column: Column, scope: str) -> int:
    """Target link values (or array elements) with no row in the parent table."""
    value = link_elements(column, sql.SQL("t.{}").format(sql.Identifier(column.target)))
    nowhere = sql.SQL(
        "SELECT m.xata_id, linked.id, {name}, NULL, linked.v::text, 'links to no row'"
        " FROM (SELECT t.id, {v} AS v FROM {t} t) linked LEFT JOIN {map} m"
        " ON m.new_id = linked.id WHERE v IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.id = v)").format(
        name=sql.Literal(column.name), v=value, t=target_table(plan, table),
        map=mapping_table(table.name),
        p=target_table(plan, plan.table(column.link.table)))
    count = target.execute(sql.SQL("SELECT count(*) FROM ({}) q").format(nowhere)).fetchone()[0]
    if count:
        record_findings(target, scope, "links_intact", nowhere)
    return count


def _link_report(target, plan: Plan, table: Table, column: Column, index: int,
                 scope: str, stage: sql.Identifier) -> dict:
    expressions = _link_expressions(column, index)
    rows = sql.SQL("FROM {s} s JOIN {map} m ON m.xata_id = s.xid JOIN {t} t ON t.id = m.new_id"
                   " {join}").format(s=stage, map=mapping_table(table.name),
                                     t=target_table(plan, table), join=expressions["join"])
    linked, null_links, missing, wrong = target.execute(sql.SQL(
        "SELECT count(s.{c}), count(*) - count(s.{c}), coalesce(sum({missing}), 0),"
        " count(*) FILTER (WHERE {wrong}) {rows}").format(
        c=stage_name(index), missing=expressions["missing"], wrong=expressions["wrong"],
        rows=rows)).fetchone()
    if wrong:
        record_findings(target, scope, "links_intact", sql.SQL(
            "SELECT s.xid, t.id, {name}, s.{c}::text, t.{col}::text,"
            " 'links to another row than in the source' {rows} WHERE {wrong}").format(
            name=sql.Literal(column.name), c=stage_name(index),
            col=sql.Identifier(column.target), rows=rows, wrong=expressions["wrong"]))
    target_linked = target.execute(sql.SQL("SELECT count({}) FROM {}").format(
        sql.Identifier(column.target), target_table(plan, table))).fetchone()[0]
    return {"linked": linked, "target_linked": target_linked, "null": null_links,
            "missing_in_source": int(missing), "wrong": wrong,
            "pointing_nowhere": _pointing_nowhere(target, plan, table, column, scope),
            "missing_allowed": column.link.on_missing == "null"}


def links_intact(source, target, plan: Plan, table: Table, links: list[Column],
                 scope: str | None = None, streamed: bool = False) -> CheckOutcome:
    """Compare each link, through both mappings, with the source's value. `streamed`: the
    table's links are already in SOURCE_IDS (stream_source); otherwise read them now."""
    scope = scope or table.name
    with target.transaction():
        if streamed:
            stage, positions = SOURCE_IDS, [table.rewritten_links.index(c) for c in links]
        else:
            binary = create_stage(target, CHECK_STAGE, links)
            copy_between(source, target, source_select(plan, table, links), CHECK_STAGE,
                         binary)
            stage, positions = CHECK_STAGE, list(range(len(links)))
        reports = {c.name: _link_report(target, plan, table, c, i, scope, stage)
                   for i, c in zip(positions, links)}
    problems = {name: r for name, r in reports.items()
                if r["wrong"] or r["pointing_nowhere"]
                or (r["missing_in_source"] and not r["missing_allowed"])}
    summary = ("every link rewritten to the right new id" if not problems else
               "wrong links in " + ", ".join(problems))
    compared = []
    for name, r in reports.items():
        compared += [(f"{name}: links set", r["linked"], r["target_linked"]),
                     (f"{name}: wrong / pointing nowhere", r["missing_in_source"],
                      f"{r['wrong']} / {r['pointing_nowhere']}")]
    return CheckOutcome("links_intact", not problems, summary, {"links": reports},
                        compared=compared)


def missing_links_outcome(column: Column, count: int, examples: list[tuple[str, str]],
                          message: str, source_sql: str) -> CheckOutcome:
    """A load stopped by `count` values of the link `column` that point nowhere, as a
    failed `links_intact`: the `examples` (old id, value) name rows, and `source_sql`
    lists them all in the source (nothing was written)."""
    parent = column.link.table
    return CheckOutcome(
        "links_intact", False, message,
        {"links_pointing_nowhere": {column.name: count}},
        compared=[(f"{column.name}: values pointing to no record of {parent}",
                   count, "nothing written")],
        examples=[{"xata_id": xid, "new_id": None, "column_name": column.name,
                   "source_value": value, "target_value": None,
                   "problem": f"no such record in {parent}"}
                  for xid, value in examples],
        findings_sql=source_sql, findings_on="source")


def table_checks(source, target, plan: Plan, table: Table,
                 source_side: fingerprint.Side | None = None,
                 target_ranges: TargetRanges | None = None) -> list[CheckOutcome]:
    """Every check of a table's own asset. Each side's fingerprint first (the source's
    given by the load, of the rows it read, or computed now; the target's by ranges of
    the table at once if `target_ranges` says so): when they match, every check
    passes on that; otherwise the rows are compared one by one, against one consistent
    source snapshot, to name what differs. Only the findings are kept (committed);
    everything else the checks made is temporary."""
    started = time.monotonic()
    ensure_bookkeeping(target)
    try:
        clear_findings(target, table.name)
        target_side = (target_side_in_ranges(target_ranges, plan, table)
                       if target_ranges else None)
        comparison = fingerprint.compare(source, target, plan, table, source_side, target_side)
        if comparison.identical and table.kept:
            outcomes = kept_identical_outcomes(table, comparison.source, comparison.target)
        elif comparison.identical:
            outcomes = identical_outcomes(table, comparison)
        elif table.kept:
            outcomes = [with_findings(target, o, table.name)
                        for o in kept_outcomes(source, target, plan, table)]
        else:
            outcomes = [with_findings(target, o, table.name)
                        for o in row_by_row_outcomes(source, target, plan, table)]
        outcomes.append(schema_intact(target, plan, table))
        target.commit()
        for outcome in outcomes:
            outcome.metadata["checks_seconds"] = round(time.monotonic() - started, 3)
    finally:
        source.commit()
        target.rollback()
    return outcomes


def row_by_row_outcomes(source, target, plan: Plan, table: Table) -> list[CheckOutcome]:
    absent = stream_source(source, target, plan, table)
    outcomes = [row_counts(target, plan, table, absent),
                id_mapping(target, plan, table, absent)]
    if table.own_links:
        outcomes.append(links_intact(source, target, plan, table, table.own_links,
                                     streamed=True))
    outcomes.append(values_unchanged(source, target, plan, table, absent))
    for outcome in outcomes:
        outcome.metadata["compared_by"] = "row by row"
    return outcomes


def identical_outcomes(table: Table, comparison: fingerprint.Comparison) -> list[CheckOutcome]:
    """Every check passed, as the matching fingerprints prove: same number of rows, each
    target row with exactly one mapping row and the mapping's keys in place, every link
    mapped back to an old id and pointing to an existing row, and the same rows (old id,
    links as old ids, values) on both sides."""
    s, t = comparison.source, comparison.target
    digest = ("fingerprint of all rows (old id, links as old ids, values)", s.digest, t.digest)
    counts = CheckOutcome("row_counts", True,
                          f"source {s.rows}, target {t.rows}, mapping {t.mapping_rows}",
                          {"source_rows": s.rows, "target_rows": t.rows,
                           "mapping_rows": t.mapping_rows},
                          compared=[("rows", s.rows, t.rows),
                                    ("mapping rows (old id -> new id)", "", t.mapping_rows)])
    if t.deleted_ids:
        counts.summary += (f", {t.deleted_ids} deleted in the source"
                           f" ({table.deleted_rows} in target)")
        counts.metadata.update(deleted_in_source=t.deleted_ids,
                               deleted_rows_policy=table.deleted_rows)
        counts.compared += [("deleted in the source since", "", t.deleted_ids),
                            ("their rows kept in the target", "", t.deleted_rows_kept)]
    outcomes = [
        counts,
        CheckOutcome("id_mapping", True, "1:1", {
            "source_ids_without_mapping": 0, "mapped_without_target_row": 0,
            "target_rows_without_mapping": 0, "deleted_in_source_still_in_target": 0,
            "new_ids_used_twice": 0, "old_ids_used_twice": 0},
            compared=[("old ids, each with one new id (unique keys)", s.rows, t.mapping_rows),
                      ("target rows, each with one old id", "", t.joined_rows), digest])]
    if s.linked:
        reports = {name: {"linked": s.linked[name], "target_linked": t.linked[name],
                          "null": s.rows - s.linked[name], "missing_in_source": 0,
                          "wrong": 0, "pointing_nowhere": 0}
                   for name in s.linked}
        compared = []
        for name, r in reports.items():
            compared += [(f"{name}: links set", r["linked"], r["target_linked"]),
                         (f"{name}: wrong / pointing nowhere", 0, "0 / 0")]
        outcomes.append(CheckOutcome("links_intact", True,
                                     "every link rewritten to the right new id",
                                     {"links": reports}, compared=compared + [digest]))
    columns = len(table.value_columns)
    outcomes.append(CheckOutcome(
        "values_unchanged", True, f"{s.rows} rows identical",
        {"columns_compared": columns, "source_rows": s.rows,
         "target_rows": t.rows - t.deleted_rows_kept, "rows_differing": 0},
        compared=[("columns compared", columns, columns),
                  ("rows compared", s.rows, t.rows - t.deleted_rows_kept),
                  ("rows that differ", "", 0), digest]))
    for outcome in outcomes:
        outcome.metadata.update(compared_by="fingerprint", fingerprint=s.digest)
        if s.ranges > 1 or t.ranges > 1:
            outcome.metadata["fingerprint_ranges"] = (
                f"source {s.ranges}, target {t.ranges}, each side's at once")
    return outcomes


def link_check(source, target, plan: Plan, table: Table, column: Column) -> CheckOutcome:
    """The check of a deferred link's asset; its findings are scoped `table.column`."""
    scope = f"{table.name}.{column.name}"
    ensure_bookkeeping(target)
    try:
        clear_findings(target, scope)
        outcome = with_findings(target, links_intact(source, target, plan, table, [column],
                                                      scope), scope)
        target.commit()
    finally:
        source.commit()
        target.rollback()
    return outcome


def proves(check_name: str) -> str:
    """What a check proves; for a deferred link's `links_intact (column, deferred)`, what
    links_intact proves."""
    return CHECKS[check_name.split(" ")[0]]


def check_names(table: Table) -> list[str]:
    names = ["row_counts", "ids_unchanged" if table.kept else "id_mapping"]
    if table.own_links:
        names.append("links_intact")
    return names + ["values_unchanged", "schema_intact"]

