"""One point in time for a whole run: the source snapshot every table of a run reads.

A run's coordinating process (the executor, defs/executor.py) opens one source session,
notes the delta watermark, starts a REPEATABLE READ transaction and exports its snapshot
with `pg_export_snapshot()`, as `pg_dump -j` does. Every source connection of the run's
steps then starts each of its transactions with `SET TRANSACTION SNAPSHOT` (a
`SnapshotConnection`), so loads, the checks' source side and deferred links all read the
source as of that one instant, in whatever process they run.

The exporting session lives exactly as long as the run's coordinator: when the process
ends, however (SIGKILL included), its socket closes and PostgreSQL ends the transaction.
If the process hangs or the network between them goes, the server ends the session by
itself after `idle_in_transaction_session_timeout` (TIMEOUT_VARIABLE, default
DEFAULT_TIMEOUT seconds): a thread keeps the session busy well within that time while
the process is alive.

Where the source cannot export a snapshot (a standby, a role without the right, ...),
`RunSnapshot` says why, and each table reads in its own snapshot as before: the steps
warn about it in the run log and in their metadata, never silently.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from xata_migration.connections import connect, scrub
from xata_migration.load import sync

TIMEOUT_VARIABLE = "XATA_MIGRATION_SNAPSHOT_TIMEOUT"
DEFAULT_TIMEOUT = 120  # seconds the source keeps a silent exporting session
HOLDER_LABEL = "run snapshot"

# Run tags: where every step of a run finds the snapshot, and people see it in the UI.
SNAPSHOT_TAG = "xata_migration/source_snapshot"
AS_OF_TAG = "xata_migration/source_as_of"
WATERMARK_TAG = "xata_migration/watermark"
PROBLEM_TAG = "xata_migration/source_snapshot_problem"


@dataclass(frozen=True)
class SourceSnapshot:
    """What a step needs of the run's snapshot: its id, its time, and the watermark noted
    just before it (None: not known, so the next load is a full one)."""
    snapshot_id: str
    as_of: datetime
    watermark: datetime | None

    def tags(self) -> dict[str, str]:
        return {SNAPSHOT_TAG: self.snapshot_id, AS_OF_TAG: self.as_of.isoformat(),
                WATERMARK_TAG: self.watermark.isoformat() if self.watermark else ""}


def from_tags(tags: dict) -> SourceSnapshot | None:
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


def timeout_seconds() -> int:
    value = os.environ.get(TIMEOUT_VARIABLE, "")
    if not value:
        return DEFAULT_TIMEOUT
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{TIMEOUT_VARIABLE} must be a whole number of seconds (1 or more), "
                         f"not {value!r}.")
    return int(value)


class RunSnapshot:
    """Holds the run's exported snapshot while inside `with`. `.snapshot` is the
    SourceSnapshot, or None with `.problem` saying why the source could not export one."""

    def __init__(self, source_url: str, timeout: int | None = None):
        self.source_url = source_url
        self.timeout = timeout or timeout_seconds()
        self.snapshot: SourceSnapshot | None = None
        self.problem = ""
        self._connection: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    def tags(self) -> dict[str, str]:
        return self.snapshot.tags() if self.snapshot else {SNAPSHOT_TAG: "",
                                                           PROBLEM_TAG: self.problem}

    def __enter__(self) -> RunSnapshot:
        conn = connect(self.source_url, "source", read_only=True, label=HOLDER_LABEL)
        try:
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                         (f"{self.timeout}s",))
            conn.commit()
            mark = sync.watermark(conn)  # its own transaction, before the snapshot
            snapshot_id, as_of = conn.execute("SELECT pg_export_snapshot(), now()").fetchone()
        except psycopg.Error as error:
            conn.close()
            self.problem = ("the source cannot export a snapshot ("
                            f"{scrub(str(error).strip(), self.source_url)}), so each table "
                            "is read in its own snapshot")
            return self
        self._connection = conn
        self.snapshot = SourceSnapshot(snapshot_id, as_of, mark)
        self._keeper = threading.Thread(target=self._keep_alive, daemon=True,
                                        name="xata-migration run snapshot")
        self._keeper.start()
        return self

    def _keep_alive(self) -> None:
        """A statement now and then, so the server's idle timeout ends the session only
        if this process stops answering."""
        while not self._stop.wait(max(self.timeout / 4, 0.2)):
            try:
                self._connection.execute("SELECT 1")
            except psycopg.Error:
                return  # gone: the steps' imports fail and say so

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._keeper:
            self._keeper.join()
        if self._connection:
            self._connection.close()


class SnapshotLost(RuntimeError):
    """The run's snapshot can no longer be imported (its session ended)."""


class SnapshotConnection(psycopg.Connection):
    """A source connection whose every transaction reads the run's snapshot: one is
    begun with SET TRANSACTION SNAPSHOT on connecting and after each commit or rollback."""

    snapshot_id: str = ""

    def pin(self, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self._import_snapshot()

    def commit(self) -> None:
        super().commit()
        self._import_snapshot()

    def rollback(self) -> None:
        super().rollback()
        self._import_snapshot()

    def __exit__(self, *exc):
        self.snapshot_id = ""  # the connection ends: no transaction to begin
        return super().__exit__(*exc)

    def _import_snapshot(self) -> None:
        if not self.snapshot_id or self.closed:
            return
        try:
            self.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                sql.Literal(self.snapshot_id)))
        except psycopg.Error as error:
            super().rollback()
            raise SnapshotLost(
                f"The run's source snapshot {self.snapshot_id} can no longer be read "
                f"({str(error).strip()}): its session on the source ended (the run's "
                f"process stopped answering for {TIMEOUT_VARIABLE} seconds, or someone "
                "ended it). Run migrate_all again.") from None
