"""Connections to the source and the target, with settings that make values comparable.

Both sides use the same TimeZone, DateStyle and float output, so a value's text is the
same on either server. The source connection is read-only: nothing is ever written there.
Passwords never appear in errors, logs or metadata: `mask_url` hides them.
"""

from __future__ import annotations

import re

import psycopg

from xata_migration.errors import XataMigrationError

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


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    masked = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", masked, flags=re.IGNORECASE)


def _password_of(url: str) -> str | None:
    found = re.search(r"://[^:/@?#]*:([^@/?#]*)@", url) or re.search(
        r"password=([^&\s]*)", url, flags=re.IGNORECASE)
    return found.group(1) if found and found.group(1) else None


def scrub(text: str, url: str) -> str:
    """Remove the URL's password from a message, wherever it appears."""
    password = _password_of(url)
    return text.replace(password, "***") if password else text


def connect(url: str, role: str, read_only: bool = False, label: str = "",
            connection_class: type[psycopg.Connection] = psycopg.Connection) -> psycopg.Connection:
    """Open a connection (of `connection_class`); `role` ("source" or "target") names it in
    errors, and with the optional `label` (the table) in pg_stat_activity.application_name."""
    try:
        # named in pg_stat_activity, so an operator sees which table a session works on
        name = f"xata-migration {role}" + (f": {label}" if label else "")
        conn = connection_class.connect(url, autocommit=False, application_name=name)
    except psycopg.Error as error:
        detail = scrub(str(error).strip(), url)
        variable = "XATA_SOURCE_URL" if role == "source" else "TARGET_DATABASE_URL"
        raise ConnectionFailed(
            f"Cannot connect to the {role} database at {mask_url(url)}: {detail} "
            f"Check that the server is running and reachable, and the user, password and "
            f"database name in {variable}.") from None
    with conn.cursor() as cur:
        for name, value in _SESSION_SETTINGS.items():
            cur.execute("SELECT set_config(%s, %s, false)", (name, value))
    if role == "target":  # sorts of a million ids, index builds after the data
        for name, value in _TARGET_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    conn.commit()
    if read_only:
        # One consistent snapshot per transaction, and no write can reach the source.
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn
