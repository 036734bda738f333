"""A real PostgreSQL for every test: the embedded server by default, or the server named
by XATA_MIGRATION_TEST_DATABASE_URL (a URL to any database there; the user must be able to
CREATE DATABASE). Each test gets fresh databases, dropped at the end of the session.

Tests that start a process (the CLI, `dagster`, a browser, the multiprocess executor, a
benchmark) are marked `slow`; `pytest -m "not slow"` runs the others, and a test not
marked that starts a process fails, saying so."""

import _posixsubprocess
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

EXTERNAL = "XATA_MIGRATION_TEST_DATABASE_URL"
_counter = itertools.count()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts a process (the CLI, dagster, a browser, "
                            "the multiprocess executor) or takes long; -m \"not slow\" "
                            "leaves it out")


@pytest.fixture(autouse=True)
def fast_tests_start_no_process(request, monkeypatch):
    """Outside `slow` tests, starting a process (subprocess, multiprocessing's spawn, a
    fork) fails the test."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.name} starts a process: mark it "
                             "@pytest.mark.slow")
    monkeypatch.setattr(_posixsubprocess, "fork_exec", refuse)
    monkeypatch.setattr(os, "fork", refuse)


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
    from xata_migration import embedded as embedded_server

    pgdata = Path(tempfile.mkdtemp(prefix="xm-pg-")) / "pgdata"
    embedded = embedded_server.start(pgdata)
    server = Server(embedded.get_uri("postgres"))
    server.embedded = embedded
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        # a throwaway server: nothing is waited for on disk (CREATE DATABASE, checkpoints)
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("SELECT pg_reload_conf()")
    yield server
    _stop_immediately(pgdata)
    embedded.cleanup()  # its databases go with its data directory: none to drop one by one
    _remove_in_the_background(pgdata.parent)


def _remove_in_the_background(folder: Path) -> None:
    """Delete the server's folder without the session waiting for it: with hundreds of
    databases that takes tens of seconds here (about 80 ms a database)."""
    subprocess.Popen(["rm", "-rf", "--", str(folder)], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_immediately(pgdata: Path, seconds: float = 30) -> None:
    """Stop a throwaway server at once (SIGQUIT: PostgreSQL's immediate shutdown, no
    checkpoint, as `pg_ctl -m immediate`): its data directory is deleted next."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
    except (OSError, ValueError, IndexError):
        return  # already stopped
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)  # no signal: is it still there?
        except ProcessLookupError:
            return
        time.sleep(0.05)


DEBIAN_PG15 = Path("/usr/lib/postgresql/15/bin")  # Debian's postgresql-15 (.ci/run installs it)


@pytest.fixture(scope="session")
def pg15_server():
    """A PostgreSQL 15 server of Debian's binaries, run by the `postgres` system user on a
    socket in a new temporary folder, stopped and deleted at the end of the session."""
    if os.environ.get("XATA_MIGRATION_SKIP_PG15") == "1":
        pytest.skip("XATA_MIGRATION_SKIP_PG15=1: the PostgreSQL 15 case was turned off on purpose")
    if not (DEBIAN_PG15 / "postgres").exists():
        pytest.fail(f"No PostgreSQL 15 in {DEBIAN_PG15}: as root, apt-get install "
                    "postgresql-15 (xata_migration_tests/install_postgresql15.sh), or set "
                    "XATA_MIGRATION_SKIP_PG15=1")
    folder = Path(tempfile.mkdtemp(prefix="xm-pg15-"))
    folder.chmod(0o755)
    shutil.chown(folder, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    pgdata = folder / "pgdata"

    def pg_ctl(*args):
        subprocess.run([*as_postgres, str(DEBIAN_PG15 / "pg_ctl"), "-D", str(pgdata), *args],
                       check=True, capture_output=True, timeout=60)
    subprocess.run([*as_postgres, str(DEBIAN_PG15 / "initdb"), "-D", str(pgdata), "-U",
                    "postgres", "--auth=trust", "-E", "UTF8"], check=True,
                   capture_output=True, timeout=120)
    pg_ctl("-w", "-o", f"-k {folder} -h '' -F", "-l", str(folder / "log"), "start")
    try:
        yield Server(f"host={folder} user=postgres dbname=postgres")
    finally:
        pg_ctl("-w", "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def source_url(pg_server) -> str:
    return pg_server.create_database("src")


@pytest.fixture
def target_url(pg_server) -> str:
    return pg_server.create_database("tgt")
