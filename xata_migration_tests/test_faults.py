"""Faults with a bound: a lock held on the target, a server that accepts and never answers.
Each ends within its limit plus a margin, saying what it waited for."""

import socket
import time

import dagster as dg
import psycopg
import pytest

from xata_migration.connections import ConnectionFailed, connect
from xata_migration.defs import TargetDatabase, XataSource, build_definitions
from xata_migration.errors import UsageError
from xata_migration.pg import waits
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
