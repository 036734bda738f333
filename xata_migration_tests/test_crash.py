"""A run killed with SIGKILL at any phase leaves each table as before or complete, and the
next run finishes correctly with every id already given unchanged.

Each test starts the real `dagster job execute`, watches the target's pg_stat_activity
until the run is in the phase under test on table `child`, and kills the whole process
group. The run's source snapshot ends with the process, or by the server's timeout when
the process hangs."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from xata_migration.plan import lock_key, save_plan
from xata_migration.snapshot import HOLDER_LABEL, TIMEOUT_VARIABLE
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests import reexecution_job
from xata_migration_tests.support import (XATA_COLUMNS, Expectation, check_outcomes,
                                          create_hostile_source, execute_sql,
                                          expected_new_id_order, hostile_expectations,
                                          migrate, plan_for,
                                          stage_tables, verify_migration)

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own

ROOT = Path(__file__).resolve().parents[1]
ROWS = 100_000
SOURCE = f"""
CREATE TABLE parent ({XATA_COLUMNS}, name text);
CREATE UNIQUE INDEX parent_id ON parent (xata_id);
CREATE TABLE child ({XATA_COLUMNS}, parent text REFERENCES parent (xata_id), payload text);
CREATE UNIQUE INDEX child_id ON child (xata_id);
INSERT INTO parent (xata_id, name) SELECT 'rec_p' || g, 'parent ' || g
  FROM generate_series(1, {ROWS}) g;
INSERT INTO child (xata_id, parent, payload) SELECT 'rec_c' || g,
  CASE WHEN g % 10 = 0 THEN NULL ELSE 'rec_p' || (g * 7 % {ROWS} + 1) END, repeat('x', 20)
  FROM generate_series(1, {ROWS}) g;
"""
EXPECT = {"parent": Expectation(), "child": Expectation(links={"parent": "parent"})}

# What the run is doing on `child`, as seen in pg_stat_activity (application_name names
# the table a session works on, query the statement)
PHASES = {
    "transfer": "COPY ",
    "write_rows": 'CREATE TABLE "public"."child" ("id"',  # CREATE TABLE AS: a first load
    "constraints": 'ALTER TABLE "public"."child" ADD CONSTRAINT',
    "checks": "hashtextextended",  # the target's fingerprint
}


@pytest.fixture(scope="module")
def crash_source(pg_server):
    url = pg_server.create_database("crash")
    execute_sql(url, XATA_RUNTIME_SQL, SOURCE)
    return url


def _start_run(tmp_path, source_url, target_url, plan_changes=None, **more_env):
    plan_path, home = tmp_path / "plan.yaml", tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # sqlite storage
    save_plan(dataclasses.replace(plan_for(source_url), **(plan_changes or {})), plan_path)
    env = dict(os.environ, XATA_SOURCE_URL=source_url, TARGET_DATABASE_URL=target_url,
               XATA_MIGRATION_PLAN=str(plan_path), DAGSTER_HOME=str(home), **more_env)
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "xata_migration.definitions",
         "-j", "migrate_all"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_when(run, target_url, pattern: str,
               session: str = "xata-migration target: child") -> None:
    """Kill the run once a target session named `session` (a LIKE pattern) runs a
    statement containing `pattern`."""
    with psycopg.connect(target_url, autocommit=True) as conn:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            seen = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s"
                " AND state = 'active' AND strpos(query, %s) > 0"
                " AND datname = current_database()",
                (session, pattern)).fetchone()[0]
            if seen:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                break
            assert run.poll() is None, "the run ended before reaching the phase"
            time.sleep(0.005)
        else:
            pytest.fail("the phase was never reached")
        # The server rolls back what the dead client left open; end those sessions now.
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name LIKE 'xata-migration%'"
                     " AND datname = current_database()")
        while conn.execute("SELECT count(*) FROM pg_stat_activity"
                           " WHERE application_name LIKE 'xata-migration%'"
                           " AND datname = current_database()").fetchone()[0]:
            time.sleep(0.05)


def _state(target_url, table: str) -> str:
    with psycopg.connect(target_url) as conn:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL",
                              (f"public.{table}", f"xata_id_map.{table}")).fetchone()
    if exists == (False, False):
        return "as before"
    verify_migration_of(target_url, table)
    return "complete"


def verify_migration_of(target_url, table):
    sources = {"parent": ["parent"], "child": ["parent", "child"]}[table]
    verify_migration(_state.source_url, target_url, {t: EXPECT[t] for t in sources})


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigkill_at_each_phase_then_rerun(crash_source, target_url, tmp_path, phase):
    _state.source_url = crash_source
    run = _start_run(tmp_path, crash_source, target_url)
    _kill_when(run, target_url, PHASES[phase])
    assert _state(target_url, "parent") == "complete"
    child = _state(target_url, "child")
    assert child == ("complete" if phase == "checks" else "as before")
    assert stage_tables(target_url) == []  # the killed load's stage went with its transaction
    with psycopg.connect(target_url) as conn:
        parent_ids = conn.execute("SELECT * FROM xata_id_map.parent ORDER BY 2").fetchall()
    result = migrate(plan_for(crash_source), crash_source, target_url)
    assert result.success and all(check_outcomes(result).values())
    assert verify_migration(crash_source, target_url, EXPECT) == 2 * ROWS
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT * FROM xata_id_map.parent ORDER BY 2").fetchall() == \
            parent_ids  # ids given before the crash never change


SPLIT = {"split_rows": 1000, "split_workers": 3}


@pytest.mark.parametrize("phase", ["transfer", "write_rows"])
def test_sigkill_during_a_split_load_then_rerun(crash_source, target_url, tmp_path, phase):
    """Killed while the ranges are read (their sessions' COPY), or while the load writes
    from the committed stage: the table as before, and the rerun exact, with the ids a
    load by one session gives and no stage left."""
    _state.source_url = crash_source
    run = _start_run(tmp_path, crash_source, target_url, SPLIT)
    session = "xata-migration target: child" + (" (range %" if phase == "transfer" else "")
    _kill_when(run, target_url, PHASES[phase], session)
    assert _state(target_url, "parent") == "complete"
    assert _state(target_url, "child") == "as before"
    assert len(stage_tables(target_url)) == 1  # the ranges' committed stage, abandoned
    with psycopg.connect(target_url) as conn:
        parent_ids = conn.execute("SELECT * FROM xata_id_map.parent ORDER BY 2").fetchall()
    plan = dataclasses.replace(plan_for(crash_source), **SPLIT)
    result = migrate(plan, crash_source, target_url)
    assert result.success and all(check_outcomes(result).values())
    assert stage_tables(target_url) == []
    assert verify_migration(crash_source, target_url, EXPECT) == 2 * ROWS
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT * FROM xata_id_map.parent ORDER BY 2").fetchall() == \
            parent_ids
        child_order = [r[0] for r in conn.execute(
            "SELECT xata_id FROM xata_id_map.child ORDER BY new_id").fetchall()]
    assert child_order == expected_new_id_order(crash_source, "child", EXPECT["child"])


def _sessions(url: str, where: str, *params) -> int:
    """Sessions on `url`'s database (other tests' processes keep theirs on the server)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {where}"
                            " AND datname = current_database()", params).fetchone()[0]


