"""A big table's first load read in ranges at once (load/split.py): every row exactly
once, the same ids and the same rows as a load by one session, nothing left behind.
A kill during a split load is in test_crash.py; a split load while the application
writes in test_live_source.py."""

import dataclasses

import psycopg
import pytest
from psycopg import sql

from xata_migration.load import split
from xata_migration.pg import id_order, ranges, target_table
from xata_migration.plan import load_plan, save_plan
from xata_migration.verify import (SourceRanges, TargetRanges, source_side_of,
                                   target_side_in_ranges, target_side_of)
from xata_migration_tests.support import (create_hostile_source, execute_sql,
                                          hostile_expectations, migrate, plan_for,
                                          stage_tables, verify_migration)

# Many rows sharing a creation time (ties broken by the id's bytes), self-links, two
# links to one table, NULL links, unicode, arrays with NULLs, JSON
BULK = """
INSERT INTO "User" (xata_id, xata_createdat, "emailAddress", tags, profile)
SELECT 'rec_u' || g, '2024-03-01+00'::timestamptz + (g % 7) * interval '1 s',
  'u' || g || '@例え.jp', ARRAY['x', NULL, g::text], jsonb_build_object('n', g, 'é', NULL)
FROM generate_series(1, 5000) g;
INSERT INTO "order" (xata_id, xata_createdat, buyer, seller, parent, "select", amount)
SELECT 'rec_bulk_' || g, '2024-03-01+00'::timestamptz + (g % 97) * interval '1 minute',
  CASE g % 3 WHEN 0 THEN NULL ELSE 'rec_u' || (g % 5000 + 1) END, 'Custom:ID-~x',
  CASE WHEN g > 1 THEN 'rec_bulk_' || (g / 2) END, 'ü' || g, g / 100.0
FROM generate_series(1, 20000) g;
"""
SPLIT = {"split_rows": 1000, "split_workers": 3}


@pytest.fixture
def bulk_source(source_url):
    create_hostile_source(source_url)
    execute_sql(source_url, BULK)
    return source_url


def _contents(url: str, plan) -> dict:
    """Every target table's rows and every mapping, as text, in id order."""
    shot = {}
    with psycopg.connect(url) as conn:
        for table in plan.tables:
            shot[table.target] = conn.execute(sql.SQL(
                "SELECT t::text FROM {} t ORDER BY 1").format(
                sql.Identifier("public", table.target))).fetchall()
            if not table.kept:
                shot["map:" + table.name] = conn.execute(sql.SQL(
                    "SELECT xata_id, new_id FROM {} ORDER BY new_id").format(
                    sql.Identifier("xata_id_map", table.name))).fetchall()
    return shot


def _loads(result) -> dict[str, str]:
    return {e.event_specific_data.materialization.asset_key.to_user_string():
            e.event_specific_data.materialization.metadata["load"].value
            for e in result.get_asset_materialization_events()
            if "load" in e.event_specific_data.materialization.metadata}


@pytest.mark.parametrize("ranges_of", ["id order", "pages"])
def test_a_split_load_gives_the_same_ids_and_rows(bulk_source, pg_server, ranges_of):
    """Ranges of the id order, numbered in it; or, where an order column may be NULL,
    ranges of pages, then ids given over the whole stage."""
    if ranges_of == "pages":
        execute_sql(bulk_source, 'ALTER TABLE "order" ALTER xata_createdat DROP NOT NULL',
                    'ALTER TABLE "User" ALTER xata_createdat DROP NOT NULL')
    one_session, in_ranges = pg_server.create_database("tgt"), pg_server.create_database("tgt")
    plan = plan_for(bulk_source)
    with psycopg.connect(bulk_source) as conn:
        assert split.order_never_null(conn, plan, plan.table("order")) == (
            ranges_of == "id order")
    unsplit = migrate(plan, bulk_source, one_session)  # the plan's default: no split
    assert unsplit.success and set(_loads(unsplit).values()) == {"full"}
    result = migrate(dataclasses.replace(plan, **SPLIT), bulk_source, in_ranges)
    assert result.success
    loads = _loads(result)
    assert loads["order"] == loads["User"] == "full, read in 3 ranges at once"
    assert loads["tag"] == "full"  # one page: under split_rows
    by_ranges = {(e.asset_key.to_user_string(), e.metadata["fingerprint_ranges"].value)
                 for e in result.get_asset_check_evaluations()
                 if "fingerprint_ranges" in e.metadata}
    assert by_ranges == {(name, "source 3, target 3, each side's at once")
                         for name in ("order", "User")}
    assert _contents(in_ranges, plan) == _contents(one_session, plan)
    assert verify_migration(bulk_source, in_ranges, hostile_expectations()) > 25_000
    assert stage_tables(in_ranges) == []


