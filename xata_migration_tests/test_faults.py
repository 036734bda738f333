"""Faults: a lock held on the target, a server that accepts and never answers (each ends
within its limit plus a margin, saying what it waited for), and a password of every
awkward character, which nothing the tool writes may show."""

import socket
import time
from urllib.parse import quote

import dagster as dg
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from xata_migration.cli import main
from xata_migration.connections import ConnectionFailed, connect
from xata_migration.defs import TargetDatabase, XataSource, build_definitions
from xata_migration.errors import UsageError
from xata_migration.pg import waits
from xata_migration.plan import save_plan
from xata_migration_tests.support import (check_outcomes, create_hostile_source,
                                          hostile_expectations, plan_for, verify_migration)

BLOCKER = "the application's own migration"


def _run(plan, source_url: str, target_url: str, instance):
    defs = build_definitions(plan, resources={"xata_source": XataSource(url=source_url),
                                              "target_database": TargetDatabase(url=target_url)})
    return defs.resolve_job_def("migrate_all").execute_in_process(instance=instance,
                                                                   raise_on_error=False)


def _mapping(target_url: str) -> list:
    with psycopg.connect(target_url) as conn:
        return conn.execute("SELECT * FROM xata_id_map.tag ORDER BY 2").fetchall()


@pytest.mark.slow  # about 10 s
def test_a_held_target_lock_ends_the_table_in_time_naming_the_blocker(
        source_url, target_url, monkeypatch):
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    with dg.DagsterInstance.ephemeral() as instance:
        assert _run(plan, source_url, target_url, instance).success
    ids = _mapping(target_url)
    limit = 3
    monkeypatch.setenv("XATA_MIGRATION_LOCK_TIMEOUT", str(limit))
    monkeypatch.setattr(waits, "LOG_EVERY", 1)
    with psycopg.connect(target_url, application_name=BLOCKER) as app:
        app.execute("LOCK TABLE tag IN ACCESS EXCLUSIVE MODE")  # held, in a transaction
        with dg.DagsterInstance.ephemeral() as instance:
            started = time.monotonic()
            result = _run(plan, source_url, target_url, instance)
            elapsed = time.monotonic() - started
            logs = [r.user_message for r in instance.all_logs(result.run_id)]
        app.rollback()
    failures = [str(e.event_specific_data.error) for e in result.all_events
                if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in result.all_events
            if e.event_type_value == "STEP_FAILURE"] == ["migrate_tag"]
    message = failures[0]
    assert f"gave up waiting for a lock after {limit} s" in message, message
    assert BLOCKER in message and "LOCK TABLE tag IN ACCESS EXCLUSIVE MODE" in message
    assert "Nothing was written" in message
    waited = [m for m in logs if "tag: waiting" in m and BLOCKER in m]
    assert waited, logs  # told while it waited
    print(f"a held lock ended the run in {elapsed:.1f} s (limit {limit} s)")
    assert elapsed < limit + 30
    assert _mapping(target_url) == ids
    with dg.DagsterInstance.ephemeral() as instance:  # the lock released: the rerun is exact
        rerun = _run(plan, source_url, target_url, instance)
    assert rerun.success and all(check_outcomes(rerun).values())
    assert _mapping(target_url) == ids
    verify_migration(source_url, target_url, hostile_expectations())


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections (the kernel completes them) and never says a
    word, as a broken proxy or load balancer does."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("role", ["source", "target"])
def test_a_server_that_never_answers_ends_within_the_connect_limit(silent_server, monkeypatch,
                                                                   role):
    monkeypatch.setenv("XATA_MIGRATION_CONNECT_TIMEOUT", "2")
    url = f"postgresql://alice:Sw0rdfish9@127.0.0.1:{silent_server}/app"
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as failed:
        connect(url, role)
    elapsed = time.monotonic() - started
    print(f"a silent {role} failed after {elapsed:.1f} s (limit 2 s)")
    assert elapsed < 2 + 5
    message = str(failed.value)
    assert f"Cannot connect to the {role} database at postgresql://alice:***@127.0.0.1" \
        in message and "waiting at most 2 s, XATA_MIGRATION_CONNECT_TIMEOUT" in message
    assert "Sw0rdfish9" not in message


def test_a_bad_timeout_setting_is_named(monkeypatch, source_url):
    monkeypatch.setenv("XATA_MIGRATION_LOCK_TIMEOUT", "a minute")
    with pytest.raises(UsageError, match="XATA_MIGRATION_LOCK_TIMEOUT must be a whole number"):
        connect(source_url, "source")


# A password of every awkward character; its parts (the letters and digits between the
# special characters) must appear in no output, log, stored run or report.
PASSWORD = "Kq7x Wm9y@Xp3z:Rt5a/Yv8b%4Fc'Hj2d\"Ns6e\\Lp1q"
PARTS = ["Kq7x", "Wm9y", "Xp3z", "Rt5a", "Yv8b", "4Fc", "Hj2d", "Ns6e", "Lp1q"]


def _with_password(url: str, form: str) -> str:
    """The test server's URL with PASSWORD (the server trusts local connections: it is
    sent and ignored), as a key=value string or a percent-encoded URL."""
    params = conninfo_to_dict(url)
    if form == "url":
        return url.replace("postgresql://postgres@",
                           f"postgresql://postgres:{quote(PASSWORD, safe='')}@", 1)
    escaped = PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
    return (f"host={params['host']} user={params['user']} dbname={params['dbname']} "
            f"password='{escaped}'")


@pytest.mark.slow  # `dagster job execute` in a process of its own
def test_an_awkward_password_is_in_no_output_log_stored_run_or_report(
        source_url, target_url, pg_server, tmp_path, monkeypatch, capsys):
    storage = pg_server.create_database("dagster")
    monkeypatch.setenv("DAGSTER_PG_URL", storage.replace("postgresql://", "postgresql+psycopg2://"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the project's dagster_home
    create_hostile_source(source_url)
    save_plan(plan_for(source_url), tmp_path / "plan.yaml")
    source, target = _with_password(source_url, "key=value"), _with_password(target_url, "url")
    assert conninfo_to_dict(source)["password"] == PASSWORD == \
        conninfo_to_dict(target)["password"]
    urls = ["--plan", str(tmp_path / "plan.yaml"), "--source-url", source,
            "--target-url", target]
    assert main(["migrate", *urls, "--log", str(tmp_path / "run.log")]) == 0
    assert main(["report", *urls, "--output", str(tmp_path / "report.md")]) == 0
    printed = capsys.readouterr()
    texts = {"printed": printed.out + printed.err,
             "run log": (tmp_path / "run.log").read_text(),
             "report": (tmp_path / "report.md").read_text(),
             "report html": (tmp_path / "report.html").read_text()}
    with psycopg.connect(storage) as conn:  # every row of Dagster's run storage, as text
        tables = conn.execute("SELECT table_name FROM information_schema.tables"
                              " WHERE table_schema = 'public'").fetchall()
        texts["run storage"] = "\n".join(
            row[0] for (table,) in tables for row in conn.execute(
                sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier("public", table))))
    assert "Every table migrated and every check passed." in texts["printed"]
    assert "ASSET_CHECK_EVALUATION" in texts["run storage"]  # the storage holds the run
    leaks = {what: [part for part in PARTS if part in text] for what, text in texts.items()}
    assert not any(leaks.values()), leaks
