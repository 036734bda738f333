"""migrate_all as Dagster runs it, from the outside: the environment the code location
reads, `dagster job execute` in a process of its own, the run's outcome read back from
Dagster's storage, and `dagster dev` on the same plan and databases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from xata_migration import embedded

DAGSTER_DB = "dagster"  # the embedded server's database for run history
LOG_LINES = 15  # of a failed run's log, shown with its outcome


def dagster_environment(source_url: str, target_url: str, plan_path) -> dict:
    """The job's environment. Run history goes where DAGSTER_HOME / DAGSTER_PG_URL say,
    by default to the project's dagster_home and the embedded server's `dagster` database."""
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(embedded.PROJECT_ROOT / "dagster_home"))
    if "DAGSTER_PG_URL" not in env:
        env["DAGSTER_PG_URL"] = embedded.dagster_storage_url(
            embedded.resolve_url(embedded.EMBEDDED_PREFIX + DAGSTER_DB))
    env.update({"XATA_SOURCE_URL": source_url, "TARGET_DATABASE_URL": target_url,
                "XATA_MIGRATION_PLAN": str(Path(plan_path).resolve())})
    return env


@dataclass
class RunSummary:
    """The latest migrate_all run: its id and status, the rows of each asset materialized,
    every check's outcome ((asset, check, passed)), and the process's own exit."""
    run_id: str = ""
    status: str = ""
    succeeded: bool = False
    rows: dict[str, int | None] = field(default_factory=dict)
    checks: list[tuple[str, str, bool]] = field(default_factory=list)
    exit_code: int = 0
    log_tail: list[str] = field(default_factory=list)  # a failed process's last lines

    @property
    def passed(self) -> bool:
        return self.succeeded and bool(self.checks) and all(p for _, _, p in self.checks)


def run_migrate_all(env: dict, log_path: Path, say=None) -> RunSummary:
    """`dagster job execute ... -j migrate_all`, its log to `log_path`, each of the run's
    messages (a table started, its progress, done) told to `say` as it is written; then
    the run as Dagster's storage holds it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "dagster", "job", "execute", "-m",
                                    "xata_migration.definitions", "-j", "migrate_all"],
                                   env=env, cwd=embedded.PROJECT_ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
        _follow(process, log_path, say)
    summary = read_latest_run(env)
    summary.exit_code = process.returncode
    if process.returncode != 0:
        summary.log_tail = log_path.read_text().splitlines()[-LOG_LINES:]
    return summary


FOLLOW_SECONDS = 0.5


def _follow(process: subprocess.Popen, log_path: Path, say) -> None:
    """Until the process ends: every new message of the run in its log, told to `say`.
    Reads the log file the process writes, so a message is seen within FOLLOW_SECONDS."""
    with open(log_path, encoding="utf-8", errors="replace") as log:
        pending = ""
        while True:
            ended = process.poll() is not None  # read once more after the end
            pending += log.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                message = run_message(line)
                if message and say:
                    say(message)
            if ended:
                return
            time.sleep(FOLLOW_SECONDS)


def run_message(line: str) -> str | None:
    """The message of one of Dagster's log lines ("time - dagster - LEVEL - job - run id
    - [step -] message") if it is an INFO, WARNING or ERROR; the step key (one word) left
    out, since the tool's messages name their table."""
    parts = line.split(" - ", 5)
    if len(parts) < 6 or parts[1] != "dagster" or parts[2] not in ("INFO", "WARNING", "ERROR"):
        return None
    step, _, rest = parts[5].partition(" - ")
    message = rest if rest and " " not in step else parts[5]
    return message if parts[2] == "INFO" else f"{parts[2].lower()}: {message}"


def read_latest_run(env: dict) -> RunSummary:
    """The latest migrate_all run in the storage `env` names (empty if none started)."""
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "DAGSTER_PG_URL")})
    import dagster as dg  # only here: the rest of the package's commands start faster

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="migrate_all"), limit=1)
        if not runs:
            return RunSummary()
        run = runs[0]
        summary = RunSummary(run.run_id, run.status.value,
                             run.status == dg.DagsterRunStatus.SUCCESS)
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                mat = event.event_specific_data.materialization
                rows = mat.metadata.get("dagster/row_count")
                summary.rows[mat.asset_key.to_user_string()] = rows.value if rows else None
            elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                data = event.event_specific_data
                summary.checks.append((data.asset_key.to_user_string(), data.check_name,
                                       data.passed))
    return summary


STOP_SECONDS = 20  # for `dagster dev` to stop its webserver and daemon, then they are killed


class _Stopped(Exception):
    pass


def _stop(signum, frame):
    raise _Stopped


def serve_ui(env: dict, host: str, port: int) -> int:
    """`dagster dev` on the code location, until it ends or this process is asked to stop
    (Ctrl-C, SIGTERM): then `dagster dev` and everything it started (webserver, daemon,
    code servers: its own process group) are stopped, killed after STOP_SECONDS."""
    process = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-w",
                                "workspace.yaml", "-h", host, "-p", str(port)],
                               env=env, cwd=embedded.PROJECT_ROOT, start_new_session=True)
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait()
    except _Stopped:
        _stop_group(process)
        return 0
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGINT)  # dagster dev stops what it started
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
    except ProcessLookupError:
        pass
    process.wait()
