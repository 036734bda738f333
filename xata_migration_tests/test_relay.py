"""The COPY relay: every row arrives, in order, through many chunks and a full queue; an
error on either side stops it with that error, and leaves nothing of the COPY behind."""

import threading
import time

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus

from xata_migration.pg import relay

ROWS = 20_000
SERIES = sql.SQL("SELECT g, 'row ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE g * 0.5 END"
                 " FROM generate_series(1, {}) g").format(sql.Literal(ROWS))
RELAYED = sql.Identifier("relayed")
CREATE_RELAYED = "CREATE TABLE relayed (n int, label text, half numeric)"


@pytest.fixture
def tiny_chunks(monkeypatch):
    """A row per chunk, and a short queue: the relay waits on the sender all along."""
    monkeypatch.setattr(relay, "CHUNK_BYTES", 1)
    monkeypatch.setattr(relay, "QUEUED_CHUNKS", 4)


@pytest.mark.parametrize("binary", [True, False])
def test_every_row_arrives_in_order_through_a_full_queue(source_url, target_url, tiny_chunks,
                                                         binary):
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        target.execute(CREATE_RELAYED)
        copied = relay.copy_between(source, target, SERIES, RELAYED, binary)
        assert copied == ROWS
        # the source's COPY was read to its end: its transaction goes on
        assert source.info.transaction_status == TransactionStatus.INTRANS
        assert source.execute("SELECT 1").fetchone() == (1,)
        arrived = target.execute(
            "SELECT array_agg(n ORDER BY ctid) = array_agg(n ORDER BY n), count(*),"
            " count(*) FILTER (WHERE label = 'row ' || n"
            "  AND half IS NOT DISTINCT FROM CASE WHEN n % 7 = 0 THEN NULL ELSE n * 0.5 END)"
            " FROM relayed").fetchone()
    assert arrived == (True, ROWS, ROWS)


def test_a_target_error_stops_the_copy_with_it(source_url, target_url, tiny_chunks):
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        target.execute("CREATE TABLE relayed (n int, label text CHECK (label <> 'row 15000'),"
                       " half numeric)")
        target.commit()
        with pytest.raises(psycopg.errors.CheckViolation, match="relayed_label_check"):
            relay.copy_between(source, target, SERIES, RELAYED, True)
        target.rollback()
        assert target.execute("SELECT count(*) FROM relayed").fetchone() == (0,)


def test_a_source_error_cancels_the_copy(source_url, target_url, tiny_chunks):
    failing = sql.SQL("SELECT g, 'x', 1 / (g - 12000) FROM generate_series(1, {}) g").format(
        sql.Literal(ROWS))
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        target.execute(CREATE_RELAYED)
        target.commit()
        with pytest.raises(psycopg.errors.DivisionByZero):
            relay.copy_between(source, target, failing, RELAYED, True)
        target.rollback()
        assert target.execute("SELECT count(*) FROM relayed").fetchone() == (0,)


def test_a_lost_target_connection_is_an_error_not_a_hang(source_url, target_url, tiny_chunks):
    """The sender thread's error reaches the caller (here the source query itself ends the
    target's connection half way)."""
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        target.execute(CREATE_RELAYED)
        target.commit()
        ending = sql.SQL(
            "SELECT g, CASE WHEN g = 5000 THEN pg_terminate_backend({})::text END, 1"
            " FROM generate_series(1, {}) g").format(
            sql.Literal(target.info.backend_pid), sql.Literal(ROWS))
        with pytest.raises(psycopg.OperationalError):
            relay.copy_between(source, target, ending, RELAYED, True)
    with psycopg.connect(target_url) as target:
        assert target.execute("SELECT count(*) FROM relayed").fetchone() == (0,)


def copy_in_thread(source, target, select, seconds: float = 30):
    """copy_between in a thread of its own: the rows copied or the error raised; fails if
    it still runs after `seconds` (so a relay that hangs fails the test, not the suite).
    Also the CPU time the thread used."""
    outcome = []

    def run():
        try:
            outcome.append(relay.copy_between(source, target, select, RELAYED, True))
        except BaseException as error:
            outcome.append(error)
        outcome.append(time.thread_time())

    copying = threading.Thread(target=run, daemon=True)
    copying.start()
    copying.join(timeout=seconds)
    assert not copying.is_alive(), "the relay waits forever"
    return outcome


