"""A live source: the application keeps writing while the job runs.

A writer thread, on its own connection and bounded in time, adds in each transaction a
new artist, a new track of that artist (linking to an older track too) and an invoice
line for that track, moves an older invoice line to the new track and updates a value.
Every run during the writes reads all tables at the run's one point in time, so it
succeeds with every check green; once the writes stop, one more run makes the target
equal to the source, and no id given earlier has moved."""

import dataclasses
import logging
import os
import secrets
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from xata_migration.defs import AS_OF_TAG, PROBLEM_TAG, SNAPSHOT_TAG
from xata_migration.plan import load_plan, save_plan
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests import reexecution_job
from xata_migration_tests.support import (XATA_COLUMNS, Expectation, check_outcomes,
                                          execute_sql, migrate, plan_for, run_environment,
                                          verify_migration)
from xata_migration_tests.test_delta import TRIGGER

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own

SOURCE = f"""
CREATE TABLE artist ({XATA_COLUMNS}, name text);
CREATE UNIQUE INDEX artist_id ON artist (xata_id);
CREATE TABLE track ({XATA_COLUMNS}, artist text REFERENCES artist (xata_id),
    previous text, title text, plays integer);
CREATE UNIQUE INDEX track_id ON track (xata_id);
ALTER TABLE track ADD FOREIGN KEY (previous) REFERENCES track (xata_id);
CREATE TABLE invoice_line ({XATA_COLUMNS}, track text REFERENCES track (xata_id),
    quantity integer);
CREATE UNIQUE INDEX invoice_line_id ON invoice_line (xata_id);
CREATE TABLE genre ({XATA_COLUMNS}, name text);
CREATE UNIQUE INDEX genre_id ON genre (xata_id);
{TRIGGER.format("artist")}; {TRIGGER.format("track")}; {TRIGGER.format("invoice_line")};
INSERT INTO artist (xata_id, name) SELECT 'rec_a' || g, 'artist ' || g
  FROM generate_series(1, 50) g;
INSERT INTO track (xata_id, artist, previous, title, plays) SELECT 'rec_t' || g,
  'rec_a' || (g % 50 + 1), CASE WHEN g > 1 THEN 'rec_t' || (g / 2) END, 'track ' || g, 0
  FROM generate_series(1, 500) g;
INSERT INTO invoice_line (xata_id, track, quantity) SELECT 'rec_l' || g,
  'rec_t' || (g % 500 + 1), g % 3 + 1 FROM generate_series(1, 2000) g;
INSERT INTO genre (xata_id, name) VALUES ('rec_g1', 'rock'), ('rec_g2', 'jazz');
"""
EXPECT = {"artist": Expectation(),
          "track": Expectation(links={"artist": "artist", "previous": "track"}),
          "invoice_line": Expectation(links={"track": "track"}),
          "genre": Expectation()}
TABLES = list(EXPECT)
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
MULTIPROCESS = {"execution": {"config": {"multiprocess": {}}}}
WRITE_FOR_AT_MOST = 240  # seconds: the writer stops by itself if a test hangs


class Writer:
    """The application: one transaction after another on its own connection."""

    def __init__(self, url: str):
        self.url, self.transactions, self.error = url, 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.started = time.monotonic()
        self._thread.start()
        while not self.transactions and self._thread.is_alive():
            time.sleep(0.01)  # the first write is in before the job starts
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.transactions / self.seconds

    def _run(self):
        try:
            with psycopg.connect(self.url) as conn:
                deadline = time.monotonic() + WRITE_FOR_AT_MOST
                while not self._stop.is_set() and time.monotonic() < deadline:
                    self.write_once(conn, self.transactions)
                    self.transactions += 1
                    time.sleep(0.01)
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.error = error

    @staticmethod
    def write_once(conn, n: int):
        artist, track, line = f"rec_live_a{n}", f"rec_live_t{n}", f"rec_live_l{n}"
        with conn.transaction():
            conn.execute("INSERT INTO artist (xata_id, name) VALUES (%s, %s)",
                         (artist, f"live {n}"))
            conn.execute("INSERT INTO track (xata_id, artist, previous, title, plays) VALUES"
                         " (%s, %s, (SELECT xata_id FROM track ORDER BY random() LIMIT 1),"
                         " %s, 0)", (track, artist, f"live {n}"))
            conn.execute("INSERT INTO invoice_line (xata_id, track, quantity)"
                         " VALUES (%s, %s, 1)", (line, track))
            conn.execute("UPDATE invoice_line SET track = %s WHERE xata_id ="
                         " (SELECT xata_id FROM invoice_line ORDER BY random() LIMIT 1)",
                         (track,))
            conn.execute("UPDATE track SET plays = plays + 1, artist = %s WHERE xata_id ="
                         " (SELECT xata_id FROM track ORDER BY random() LIMIT 1)", (artist,))


