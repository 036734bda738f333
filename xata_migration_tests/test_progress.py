"""`xata-migration migrate` tells what it does while it runs: a line as each table starts
and as it is done, and progress lines while a big table is copied."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from xata_migration.embedded import dagster_storage_url
from xata_migration.plan import save_plan
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import XATA_COLUMNS, execute_sql, plan_for

pytestmark = pytest.mark.slow  # the CLI and Dagster run as processes of their own

ROOT = Path(__file__).resolve().parents[1]
BIG_ROWS = 300_000

SOURCE = f"""
CREATE TABLE small ({XATA_COLUMNS}, name text);
CREATE UNIQUE INDEX small_id ON small (xata_id);
INSERT INTO small (xata_id, name) VALUES ('rec_s1', 'one');
CREATE TABLE big ({XATA_COLUMNS}, small text REFERENCES small (xata_id), payload text);
CREATE UNIQUE INDEX big_id ON big (xata_id);
INSERT INTO big (xata_id, small, payload)
  SELECT 'rec_b' || lpad(i::text, 7, '0'), 'rec_s1', repeat(md5(i::text), 16)
  FROM generate_series(1, {BIG_ROWS}) i;
ANALYZE big;
"""


def test_migrate_prints_each_table_and_the_progress_of_a_big_one_as_it_goes(
        pg_server, source_url, target_url, tmp_path):
    execute_sql(source_url, XATA_RUNTIME_SQL, SOURCE)
    save_plan(plan_for(source_url), tmp_path / "plan.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path), XATA_MIGRATION_PROGRESS_SECONDS="1",
               DAGSTER_PG_URL=dagster_storage_url(pg_server.create_database("dagster")))
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster_home" / "dagster.yaml").read_text())
    process = subprocess.Popen(
        [sys.executable, "-m", "xata_migration.cli", "migrate", "--plan", "plan.yaml",
         "--source-url", source_url, "--target-url", target_url],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[str, bool]] = []  # (line, whether the process was still running)
    reader = threading.Thread(target=lambda: lines.extend(
        (line.rstrip("\n"), process.poll() is None) for line in process.stdout))
    reader.start()
    try:
        process.wait(timeout=600)
    finally:
        process.kill()
    reader.join(timeout=10)
    text = "\n".join(line for line, _ in lines)
    assert process.returncode == 0, text

    def first(prefix: str) -> int:
        return next(i for i, (line, _) in enumerate(lines) if line.startswith(prefix))

    started, done = first("big: started, about 300,000 rows"), first("big: loaded in")
    progress = [i for i, (line, _) in enumerate(lines)
                if line.startswith("big: copied ") and "of about 300,000 rows (" in line]
    assert progress and started < progress[0] and progress[-1] < done, text
    for prefix in ("small: started", "small: loaded in", "big: started", "big: loaded in"):
        line, running = lines[first(prefix)]
        assert running, f"{line!r} was printed only once the command had ended"
    assert "checks 5/5 passed" in lines[done][0]
    assert "warning" not in text.lower() and "Traceback" not in text, text
