"""The checks of a table whose ids are kept (`ids: keep`), when the fingerprints differ.

Such a table has no mapping: its rows are told apart by their `key` (as text), or, for
a table without one, only as whole rows. Each source row's key, a hash of its rewritten
links (as the old ids they point to) and a hash of its other values are streamed into
the target, and compared with the same of every target row (its links mapped back to
old ids), so a wrong link and a changed value are told apart:

  row_counts        as many rows on both sides (rows deleted in the source since and
                    kept in the target, by `deleted_rows: keep`, are counted apart)
  ids_unchanged     every source key is one target row's key, and no target row has a
                    key the source does not (without a key: the rows match as a whole)
  links_intact      every rewritten link points to the row it pointed to in the source
  values_unchanged  every other column, kept keys and copied links included, is equal
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from xata_migration.pg.objects import DELETED_IN_SOURCE, target_table
from xata_migration.pg.relay import copy_between
from xata_migration.pg.stage import create_temp_table, row_key
from xata_migration.pg.translate import join_old_ids, old_ids_of_array
from xata_migration.plan.model import Plan, Table
from xata_migration.verify.findings import CheckOutcome, record_findings

SOURCE_ROWS = sql.Identifier("xata_migration_kept_source")
TARGET_ROWS = sql.Identifier("xata_migration_kept_target")


def _hash(fields: list[sql.Composable]) -> sql.Composed:
    if not fields:
        return sql.SQL("''")
    return sql.SQL("md5(ROW({})::text)").format(sql.SQL(", ").join(fields))


def _source_select(plan: Plan, table: Table) -> sql.Composed:
    links = [sql.SQL("src.{}::{}").format(
        sql.Identifier(c.name), sql.SQL("text[]" if c.is_array_link else "text"))
        for c in table.own_links]
    values = [sql.SQL("src.{}").format(sql.Identifier(c.name)) for c in table.value_columns]
    return sql.SQL("SELECT {}, {}, {} FROM {} src").format(
        row_key(table, "src"), _hash(links), _hash(values),
        sql.Identifier(plan.source_schema, table.name))


def _target_select(plan: Plan, table: Table) -> sql.Composed:
    links, joins = [], []
    for index, column in enumerate(table.own_links):
        value = sql.SQL("t.{}").format(sql.Identifier(column.target))
        if column.is_array_link:
            links.append(old_ids_of_array(column.link.table, value))
        else:
            alias = sql.Identifier(f"p{index}")
            joins.append(join_old_ids(alias, column.link.table, value))
            links.append(sql.SQL("{}.xata_id").format(alias))
    values = [sql.SQL("t.{}{}").format(sql.Identifier(c.target), sql.SQL(
        "::real[]" if c.compared_as_real_array else "")) for c in table.value_columns]
    key = row_key(table, "t", names="target")
    return sql.SQL(
        "SELECT {key} AS k, {links} AS links, {values} AS vals, EXISTS (SELECT 1 FROM"
        " {deleted} d WHERE d.table_name = {name} AND d.xata_id = {key}) AS gone"
        " FROM {t} t {joins}").format(
        key=key, links=_hash(links), values=_hash(values), deleted=DELETED_IN_SOURCE,
        name=sql.Literal(table.name), t=target_table(plan, table),
        joins=sql.SQL(" ").join(joins))


@dataclass
class Compared:
    source_rows: int
    target_rows: int
    kept_deleted: int        # target rows deleted in the source, kept by the plan
    only_source: int         # keys (or whole rows) the target lacks
    only_target: int         # keys (or whole rows) the source lacks
    links_differ: int
    values_differ: int


def _compare(source, target, plan: Plan, table: Table) -> Compared:
    columns = [sql.SQL("k text"), sql.SQL("links text"), sql.SQL("vals text")]
    create_temp_table(target, SOURCE_ROWS, columns)
    copy_between(source, target, _source_select(plan, table), SOURCE_ROWS, binary=False)
    target.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(TARGET_ROWS))
    target.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS {}").format(
        TARGET_ROWS, _target_select(plan, table)))
    counts = target.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {s}), (SELECT count(*) FROM {t} WHERE NOT gone),"
        " (SELECT count(*) FROM {t} WHERE gone)").format(
        s=SOURCE_ROWS, t=TARGET_ROWS)).fetchone()
    if table.key:
        pairs = sql.SQL("FROM {s} s FULL JOIN (SELECT * FROM {t} WHERE NOT gone) t"
                        " ON t.k = s.k").format(s=SOURCE_ROWS, t=TARGET_ROWS)
        found = target.execute(sql.SQL(
            "SELECT count(*) FILTER (WHERE t.k IS NULL), count(*) FILTER (WHERE s.k IS NULL),"
            " count(*) FILTER (WHERE s.links <> t.links),"
            " count(*) FILTER (WHERE s.vals <> t.vals) ") + pairs).fetchone()
        _record_keyed(target, table, pairs)
        return Compared(*counts, *found)
    # no key: the rows are compared as a whole, as many of each on both sides
    groups = sql.SQL(
        "FROM (SELECT links, vals, count(*) AS n FROM {s} GROUP BY 1, 2) s FULL JOIN"
        " (SELECT links, vals, count(*) AS n FROM {t} WHERE NOT gone GROUP BY 1, 2) t"
        " ON t.links = s.links AND t.vals = s.vals").format(s=SOURCE_ROWS, t=TARGET_ROWS)
    only_source, only_target = target.execute(sql.SQL(
        "SELECT coalesce(sum(greatest(coalesce(s.n, 0) - coalesce(t.n, 0), 0)), 0),"
        " coalesce(sum(greatest(coalesce(t.n, 0) - coalesce(s.n, 0), 0)), 0) ") + groups
    ).fetchone()
    if only_source or only_target:
        record_findings(target, table.name, "ids_unchanged", sql.SQL(
            "SELECT NULL, NULL::bigint, NULL, s.n::text, coalesce(t.n, 0)::text,"
            " 'a row (links and values) that is not on both sides as many times'"
            " {} WHERE s.n IS DISTINCT FROM t.n").format(groups))
    return Compared(*counts, int(only_source), int(only_target), 0, 0)


def _record_keyed(target, table: Table, pairs: sql.Composable) -> None:
    for check, condition, problem in (
            ("ids_unchanged", "t.k IS NULL", "source row with no target row"),
            ("ids_unchanged", "s.k IS NULL", "target row with no source row"),
            ("links_intact", "s.links <> t.links", "a link points to another row than in "
                                                   "the source"),
            ("values_unchanged", "s.vals <> t.vals", "a value differs")):
        record_findings(target, table.name, check, sql.SQL(
            "SELECT coalesce(s.k, t.k), NULL::bigint, NULL, CASE WHEN s.k IS NULL THEN NULL"
            " ELSE 'present' END, CASE WHEN t.k IS NULL THEN NULL ELSE 'present' END, {} {}"
            " WHERE {}").format(sql.Literal(problem), pairs, sql.SQL(condition)))


def kept_outcomes(source, target, plan: Plan, table: Table) -> list[CheckOutcome]:
    """The row-by-row checks of a kept table (see the module's docstring)."""
    c = _compare(source, target, plan, table)
    policy_broken = c.kept_deleted if table.deleted_rows == "delete" else 0
    counts_pass = (c.source_rows == c.target_rows and not c.only_source
                   and not c.only_target and not policy_broken)
    key = ", ".join(table.key) if table.key else "none: whole rows compared"
    outcomes = [
        CheckOutcome("row_counts", counts_pass,
                     f"source {c.source_rows}, target {c.target_rows}", {
                         "source_rows": c.source_rows, "target_rows": c.target_rows,
                         "deleted_in_source": c.kept_deleted},
                     compared=[("rows", c.source_rows, c.target_rows),
                               ("deleted in the source since, still in the target", "",
                                c.kept_deleted)]),
        CheckOutcome("ids_unchanged", not (c.only_source or c.only_target),
                     "every id kept" if not (c.only_source or c.only_target) else
                     "ids differ between source and target", {
                         "key": key, "source_ids_not_in_target": c.only_source,
                         "target_ids_not_in_source": c.only_target},
                     compared=[(f"ids ({key}) missing on the other side", c.only_source,
                                c.only_target)])]
    if table.own_links:
        outcomes.append(CheckOutcome(
            "links_intact", not c.links_differ,
            f"{c.links_differ} rows with a wrong link" if c.links_differ else
            "every link rewritten to the right new id",
            {"rows_with_a_wrong_link": c.links_differ},
            compared=[("rows whose links differ", "", c.links_differ)]))
    outcomes.append(CheckOutcome(
        "values_unchanged", not c.values_differ,
        f"{c.values_differ} rows differ" if c.values_differ else
        f"{c.source_rows} rows identical",
        {"columns_compared": len(table.value_columns), "rows_differing": c.values_differ},
        compared=[("columns compared", len(table.value_columns), len(table.value_columns)),
                  ("rows that differ", "", c.values_differ)]))
    for outcome in outcomes:
        outcome.metadata["compared_by"] = "row by row"
    return outcomes


def kept_identical_outcomes(table: Table, s, t) -> list[CheckOutcome]:
    """Every check of a kept table passed, as its matching fingerprints prove: the same
    rows (kept ids, links as old ids, values) on both sides."""
    digest = ("fingerprint of all rows (kept ids, links as old ids, values)", s.digest,
              t.digest)
    key = ", ".join(table.key) if table.key else "none: whole rows compared"
    outcomes = [
        CheckOutcome("row_counts", True, f"source {s.rows}, target {t.rows}", {
            "source_rows": s.rows, "target_rows": t.rows,
            "deleted_in_source": t.deleted_rows_kept},
            compared=[("rows", s.rows, t.rows - t.deleted_rows_kept),
                      ("deleted in the source since, still in the target", "",
                       t.deleted_rows_kept)]),
        CheckOutcome("ids_unchanged", True, "every id kept", {
            "key": key, "source_ids_not_in_target": 0, "target_ids_not_in_source": 0},
            compared=[(f"ids ({key}) missing on the other side", 0, 0), digest])]
    if table.own_links:
        outcomes.append(CheckOutcome(
            "links_intact", True, "every link rewritten to the right new id",
            {"rows_with_a_wrong_link": 0}, compared=[digest]))
    outcomes.append(CheckOutcome(
        "values_unchanged", True, f"{s.rows} rows identical",
        {"columns_compared": len(table.value_columns), "rows_differing": 0},
        compared=[("columns compared", len(table.value_columns), len(table.value_columns)),
                  ("rows that differ", "", 0), digest]))
    for outcome in outcomes:
        outcome.metadata.update(compared_by="fingerprint", fingerprint=s.digest)
    return outcomes
