"""Connections to the source and the target, with settings that make values comparable.

Both sides use the same TimeZone, DateStyle and float output, so a value's text is the
same on either server. The source connection is read-only: nothing is ever written there.
Every wait is bounded: connecting (XATA_MIGRATION_CONNECT_TIMEOUT), a lock
(XATA_MIGRATION_LOCK_TIMEOUT: lock_timeout, on every session), and a server that stops
answering mid-run (TCP keepalives and tcp_user_timeout end the connection within about a
minute; a COPY that makes progress is never cut).
Passwords never appear in errors, logs or metadata (masking.py).
"""

from __future__ import annotations

import os
import threading
import time

import psycopg
from psycopg import sql

from xata_migration.errors import UsageError, XataMigrationError
from xata_migration.masking import mask_url, scrub

CONNECT_TIMEOUT_VARIABLE, DEFAULT_CONNECT_TIMEOUT = "XATA_MIGRATION_CONNECT_TIMEOUT", 10
LOCK_TIMEOUT_VARIABLE, DEFAULT_LOCK_TIMEOUT = "XATA_MIGRATION_LOCK_TIMEOUT", 60  # 0: forever
# An idle connection is probed after 10 s, then every 5 s, and dropped after 6 probes
# unanswered; data sent and not acknowledged for 60 s drops it too.
_NETWORK = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
            "keepalives_count": 6, "tcp_user_timeout": 60_000}

_SESSION_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "3",
    "bytea_output": "hex",
}


# Memory for the target's sorts, index builds and temporary tables (the checks' stages),
# per session (a few run at once), so a million rows stay in memory, not on disk. Taken
# only when used.
_TARGET_SETTINGS = {"work_mem": "64MB", "maintenance_work_mem": "256MB",
                    "temp_buffers": "256MB"}


class ConnectionFailed(XataMigrationError, RuntimeError):
    """A database could not be reached or refused us; the message holds no password."""


def seconds_from(variable: str, default: int, minimum: int = 0) -> int:
    """Whole seconds from an environment variable (`minimum` or more), or the default."""
    value = os.environ.get(variable, "")
    if not value:
        return default
    if not value.isdigit() or int(value) < minimum:
        raise UsageError(f"{variable} must be a whole number of seconds ({minimum} or more), "
                         f"not {value!r}.")
    return int(value)


def set_all(conn: psycopg.Connection, settings: dict[str, str], local: bool = False) -> None:
    """The settings for the session (or, `local`, until the transaction ends), in one
    round trip."""
    conn.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, {})").format(sql.Literal(name), sql.Literal(value),
                                                 sql.Literal(local))
        for name, value in settings.items())))


def _application_name(role: str, label: str) -> str:
    """Named in pg_stat_activity, so an operator sees which table a session works on."""
    return f"xata-migration {role}" + (f": {label}" if label else "")


def connect(url: str, role: str, read_only: bool = False, label: str = "",
            connection_class: type[psycopg.Connection] = psycopg.Connection) -> psycopg.Connection:
    """Open a connection (of `connection_class`); `role` ("source" or "target") names it in
    errors, and with the optional `label` (the table) in pg_stat_activity.application_name."""
    connect_timeout = seconds_from(CONNECT_TIMEOUT_VARIABLE, DEFAULT_CONNECT_TIMEOUT)
    lock_timeout = seconds_from(LOCK_TIMEOUT_VARIABLE, DEFAULT_LOCK_TIMEOUT)
    try:
        conn = connection_class.connect(url, autocommit=False,
                                        application_name=_application_name(role, label),
                                        connect_timeout=connect_timeout, **_NETWORK)
    except psycopg.Error as error:
        detail = scrub(str(error).strip(), url)
        variable = "XATA_SOURCE_URL" if role == "source" else "TARGET_DATABASE_URL"
        raise ConnectionFailed(
            f"Cannot connect to the {role} database at {mask_url(url)} (waiting at most "
            f"{connect_timeout} s, {CONNECT_TIMEOUT_VARIABLE}): {detail} Check that the "
            f"server is running and reachable, and the user, password and database name in "
            f"{variable}.") from None
    settings = dict(_SESSION_SETTINGS, lock_timeout=f"{lock_timeout}s")
    if role == "target":  # sorts of a million ids, index builds after the data
        settings.update(_TARGET_SETTINGS)
    set_all(conn, settings)
    conn.commit()
    if read_only:
        # One consistent snapshot per transaction, and no write can reach the source.
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


