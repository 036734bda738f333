"""Connections to the source and the target, with settings that make values comparable.

Both sides use the same TimeZone, DateStyle and float output, so a value's text is the
same on either server. The source connection is read-only: nothing is ever written there.
Every wait is bounded: connecting (XATA_MIGRATION_CONNECT_TIMEOUT), a lock
(XATA_MIGRATION_LOCK_TIMEOUT: lock_timeout, on every session), and a server that stops
answering mid-run (TCP keepalives and tcp_user_timeout end the connection within about a
minute; a COPY that makes progress is never cut).
Passwords never appear in errors, logs or metadata: `mask_url` hides them in a URL or a
key=value string, `scrub` in any message, found where libpq itself would read them.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from xata_migration.errors import UsageError, XataMigrationError

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


def seconds_from(variable: str, default: int) -> int:
    """Whole seconds from an environment variable (0 or more), or the default."""
    value = os.environ.get(variable, "")
    if not value:
        return default
    if not value.isdigit():
        raise UsageError(f"{variable} must be a whole number of seconds (0 or more), "
                         f"not {value!r}.")
    return int(value)


def _url_password_spans(url: str) -> list[tuple[int, int]]:
    """Where a postgresql:// URL holds passwords: after the user name in its user info
    (up to the last `@` before the host), and in a `password=` query parameter."""
    spans = []
    authority_start = url.index("://") + 3
    ends = [i for i in (url.find(c, authority_start) for c in "/?#") if i != -1]
    authority_end = min(ends) if ends else len(url)
    at = url.rfind("@", authority_start, authority_end)
    colon = url.find(":", authority_start, at) if at != -1 else -1
    if colon != -1:
        spans.append((colon + 1, at))
    query = url.find("?", authority_start)
    if query != -1:
        position = query + 1
        for parameter in url[query + 1:].split("#")[0].split("&"):
            name, equals, _ = parameter.partition("=")
            if equals and name.lower() == "password":
                spans.append((position + len(name) + 1, position + len(parameter)))
            position += len(parameter) + 1
    return spans


def _keyword_value_spans(conninfo: str) -> list[tuple[int, int]]:
    """Where a libpq keyword=value string holds passwords, read as libpq reads it: a
    value is single-quoted (with backslash escapes) or runs to the next white space."""
    spans, i, n = [], 0, len(conninfo)
    while i < n:
        while i < n and conninfo[i].isspace():
            i += 1
        start = i
        while i < n and conninfo[i] != "=" and not conninfo[i].isspace():
            i += 1
        keyword = conninfo[start:i]
        while i < n and conninfo[i].isspace():
            i += 1
        if i >= n or conninfo[i] != "=":
            break  # no keyword=value here: libpq reads nothing further as a value
        i += 1
        while i < n and conninfo[i].isspace():
            i += 1
        quoted = i < n and conninfo[i] == "'"
        value_start = i + 1 if quoted else i
        i = value_start
        while i < n and (conninfo[i] != "'" if quoted else not conninfo[i].isspace()):
            i += 2 if conninfo[i] == "\\" else 1
        if keyword == "password":
            spans.append((value_start, min(i, n)))
        i += 1 if quoted else 0
    return spans


def _password_spans(url: str) -> list[tuple[int, int]]:
    if "://" in url.split("=", 1)[0]:
        return _url_password_spans(url)
    return _keyword_value_spans(url)


def mask_url(url: str) -> str:
    """The URL (postgresql://... or key=value) with every password replaced by ***."""
    masked = url
    for start, end in sorted(_password_spans(url), reverse=True):
        masked = masked[:start] + "***" + masked[end:]
    return scrub(masked, url)


def _password_forms(url: str) -> set[str]:
    """Every form the URL's passwords may take in a message: as written in the URL, as
    libpq reads them (decoded, unquoted), and percent-encoded."""
    forms = {url[start:end] for start, end in _password_spans(url)}
    try:
        read = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        read = None
    if read:
        forms |= {read, quote(read, safe=""), quote(read)}
    # a form inside a longer one goes with it (libpq may read only the start of a
    # malformed URL's password): replacing it alone would garble the rest of the text
    return {form for form in forms if form and not any(form in other and form != other
                                                       for other in forms)}


def scrub(text: str, url: str) -> str:
    """Remove the URL's password from a message, in every form it may appear in."""
    for form in sorted(_password_forms(url), key=len, reverse=True):
        text = text.replace(form, "***")
    return text


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
