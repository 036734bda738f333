"""Derived names under PostgreSQL's 63-byte limit, and connections that never leak a password."""

from urllib.parse import quote

import dagster as dg
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from xata_migration.asset_names import dagster_name
from xata_migration.connections import ConnectionFailed, connect, give_back, reuse_or_connect
from xata_migration.masking import mask_url
from xata_migration.defs import XataSource
from xata_migration.errors import UsageError
from xata_migration.plan import MAX_IDENTIFIER_BYTES, derived_name, fit_identifier
from xata_migration.snapshot import HeldSnapshot, give_back_source, open_source
from xata_migration_tests import reexecution_job
from xata_migration_tests.support import create_hostile_source, execute_sql, run_environment


def test_short_names_are_kept():
    assert derived_name("tag-to-image", "tag", "fkey") == "tag-to-image_tag_fkey"


def test_long_names_fit_and_stay_distinct():
    base = "x" * 60
    first, second = derived_name(base, "alpha", "fkey"), derived_name(base, "beta", "fkey")
    assert first != second
    assert all(len(n.encode()) <= MAX_IDENTIFIER_BYTES for n in (first, second))


def test_long_multibyte_names_are_cut_on_a_character_boundary():
    name = fit_identifier("é" * 40 + "_idx")
    assert len(name.encode()) <= MAX_IDENTIFIER_BYTES
    name.encode().decode("utf-8")  # still valid UTF-8
    assert name.startswith("é" * 27)


def test_asset_key_parts_keep_names_dagster_accepts():
    from xata_migration.asset_names import asset_key_part
    assert [asset_key_part(n) for n in ["tag-to-image", "User", "order", "1st", "a.b"]] == \
        ["tag-to-image", "User", "order", "1st", "a.b"]
    assert [asset_key_part(n) for n in ["user group", "café", "from", "config", 'x"q']] == \
        ["user_group", "caf_", "from_table", "config_table", "x_q"]


def test_step_names_are_valid_for_dagster():
    assert dagster_name("tag-to-image") == "migrate_tag_to_image"
    assert dagster_name("from") == "migrate_from"
    assert dagster_name("1st table") == "migrate_1st_table"
    assert dagster_name("teams", "owner") == "link_teams__owner"