# ---------------------------------------------------- connections kept for the next step
#
# A process that runs many steps (the in-process executor, a Celery worker) hands the
# connections a step is done with to the next step that asks for the same: connecting
# and setting a session up costs more round trips than many small tables' whole loads.

IDLE_KEPT, IDLE_SECONDS = 6, 60  # at most, and dropped after that long unused


class _Idle:
    """This process's idle connections, each with its kind (URL, role, read-only, class,
    lock timeout: all its session was set up with) and when it was given back."""

    def __init__(self):
        self.pid, self.lock = os.getpid(), threading.Lock()
        self.kept: list[tuple[tuple, float, psycopg.Connection]] = []

    def take(self, kind: tuple) -> psycopg.Connection | None:
        with self.lock:
            stale = self._stale()
            found = next((entry for entry in reversed(self.kept) if entry[0] == kind), None)
            if found:
                self.kept.remove(found)
        for _, _, conn in stale:
            conn.close()
        return found[2] if found else None

    def keep(self, kind: tuple, conn: psycopg.Connection) -> None:
        with self.lock:
            self.kept.append((kind, time.monotonic(), conn))
            dropped = self._stale() + self.kept[:-IDLE_KEPT]  # the oldest go first
            del self.kept[:-IDLE_KEPT]
        for _, _, old in dropped:
            old.close()

    def _stale(self) -> list:
        now = time.monotonic()
        stale = [entry for entry in self.kept if now - entry[1] >= IDLE_SECONDS]
        self.kept = [entry for entry in self.kept if entry not in stale]
        return stale


_idle = _Idle()


def _idle_here() -> _Idle:
    global _idle
    if _idle.pid != os.getpid():  # a forked process: the parent's sockets are not its own
        _idle = _Idle()
    return _idle


def _kind(url: str, role: str, read_only: bool, connection_class: type) -> tuple:
    return (url, role, read_only, connection_class,
            seconds_from(LOCK_TIMEOUT_VARIABLE, DEFAULT_LOCK_TIMEOUT))


def reuse_or_connect(url: str, role: str, read_only: bool = False, label: str = "",
                     connection_class: type[psycopg.Connection] = psycopg.Connection
                     ) -> psycopg.Connection:
    """connect(), or a connection of the same kind that give_back kept (renamed `label`;
    one round trip, which also proves it still answers)."""
    kind = _kind(url, role, read_only, connection_class)
    while (conn := _idle_here().take(kind)) is not None:
        try:
            conn.autocommit = True
            conn.execute("SELECT set_config('application_name', %s, false)",
                         (_application_name(role, label),))
            conn.autocommit = False
        except psycopg.Error:
            conn.close()
            continue
        conn._xata_migration_kind = kind
        return conn
    conn = connect(url, role, read_only, label, connection_class)
    conn._xata_migration_kind = kind
    return conn


def give_back(conn: psycopg.Connection) -> None:
    """The caller is done with a connection of reuse_or_connect: its transaction rolled
    back, it is kept for the next (or closed if it is broken)."""
    kind = getattr(conn, "_xata_migration_kind", None)
    try:
        if not conn.closed:
            conn.rollback()
    except psycopg.Error:
        pass
    if (kind is None or conn.closed or conn.broken
            or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE):
        conn.close()
    else:
        _idle_here().keep(kind, conn)
