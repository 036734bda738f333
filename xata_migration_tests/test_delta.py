"""Delta loads: after a verified run, a table with Xata's metadata trigger reads only the
rows written since, and still ends identical to the source, every old id unchanged."""

import itertools
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import (XATA_COLUMNS, Expectation, check_outcomes,
                                          execute_sql, migrate, plan_for, snapshot,
                                          verify_migration)

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own

TRIGGER = ("CREATE TRIGGER xata_maintain_metadata_trigger_pgroll BEFORE INSERT OR UPDATE ON {}"
           " FOR EACH ROW EXECUTE FUNCTION xata_private.maintain_metadata_trigger_pgroll()")
SOURCE = f"""
CREATE TABLE parent ({XATA_COLUMNS}, name text);
CREATE UNIQUE INDEX parent_id ON parent (xata_id);
CREATE TABLE child ({XATA_COLUMNS},
    parent text REFERENCES parent (xata_id) ON DELETE SET NULL, payload text);
CREATE UNIQUE INDEX child_id ON child (xata_id);
{TRIGGER.format("parent")};
{TRIGGER.format("child")};
INSERT INTO parent (xata_id, name) SELECT 'rec_p' || g, 'parent ' || g
  FROM generate_series(1, 50) g;
INSERT INTO child (xata_id, parent, payload) SELECT 'rec_c' || g,
  CASE WHEN g % 10 = 0 THEN NULL ELSE 'rec_p' || (g % 50 + 1) END, 'payload ' || g
  FROM generate_series(1, 500) g;
"""
EXPECT = {"parent": Expectation(), "child": Expectation(links={"parent": "parent"})}
_readers = itertools.count()
TABLES = ["parent", "child"]


@pytest.fixture
def synced(source_url, target_url):
    """A source with the trigger, migrated once (full), deleted rows deleted in the target
    so that the target is the source's exact image."""
    execute_sql(source_url, XATA_RUNTIME_SQL, SOURCE)
    plan = plan_for(source_url)
    for table in plan.tables:
        table.deleted_rows = "delete"
    first = migrate(plan, source_url, target_url)
    assert first.success and all(check_outcomes(first).values())
    assert _load(first, "child")["load"] == "full"
    return plan, source_url, target_url


def _load(result, table: str) -> dict:
    event = next(m for m in result.asset_materializations_for_node(f"migrate_{table}"))
    return {k: v.value for k, v in event.metadata.items()}


def _mapping(target_url) -> dict:
    with psycopg.connect(target_url) as conn:
        return {t: dict(conn.execute(sql.SQL("SELECT xata_id, new_id FROM {}").format(
            sql.Identifier("xata_id_map", t))).fetchall()) for t in TABLES}


def test_a_delta_reads_only_what_changed_and_ends_identical(synced):
    plan, source_url, target_url = synced
    before = _mapping(target_url)
    execute_sql(source_url,
                "UPDATE child SET payload = 'changed' WHERE xata_id = 'rec_c1'",
                "INSERT INTO child (xata_id, parent, payload) VALUES ('rec_c_new', 'rec_p3', 'n')",
                "DELETE FROM child WHERE xata_id = 'rec_c2'",
                # Xata's ON DELETE SET NULL updates the children, and the trigger marks them
                "DELETE FROM parent WHERE xata_id = 'rec_p5'")
    second = migrate(plan, source_url, target_url)
    assert second.success and all(check_outcomes(second).values())
    child = _load(second, "child")
    assert child["load"].startswith("delta: rows written since")
    # rec_c1, rec_c_new, and the 10 children of rec_p5 (rec_c4, rec_c54, ...) set NULL
    assert child["rows_read"] == 12 and child["source_rows"] == 500
    assert (child["new_ids"], child["inserted"], child["updated"]) == (1, 1, 11)
    assert (child["deleted_in_source"], child["deleted_in_target"]) == (1, 1)
    assert _load(second, "parent")["rows_read"] == 0
    assert (_load(second, "parent")["deleted_in_target"]) == 1
    after = _mapping(target_url)
    for table in TABLES:
        assert {k: after[table][k] for k in before[table]} == before[table]
    verify_migration(source_url, target_url, {
        "parent": Expectation(deleted=("rec_p5",)),
        "child": Expectation(links={"parent": "parent"}, deleted=("rec_c2",))})
    # nothing changed since: nothing read, nothing written
    unchanged = snapshot(target_url, TABLES)
    third = migrate(plan, source_url, target_url)
    assert third.success and all(check_outcomes(third).values())
    assert _load(third, "child")["rows_read"] == 0
    assert snapshot(target_url, TABLES) == unchanged


def test_a_transaction_open_during_a_run_is_read_by_the_next(synced):
    """Its rows carry its start time, before the run; they commit after the run's snapshot."""
    plan, source_url, target_url = synced
    with psycopg.connect(source_url) as writer:
        writer.execute("UPDATE child SET payload = 'slow writer' WHERE xata_id = 'rec_c7'")
        during = migrate(plan, source_url, target_url)  # does not see the open change
        assert during.success and all(check_outcomes(during).values())
        writer.commit()
    after = migrate(plan, source_url, target_url)
    assert after.success and all(check_outcomes(after).values())
    assert _load(after, "child")["load"].startswith("delta")
    assert _load(after, "child")["updated"] == 1
    verify_migration(source_url, target_url, EXPECT)


