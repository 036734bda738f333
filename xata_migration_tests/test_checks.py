"""Each check fails when what it guards is broken: tamper with a migrated target, re-check."""

import psycopg
import pytest

from xata_migration import api
from xata_migration.connections import connect
from xata_migration.verify import source_side_of
from xata_migration_tests.support import (create_hostile_source, execute_sql, migrate,
                                          plan_for, run_checks)

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own


@pytest.fixture
def migrated(source_url, target_url):
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    assert migrate(plan, source_url, target_url).success
    return plan, source_url, target_url


def test_all_checks_pass_on_a_correct_migration(migrated):
    outcomes = run_checks(*migrated, "order")
    assert set(outcomes) == {"row_counts", "id_mapping", "links_intact", "values_unchanged",
                             "schema_intact"}
    assert all(o.passed for o in outcomes.values())
    # both sides' fingerprints matched: no row had to be compared one by one
    assert {o.metadata["compared_by"] for o in outcomes.values()} == {"fingerprint",
                                                                      "catalog"}
    assert outcomes["schema_intact"].metadata["compared_by"] == "catalog"


def _where(table, xata_id):
    return f"id = (SELECT new_id FROM xata_id_map.\"{table}\" WHERE xata_id = '{xata_id}')"


# Small changes a target could suffer, and the check that must then fail. Each one gets
# past the fingerprints only if they miss it: the row-by-row comparison then never runs.
TAMPERING = {
    "minus zero became zero": ('UPDATE "User" SET "Waist" = 0 WHERE '
                               + _where("User", "rec_cn0d5r1u4s8g00000000"), "User",
                               "values_unchanged"),
    "minus zero in a real[]": ("UPDATE \"User\" SET embedding = '{0.1,0,3.4e38}' WHERE "
                               + _where("User", "user_2aBcDeF"), "User", "values_unchanged"),
    "NULL array element became 'NULL'": (
        "UPDATE \"User\" SET tags = ARRAY['a', 'NULL', 'c,d', 'quote\"s'] WHERE "
        + _where("User", "user_2aBcDeF"), "User", "values_unchanged"),
    "empty string became NULL": ('UPDATE "order" SET "select" = NULL WHERE '
                                 + _where("order", "rec_order_4"), "order",
                                 "values_unchanged"),
    "a trailing space": ("UPDATE tag SET name = name || ' ' WHERE " + _where("tag", "rec_tag_a"),
                         "tag", "values_unchanged"),
    "a microsecond later": ("UPDATE \"order\" SET placed = placed + interval '1 microsecond'"
                            " WHERE " + _where("order", "rec_order_1"), "order",
                            "values_unchanged"),
    "two links swapped": ('UPDATE "order" SET buyer = seller, seller = buyer WHERE '
                          + _where("order", "rec_order_1"), "order", "links_intact"),
    "a NULL link set, past the FOREIGN KEY": (
        "SET session_replication_role = replica; UPDATE \"order\" SET buyer = 999999 WHERE "
        + _where("order", "rec_order_3"), "order", "links_intact"),
    # bigint's own hash folds 64 bits into 32: 2^63 - 1 and 2^31 hash the same
    "a bigint that its own hash cannot tell apart": (
        "UPDATE \"User\" SET big = 2147483648 WHERE " + _where("User", "user_2aBcDeF"),
        "User", "values_unchanged"),
    "a numeric's scale (equal, not the same)": (
        "ALTER TABLE \"order\" ALTER COLUMN amount TYPE numeric;"
        " UPDATE \"order\" SET amount = amount::numeric(14, 4) WHERE "
        + _where("order", "rec_order_1"), "order", "values_unchanged"),
    "an array's bounds (its hash ignores them)": (
        "UPDATE \"User\" SET tags = ('[0:3]=' || tags::text)::text[] WHERE "
        + _where("User", "user_2aBcDeF"), "User", "values_unchanged"),
    # the record hash adds its fields' hashes: only the hash of the whole row sees this
    "two rows' values swapped": (
        "UPDATE tag t SET name = o.name FROM tag o WHERE o.id <> t.id", "tag",
        "values_unchanged"),
    "two rows' new ids swapped in the mapping": (
        "UPDATE xata_id_map.tag SET new_id = -new_id;"
        " UPDATE xata_id_map.tag m SET new_id = -o.new_id FROM xata_id_map.tag o"
        " WHERE o.xata_id <> m.xata_id", "tag", "values_unchanged"),
}


@pytest.mark.parametrize("change", TAMPERING, ids=list(TAMPERING))
def test_the_fingerprints_miss_no_small_change(migrated, change):
    plan, source_url, target_url = migrated
    statement, table, failing = TAMPERING[change]
    execute_sql(target_url, statement)
    outcomes = run_checks(plan, source_url, target_url, table)
    assert not outcomes[failing].passed
    assert outcomes[failing].metadata["compared_by"] == "row by row"


