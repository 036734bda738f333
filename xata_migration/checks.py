"""Verification of one migrated table against its source.

  row_counts         source rows = mapping rows = target rows (rows left out by a skip
                     link, or deleted at the source since, are counted and accounted for)
  id_mapping         the mapping is 1:1: every source id has exactly one new id, every
                     new id is one target row, every target row has a mapping
  links_intact       every link equals the new id of the record it pointed to in the
                     source, NULL stays NULL, and no target link points to a missing row
  values_unchanged   every other column of every row equals the source's value

The source's ids are streamed into the target once, so counts and the mapping are compared
exactly by anti-joins. Values are compared by order-independent hashes computed on each
side (md5 of each row's text, summed), which costs one read of each side; when the sums
differ, the source's per-row hashes are streamed into the target to name the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

from xata_migration import ddl
from xata_migration.load import (copy_between, create_stage, create_temp_table, link_values,
                                  source_select, stage_name)
from xata_migration.plan import Column, Plan, Table

EXAMPLES = 5
CHECK_STAGE = sql.Identifier("xata_migration_check")


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    summary: str
    metadata: dict = field(default_factory=dict)


SOURCE_IDS = sql.Identifier("xata_migration_source_ids")
ABSENT = sql.Identifier("xata_migration_absent")


def _hash_totals(conn, row: sql.Composable, source: sql.Composable) -> tuple:
    """(rows, sum of first md5 halves, sum of second halves) over `SELECT row FROM source`."""
    return tuple(conn.execute(sql.SQL(
        "SELECT count(*), coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0)::text,"
        " coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0)::text"
        " FROM (SELECT md5(({})::text) AS h FROM {}) q").format(row, source)).fetchone())


def _source_from(plan: Plan, table: Table) -> sql.Composed:
    return sql.SQL("{} src").format(sql.Identifier(plan.source_schema, table.name))


def _target_from(plan: Plan, table: Table) -> sql.Composed:
    """Target rows whose source row still exists (rows deleted at the source are kept
    by default; they are counted, not compared)."""
    return sql.SQL("{} t JOIN {} m ON m.new_id = t.id"
                   " WHERE EXISTS (SELECT 1 FROM {} i WHERE i.xid = m.xata_id)").format(
        ddl.target_table(plan, table), ddl.mapping_table(table.name), SOURCE_IDS)


@dataclass
class Absent:
    """Rows on one side only, as the checks see them (pg_temp.xata_migration_absent)."""
    skipped: int = 0      # source rows left out because a skip link points nowhere
    unexplained: int = 0  # source rows without a mapping for no such reason
    deleted: int = 0      # mapped ids no longer in the source
    examples: dict = field(default_factory=dict)


def find_absent(source, target, plan: Plan, table: Table) -> Absent:
    """Stream the source's ids (and skip-link values) into the target, then sort out which
    ids are on one side only. Source rows without a mapping are `skipped` only if one of
    their skip links holds an id its parent's mapping does not have."""
    links = [c for c in table.links if c.link.on_missing == "skip"]
    binary = create_stage(target, SOURCE_IDS, links)
    copy_between(source, target, source_select(plan, table, links), SOURCE_IDS, binary)
    target.execute(sql.SQL("CREATE INDEX ON {} (xid)").format(SOURCE_IDS))
    missing = [sql.SQL("false")]
    for index, column in enumerate(links):
        missing.append(sql.SQL(
            "EXISTS (SELECT 1 FROM (SELECT {} AS v) x WHERE v IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM {} q WHERE q.xata_id = v))").format(
            link_values(column, index), ddl.mapping_table(column.link.table)))
    create_temp_table(target, ABSENT, [sql.SQL("xid text"), sql.SQL("reason text")])
    target.execute(sql.SQL(
        "INSERT INTO {absent} SELECT s.xid, CASE WHEN {missing} THEN 'skipped'"
        " ELSE 'unexplained' END FROM {ids} s"
        " WHERE NOT EXISTS (SELECT 1 FROM {map} m WHERE m.xata_id = s.xid)"
        " UNION ALL SELECT m.xata_id, 'deleted' FROM {map} m"
        " WHERE NOT EXISTS (SELECT 1 FROM {ids} s WHERE s.xid = m.xata_id)").format(
        absent=ABSENT, missing=sql.SQL(" OR ").join(missing), ids=SOURCE_IDS,
        map=ddl.mapping_table(table.name)))
    absent = Absent()
    for reason, count, examples in target.execute(sql.SQL(
            "SELECT reason, count(*), (array_agg(xid ORDER BY xid))[1:%s] FROM {}"
            " GROUP BY reason").format(ABSENT), (EXAMPLES,)):
        setattr(absent, reason, count)
        absent.examples[reason] = examples
    return absent


