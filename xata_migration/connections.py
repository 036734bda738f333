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

import psycopg

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


def connect(url: str, role: str, read_only: bool = False, label: str = "",
            connection_class: type[psycopg.Connection] = psycopg.Connection) -> psycopg.Connection:
    """Open a connection (of `connection_class`); `role` ("source" or "target") names it in
    errors, and with the optional `label` (the table) in pg_stat_activity.application_name."""
    connect_timeout = seconds_from(CONNECT_TIMEOUT_VARIABLE, DEFAULT_CONNECT_TIMEOUT)
    lock_timeout = seconds_from(LOCK_TIMEOUT_VARIABLE, DEFAULT_LOCK_TIMEOUT)
    try:
        # named in pg_stat_activity, so an operator sees which table a session works on
        name = f"xata-migration {role}" + (f": {label}" if label else "")
        conn = connection_class.connect(url, autocommit=False, application_name=name,
                                        connect_timeout=connect_timeout, **_NETWORK)
    except psycopg.Error as error:
        detail = scrub(str(error).strip(), url)
        variable = "XATA_SOURCE_URL" if role == "source" else "TARGET_DATABASE_URL"
        raise ConnectionFailed(
            f"Cannot connect to the {role} database at {mask_url(url)} (waiting at most "
            f"{connect_timeout} s, {CONNECT_TIMEOUT_VARIABLE}): {detail} Check that the "
            f"server is running and reachable, and the user, password and database name in "
            f"{variable}.") from None
    with conn.cursor() as cur:
        for name, value in _SESSION_SETTINGS.items():
            cur.execute("SELECT set_config(%s, %s, false)", (name, value))
        cur.execute("SELECT set_config('lock_timeout', %s, false)", (f"{lock_timeout}s",))
    if role == "target":  # sorts of a million ids, index builds after the data
        for name, value in _TARGET_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    conn.commit()
    if read_only:
        # One consistent snapshot per transaction, and no write can reach the source.
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn
