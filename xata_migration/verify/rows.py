"""The row-by-row comparison, when the fingerprints differ: each source row's id, its
link values and a hash of its other values are streamed into a temporary table of the
target (stream_source), where the checks compare them with the target's rows; the rows
whose hashes differ then have their source values streamed across, to name each row and
column that differs (record_differing_rows)."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from xata_migration.pg.objects import mapping_table, target_table
from xata_migration.pg.relay import copy_between
from xata_migration.pg.stage import create_stage, create_temp_table, source_select, stage_name
from xata_migration.pg.translate import link_values
from xata_migration.plan.model import Column, Plan, Table
from xata_migration.verify.findings import record_findings

CHECK_STAGE = sql.Identifier("xata_migration_check")


SOURCE_IDS = sql.Identifier("xata_migration_source_ids")


ABSENT = sql.Identifier("xata_migration_absent")


@dataclass
class Absent:
    """Rows on one side only, as the checks see them (pg_temp.xata_migration_absent)."""
    skipped: int = 0      # source rows left out because a skip link points nowhere
    unexplained: int = 0  # source rows without a mapping for no such reason
    deleted: int = 0      # mapped ids no longer in the source


def stream_source(source, target, plan: Plan, table: Table) -> Absent:
    """The one read of the source all of a table's checks need: each row's id, its link
    values and the hash of its other values, streamed into the target (SOURCE_IDS). Then
    sort out which ids are on one side only: source rows without a mapping are `skipped`
    only if one of their skip links holds an id its parent's mapping does not have."""
    hash_field = sql.SQL("md5(({})::text)").format(value_rows(table)[0])
    links = table.rewritten_links
    binary = create_stage(target, SOURCE_IDS, links, extra=[sql.SQL("h text")])
    copy_between(source, target, source_select(plan, table, links, extra=[hash_field]),
                 SOURCE_IDS, binary)
    target.execute(sql.SQL("CREATE INDEX ON {} (xid)").format(SOURCE_IDS))
    missing = [sql.SQL("false")]
    for index, column in ((i, c) for i, c in enumerate(links) if c.link.on_missing == "skip"):
        missing.append(sql.SQL(
            "EXISTS (SELECT 1 FROM (SELECT {} AS v) x WHERE v IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM {} q WHERE q.xata_id = v))").format(
            link_values(column, index), mapping_table(column.link.table)))
    create_temp_table(target, ABSENT, [sql.SQL("xid text"), sql.SQL("reason text")])
    target.execute(sql.SQL(
        "INSERT INTO {absent} SELECT s.xid, CASE WHEN {missing} THEN 'skipped'"
        " ELSE 'unexplained' END FROM {ids} s"
        " WHERE NOT EXISTS (SELECT 1 FROM {map} m WHERE m.xata_id = s.xid)"
        " UNION ALL SELECT m.xata_id, 'deleted' FROM {map} m"
        " WHERE NOT EXISTS (SELECT 1 FROM {ids} s WHERE s.xid = m.xata_id)").format(
        absent=ABSENT, missing=sql.SQL(" OR ").join(missing), ids=SOURCE_IDS,
        map=mapping_table(table.name)))
    absent = Absent()
    for reason, count in target.execute(sql.SQL(
            "SELECT reason, count(*) FROM {} GROUP BY reason").format(ABSENT)):
        setattr(absent, reason, count)
    return absent


def row_hashes(plan: Plan, table: Table) -> sql.Composed:
    """Every compared row's source and target hash, side by side, joined by old id: xid,
    xata_id, new_id, source_h, target_h. Rows on one side only because a skip link left
    them out, or because they were deleted at the source, are in ABSENT: not compared."""
    return sql.SQL(
        "SELECT s.xid, x.xata_id, x.new_id, s.h AS source_h, x.h AS target_h FROM {ids} s"
        " FULL JOIN (SELECT m.xata_id, m.new_id, md5(({row})::text) AS h FROM {t} t"
        " JOIN {map} m ON m.new_id = t.id) x ON x.xata_id = s.xid"
        " WHERE NOT EXISTS (SELECT 1 FROM {absent} a WHERE a.xid = coalesce(s.xid, x.xata_id)"
        " AND a.reason IN ('skipped', 'deleted'))").format(
        ids=SOURCE_IDS, row=value_rows(table)[1], t=target_table(plan, table),
        map=mapping_table(table.name), absent=ABSENT)