def test_the_list_of_deleted_ids_hides_no_row(migrated):
    plan, source_url, target_url = migrated
    # a live row listed as deleted in the source, and changed in the target
    execute_sql(target_url, "INSERT INTO xata_migration_load.deleted_in_source"
                " VALUES ('tag', 'rec_tag_a')",
                "UPDATE tag SET name = 'changed' WHERE " + _where("tag", "rec_tag_a"))
    outcome = run_checks(plan, source_url, target_url, "tag")["values_unchanged"]
    assert not outcome.passed and outcome.metadata["compared_by"] == "row by row"


def test_values_unchanged_names_the_changed_row(migrated):
    plan, source_url, target_url = migrated
    execute_sql(target_url, "UPDATE \"order\" SET amount = amount + 0.01 WHERE id ="
                " (SELECT new_id FROM xata_id_map.\"order\" WHERE xata_id = 'rec_order_2')")
    outcome = run_checks(plan, source_url, target_url, "order")["values_unchanged"]
    assert not outcome.passed
    assert outcome.metadata["rows_differing"] == 1
    new_id = _new_id(target_url, "order", "rec_order_2")
    assert outcome.examples == [{
        "xata_id": "rec_order_2", "new_id": new_id, "column_name": "amount",
        "source_value": "-0.01", "target_value": "0.00", "problem": "value differs"}]
    assert ("rows that differ", "", 1) in outcome.compared
    # the SQL in the report lists every finding, on the target
    with psycopg.connect(target_url) as conn:
        assert conn.execute(outcome.findings_sql).fetchall() == [
            ("rec_order_2", new_id, "amount", "-0.01", "0.00", "value differs")]
    # fixed: the check passes and its findings are gone
    execute_sql(target_url, "UPDATE \"order\" SET amount = amount - 0.01 WHERE id = %d" % new_id)
    assert run_checks(plan, source_url, target_url, "order")["values_unchanged"].passed
    with psycopg.connect(target_url) as conn:
        assert conn.execute(outcome.findings_sql).fetchall() == []


def _new_id(target_url, table, xata_id):
    with psycopg.connect(target_url) as conn:
        return conn.execute("SELECT xata_id_map.new_id(%s, %s)", (table, xata_id)).fetchone()[0]


def test_at_most_ten_examples_and_every_finding_kept(migrated):
    plan, source_url, target_url = migrated
    execute_sql(target_url, "UPDATE \"User\" SET \"emailAddress\" ="
                " coalesce(\"emailAddress\", '') || '!', tags = '{changed}',"
                " profile = '{\"changed\": 1}'")
    outcome = run_checks(plan, source_url, target_url, "User")["values_unchanged"]
    with psycopg.connect(target_url) as conn:
        rows = conn.execute("SELECT count(*) FROM \"User\"").fetchone()[0]
        findings = conn.execute(outcome.findings_sql).fetchall()
    assert outcome.metadata["rows_differing"] == rows
    assert len(findings) == 3 * rows > 10
    assert {f[2] for f in findings} == {"emailAddress", "tags", "profile"}
    assert outcome.examples == [dict(zip(("xata_id", "new_id", "column_name", "source_value",
                                          "target_value", "problem"), f))
                                for f in findings[:10]]


def test_values_unchanged_sees_a_float_sign_change(migrated):
    plan, source_url, target_url = migrated
    # -0 and 0 are equal as numbers; the check must still see the change
    execute_sql(target_url, "UPDATE \"User\" SET \"Waist\" = 0 WHERE \"Waist\"::text = '-0'")
    outcome = run_checks(plan, source_url, target_url, "User")["values_unchanged"]
    assert not outcome.passed and outcome.metadata["rows_differing"] == 1


def test_links_intact_catches_a_link_to_the_wrong_row(migrated):
    plan, source_url, target_url = migrated
    # point a link at another row that exists: the FOREIGN KEY is satisfied, the check is not
    execute_sql(target_url, "UPDATE \"tag-to-image\" SET tag = (SELECT new_id FROM"
                " xata_id_map.tag WHERE xata_id = 'rec_tag_b') WHERE id = (SELECT new_id FROM"
                " xata_id_map.\"tag-to-image\" WHERE xata_id = 'rec_t2i_1')")
    outcome = run_checks(plan, source_url, target_url, "tag-to-image")["links_intact"]
    assert not outcome.passed
    assert outcome.metadata["links"]["tag"]["wrong"] == 1
    assert outcome.metadata["links"]["image"]["wrong"] == 0
    assert outcome.examples == [{
        "xata_id": "rec_t2i_1", "new_id": _new_id(target_url, "tag-to-image", "rec_t2i_1"),
        "column_name": "tag", "source_value": "rec_tag_a",
        "target_value": str(_new_id(target_url, "tag", "rec_tag_b")),
        "problem": "links to another row than in the source"}]


