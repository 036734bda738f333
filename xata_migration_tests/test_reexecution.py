"""A run where one table fails is fixed and re-executed from failure, through Dagster's
re-execution API: only the failed table and what waited on it run again."""

import threading
import time

import dagster as dg
import psycopg
import pytest

from xata_migration.connections import connect
from xata_migration.load import load_table
from xata_migration.plan import lock_key
from xata_migration_tests import reexecution_job
from xata_migration_tests.support import (create_hostile_source, execute_sql,
                                          hostile_expectations, migrate, plan_for,
                                          run_environment, verify_migration)

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def _steps(instance, run_id: str, event_type: str) -> set[str]:
    return {r.dagster_event.step_key for r in instance.all_logs(run_id)
            if r.dagster_event and r.dagster_event.event_type_value == event_type}


def test_fix_and_reexecute_from_failure(source_url, target_url, tmp_path, monkeypatch):
    create_hostile_source(source_url)
    run_environment(source_url, target_url, tmp_path, monkeypatch)
    execute_sql(source_url, "UPDATE image SET \"ownerId\" = 'rec_gone' WHERE xata_id = 'rec_img_2'")
    job = reexecution_job.reconstructable_migrate_all()
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.execute_job(job, instance, run_config=IN_PROCESS)
        assert not first.success
        assert _steps(instance, first.run_id, "STEP_FAILURE") == {"migrate_image"}
        succeeded = _steps(instance, first.run_id, "STEP_SUCCESS")
        assert "migrate_User" in succeeded and "migrate_tag_to_image" not in succeeded

        execute_sql(source_url, "UPDATE image SET \"ownerId\" = NULL WHERE xata_id = 'rec_img_2'")
        second = dg.execute_job(
            job, instance, run_config=IN_PROCESS,
            reexecution_options=dg.ReexecutionOptions.from_failure(first.run_id, instance))
        assert second.success
        assert _steps(instance, second.run_id, "STEP_START") == {"migrate_image",
                                                                 "migrate_tag_to_image"}
    verify_migration(source_url, target_url, hostile_expectations())


def test_a_second_writer_waits_for_the_first(source_url, target_url):
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    with connect(target_url, "target") as holder:  # a run in progress on table `tag`
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("tag"),))
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.update(
            result=migrate(plan, source_url, target_url)))
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with psycopg.connect(target_url) as conn:
                waiting = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.05)
        assert waiting == 1 and worker.is_alive()  # blocked on the table, not interleaving
        holder.rollback()  # the first run ends
    worker.join(timeout=120)
    assert outcome["result"].success
    verify_migration(source_url, target_url, hostile_expectations())


def test_tables_starting_together_on_an_empty_target(pg_server, source_url):
    """The multiprocess executor starts independent tables at the same moment; both create
    the shared schemas. (Before the fix this failed every time on PostgreSQL's catalog
    index: duplicate key value violates unique constraint "pg_namespace_nspname_index".)"""
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    roots = [plan.table("User"), plan.table("tag"), plan.table("empty_table")]
    for _ in range(3):
        target_url = pg_server.create_database("together")
        start, errors = threading.Barrier(len(roots)), []

        def load(table):
            with connect(source_url, "source", read_only=True) as source, \
                    connect(target_url, "target") as target:
                start.wait()
                try:
                    load_table(source, target, plan, table)
                except Exception as error:  # noqa: BLE001 - collected for the assertion
                    errors.append(f"{table.name}: {error}")

        workers = [threading.Thread(target=load, args=(t,)) for t in roots]
        [w.start() for w in workers]
        [w.join(timeout=120) for w in workers]
        assert errors == []
        with psycopg.connect(target_url) as conn:
            assert conn.execute("SELECT count(*) FROM xata_id_map.\"User\"").fetchone()[0] > 0
            assert conn.execute("SELECT xata_id_map.new_id('tag', 'rec_tag_a')").fetchone()[0]
