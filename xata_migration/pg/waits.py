"""Waits for a lock on the target, bounded and explained.

Every session of the tool has lock_timeout = XATA_MIGRATION_LOCK_TIMEOUT
(connections.py). While a table's target session waits for a lock, a `LockWatch` asks
the server, on a connection of its own, which sessions block it (pg_blocking_pids) and
tells the step's log every LOG_EVERY seconds: pid, application_name, the first words of
its query, since when. If the wait outlasts the limit, `explained` turns PostgreSQL's
lock_not_available into a LoadError naming the same sessions and what to do.
"""

from __future__ import annotations

import threading
import time

import psycopg

from xata_migration.connections import (DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT_VARIABLE, connect,
                                        seconds_from)
from xata_migration.errors import LoadError

LOG_EVERY = 10  # seconds between two lines about the same wait
POLL_EVERY = 1.0

BLOCKERS_SQL = (
    "SELECT b.pid, b.application_name, left(regexp_replace(b.query, '\\s+', ' ', 'g'), 80),"
    " b.state, coalesce(b.xact_start, b.query_start)"
    " FROM unnest(pg_blocking_pids(%s)) p(pid) JOIN pg_stat_activity b ON b.pid = p.pid"
    " ORDER BY b.pid")


def describe(blockers: list[tuple]) -> str:
    return "; ".join(
        f"pid {pid} ({application or 'no application_name'}, {state}, in a transaction "
        f"since {since:%Y-%m-%d %H:%M:%S %Z}): {query!r}"
        for pid, application, query, state, since in blockers)


class LockWatch:
    """While inside `with`, watches the target session `pid` for lock waits (on its own
    connection to `target_url`; none without a URL). `blockers`: the sessions last seen
    blocking it."""

    def __init__(self, target_url: str, pid: int, label: str, log=None):
        self.target_url, self.pid, self.label, self.log = target_url, pid, label, log
        self.blockers: list[tuple] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LockWatch:
        if self.target_url:
            self._thread = threading.Thread(target=self._watch, daemon=True,
                                            name=f"xata-migration lock watch: {self.label}")
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _watch(self) -> None:
        if self._stop.wait(POLL_EVERY):
            return  # done before the first look: a short step never opens a connection
        try:
            with connect(self.target_url, "target", label=f"{self.label} (lock watch)") as conn:
                conn.autocommit = True
                self._poll(conn)
        except (psycopg.Error, LoadError):
            return  # only explains waits: the step itself reports a lost server

    def _poll(self, conn) -> None:
        waiting_since, last_told = None, 0.0
        while not self._stop.wait(POLL_EVERY):
            blockers = conn.execute(BLOCKERS_SQL, (self.pid,)).fetchall()
            if not blockers:
                waiting_since = None
                continue
            self.blockers = blockers
            now = time.monotonic()
            waiting_since = waiting_since or now
            if self.log and now - last_told >= LOG_EVERY:
                last_told = now
                self.log.warning(f"{self.label}: waiting {now - waiting_since:.0f} s for a "
                                 f"lock held by {describe(blockers)}")

    def explained(self, error: psycopg.errors.LockNotAvailable) -> LoadError:
        """The error for a wait that outlasted the limit; nothing of it was written."""
        held_by = (f" It was held by {describe(self.blockers)}." if self.blockers else "")
        return LoadError(
            f"{self.label}: gave up waiting for a lock after "
            f"{seconds_from(LOCK_TIMEOUT_VARIABLE, DEFAULT_LOCK_TIMEOUT)} s "
            f"({LOCK_TIMEOUT_VARIABLE}; {str(error).strip().splitlines()[0]}).{held_by} "
            "Nothing was written. Let that session finish or end it, then run again; or "
            f"give {LOCK_TIMEOUT_VARIABLE} more seconds (0 waits for as long as it takes).")