def _sides_in_ranges(source_url, target_url, plan, table, workers):
    """Both sides' fingerprints of `table`, each added up from `workers` page ranges."""
    name = sql.Identifier(plan.source_schema, table.name)
    with psycopg.connect(source_url) as conn:
        conditions = ranges.page_conditions(conn, name, workers)
    with SourceRanges(plan, table) as source_parts:
        for rows in conditions:  # each part takes a session over, as a range's
            source_parts(psycopg.connect(source_url), rows, len(conditions))
        target_side = target_side_in_ranges(TargetRanges(target_url, workers), plan, table)
        return source_parts.side(), target_side


def _whole(side):
    return dataclasses.replace(side, ranges=1)


def test_fingerprints_by_ranges_are_the_whole_tables(bulk_source, target_url):
    """Each side's fingerprint added up from ranges of pages, at any number of ranges, is
    the one of the whole table in one scan; and a value changed or a row removed in the
    target changes it as it changes the whole's."""
    plan = dataclasses.replace(plan_for(bulk_source), **SPLIT)
    assert migrate(plan, bulk_source, target_url).success
    with psycopg.connect(bulk_source) as source, psycopg.connect(target_url) as target:
        whole = {t.name: (source_side_of(source, plan, t), target_side_of(target, plan, t))
                 for t in plan.tables}
    for table in plan.tables:
        for workers in (1, 2, 3, 7):
            source_side, target_side = _sides_in_ranges(bulk_source, target_url, plan, table,
                                                        workers)
            assert (_whole(source_side), _whole(target_side)) == whole[table.name]
            assert source_side.sum == target_side.sum
            assert 1 <= target_side.ranges <= workers
    order = plan.table("order")
    _, three = _sides_in_ranges(bulk_source, target_url, plan, order, 3)
    assert three.ranges == 3
    written = target_table(plan, order)
    with psycopg.connect(target_url, autocommit=True) as target:
        target.execute(sql.SQL("UPDATE {} SET amount = amount + 1 WHERE id = 20000").format(
            written))
        _, changed = _sides_in_ranges(bulk_source, target_url, plan, order, 3)
        target.execute("SET session_replication_role = replica")  # its links' triggers off
        target.execute(sql.SQL("DELETE FROM {} WHERE id = 1").format(written))
    _, removed = _sides_in_ranges(bulk_source, target_url, plan, order, 3)
    with psycopg.connect(target_url) as target:
        assert _whole(removed) == target_side_of(target, plan, order)
    assert changed.rows == three.rows and changed.sum != three.sum
    assert removed.rows == three.rows - 1 and removed.sum != changed.sum
    assert removed.rows_without_mapping == 0 and removed.mapping_rows == three.mapping_rows


def test_target_ranges_of_one_id_or_none_are_the_whole_table(bulk_source, target_url):
    """Ranges of the new ids when the table holds a single id, then none: one range (or
    none to split), the same side as the whole table's."""
    plan = plan_for(bulk_source)
    assert migrate(plan, bulk_source, target_url).success
    order = plan.table("order")
    written = target_table(plan, order)
    deletes = [sql.SQL("DELETE FROM {t} WHERE id > (SELECT min(id) FROM {t})").format(
        t=written), sql.SQL("DELETE FROM {}").format(written)]
    for delete, rows_left in zip(deletes, (1, 0)):
        with psycopg.connect(target_url, autocommit=True) as target:
            target.execute("SET session_replication_role = replica")  # links' triggers off
            target.execute(delete)
            whole = target_side_of(target, plan, order)
            mapped = target.execute('SELECT count(*) FROM xata_id_map."order"').fetchone()[0]
        assert whole.rows == rows_left and whole.mapping_rows == mapped > 20_000
        for workers in (2, 3):
            side = target_side_in_ranges(TargetRanges(target_url, workers), plan, order)
            assert _whole(side) == whole and side.ranges == 1