def prepare_live_source(source_url, target_url, tmp_path, monkeypatch) -> tuple[str, str]:
    """The application's tables in the source, and the code location's variables set."""
    execute_sql(source_url, XATA_RUNTIME_SQL, SOURCE)
    run_environment(source_url, target_url, tmp_path, monkeypatch)
    return source_url, target_url


@pytest.fixture
def live(source_url, target_url, tmp_path, monkeypatch):
    return prepare_live_source(source_url, target_url, tmp_path, monkeypatch)


def _mappings(target_url, tables=TABLES) -> dict:
    with psycopg.connect(target_url) as conn:
        return {t: dict(conn.execute(sql.SQL("SELECT xata_id, new_id FROM {}").format(
            sql.Identifier("xata_id_map", t))).fetchall()) for t in tables}


def _load_metadata(result) -> dict[str, dict]:
    """{asset: its materialization's metadata} of a run."""
    materializations = [e.event_specific_data.materialization
                        for e in result.get_asset_materialization_events()]
    return {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
            for m in materializations}


def _assert_one_point_in_time(instance, result, tables) -> dict:
    assert result.success
    outcomes = check_outcomes(result)
    assert outcomes and all(outcomes.values()), outcomes
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags[SNAPSHOT_TAG]
    loads = _load_metadata(result)
    assert sorted(loads) == sorted(tables)
    for table, metadata in loads.items():
        assert metadata["source_as_of"] == tags[AS_OF_TAG], table
        assert metadata["source_snapshot"] == "the run's", table
    return loads


def _assert_ids_kept(earlier: dict, now: dict) -> None:
    for table in earlier:
        assert {k: now[table][k] for k in earlier[table]} == earlier[table], table


def _runs_while_writing(live, run_config, runs: int, instance, job=None) -> list[dict]:
    """`runs` runs while the writer writes, then one more: each at one point in time, no
    id moved, the last one exact. `job`: migrate_all on the project's default executor
    unless given. Returns each run's load metadata."""
    source_url, target_url = live
    job = job or reexecution_job.reconstructable_migrate_all()
    given = {t: {} for t in TABLES}
    every_run = []
    with Writer(source_url) as writer:
        for number in range(runs):
            result = dg.execute_job(job, instance, run_config=run_config)
            loads = _assert_one_point_in_time(instance, result, TABLES)
            every_run.append(loads)
            if number:  # after a verified run, the tables with Xata's trigger are deltas
                assert loads["invoice_line"]["load"].startswith("delta")
            now = _mappings(target_url)
            _assert_ids_kept(given, now)
            given = now
    assert writer.error is None and writer.transactions > 0
    final = dg.execute_job(job, instance, run_config=run_config)
    _assert_one_point_in_time(instance, final, TABLES)
    _assert_ids_kept(given, _mappings(target_url))
    rows = verify_migration(source_url, target_url, EXPECT)
    assert rows == 2 + 50 + 500 + 2000 + 3 * writer.transactions  # every row, the new too
    print(f"writer: {writer.transactions} transactions in {writer.seconds:.1f} s "
          f"({writer.rate:.0f}/s), {runs} runs during the writes and one after")
    return every_run


def test_in_process_runs_while_the_application_writes(live):
    with dg.DagsterInstance.ephemeral() as instance:
        _runs_while_writing(live, IN_PROCESS, runs=3, instance=instance)


def test_split_loads_run_while_the_application_writes(live, tmp_path):
    """Tables read in ranges by several sessions at once, in the run's snapshot."""
    plan_path = tmp_path / "plan.yaml"
    save_plan(dataclasses.replace(load_plan(plan_path), split_rows=100, split_workers=3),
              plan_path)
    with dg.DagsterInstance.ephemeral() as instance:
        first, *_ = _runs_while_writing(live, IN_PROCESS, runs=2, instance=instance)
    assert first["invoice_line"]["load"] == first["track"]["load"] == (
        "full, read in 3 ranges at once")


def test_multiprocess_runs_while_the_application_writes(live):
    with dg.instance_for_test() as instance:
        _runs_while_writing(live, MULTIPROCESS, runs=1, instance=instance)


