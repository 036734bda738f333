"""A real PostgreSQL for every test: the embedded server by default, or the server named
by XATA_MIGRATION_TEST_DATABASE_URL (a URL to any database there; the user must be able to
CREATE DATABASE). Each test gets fresh databases, dropped at the end of the session."""

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

EXTERNAL = "XATA_MIGRATION_TEST_DATABASE_URL"
_counter = itertools.count()


class Server:
    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.created: list[str] = []

    def url(self, database: str) -> str:
        """A postgresql:// URL (what users pass, and what SQLAlchemy needs) to `database`."""
        params = conninfo_to_dict(self.admin_url)
        user = quote(params.get("user", ""), safe="")
        password = ":" + quote(params["password"], safe="") if params.get("password") else ""
        host = params.get("host", "")
        query = {k: v for k, v in params.items() if k not in ("user", "password", "dbname", "port")}
        netloc = f"{user}{password}@" if user else ""
        if host.startswith("/"):  # a unix socket directory goes in the query
            query["host"] = host
        else:
            query.pop("host", None)
            netloc += host + (f":{params['port']}" if params.get("port") else "")
        return f"postgresql://{netloc}/{quote(database, safe='')}" + (
            "?" + urlencode(query) if query else "")

    def create_database(self, prefix: str = "t") -> str:
        name = f"xm_{prefix}_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_server():
    if os.environ.get(EXTERNAL):
        server = Server(os.environ[EXTERNAL])
        yield server
        server.drop_all()
        return
    import pgserver

    pgdata = Path(tempfile.mkdtemp(prefix="xm-pg-")) / "pgdata"
    embedded = pgserver.get_server(pgdata, cleanup_mode="stop")
    server = Server(embedded.get_uri("postgres"))
    server.pgserver = embedded
    yield server
    server.drop_all()
    embedded.cleanup()
    shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.fixture
def source_url(pg_server) -> str:
    return pg_server.create_database("src")


@pytest.fixture
def target_url(pg_server) -> str:
    return pg_server.create_database("tgt")
