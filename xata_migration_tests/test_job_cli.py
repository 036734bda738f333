"""The real command a user runs, `dagster job execute -m xata_migration.definitions -j
migrate_all`, with Dagster's run storage in PostgreSQL (dagster_home/dagster.yaml), on a
source built from the schema of the database this tool was first asked for."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg

import pytest

from xata_migration.plan import save_plan
from xata_migration.sources import build_demo_source, load_schema
from xata_migration_tests.support import Expectation, plan_for, verify_migration

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own

ROOT = Path(__file__).resolve().parents[1]


def _expectations() -> dict:
    expectations = {}
    for table in load_schema()["tables"]:
        links = {c["name"]: c["link"]["table"] for c in table.get("columns", [])
                 if c["type"] == "link"}
        expectations[table["name"]] = Expectation(links=links)
    return expectations


def test_migrate_all_through_the_dagster_cli(pg_server, source_url, target_url, tmp_path):
    rows = build_demo_source(source_url, base_rows=12)
    plan = plan_for(source_url)
    assert len(plan.tables) == 26
    assert sum(len(t.links) for t in plan.tables) == 39
    plan_path = tmp_path / "plan.yaml"
    save_plan(plan, plan_path)
    storage_url = pg_server.create_database("dagster")
    dagster_url = storage_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster_home" / "dagster.yaml").read_text())
    env = dict(os.environ, XATA_SOURCE_URL=source_url, TARGET_DATABASE_URL=target_url,
               XATA_MIGRATION_PLAN=str(plan_path), DAGSTER_HOME=str(home),
               DAGSTER_PG_URL=dagster_url)
    finished = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "xata_migration.definitions",
         "-j", "migrate_all"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert verify_migration(source_url, target_url, _expectations()) == sum(rows.values())
    with psycopg.connect(storage_url) as conn:  # the run is recorded in PostgreSQL
        status = conn.execute("SELECT status FROM runs WHERE pipeline_name = 'migrate_all'"
                              ).fetchall()
        checks = conn.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_CHECK_EVALUATION'"
        ).fetchone()[0]
    assert status == [("SUCCESS",)]
    assert checks == 120
    # dagster_home/dagster.yaml's storage keeps its connections open: a few dozen sessions
    # (creating Dagster's tables included), where dagster-postgres alone opens over a
    # thousand, one or more per event
    with psycopg.connect(pg_server.admin_url) as conn:
        sessions = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s",
                                (storage_url.rsplit("/", 1)[1].split("?")[0],)).fetchone()[0]
    assert sessions < 150, sessions