def test_a_selection_runs_while_the_application_writes(live):
    """What the UI launches for a selection: a run of some assets only."""
    source_url, target_url = live
    job = reexecution_job.reconstructable_migrate_all()
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.execute_job(job, instance, run_config=IN_PROCESS)
        _assert_one_point_in_time(instance, first, TABLES)
        selected = ["artist", "track", "invoice_line"]
        with Writer(source_url) as writer:
            for _ in range(2):
                result = dg.execute_job(job, instance, run_config=IN_PROCESS,
                                        asset_selection=[dg.AssetKey(t) for t in selected])
                _assert_one_point_in_time(instance, result, selected)
        assert writer.error is None
        last = dg.execute_job(job, instance, run_config=IN_PROCESS,
                              asset_selection=[dg.AssetKey(t) for t in selected])
        _assert_one_point_in_time(instance, last, selected)
    verify_migration(source_url, target_url, EXPECT)


def test_a_child_read_later_than_its_parent_says_so(live):
    """A selection without the parent, after the parent gained records: nothing is
    written, and the error says why and what to run."""
    source_url, target_url = live
    job = reexecution_job.reconstructable_migrate_all()
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.execute_job(job, instance, run_config=IN_PROCESS).success
        with psycopg.connect(source_url) as conn:
            Writer.write_once(conn, 0)
        alone = dg.execute_job(job, instance, run_config=IN_PROCESS,
                               asset_selection=[dg.AssetKey("invoice_line")])
        assert not alone.success
        failed = check_outcomes(alone)
        assert failed == {("invoice_line", "links_intact"): False}
        summary = alone.get_asset_check_evaluations()[0].description
        assert "'track' was last loaded from the source as of" in summary
        assert "Run migrate_all" in summary
        assert dg.execute_job(job, instance, run_config=IN_PROCESS).success
    verify_migration(source_url, target_url, EXPECT)


def test_reexecution_from_failure_reads_a_new_snapshot(live):
    """The failed run's snapshot ended with its process: the re-executed tables read a new
    one, taken after the fix."""
    source_url, target_url = live
    execute_sql(source_url, "SET session_replication_role = replica;"  # a foreign key off
                " INSERT INTO invoice_line (xata_id, track) VALUES ('rec_bad', 'rec_gone')")
    job = reexecution_job.reconstructable_migrate_all()
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.execute_job(job, instance, run_config=IN_PROCESS)
        assert not first.success
        execute_sql(source_url, "DELETE FROM invoice_line WHERE xata_id = 'rec_bad'")
        second = dg.execute_job(
            job, instance, run_config=IN_PROCESS,
            reexecution_options=dg.ReexecutionOptions.from_failure(first.run_id, instance))
        loads = _assert_one_point_in_time(instance, second, ["invoice_line"])
        first_as_of = instance.get_run_by_id(first.run_id).tags[AS_OF_TAG]
        assert loads["invoice_line"]["source_as_of"] > first_as_of
    verify_migration(source_url, target_url, EXPECT)


def test_the_test_helper_reads_in_one_snapshot_too(live):
    """`support.migrate` (execute_in_process) takes the run's snapshot as the executor
    does, so the other tests exercise the same path."""
    source_url, target_url = live
    result = migrate(plan_for(source_url), source_url, target_url)
    times = {m["source_as_of"] for m in _load_metadata(result).values()}
    assert result.success and len(times) == 1


@pytest.fixture
def role_without_export(live):
    """A role that may read the source but not export a snapshot (as some managed
    servers' users), named in XATA_SOURCE_URL."""
    source_url, _ = live
    role, password = f"xm_no_export_{os.getpid()}", secrets.token_hex(12)
    statements = [sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                      sql.Identifier(role), sql.Literal(password)),
                  sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)),
                  sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                      sql.Identifier(role)),
                  sql.SQL("REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC")]
    with psycopg.connect(source_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    parts = urlsplit(source_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    url = urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))
    yield url, password
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_source_that_cannot_export_a_snapshot_is_read_per_table(
        live, role_without_export, monkeypatch):
    source_url, target_url = live
    url, password = role_without_export
    monkeypatch.setenv("XATA_SOURCE_URL", url)
    job = reexecution_job.reconstructable_migrate_all()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.execute_job(job, instance, run_config=IN_PROCESS)
        assert result.success and all(check_outcomes(result).values())
        tags = instance.get_run_by_id(result.run_id).tags
        assert not tags[SNAPSHOT_TAG] and "permission denied" in tags[PROBLEM_TAG]
        for table, metadata in _load_metadata(result).items():
            assert metadata["source_snapshot"].startswith(
                "this step's own: the source cannot export a snapshot"), table
        warnings = [r.user_message for r in instance.all_logs(result.run_id)
                    if r.level == logging.WARNING]
        assert any("No single point in time for this run" in w for w in warnings)
        assert sum("reads the source in a snapshot of its own" in w for w in warnings) == 4
        assert not any(password in r.user_message for r in instance.all_logs(result.run_id))
    verify_migration(source_url, target_url, EXPECT)
