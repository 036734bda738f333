"""The run on a distributed executor: dagster-celery's, with a Redis broker and two Celery
workers started here, each a process of its own as on another machine. The run's
snapshot is held by the process that runs the executor; each step, on whichever worker,
reads the source in it. A worker killed in the middle of a step leaves its table as
before, and re-execution from failure finishes the run exactly, no id moved."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from xata_migration_tests import reexecution_job
from xata_migration_tests.support import (check_outcomes, execute_sql, free_port,
                                          verify_migration)
from xata_migration_tests.test_live_source import (EXPECT, _assert_ids_kept,
                                                   _assert_one_point_in_time, _mappings,
                                                   _runs_while_writing, prepare_live_source)

pytestmark = pytest.mark.slow
REPOSITORY = Path(__file__).resolve().parents[1]
WAIT_FOR_WORKER = 90  # seconds a worker may take to start (it imports Dagster)
WAIT_FOR_STEP = 120   # seconds for the step to be killed to start its load



class CeleryCluster:
    """redis-server and two Celery workers (one task at a time each), logging to `folder`."""

    def __init__(self, folder: Path):
        self.folder, self.processes, self.workers = folder, [], []
        port = free_port()
        self.broker = f"redis://127.0.0.1:{port}/0"
        self.backend = f"redis://127.0.0.1:{port}/1"
        self.processes.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, cwd=folder))

    def start_workers(self, count: int = 2) -> None:
        """The workers read the code location's variables (XATA_MIGRATION_PLAN and the
        URLs) from this process's environment, as pods would from theirs."""
        config = self.folder / "dagster_celery_config.py"
        config.write_text(f"broker_url = {self.broker!r}\nresult_backend = {self.backend!r}\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(self.folder), str(REPOSITORY)]))
        for number in range(1, count + 1):
            log = self.folder / f"worker{number}.log"
            self.workers.append((subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker",
                 "--concurrency=1", "--prefetch-multiplier=1", "-Q", "dagster",
                 "-n", f"xm-worker{number}@%h", "--loglevel=INFO", "--without-gossip",
                 "--without-mingle", f"--logfile={log}"], env=env, cwd=REPOSITORY), log))
        deadline = time.monotonic() + WAIT_FOR_WORKER
        for process, log in self.workers:
            while not (log.exists() and " ready." in log.read_text()):
                assert process.poll() is None, f"a Celery worker stopped: {log.read_text()}"
                assert time.monotonic() < deadline, f"no worker ready in {WAIT_FOR_WORKER} s"
                time.sleep(0.2)

    def run_config(self) -> dict:
        return {"execution": {"config": {"broker": self.broker, "backend": self.backend}}}

    def kill_running_steps(self) -> list[int]:
        """SIGKILL every worker's pool process (where a step runs); the worker itself
        notes the loss, fails the task and starts a new pool process."""
        killed = []
        for process, _ in self.workers:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
            for pid in map(int, children.split()):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return killed

    def stop(self) -> None:
        for process in [p for p, _ in self.workers] + self.processes:
            process.terminate()
        for process in [p for p, _ in self.workers] + self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def live(source_url, target_url, tmp_path, monkeypatch):
    return prepare_live_source(source_url, target_url, tmp_path, monkeypatch)


@pytest.fixture
def celery(live, tmp_path):
    if not shutil.which("redis-server"):
        if os.environ.get("XATA_MIGRATION_SKIP_CELERY") == "1":
            pytest.skip("XATA_MIGRATION_SKIP_CELERY=1: the Celery case was turned off")
        pytest.fail("redis-server is not installed: `make test` installs it "
                    "(xata_migration_tests/install_redis.sh), or set "
                    "XATA_MIGRATION_SKIP_CELERY=1 to leave this case out")
    cluster = CeleryCluster(tmp_path)
    try:
        cluster.start_workers()
        yield cluster
    finally:
        cluster.stop()


def _workers_of(instance, run_id: str) -> set[str]:
    """The Celery workers that ran the run's steps (Dagster's engine events say which)."""
    names = set()
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event and event.is_engine_event and "Celery worker" in (
                event.event_specific_data.metadata):
            names.add(event.event_specific_data.metadata["Celery worker"].value)
    return names


def test_celery_workers_run_while_the_application_writes(live, celery):
    job = reexecution_job.reconstructable_celery_migrate_all()
    with dg.instance_for_test() as instance:
        _runs_while_writing(live, celery.run_config(), runs=2, instance=instance, job=job)
        runs = instance.get_run_records()
        assert len(runs) == 3
        workers = set().union(*(_workers_of(instance, r.dagster_run.run_id) for r in runs))
        assert len(workers) == 2, workers


def _table_in_a_load(target_url: str, table: str) -> bool:
    with psycopg.connect(target_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND xact_start IS NOT NULL AND state <> 'idle' AND datname = current_database()",
            (f"xata-migration target: {table}",)).fetchone()[0] > 0


def test_a_worker_killed_mid_step_is_recovered_by_reexecution(live, celery):
    source_url, target_url = live
    execute_sql(source_url, "INSERT INTO invoice_line (xata_id, track, quantity)"
                " SELECT 'rec_big' || g, 'rec_t' || (g % 500 + 1), g % 7"
                " FROM generate_series(1, 400000) g")
    killed: list[int] = []

    def kill_during_the_load():
        deadline = time.monotonic() + WAIT_FOR_STEP
        while time.monotonic() < deadline and not _table_in_a_load(target_url, "invoice_line"):
            time.sleep(0.02)
        killed.extend(celery.kill_running_steps())

    job = reexecution_job.reconstructable_celery_migrate_all()
    with dg.instance_for_test() as instance:
        killer = threading.Thread(target=kill_during_the_load, daemon=True)
        killer.start()
        first = dg.execute_job(job, instance, run_config=celery.run_config())
        killer.join()
        assert killed and not first.success
        assert not _table_exists(target_url, "invoice_line")  # its transaction went with it
        given = _mappings(target_url, ["artist", "track", "genre"])
        second = dg.execute_job(
            job, instance, run_config=celery.run_config(),
            reexecution_options=dg.ReexecutionOptions.from_failure(first.run_id, instance))
        _assert_one_point_in_time(instance, second, ["invoice_line"])
        assert all(check_outcomes(second).values())
        _assert_ids_kept(given, _mappings(target_url, ["artist", "track", "genre"]))
    assert verify_migration(source_url, target_url, EXPECT) == 2 + 50 + 500 + 402000


def _table_exists(target_url: str, table: str) -> bool:
    with psycopg.connect(target_url) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                            (f'public."{table}"',)).fetchone()[0]
