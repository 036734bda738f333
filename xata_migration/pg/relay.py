"""Stream rows from a query on one server into a table of another, with COPY.

The source sends one COPY message per row; the relay reads them straight from libpq
(copied_rows), gathers them into chunks of a megabyte and hands each to a thread that
sends it to the target. So the relay goes on reading the source while the target takes a
chunk, instead of each side waiting for the other in turn (measured in
benchmarks/NOTES.md). At most QUEUED_CHUNKS chunks wait between the two: memory stays a
few megabytes whatever the table's size.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from select import POLLIN, poll

import psycopg
from psycopg import sql

from xata_migration.connections import seconds_from
from psycopg.copy import LibpqWriter
from psycopg.pq import ExecStatus

CHUNK_BYTES = 1 << 20
QUEUED_CHUNKS = 8
PROGRESS_VARIABLE, PROGRESS_SECONDS = "XATA_MIGRATION_PROGRESS_SECONDS", 10
SENDER_NAME = "xata-migration-copy-sender"


class ThreadedWriter(LibpqWriter):
    """A COPY writer that sends from a thread of its own: write() only queues the chunk
    (and waits while QUEUED_CHUNKS already wait). An error met while sending is raised
    by the next write() or by finish()."""

    def __init__(self, cursor: psycopg.Cursor):
        super().__init__(cursor)
        self._chunks: queue.Queue[bytes | bytearray] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._error: BaseException | None = None
        self._sender: threading.Thread | None = None  # started by the first write()

    def _send(self) -> None:
        try:
            while chunk := self._chunks.get():
                super().write(chunk)
        except BaseException as error:  # handed to the relay's thread
            self._error = error
            while self._chunks.get():  # keep taking chunks, or write() would wait forever
                pass

    def write(self, data) -> None:
        if self._sender is None:
            self._sender = threading.Thread(target=self._send, name=SENDER_NAME, daemon=True)
            self._sender.start()
        if self._error:
            raise self._error
        self._chunks.put(data)

    def finish(self, exc: BaseException | None = None) -> None:
        if self._sender:
            self._chunks.put(b"")  # the end: the sender stops after the chunks before it
            self._sender.join()
        try:  # the COPY ends either way, on an error cancelled (nothing of it is kept)
            super().finish(exc or self._error)
        finally:
            if self._error:
                raise self._error


def copied_rows(connection: psycopg.Connection) -> Iterator[memoryview]:
    """The rows of the COPY ... TO STDOUT just started on `connection`, one message each,
    taken from libpq directly: psycopg's Copy.read() spends about twice the CPU on each
    row (benchmarks/NOTES.md).
    Ends with the COPY's own result, so an error in the source is raised here."""
    pgconn = connection.pgconn
    while True:
        size, row = pgconn.get_copy_data(1)  # 1: never blocks
        if size > 0:
            yield row
        elif size == 0:  # nothing received yet
            _wait_for_input(pgconn)
        else:  # -1: the COPY ended, or failed (a lost connection raises OperationalError)
            break
    _raise_unless_completed(connection)


def _wait_for_input(pgconn) -> None:
    poller = poll()  # unlike select(), for any file descriptor number
    poller.register(pgconn.socket, POLLIN)
    poller.poll()
    pgconn.consume_input()  # raises OperationalError if the connection is lost


def _raise_unless_completed(connection: psycopg.Connection) -> None:
    """Read the results that follow the rows: the COPY's own, which says whether it
    completed, and nothing after it."""
    pgconn, first = connection.pgconn, None
    while True:
        while pgconn.is_busy():
            _wait_for_input(pgconn)
        result = pgconn.get_result()
        if result is None:
            break
        first = first or result
    if first is None:
        raise psycopg.OperationalError(pgconn.get_error_message(connection.info.encoding))
    if first.status != ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(first, encoding=connection.info.encoding)


def _progress(label: str, rows: int, expected: int | None, rate: float) -> str:
    total = f" of about {expected:,} rows" if expected and expected >= rows else " rows so far"
    return f"{label}: copied {rows:,}{total} ({rate:,.0f} rows/s)"


def copy_between(source: psycopg.Connection, target: psycopg.Connection,
                 select: sql.Composable, table: sql.Composable, binary: bool,
                 log=None, label: str = "", expected: int | None = None) -> int:
    """Stream COPY (select) TO STDOUT into COPY table FROM STDIN; returns the rows copied.
    With a `log`, reports the rows copied so far every PROGRESS_SECONDS (of about
    `expected`, if given), each line starting with `label`."""
    fmt = sql.SQL("(FORMAT BINARY)" if binary else "(FORMAT TEXT)")
    every = seconds_from(PROGRESS_VARIABLE, PROGRESS_SECONDS, minimum=1)
    messages, started = 0, time.monotonic()
    last_report = started
    with target.cursor() as cursor:
        with source.cursor().copy(sql.SQL("COPY ({}) TO STDOUT {}").format(select, fmt)):
            with cursor.copy(sql.SQL("COPY {} FROM STDIN {}").format(table, fmt),
                             writer=ThreadedWriter(cursor)) as into:
                chunk = bytearray()
                for message in copied_rows(source):
                    chunk += message
                    messages += 1
                    if len(chunk) >= CHUNK_BYTES:
                        into.write(chunk)
                        chunk = bytearray()
                        if log and time.monotonic() - last_report > every:
                            last_report = time.monotonic()
                            log.info(_progress(label, messages, expected,
                                               messages / (last_report - started)))
                into.write(chunk)
        return cursor.rowcount