def test_links_intact_catches_a_link_pointing_nowhere(migrated):
    plan, source_url, target_url = migrated
    execute_sql(target_url, "ALTER TABLE image DROP CONSTRAINT \"image_ownerId_fkey\"",
                "UPDATE image SET \"ownerId\" = 999 WHERE \"ownerId\" IS NOT NULL")
    outcome = run_checks(plan, source_url, target_url, "image")["links_intact"]
    assert not outcome.passed
    assert outcome.metadata["links"]["ownerId"]["pointing_nowhere"] == 2
    assert sorted((e["column_name"], e["target_value"], e["problem"])
                  for e in outcome.examples) == [
        ("ownerId", "999", "links to another row than in the source")] * 2 + [
        ("ownerId", "999", "links to no row")] * 2


def test_row_counts_and_mapping_catch_a_lost_row(migrated):
    plan, source_url, target_url = migrated
    execute_sql(target_url, "DELETE FROM tag WHERE id = 1")
    outcomes = run_checks(plan, source_url, target_url, "tag")
    assert not outcomes["row_counts"].passed
    metadata = dict(outcomes["row_counts"].metadata)
    assert metadata.pop("checks_seconds") >= 0
    assert metadata == {"source_rows": 2, "target_rows": 1, "mapping_rows": 2,
                        "compared_by": "row by row"}
    assert outcomes["row_counts"].compared[0] == ("rows", 2, 1)
    assert not outcomes["id_mapping"].passed
    assert outcomes["id_mapping"].metadata["mapped_without_target_row"] == 1
    lost = [e["xata_id"] for e in outcomes["id_mapping"].examples
            if e["problem"] == "mapped, but no target row"]
    assert lost and _new_id(target_url, "tag", lost[0]) == 1


def test_id_mapping_catches_a_source_id_mapped_wrongly(migrated):
    plan, source_url, target_url = migrated
    execute_sql(target_url, "UPDATE xata_id_map.tag SET xata_id = 'rec_tag_z'"
                " WHERE xata_id = 'rec_tag_b'")
    outcome = run_checks(plan, source_url, target_url, "tag")["id_mapping"]
    assert not outcome.passed
    assert outcome.metadata["source_ids_without_mapping"] == 1  # rec_tag_b


def test_row_counts_catch_a_source_row_added_since(migrated):
    plan, source_url, target_url = migrated
    execute_sql(source_url, "INSERT INTO tag (xata_id, name) VALUES ('rec_tag_new', 'new')")
    outcomes = run_checks(plan, source_url, target_url, "tag")
    assert not outcomes["row_counts"].passed
    assert not outcomes["id_mapping"].passed
    assert [(e["xata_id"], e["problem"]) for e in outcomes["row_counts"].examples] == [
        ("rec_tag_new", "in the source, not migrated")]


def test_a_failed_check_fails_the_step_and_stops_downstream(source_url, target_url):
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    # Make the plan compare `caption` as something else than the source holds: the value
    # check fails after the rows are written, the step fails, tag-to-image never runs.
    plan.table("image").column("caption").type = "varchar(3)"
    result = migrate(plan, source_url, target_url)
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [(e.asset_key.to_user_string(), e.check_name) for e in failed] == \
        [("image", "values_unchanged")]
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    failed_steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    assert failed_steps == {"migrate_image"}
    assert "migrate_tag_to_image" in skipped or "migrate_tag_to_image" not in {
        e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}


def _tag_names(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM tag")}


def test_a_table_is_loaded_and_checked_in_one_snapshot(source_url, target_url):
    """Outside a run, a table's connections hold a snapshot of their own: a change
    committed after it was taken is in neither the load nor the source's fingerprint, so
    the checks pass on the fingerprints; checks run later see the change."""
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    table = plan.table("tag")
    with connect(source_url, "source", read_only=True) as conn:
        before = source_side_of(conn, plan, table)
    with api.open_connections(source_url, target_url, "tag") as connections:
        assert connections.snapshot and connections.own_snapshot
        execute_sql(source_url, "UPDATE tag SET name = 'written after the snapshot'")
        run = api.migrate_table(plan, table, connections)
        assert source_side_of(connections.second_source, plan, table) == before
    assert run.passed and run.load.inserted == 2
    assert {o.metadata["compared_by"] for o in run.outcomes} == {"fingerprint", "catalog"}
    assert "written after the snapshot" not in _tag_names(target_url)
    assert not run_checks(plan, source_url, target_url, "tag")["values_unchanged"].passed


def test_a_source_that_exports_no_snapshot_still_loads_and_checks(source_url, target_url):
    """Connections that read no common snapshot (the source cannot export one): the
    checks compute both fingerprints themselves."""
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    with connect(source_url, "source", read_only=True) as source, \
            connect(source_url, "source", read_only=True) as second, \
            connect(target_url, "target") as target:
        run = api.migrate_table(plan, plan.table("tag"),
                                api.TableConnections(source, second, target))
    assert run.passed and run.load.inserted == 2
    assert {o.metadata["compared_by"] for o in run.outcomes} == {"fingerprint", "catalog"}