def test_page_ranges_hold_every_row_once(bulk_source):
    """Pages split at every count, the last range open: rows moved by updates (new
    versions on later pages) are read where the snapshot sees them."""
    execute_sql(bulk_source, 'UPDATE "order" SET amount = amount + 1 WHERE xata_id LIKE'
                " 'rec_bulk_1%'")
    order = sql.Identifier("public", "order")
    with psycopg.connect(bulk_source) as conn:
        every = conn.execute('SELECT count(*) FROM "order"').fetchone()[0]
        assert ranges.table_pages(conn, order) > 100
        for workers in (1, 2, 3, 7, 1000):
            bounds = ranges.page_ranges(conn, order, workers)
            assert bounds[0][0] is None and bounds[-1][1] is None
            assert all(end == start for (_, end), (start, _) in zip(bounds, bounds[1:]))
            assert len(bounds) == min(workers, ranges.table_pages(conn, order) + 1)
            seen = sum(conn.execute(sql.SQL('SELECT count(*) FROM "order" o WHERE {}').format(
                condition)).fetchone()[0]
                for condition in ranges.page_conditions(conn, order, workers, alias="o"))
            assert seen == every, workers


def test_key_ranges_follow_the_id_order(bulk_source):
    """Ranges of the id order: each a run of consecutive places in the order new ids
    follow, one after the other, together every row."""
    plan = plan_for(bulk_source)
    order = plan.table("order")
    with psycopg.connect(bulk_source) as conn:
        every = conn.execute('SELECT count(*) FROM "order"').fetchone()[0]
        for workers in (2, 3, 8):
            ranges = split.key_ranges(conn, plan, order, workers)
            assert len(ranges) == workers
            places = [conn.execute(sql.SQL(
                "WITH ordered AS (SELECT row_number() OVER (ORDER BY {}) AS place, src.*"
                ' FROM "order" src) SELECT min(place), max(place), count(*) FROM ordered src'
                " WHERE {}").format(id_order(order), split.key_condition(plan, order, *b))
            ).fetchone() for b in ranges]
            assert places[0][0] == 1 and places[-1][1] == every
            for (first, last, count), following in zip(places, places[1:] + [None]):
                assert last - first + 1 == count
                assert following is None or following[0] == last + 1


def test_the_plan_keeps_its_split_settings(bulk_source, tmp_path):
    path = tmp_path / "plan.yaml"
    save_plan(dataclasses.replace(plan_for(bulk_source), **SPLIT), path)
    assert (load_plan(path).split_rows, load_plan(path).split_workers) == (1000, 3)
    text = path.read_text().replace("split_workers: 3", "split_workers: 0")
    path.write_text(text)
    with pytest.raises(Exception, match="split_workers"):
        load_plan(path)


def test_an_abandoned_stage_is_dropped_by_the_next_load(bulk_source, target_url):
    """A split load's process killed: its committed stage is dropped by the next load, a
    live session's never."""
    plan = dataclasses.replace(plan_for(bulk_source), **SPLIT)
    with psycopg.connect(target_url, autocommit=True) as live:
        live_pid = live.info.backend_pid
        live.execute("CREATE SCHEMA xata_migration_load")
        for pid in (live_pid, 999_999_999):
            live.execute(sql.SQL("CREATE UNLOGGED TABLE {} (xid text)").format(
                sql.Identifier("xata_migration_load", f"load_stage_{pid}")))
        assert migrate(plan, bulk_source, target_url).success
        assert stage_tables(target_url) == [f"xata_migration_load.load_stage_{live_pid}"]
    verify_migration(bulk_source, target_url, hostile_expectations())
