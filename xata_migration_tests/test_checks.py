"""Each check fails when what it guards is broken: tamper with a migrated target, re-check."""

import pytest

from xata_migration_tests.support import (create_hostile_source, execute_sql, migrate, plan_for,
                                          run_checks)


@pytest.fixture
def migrated(source_url, target_url):
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    assert migrate(plan, source_url, target_url).success
    return plan, source_url, target_url


def test_all_checks_pass_on_a_correct_migration(migrated):
    outcomes = run_checks(*migrated, "order")
    assert set(outcomes) == {"row_counts", "id_mapping", "links_intact", "values_unchanged"}
    assert all(o.passed for o in outcomes.values())


def test_values_unchanged_names_the_changed_row(migrated):
    plan, source_url, target_url = migrated
    execute_sql(target_url, "UPDATE \"order\" SET amount = amount + 0.01 WHERE id ="
                " (SELECT new_id FROM xata_id_map.\"order\" WHERE xata_id = 'rec_order_2')")
    outcome = run_checks(plan, source_url, target_url, "order")["values_unchanged"]
    assert not outcome.passed
    assert outcome.metadata["rows_differing"] == 1
    assert "rec_order_2" in outcome.metadata["examples"][0]


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


def test_links_intact_catches_a_link_pointing_nowhere(migrated):
    plan, source_url, target_url = migrated
    execute_sql(target_url, "ALTER TABLE image DROP CONSTRAINT \"image_ownerId_fkey\"",
                "UPDATE image SET \"ownerId\" = 999 WHERE \"ownerId\" IS NOT NULL")
    outcome = run_checks(plan, source_url, target_url, "image")["links_intact"]
    assert not outcome.passed
    assert outcome.metadata["links"]["ownerId"]["pointing_nowhere"] == 2


def test_row_counts_and_mapping_catch_a_lost_row(migrated):
    plan, source_url, target_url = migrated
    execute_sql(target_url, "DELETE FROM tag WHERE id = 1")
    outcomes = run_checks(plan, source_url, target_url, "tag")
    assert not outcomes["row_counts"].passed
    assert outcomes["row_counts"].metadata == {"source_rows": 2, "target_rows": 1,
                                               "mapping_rows": 2}
    assert not outcomes["id_mapping"].passed
    assert outcomes["id_mapping"].metadata["mapped_without_target_row"] == 1


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