def _wait_for(condition, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"waited {seconds} s for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "hung"])
def test_a_dead_or_hung_run_leaves_no_transaction_on_the_source(
        source_url, target_url, tmp_path, stop):
    """The run is held inside its first table (the test holds that table's lock) while
    its snapshot is open; then its process is killed, or frozen as if it hung."""
    create_hostile_source(source_url)
    timeout = 5
    holder = ("application_name = %s", f"xata-migration source: {HOLDER_LABEL}")
    with psycopg.connect(target_url) as lock:
        lock.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("User"),))
        run = _start_run(tmp_path, source_url, target_url, **{TIMEOUT_VARIABLE: str(timeout)})
        try:
            _wait_for(lambda: _sessions(source_url, *holder) == 1 and _sessions(
                target_url, "wait_event_type = 'Lock'"), 120, "the run to hold its snapshot")
            os.killpg(run.pid, stop)
            ended = _wait_for(lambda: _sessions(source_url, *holder) == 0, timeout + 30,
                              "the source to end the snapshot's session")
            if stop == signal.SIGSTOP:
                assert ended >= timeout - 1  # the server's timeout ended it
        finally:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        lock.rollback()
    _wait_for(lambda: _sessions(target_url, "application_name LIKE 'xata-migration%%'") == 0,
              30, "the dead run's target sessions to end")
    print(f"{stop.name}: the snapshot's session ended {ended:.1f} s later")
    result = migrate(plan_for(source_url), source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    verify_migration(source_url, target_url, hostile_expectations())


def test_a_killed_run_is_marked_failed_by_the_next_one(crash_source, target_url, tmp_path,
                                                        monkeypatch):
    """`kill -9` leaves a run STARTED in Dagster's storage: the next run of the project's
    executor finds its process gone and marks it failed, saying why."""
    run = _start_run(tmp_path, crash_source, target_url)
    _kill_when(run, target_url, PHASES["transfer"])
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("XATA_MIGRATION_PLAN", str(tmp_path / "plan.yaml"))
    monkeypatch.setenv("XATA_SOURCE_URL", crash_source)
    monkeypatch.setenv("TARGET_DATABASE_URL", target_url)
    in_process = {"execution": {"config": {"in_process": {}}}}
    with dg.DagsterInstance.get() as instance:
        (killed,) = instance.get_runs()
        assert killed.status == dg.DagsterRunStatus.STARTED
        dead_pid = killed.tags["xata_migration/pid"]
        # while its process (here: this one, standing in) lives, a run is left alone
        instance.add_run_tags(killed.run_id, {"xata_migration/pid": str(os.getpid())})
        assert dg.execute_job(reexecution_job.reconstructable_migrate_all(), instance,
                              run_config=in_process).success
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.STARTED
        instance.add_run_tags(killed.run_id, {"xata_migration/pid": dead_pid})
        second = dg.execute_job(reexecution_job.reconstructable_migrate_all(), instance,
                                run_config=in_process)
        assert second.success
        killed = instance.get_run_by_id(killed.run_id)
        failure = [r.dagster_event.message for r in instance.all_logs(killed.run_id)
                   if r.dagster_event
                   and r.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE]
    assert killed.status == dg.DagsterRunStatus.FAILURE
    assert len(failure) == 1 and f"pid {killed.tags['xata_migration/pid']}" in failure[0]
    assert f"Marked failed by run {second.run_id}" in failure[0]
    assert verify_migration(crash_source, target_url, EXPECT) == 2 * ROWS