def test_rows_that_arrive_slowly_are_waited_for_not_spun_on(source_url, target_url):
    """Each row takes the source 20 ms: the relay waits for them (about a second in all)
    without spending that second on the CPU, and gets every one. (The rows are 4 kB, so
    the source sends every few of them; smaller ones would all come at the end.)"""
    slow = sql.SQL("SELECT g, repeat('r', 4000) || g, g * 0.5 + length(pg_sleep(0.02)::text)"
                   " FROM generate_series(1, 50) g")
    # Closed without a rollback, which would wait for a relay that hangs.
    source, target = psycopg.connect(source_url), psycopg.connect(target_url)
    try:
        target.execute(CREATE_RELAYED)
        started = time.monotonic()
        copied, cpu_seconds = copy_in_thread(source, target, slow)
        assert copied == 50
        assert cpu_seconds < (time.monotonic() - started) / 2
        assert target.execute("SELECT count(*), sum(n), sum(half) FROM relayed").fetchone() == (
            50, 1275, 637.5)
    finally:
        source.close()
        target.close()


def test_a_source_with_no_row(source_url, target_url):
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        target.execute(CREATE_RELAYED)
        empty = sql.SQL("SELECT 1, 'x', 1.0 WHERE false")
        assert relay.copy_between(source, target, empty, RELAYED, True) == 0
        assert source.execute("SELECT 1").fetchone() == (1,)
        assert target.execute("SELECT count(*) FROM relayed").fetchone() == (0,)


def test_a_lost_source_connection_is_an_error_not_a_hang(source_url, target_url, tiny_chunks):
    """The source's backend ends half way (terminated, as by an administrator)."""
    source, target = psycopg.connect(source_url), psycopg.connect(target_url, autocommit=True)
    try:
        target.execute(CREATE_RELAYED)
        ending = sql.SQL(
            "SELECT g, CASE WHEN g = 5000 THEN pg_terminate_backend(pg_backend_pid())::text"
            " END, 1 FROM generate_series(1, {}) g").format(sql.Literal(ROWS))
        error, _ = copy_in_thread(source, target, ending)
        assert isinstance(error, psycopg.OperationalError)
        assert source.closed
        assert target.execute("SELECT count(*) FROM relayed").fetchone() == (0,)
    finally:
        source.close()
        target.close()


BINARY_TRAILER = b"\xff\xff"


@pytest.mark.parametrize("failing_chunk", ["100th, the queue full", "last"])
def test_a_sender_error_reaches_the_caller_and_nothing_is_copied(
        source_url, target_url, tiny_chunks, monkeypatch, failing_chunk):
    """However full the queue is when the sending thread fails, the relay neither waits
    for it forever nor loses its error; and the COPY is cancelled, even on its last chunk
    and with no transaction around it."""
    sent, send = [], relay.LibpqWriter.write

    def failing_send(writer, chunk):
        sent.append(chunk)
        if failing_chunk == "last" and bytes(chunk) == BINARY_TRAILER:
            raise OSError("the network went away")
        if failing_chunk != "last" and len(sent) == 100:
            time.sleep(0.5)  # the relay fills the queue meanwhile
            raise OSError("the network went away")
        send(writer, chunk)

    monkeypatch.setattr(relay.LibpqWriter, "write", failing_send)
    # Closed without a rollback, which would wait for a relay that hangs.
    source, target = psycopg.connect(source_url), psycopg.connect(target_url, autocommit=True)
    try:
        target.execute(CREATE_RELAYED)
        error, _ = copy_in_thread(source, target, SERIES)
        assert (type(error), str(error)) == (OSError, "the network went away")
        assert target.execute("SELECT count(*) FROM relayed").fetchone() == (0,)
    finally:
        source.close()
        target.close()


def sender_threads() -> int:
    return sum(t.name == relay.SENDER_NAME for t in threading.enumerate())


def test_no_sender_thread_is_left_behind(source_url, target_url, tiny_chunks):
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        target.execute(CREATE_RELAYED)
        relay.copy_between(source, target, SERIES, RELAYED, True)
        with pytest.raises(psycopg.errors.UndefinedTable):  # the COPY never starts
            relay.copy_between(source, target, SERIES, sql.Identifier("missing"), True)
    assert sender_threads() == 0
