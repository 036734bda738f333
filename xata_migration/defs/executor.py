"""The run's executor: any Dagster executor, run inside one source snapshot.

Every run (the job, "Materialize all" or a selection in the UI, a re-execution from
failure) is executed by it. Around the executor it wraps (with_run_snapshot) it holds a
source snapshot (snapshot.HeldSnapshot) in the process that runs the executor, from before
the first step until the last one ends; the run's tags carry it to every step, wherever the
step runs (another process, a Celery worker, a Kubernetes pod), and show it in the UI.
By default it wraps Dagster's own choice of `in_process` or `multiprocess`, running steps
in this process (`in_process`): the tables of most Xata databases are small, and a
Python process per step costs more than their data work. `multiprocess` stays available
in the run config, with all of its options; `celery_executor`, `k8s_job_executor`,
`docker_executor` or any other are wrapped the same way (build_definitions(executor=...)).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

import dagster as dg

from xata_migration.snapshot import HeldSnapshot, SourceSnapshot

# Run tags: where every step of a run finds the snapshot, and people see it in the UI.
# The snapshot's id and watermark are only for the steps: Dagster's UI hides tags under
# `.dagster/` (dagster._core.storage.tags.HIDDEN_TAG_PREFIX) from the runs it lists.
SNAPSHOT_TAG = ".dagster/xata_migration/source_snapshot"
WATERMARK_TAG = ".dagster/xata_migration/watermark"
AS_OF_TAG = "xata_migration/source_as_of"
PROBLEM_TAG = "xata_migration/source_snapshot_problem"
# Which process coordinates a run: a later run finds runs whose process is gone.
HOST_TAG, PID_TAG = "xata_migration/host", "xata_migration/pid"

# Dagster's own choice of `in_process` or `multiprocess`, with every option of each
STEP_EXECUTION = dg.multi_or_in_process_executor.config_schema.as_field().config_type


def run_tags(held: HeldSnapshot) -> dict[str, str]:
    """The tags that hand a held snapshot (or why there is none) to a run's steps."""
    if not held.snapshot:
        return {SNAPSHOT_TAG: "", PROBLEM_TAG: held.problem + ", so each table is read in "
                "its own snapshot"}
    snapshot = held.snapshot
    return {SNAPSHOT_TAG: snapshot.snapshot_id, AS_OF_TAG: snapshot.as_of.isoformat(),
            WATERMARK_TAG: snapshot.watermark.isoformat() if snapshot.watermark else ""}


def snapshot_from_tags(tags: dict) -> SourceSnapshot | None:
    """The run's snapshot, from its tags; None when the run has none."""
    if not tags.get(SNAPSHOT_TAG):
        return None
    mark = tags.get(WATERMARK_TAG)
    return SourceSnapshot(tags[SNAPSHOT_TAG], datetime.fromisoformat(tags[AS_OF_TAG]),
                          datetime.fromisoformat(mark) if mark else None)


def problem_from_tags(tags: dict) -> str:
    """Why a run has no snapshot, in words for the run log and the metadata."""
    return tags.get(PROBLEM_TAG) or (
        "the run was not started by the project's executor (execute_in_process, say), "
        "so no snapshot was taken for it")


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, run by another user
        pass
    return False


def fail_runs_whose_process_is_gone(instance, this_run_id: str, log) -> None:
    """Runs still STARTED whose coordinating process on this machine no longer exists
    (killed with SIGKILL, or its machine's power went): marked failed, with why. Their
    tables are each as before them or complete (one transaction per table)."""
    host = socket.gethostname()
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED],
                                                   tags={HOST_TAG: host}))
    for run in runs:
        pid = run.tags.get(PID_TAG, "")
        if run.run_id == this_run_id or not pid.isdigit() or not _process_is_gone(int(pid)):
            continue
        message = (f"Run {run.run_id}'s process (pid {pid} on {host}) is gone: it was killed "
                   f"or crashed while the run was STARTED. Marked failed by run {this_run_id}. "
                   "Each table it was writing is as before that run or complete: run "
                   "migrate_all (or re-execute from failure) to finish.")
        instance.report_run_failed(run, message=message)
        log.warning(message)


class RunSnapshotExecutor(dg.Executor):
    """`inner`, run inside one held snapshot of the source. Everything else is the inner
    executor's: an engine reads its own settings off the run's executor (dagster-celery's
    loop asks it for `app_args()`, say)."""

    def __init__(self, inner: dg.Executor, source_url: str):
        self.inner, self.source_url = inner, source_url

    def __getattr__(self, name: str):  # only names this class does not have
        if name == "inner":  # not set yet (a copy being made): no inner to ask
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def retries(self):
        return self.inner.retries

    @property
    def step_dependency_config(self):
        return self.inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        instance, run_id = plan_context.instance, plan_context.run_id
        instance.add_run_tags(run_id, {HOST_TAG: socket.gethostname(),
                                       PID_TAG: str(os.getpid())})
        fail_runs_whose_process_is_gone(instance, run_id, plan_context.log)
        with HeldSnapshot(self.source_url) as held:
            instance.add_run_tags(run_id, run_tags(held))
            if held.snapshot:
                plan_context.log.info(
                    f"Every table of this run reads the source as of "
                    f"{held.snapshot.as_of.isoformat()} (snapshot {held.snapshot.snapshot_id}).")
            else:
                plan_context.log.warning(f"No single point in time for this run: "
                                         f"{held.problem}.")
            yield from self.inner.execute(plan_context, execution_plan)


def with_run_snapshot(executor_def: dg.ExecutorDefinition, source,
                      target) -> dg.ExecutorDefinition:
    """`executor_def` (any Dagster executor: its name, config and requirements unchanged),
    running every run inside one snapshot of the `source` (XataSource) database. Before any
    step, both the source's and the `target`'s (TargetDatabase) URLs must be set."""

    def create_executor(init_context) -> dg.Executor:
        target.resolved_url()  # a missing variable is named now, not by a step's config
        inner = executor_def.executor_creation_fn(init_context)
        return RunSnapshotExecutor(inner, source.resolved_url())

    return dg.ExecutorDefinition(
        name=executor_def.name, config_schema=executor_def.config_schema,
        requirements=executor_def.get_requirements, executor_creation_fn=create_executor,
        description=f"{executor_def.description or executor_def.name}, every step reading "
                    "the source as of one snapshot held for the run")


# Steps in this process unless the run config asks for `multiprocess`
IN_PROCESS_BY_DEFAULT = dg.ExecutorDefinition(
    name="xata_migration", config_schema=dg.Field(STEP_EXECUTION,
                                                  default_value={"in_process": {}}),
    requirements=dg.multi_or_in_process_executor.get_requirements,
    executor_creation_fn=dg.multi_or_in_process_executor.executor_creation_fn,
    description="Dagster's in_process (the default here) or multiprocess executor")
