"""A source snapshot held open, for others to read the source as of that instant.

`HeldSnapshot` opens one source session, notes the delta watermark, starts a REPEATABLE
READ transaction and exports its snapshot with `pg_export_snapshot()`, as `pg_dump -j`
does. Other connections, in any process, then read in it (connections.py). A run's
coordinating process holds one for every table of the run; a table read outside such a
run holds its own for its load and checks.

The exporting session lives exactly as long as the process that holds it: when the
process ends, however (SIGKILL included), its socket closes and PostgreSQL ends the
transaction. If the process hangs or the network between them goes, the server ends the
session by itself after `idle_in_transaction_session_timeout` (TIMEOUT_VARIABLE, default
DEFAULT_TIMEOUT seconds): a thread keeps the session busy well within that time while
the process is alive.

Where the source cannot export a snapshot (a standby, a role without the right, ...),
`HeldSnapshot` says why (`problem`), and each transaction reads in its own snapshot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import psycopg

from xata_migration.connections import connect, seconds_from
from xata_migration.masking import scrub
from xata_migration.snapshot.watermark import watermark

TIMEOUT_VARIABLE = "XATA_MIGRATION_SNAPSHOT_TIMEOUT"
DEFAULT_TIMEOUT = 120  # seconds the source keeps a silent exporting session
HOLDER_LABEL = "run snapshot"


@dataclass(frozen=True)
class SourceSnapshot:
    """What a reader needs of a held snapshot: its id, its time, and the watermark noted
    just before it (None: not known, so the next load is a full one)."""
    snapshot_id: str
    as_of: datetime
    watermark: datetime | None


class HeldSnapshot:
    """Holds an exported snapshot of the source while inside `with`. `.snapshot` is the
    SourceSnapshot, or None with `.problem` saying why the source could not export one.
    `label` names the session in pg_stat_activity."""

    def __init__(self, source_url: str, timeout: int | None = None,
                 label: str = HOLDER_LABEL):
        self.source_url, self.label = source_url, label
        self.timeout = timeout or seconds_from(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT, minimum=1)
        self.snapshot: SourceSnapshot | None = None
        self.problem = ""
        self._connection: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    def __enter__(self) -> HeldSnapshot:
        conn = connect(self.source_url, "source", read_only=True, label=self.label)
        try:
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                         (f"{self.timeout}s",))
            conn.commit()
            mark = watermark(conn)  # its own transaction, before the snapshot
            snapshot_id, as_of = conn.execute("SELECT pg_export_snapshot(), now()").fetchone()
        except psycopg.Error as error:
            conn.close()
            self.problem = ("the source cannot export a snapshot ("
                            f"{scrub(str(error).strip(), self.source_url)})")
            return self
        self._connection = conn
        self.snapshot = SourceSnapshot(snapshot_id, as_of, mark)
        self._keeper = threading.Thread(target=self._keep_alive, daemon=True,
                                        name=f"xata-migration {self.label}")
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
