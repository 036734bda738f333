"""An embedded PostgreSQL (pgserver: PostgreSQL 16 with pgvector, from PyPI) for the demo,
`xata-migration dev` and the tests, so that no server needs to be installed."""

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


def start(pgdata: Path | None = None):
    """Start (or reuse) the embedded server; it stops when the last process using it exits."""
    import pgserver  # imported here: only the embedded paths need it

    pgdata = pgdata or home() / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(pgdata, cleanup_mode="stop")


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
