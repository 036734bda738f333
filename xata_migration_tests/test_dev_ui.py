"""`xata-migration dev --plan`: the Dagster UI on the user's own plan and on the run
history `migrate` keeps; Ctrl-C to the command stops everything it started."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from xata_migration.embedded import dagster_storage_url
from xata_migration.plan import save_plan
from xata_migration_tests.support import create_hostile_source, free_port, plan_for

pytestmark = pytest.mark.slow  # the CLI and dagster dev run as processes of their own

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "xata_migration.cli"]



def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["data"]


def _wait_for_ui(port: int, process, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            _graphql(port, "{ version }")
            return
        except OSError:
            time.sleep(1)
    raise AssertionError("the UI did not answer: " + log.read_text()[-3000:])


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (this test's DAGSTER_HOME)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_dev_opens_the_ui_on_your_plan_and_migrates_history_and_stops_on_ctrl_c(
        pg_server, source_url, target_url, tmp_path):
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    save_plan(plan, tmp_path / "plan.yaml")
    home = tmp_path / "dagster home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster_home" / "dagster.yaml").read_text())
    env = dict(os.environ, DAGSTER_HOME=str(home),
               DAGSTER_PG_URL=dagster_storage_url(pg_server.create_database("dagster")))
    databases = ["--plan", "plan.yaml", "--source-url", source_url, "--target-url", target_url]
    migrated = subprocess.run(CLI + ["migrate", *databases], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    port, log = free_port(), tmp_path / "dev.log"
    with open(log, "w") as output:
        dev = subprocess.Popen(CLI + ["dev", *databases, "--port", str(port)], env=env,
                               cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_ui(port, dev, log)
        nodes = _graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
        assert sorted("/".join(n["assetKey"]["path"]) for n in nodes) == sorted(
            t.name for t in plan.tables)
        runs = _graphql(port, "{ runsOrError { ... on Runs { results { jobName status"
                              " tags { key } } } } }")["runsOrError"]["results"]
        assert [(r["jobName"], r["status"]) for r in runs] == [("migrate_all", "SUCCESS")]
        shown = {t["key"] for t in runs[0]["tags"]}
        assert "xata_migration/source_as_of" in shown  # what people read
        assert not any(key.endswith(("/source_snapshot", "/watermark"))
                       for key in shown)  # the steps' own, hidden
        dev.send_signal(signal.SIGINT)  # to the command alone, as `kill -INT` would
        dev.wait(timeout=60)
    finally:
        if dev.poll() is None:
            dev.kill()
    deadline = time.monotonic() + 30
    while _processes_with(str(home)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_with(str(home)) == [], log.read_text()[-3000:]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