@pytest.fixture(params=["embedded", "postgresql-15"])
def least_privilege(request, pg_server, target_url):
    """The synced source, on the embedded server or on Debian's PostgreSQL 15, and a URL
    to it through a role with only CONNECT, USAGE and SELECT: no pg_read_all_stats, so
    other roles' sessions are hidden from it."""
    server = pg_server if request.param == "embedded" else request.getfixturevalue(
        "pg15_server")
    source_url = server.create_database("src")
    execute_sql(source_url, XATA_RUNTIME_SQL, SOURCE)
    plan = plan_for(source_url)
    role = f"xm_reader_{next(_readers)}"
    with psycopg.connect(source_url, autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()[0]
        for statement in ("CREATE ROLE {role} LOGIN PASSWORD 'reader'",
                          "GRANT CONNECT ON DATABASE {db} TO {role}",
                          "GRANT USAGE ON SCHEMA public TO {role}",
                          "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"):
            conn.execute(sql.SQL(statement).format(role=sql.Identifier(role),
                                                   db=sql.Identifier(database)))
    parts = urlsplit(source_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    reader_url = urlunsplit(parts._replace(netloc=f"{role}:reader@{host}"))
    first = migrate(plan, reader_url, target_url)
    assert first.success and all(check_outcomes(first).values())
    return plan, source_url, reader_url, target_url


def test_a_role_that_cannot_see_other_sessions_misses_no_open_transaction(least_privilege):
    """The application's transaction, open across a run and hidden from the migration's
    role, commits after the run's snapshot: the next load must still read its rows."""
    plan, source_url, reader_url, target_url = least_privilege
    with psycopg.connect(source_url) as writer:  # another role: the application
        writer.execute("UPDATE child SET payload = 'hidden writer' WHERE xata_id = 'rec_c7'")
        during = migrate(plan, reader_url, target_url)
        assert during.success and all(check_outcomes(during).values())
        writer.commit()
    after = migrate(plan, reader_url, target_url)
    assert after.success and all(check_outcomes(after).values())
    # the watermark could not be known during the run: this load read everything
    assert _load(after, "child")["load"] == "full"
    verify_migration(source_url, target_url, EXPECT)


def test_a_change_the_trigger_did_not_mark_fails_the_checks_then_a_full_load_fixes_it(
        synced):
    plan, source_url, target_url = synced
    # replica role: no trigger fires, so xata_updatedat stays old and the delta misses it
    execute_sql(source_url, "SET session_replication_role = replica;"
                " UPDATE child SET payload = 'unmarked' WHERE xata_id = 'rec_c9'")
    missed = migrate(plan, source_url, target_url)
    assert not missed.success
    assert not check_outcomes(missed)[("child", "values_unchanged")]
    fixed = migrate(plan, source_url, target_url)
    assert fixed.success and all(check_outcomes(fixed).values())
    assert _load(fixed, "child")["load"] == "full"
    verify_migration(source_url, target_url, EXPECT)


def test_a_changed_plan_entry_means_a_full_load(synced):
    plan, source_url, target_url = synced
    plan.table("child").deleted_rows = "keep"
    result = migrate(plan, source_url, target_url)
    assert result.success and _load(result, "child")["load"] == "full"
    assert _load(result, "parent")["load"].startswith("delta")


def test_a_target_of_an_earlier_version_is_upgraded_in_place(synced):
    """Versions before kept the loads' state in xata_migration_checks (and, earlier
    still, sync_state had no `source_as_of`): the next run moves both tables into
    xata_migration_load, rows and all, and reads a delta from the watermark they hold."""
    plan, source_url, target_url = synced
    execute_sql(source_url, "DELETE FROM child WHERE xata_id = 'rec_c2'")
    assert migrate(plan, source_url, target_url).success  # rec_c2 listed as deleted
    state = ("SELECT table_name, plan_signature, watermark, verified"
             " FROM xata_migration_load.sync_state ORDER BY 1")
    deleted = "SELECT * FROM xata_migration_load.deleted_in_source ORDER BY 1, 2"
    with psycopg.connect(target_url) as conn:
        state_before, deleted_before = (conn.execute(state).fetchall(),
                                        conn.execute(deleted).fetchall())
    assert deleted_before == [("child", "rec_c2")]
    execute_sql(target_url,
                "ALTER TABLE xata_migration_load.sync_state SET SCHEMA xata_migration_checks",
                "ALTER TABLE xata_migration_load.deleted_in_source"
                " SET SCHEMA xata_migration_checks",
                "ALTER TABLE xata_migration_checks.sync_state DROP COLUMN source_as_of",
                "DROP SCHEMA xata_migration_load")
    execute_sql(source_url, "UPDATE child SET payload = 'upgraded' WHERE xata_id = 'rec_c1'")
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    child = _load(result, "child")
    assert child["load"].startswith("delta") and child["rows_read"] == 1
    # the deleted id still listed: the fingerprints account for it, no row-by-row needed
    assert {e.metadata["compared_by"].value for e in result.get_asset_check_evaluations()
            if e.asset_key.to_user_string() == "child"} == {"fingerprint", "catalog"}
    with psycopg.connect(target_url) as conn:
        assert conn.execute(deleted).fetchall() == deleted_before
        state_after = conn.execute(state).fetchall()
        times = conn.execute("SELECT table_name, source_as_of = %s::timestamptz"
                             " FROM xata_migration_load.sync_state ORDER BY 1",
                             (child["source_as_of"],)).fetchall()
        left = conn.execute("SELECT table_name FROM information_schema.tables"
                            " WHERE table_schema = 'xata_migration_checks'").fetchall()
    # the same rows, moved; this run's loads then moved each watermark on
    assert [(t, sig, ok) for t, sig, _, ok in state_after] == \
        [(t, sig, ok) for t, sig, _, ok in state_before]
    assert all(a[2] > b[2] for a, b in zip(state_after, state_before))
    assert times == [("child", True), ("parent", True)]
    assert left == [("findings",)]
    verify_migration(source_url, target_url, {
        "parent": Expectation(),
        "child": Expectation(links={"parent": "parent"}, deleted=("rec_c2",))})
