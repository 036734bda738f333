"""Source connections that read in a held snapshot (held.py), in whatever process.

A `SnapshotConnection` begins each of its transactions with `SET TRANSACTION SNAPSHOT`:
on connecting, and after each commit or rollback before its next statement, so every
statement it runs reads the source as of the held snapshot. `source_readers` opens the
connections a table needs, all in one snapshot: the run's when there is one, else one
held for the table alone.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from xata_migration.connections import connect, give_back, reuse_or_connect
from xata_migration.snapshot.held import TIMEOUT_VARIABLE, HeldSnapshot, SourceSnapshot


class SnapshotLost(RuntimeError):
    """A held snapshot can no longer be imported (its session ended)."""


class SnapshotConnection(psycopg.Connection):
    """A source connection whose every transaction reads a held snapshot: one is begun
    with SET TRANSACTION SNAPSHOT on `pin` (which so finds a snapshot that is gone), and
    after each commit or rollback as the next statement or transaction() asks for one
    (a transaction nobody uses costs no round trip)."""

    snapshot_id: str = ""
    _import_pending: bool = False

    def pin(self, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self._import_snapshot()

    def commit(self) -> None:
        super().commit()
        self._import_pending = bool(self.snapshot_id)

    def rollback(self) -> None:
        super().rollback()
        self._import_pending = bool(self.snapshot_id)

    def cursor(self, *args, **kwargs):
        self._import_if_pending()
        return super().cursor(*args, **kwargs)

    def transaction(self, *args, **kwargs):
        self._import_if_pending()
        return super().transaction(*args, **kwargs)

    def unpin(self) -> None:
        """Its next transactions read no snapshot."""
        self.snapshot_id, self._import_pending = "", False

    def __exit__(self, *exc):
        self.unpin()  # the connection ends: no transaction to begin
        return super().__exit__(*exc)

    def _import_if_pending(self) -> None:
        if self._import_pending and (
                self.info.transaction_status == psycopg.pq.TransactionStatus.IDLE):
            self._import_pending = False
            self._import_snapshot()

    def _import_snapshot(self) -> None:
        if not self.snapshot_id or self.closed:
            return
        try:
            self.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                sql.Literal(self.snapshot_id)))
        except psycopg.Error as error:
            super().rollback()
            raise SnapshotLost(
                f"The source snapshot {self.snapshot_id} can no longer be read "
                f"({str(error).strip()}): its session on the source ended (the "
                f"process stopped answering for {TIMEOUT_VARIABLE} seconds, or someone "
                "ended it). Run migrate_all again.") from None


def open_source(url: str, label: str = "", snapshot_id: str = "",
                reuse: bool = False) -> psycopg.Connection:
    """A read-only source connection; with a `snapshot_id`, every transaction of it reads
    the source as of that exported snapshot (SnapshotLost if it cannot be imported).
    `reuse`: one a finished step gave back, if any (give_back_source when done)."""
    opener = reuse_or_connect if reuse else connect
    if not snapshot_id:
        return opener(url, "source", read_only=True, label=label)
    conn = opener(url, "source", read_only=True, label=label,
                  connection_class=SnapshotConnection)
    try:
        conn.pin(snapshot_id)
    except BaseException:
        conn.close()
        raise
    return conn


def give_back_source(conn: psycopg.Connection) -> None:
    """A source connection of open_source(reuse=True) kept for the next, its snapshot
    let go."""
    if isinstance(conn, SnapshotConnection):
        conn.unpin()  # no transaction in the snapshot after its rollback
    give_back(conn)


@dataclass
class SourceReaders:
    """Source connections reading one snapshot: `snapshot` (None: each transaction reads
    its own, and `problem` says why), `own` when it was taken for them alone."""
    connections: list[psycopg.Connection]
    snapshot: SourceSnapshot | None
    own: bool = False
    problem: str = ""


def _open_all(url: str, labels: list[str], snapshot_id: str,
              reuse: bool) -> list[psycopg.Connection]:
    opened = []
    try:
        for label in labels:
            opened.append(open_source(url, label, snapshot_id, reuse))
    except BaseException:
        for conn in opened:
            conn.close()
        raise
    return opened


@contextmanager
def source_readers(url: str, labels: list[str], run_snapshot: SourceSnapshot | None = None,
                   run_problem: str = "", reuse: bool = False):
    """One source connection per label, all reading one snapshot while inside `with`: the
    run's (`run_snapshot`) while it can still be read, else one held for them alone.
    `run_problem`: why there is no run snapshot, for the `problem` the readers report.
    `reuse`: connections other steps of this process gave back, given back on leaving."""
    with ExitStack() as stack:
        problem, connections = run_problem, None
        if run_snapshot:
            try:
                connections = _open_all(url, labels, run_snapshot.snapshot_id, reuse)
            except SnapshotLost as lost:
                problem = str(lost)
        if connections is not None:
            readers = SourceReaders(connections, run_snapshot)
        else:
            held = stack.enter_context(HeldSnapshot(url, label=f"{labels[0]} (snapshot)"))
            snapshot_id = held.snapshot.snapshot_id if held.snapshot else ""
            readers = SourceReaders(_open_all(url, labels, snapshot_id, reuse), held.snapshot,
                                    own=True, problem=problem or held.problem)
        for conn in readers.connections:
            if reuse:
                stack.callback(give_back_source, conn)
            else:
                stack.enter_context(conn)
        yield readers