def _differing_rows(source, target, plan: Plan, table: Table, source_row, target_row):
    """Stream the source's per-row hashes into the target; (count, examples) that differ.
    Rows left out by `on_missing: skip` and rows deleted at the source are not counted."""
    with target.transaction():
        create_temp_table(target, CHECK_STAGE, [sql.SQL("xid text"), sql.SQL("h text")])
        select = sql.SQL("SELECT src.{}::text, md5(({})::text) FROM {}").format(
            sql.Identifier(table.id_column), source_row, _source_from(plan, table))
        copy_between(source, target, select, CHECK_STAGE, binary=False)
        count, examples = target.execute(sql.SQL(
            "SELECT count(*), coalesce((array_agg(ROW(coalesce(s.xid, x.xata_id), x.new_id)"
            "::text ORDER BY coalesce(s.xid, x.xata_id)))[1:%s], '{{}}')"
            " FROM {stage} s FULL JOIN (SELECT m.xata_id, m.new_id, md5(({row})::text) AS h"
            " FROM {target}) x ON x.xata_id = s.xid WHERE s.h IS DISTINCT FROM x.h"
            " AND NOT EXISTS (SELECT 1 FROM {absent} a WHERE a.xid = s.xid"
            "                 AND a.reason = 'skipped')").format(
            stage=CHECK_STAGE, row=target_row, target=_target_from(plan, table),
            absent=ABSENT), (EXAMPLES,)).fetchone()
    return count, examples


def row_counts(target, plan: Plan, table: Table, absent: Absent) -> CheckOutcome:
    source_rows, target_rows, mapped = target.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {}), (SELECT count(*) FROM {}), (SELECT count(*) FROM {})"
    ).format(SOURCE_IDS, ddl.target_table(plan, table), ddl.mapping_table(table.name))
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
    if absent.examples:
        metadata["examples"] = absent.examples
    return CheckOutcome("row_counts", passed, summary, metadata)


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
            map=ddl.mapping_table(table.name), t=ddl.target_table(plan, table),
            absent=ABSENT)).fetchone()
    should_be_gone = deleted_still_there if table.deleted_rows == "delete" else 0
    metadata = {"source_ids_without_mapping": absent.unexplained,
                "mapped_without_target_row": without_row,
                "target_rows_without_mapping": unmapped,
                "deleted_in_source_still_in_target": deleted_still_there,
                "new_ids_used_twice": repeated_new, "old_ids_used_twice": repeated_old}
    passed = not (absent.unexplained or without_row or unmapped or should_be_gone
                  or repeated_new or repeated_old)
    return CheckOutcome("id_mapping", passed,
                        "1:1" if passed else "the mapping is not 1:1 with source and target",
                        metadata)


def values_unchanged(source, target, plan: Plan, table: Table,
                     absent: Absent) -> CheckOutcome:
    source_row, target_row = _value_rows(table)
    target_totals = _hash_totals(target, target_row, _target_from(plan, table))
    metadata = {"columns_compared": len(table.value_columns), "target_rows": target_totals[0]}
    if not absent.skipped:  # order-independent sums, one read of each side
        source_totals = _hash_totals(source, source_row, _source_from(plan, table))
        metadata.update(source_rows=source_totals[0],
                        source_hash=f"{source_totals[1]}/{source_totals[2]}",
                        target_hash=f"{target_totals[1]}/{target_totals[2]}")
        if source_totals == target_totals:
            return CheckOutcome("values_unchanged", True,
                                f"{source_totals[0]} rows identical", metadata)
    count, examples = _differing_rows(source, target, plan, table, source_row, target_row)
    metadata.update(rows_differing=count, examples=examples)
    return CheckOutcome("values_unchanged", not count, f"{count} rows differ", metadata)


def _value_rows(table: Table) -> tuple[sql.Composed, sql.Composed]:
    """The same row on each side: source id, then every non-link column.

    Source values are read in their own type, not cast to the plan's: a plan type that
    loses information (a shorter varchar, fewer decimals) then shows as a difference.
    """
    source = [sql.SQL("src.{}::text").format(sql.Identifier(table.id_column))]
    target = [sql.SQL("m.xata_id")]
    for column in table.value_columns:
        source.append(sql.SQL("src.{}").format(sql.Identifier(column.name)))
        # pgvector's vector holds float4 exactly as real[] does; compare in real[]'s text
        as_source = sql.SQL("::real[]") if column.is_pgvector else sql.SQL("")
        target.append(sql.SQL("t.{}{}").format(sql.Identifier(column.target), as_source))
    return (sql.SQL("ROW({})").format(sql.SQL(", ").join(source)),
            sql.SQL("ROW({})").format(sql.SQL(", ").join(target)))