@pytest.mark.parametrize("url, masked", [
    ("postgresql://alice:s3cr%40t@db.example:5432/app", "postgresql://alice:***@db.example:5432/app"),
    ("postgresql://alice@db/app", "postgresql://alice@db/app"),
    ("host=db user=alice password=s3cret dbname=app", "host=db user=alice password=*** dbname=app"),
    ("postgresql://db/app?password=s3cret&sslmode=require",
     "postgresql://db/app?password=***&sslmode=require"),
    ("host=db user=alice password='my secret' dbname=app",
     "host=db user=alice password='***' dbname=app"),
    ("password = 'it\\'s @:/% mine' host=db", "password = '***' host=db"),
    ("postgresql://alice:p%40ss%3Aw%2Fo%25rd%20x@db/app", "postgresql://alice:***@db/app"),
    ("postgresql://alice:p@ss@db/app", "postgresql://alice:***@db/app"),
    ("postgresql://alice@db/app?sslmode=require&password=a%20b%26c",
     "postgresql://alice@db/app?sslmode=require&password=***"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


# A password of every awkward character, in each form a user may write it; its parts
# (letters and digits between the special characters) must appear in no message.
PASSWORD = "Kq7x Wm9y@Xp3z:Rt5a/Yv8b%4Fc'Hj2d\"Ns6e"
PARTS = ["Kq7x", "Wm9y", "Xp3z", "Rt5a", "Yv8b", "4Fc", "Hj2d", "Ns6e"]


def _password_forms(socket_dir) -> list[str]:
    escaped = PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
    return [f"postgresql://alice:{quote(PASSWORD, safe='')}@/app?host={socket_dir}",
            f"postgresql:///app?host={socket_dir}&user=alice&password={quote(PASSWORD)}",
            f"host={socket_dir} user=alice password='{escaped}' dbname=app"]


def test_every_form_of_a_password_is_masked_in_errors(tmp_path):
    for url in _password_forms(tmp_path):  # a socket folder with no server in it
        assert conninfo_to_dict(url)["password"] == PASSWORD  # libpq reads it whole
        with pytest.raises(ConnectionFailed) as error:
            connect(url, "source")
        for text in (mask_url(url), str(error.value)):
            assert not [part for part in PARTS if part in text], (url, text)


def test_unreachable_database_error_has_no_password(tmp_path):
    url = f"postgresql://alice:hunter2secret@/app?host={tmp_path}&connect_timeout=2"
    with pytest.raises(ConnectionFailed) as error:
        connect(url, "source")
    message = str(error.value)
    assert "hunter2secret" not in message
    assert "source database" in message and "XATA_SOURCE_URL" in message


def test_wrong_database_name_is_reported(pg_server):
    url = pg_server.url("no_such_database_here")
    with pytest.raises(ConnectionFailed, match="no_such_database_here"):
        connect(url, "target")


def test_source_connection_is_read_only(source_url):
    import psycopg
    with connect(source_url, "source", read_only=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE should_not_exist (x int)")


def test_the_executor_names_a_source_url_that_is_not_set(monkeypatch):
    """The executor reads the source's URL before any step: a missing variable is named."""
    monkeypatch.delenv("XATA_SOURCE_URL", raising=False)
    with pytest.raises(UsageError, match="XATA_SOURCE_URL is not set.*--source-url URL"):
        XataSource().resolved_url()
    monkeypatch.setenv("XATA_SOURCE_URL", "postgresql://u:secret@h/db")
    assert XataSource().resolved_url() == "postgresql://u:secret@h/db"


@pytest.mark.parametrize("variable, option", [("TARGET_DATABASE_URL", "--target-url"),
                                              ("XATA_SOURCE_URL", "--source-url"),
                                              ("XATA_MIGRATION_PLAN", "--plan")])
def test_a_run_without_a_setting_names_it_and_writes_nothing(
        source_url, target_url, tmp_path, monkeypatch, variable, option):
    """migrate_all as `dagster job execute` runs it, one of its settings missing: it stops
    before any step with a UsageError naming the variable and the option."""
    create_hostile_source(source_url)
    run_environment(source_url, target_url, tmp_path, monkeypatch)
    monkeypatch.delenv(variable)
    if variable == "XATA_MIGRATION_PLAN":  # the code location itself cannot load
        with pytest.raises(UsageError, match=f"{variable} is not set.*{option} PATH"):
            reexecution_job.migrate_all()
        return
    with dg.DagsterInstance.ephemeral() as instance:
        with pytest.raises(UsageError, match=f"{variable} is not set.*{option} URL"):
            dg.execute_job(reexecution_job.reconstructable_migrate_all(), instance,
                           run_config={"execution": {"config": {"in_process": {}}}})
        assert not [r for r in instance.all_logs(instance.get_runs()[0].run_id)
                    if r.dagster_event and r.dagster_event.event_type_value == "STEP_START"]
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'xata%'"
                            ).fetchone()[0] == 0


def _pid_and_name(conn) -> tuple:
    return conn.execute("SELECT pg_backend_pid(), current_setting('application_name')"
                        ).fetchone()


def test_a_step_takes_the_connection_the_last_one_gave_back(target_url, monkeypatch):
    """Kept: renamed for its new table, its transaction ended (even a failed one), the
    session's settings as set up. Not kept or not taken: a connection of another kind
    (another lock timeout), one whose session was ended."""
    first = reuse_or_connect(target_url, "target", label="one")
    pid, _ = _pid_and_name(first)
    with pytest.raises(psycopg.errors.DivisionByZero):
        first.execute("SELECT 1 / 0")
    give_back(first)
    again = reuse_or_connect(target_url, "target", label="two")
    assert _pid_and_name(again) == (pid, "xata-migration target: two")
    assert again.execute("SELECT current_setting('TimeZone'), current_setting('work_mem')"
                         ).fetchone() == ("UTC", "64MB")
    give_back(again)
    monkeypatch.setenv("XATA_MIGRATION_LOCK_TIMEOUT", "7")
    other = reuse_or_connect(target_url, "target", label="three")
    assert _pid_and_name(other)[0] != pid
    assert other.execute("SHOW lock_timeout").fetchone()[0] == "7s"
    give_back(other)
    monkeypatch.delenv("XATA_MIGRATION_LOCK_TIMEOUT")
    with psycopg.connect(target_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    fresh = reuse_or_connect(target_url, "target", label="four")
    assert _pid_and_name(fresh)[0] not in (pid, None)
    give_back(fresh)


def test_a_source_connection_given_back_reads_the_next_snapshot(source_url):
    execute_sql(source_url, "CREATE TABLE t (n int); INSERT INTO t VALUES (1)")
    with HeldSnapshot(source_url) as before:
        execute_sql(source_url, "INSERT INTO t VALUES (2)")
        reader = open_source(source_url, "one", before.snapshot.snapshot_id, reuse=True)
        pid = reader.info.backend_pid
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 1
        give_back_source(reader)
        with HeldSnapshot(source_url) as after:
            reader = open_source(source_url, "two", after.snapshot.snapshot_id, reuse=True)
            assert reader.info.backend_pid == pid
            assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 2
            reader.commit()  # the next transaction reads the same snapshot
            assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 2
            give_back_source(reader)