def record_differing_rows(source, target, plan: Plan, table: Table) -> None:
    """Stream the source's values (each column as text) into the target and record, for
    every row whose hash differs, each column that differs as a finding."""
    columns = table.value_columns
    with target.transaction():
        create_temp_table(target, CHECK_STAGE, [sql.SQL("xid text")] + [
            sql.SQL("{} text").format(stage_name(i)) for i in range(len(columns))])
        select = sql.SQL("SELECT src.{}::text{} FROM {} src").format(
            sql.Identifier(table.id_column), sql.SQL("").join(
                sql.SQL(", src.{}::text").format(sql.Identifier(c.name)) for c in columns),
            sql.Identifier(plan.source_schema, table.name))
        copy_between(source, target, select, CHECK_STAGE, binary=False)
        values = sql.SQL("").join(
            sql.SQL(", v.{}, ({})::text AS {}").format(stage_name(i), target_value(c),
                                                       sql.Identifier(f"t{i}"))
            for i, c in enumerate(columns))
        target.execute(sql.SQL(
            "CREATE TEMP TABLE xata_migration_differing ON COMMIT DROP AS"
            " SELECT r.xid, r.xata_id, r.new_id{values} FROM ({hashes}) r"
            " LEFT JOIN {stage} v ON v.xid = r.xid LEFT JOIN {t} t ON t.id = r.new_id"
            " WHERE r.source_h IS DISTINCT FROM r.target_h").format(
            values=values, hashes=row_hashes(plan, table), stage=CHECK_STAGE,
            t=target_table(plan, table)))
        record_findings(target, table.name, "values_unchanged", value_findings(columns))


def target_value(column: Column) -> sql.Composed:
    as_source = sql.SQL("::real[]") if column.compared_as_real_array else sql.SQL("")
    return sql.SQL("t.{}{}").format(sql.Identifier(column.target), as_source)


def value_findings(columns: list[Column]) -> sql.Composed:
    """One finding per differing column, or one per row that is on one side only."""
    pairs = [sql.SQL("({}, d.{}, d.{})").format(sql.Literal(c.name), stage_name(i),
                                                 sql.Identifier(f"t{i}"))
             for i, c in enumerate(columns)]
    differing_columns = sql.SQL(
        "SELECT d.xid, d.new_id, v.name, v.source_value, v.target_value, 'value differs'"
        " FROM xata_migration_differing d CROSS JOIN LATERAL (VALUES {}) v(name, source_value,"
        " target_value) WHERE d.xid IS NOT NULL AND d.xata_id IS NOT NULL"
        " AND v.source_value IS DISTINCT FROM v.target_value").format(
        sql.SQL(", ").join(pairs)) if pairs else sql.SQL(
        "SELECT NULL, NULL::bigint, NULL, NULL, NULL, NULL WHERE false")
    return sql.SQL(
        "{} UNION ALL SELECT coalesce(d.xid, d.xata_id), d.new_id, NULL,"
        " CASE WHEN d.xid IS NULL THEN NULL ELSE 'present' END,"
        " CASE WHEN d.xata_id IS NULL THEN NULL ELSE 'present' END,"
        " CASE WHEN d.xid IS NULL THEN 'target row with no source row'"
        " ELSE 'source row with no target row' END"
        " FROM xata_migration_differing d WHERE d.xid IS NULL OR d.xata_id IS NULL").format(
        differing_columns)


def value_rows(table: Table) -> tuple[sql.Composed, sql.Composed]:
    """The same row on each side: source id, then every non-link column.

    Source values are read in their own type, not cast to the plan's: a plan type that
    loses information (a shorter varchar, fewer decimals) then shows as a difference.
    """
    source = [sql.SQL("src.{}::text").format(sql.Identifier(table.id_column))]
    target = [sql.SQL("m.xata_id")]
    for column in table.value_columns:
        source.append(sql.SQL("src.{}").format(sql.Identifier(column.name)))
        # pgvector's vector holds float4 exactly as real[] does; compare in real[]'s text
        target.append(target_value(column))
    return (sql.SQL("ROW({})").format(sql.SQL(", ").join(source)),
            sql.SQL("ROW({})").format(sql.SQL(", ").join(target)))