def _link_expressions(column: Column, index: int, pmap: sql.Composable) -> dict:
    """SQL (over stage s and target t) for one link: is it wrong, how many ids are missing.

    An array link is compared the other way round from how it was written: each target
    element is mapped back to its old id and the array compared with the source's.
    """
    c, col = stage_name(index), sql.Identifier(column.target)
    if not column.is_array_link:
        return {"join": sql.SQL("LEFT JOIN {} p ON p.xata_id = s.{}").format(pmap, c),
                "wrong": sql.SQL("t.{} IS DISTINCT FROM p.new_id").format(col),
                "missing": sql.SQL("(s.{} IS NOT NULL AND p.xata_id IS NULL)::int").format(c)}
    expected = sql.SQL(
        "CASE WHEN s.{c} IS NULL THEN NULL ELSE ARRAY(SELECT CASE WHEN EXISTS (SELECT 1 FROM"
        " {pmap} q WHERE q.xata_id = u.v) THEN u.v END FROM unnest(s.{c}) WITH ORDINALITY"
        " u(v, n) ORDER BY u.n) END").format(c=c, pmap=pmap)
    mapped_back = sql.SQL(
        "CASE WHEN t.{col} IS NULL THEN NULL ELSE ARRAY(SELECT q.xata_id FROM unnest(t.{col})"
        " WITH ORDINALITY u(v, n) LEFT JOIN {pmap} q ON q.new_id = u.v ORDER BY u.n) END"
    ).format(col=col, pmap=pmap)
    return {"join": sql.SQL(""),
            "wrong": sql.SQL("({}) IS DISTINCT FROM ({})").format(mapped_back, expected),
            "missing": sql.SQL("(SELECT count(*) FROM unnest(s.{c}) u(v) WHERE u.v IS NOT NULL"
                               " AND NOT EXISTS (SELECT 1 FROM {pmap} q WHERE q.xata_id = u.v))"
                               ).format(c=c, pmap=pmap)}


def _pointing_nowhere(target, plan: Plan, table: Table, column: Column) -> int:
    """Target link values (or array elements) with no row in the parent table."""
    value = sql.SQL("unnest(t.{})" if column.is_array_link else "t.{}").format(
        sql.Identifier(column.target))
    return target.execute(sql.SQL(
        "SELECT count(*) FROM (SELECT {v} AS v FROM {t} t) linked WHERE v IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.id = v)").format(
        v=value, t=ddl.target_table(plan, table),
        p=ddl.target_table(plan, plan.table(column.link.table)))).fetchone()[0]


def _link_report(target, plan: Plan, table: Table, column: Column, index: int) -> dict:
    pmap = ddl.mapping_table(column.link.table)
    expressions = _link_expressions(column, index, pmap)
    linked, null_links, missing, wrong, examples = target.execute(sql.SQL(
        "SELECT count(s.{c}), count(*) - count(s.{c}), coalesce(sum({missing}), 0),"
        " count(*) FILTER (WHERE {wrong}),"
        " coalesce((array_agg(ROW(s.xid, t.id)::text ORDER BY s.xid)"
        "   FILTER (WHERE {wrong}))[1:%s], '{{}}')"
        " FROM {s} s JOIN {map} m ON m.xata_id = s.xid JOIN {t} t ON t.id = m.new_id {join}"
    ).format(c=stage_name(index), missing=expressions["missing"], wrong=expressions["wrong"],
             join=expressions["join"], s=CHECK_STAGE, map=ddl.mapping_table(table.name),
             t=ddl.target_table(plan, table)), (EXAMPLES,)).fetchone()
    return {"linked": linked, "null": null_links, "missing_in_source": int(missing),
            "wrong": wrong, "pointing_nowhere": _pointing_nowhere(target, plan, table, column),
            "examples": examples, "missing_allowed": column.link.on_missing == "null"}


def links_intact(source, target, plan: Plan, table: Table,
                 links: list[Column]) -> CheckOutcome:
    """Compare each link, through both mappings, with the source's value."""
    with target.transaction():
        binary = create_stage(target, CHECK_STAGE, links)
        copy_between(source, target, source_select(plan, table, links), CHECK_STAGE, binary)
        reports = {c.name: _link_report(target, plan, table, c, i) for i, c in enumerate(links)}
    problems = {name: r for name, r in reports.items()
                if r["wrong"] or r["pointing_nowhere"]
                or (r["missing_in_source"] and not r["missing_allowed"])}
    summary = ("every link rewritten to the right new id" if not problems else
               "wrong links in " + ", ".join(problems))
    return CheckOutcome("links_intact", not problems, summary, {"links": reports})


def table_checks(source, target, plan: Plan, table: Table) -> list[CheckOutcome]:
    """Every check of a table's own asset, against one consistent source snapshot."""
    try:
        absent = find_absent(source, target, plan, table)
        outcomes = [row_counts(target, plan, table, absent),
                    id_mapping(target, plan, table, absent)]
        own_links = [c for c in table.links if not c.link.deferred]
        if own_links:
            outcomes.append(links_intact(source, target, plan, table, own_links))
        outcomes.append(values_unchanged(source, target, plan, table, absent))
    finally:
        source.commit()
        target.rollback()
    return outcomes


def check_names(table: Table) -> list[str]:
    names = ["row_counts", "id_mapping"]
    if any(not c.link.deferred for c in table.links):
        names.append("links_intact")
    return names + ["values_unchanged"]
