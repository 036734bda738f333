"""The privileges the README's table lists, and no more: the source read by a role with
CONNECT, USAGE and SELECT on its tables and sequences; the target and Dagster's storage
each owned by a role that is no superuser. `migrate` runs through them, every check
passes, and the embedded server's superuser does nothing but set them up."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from xata_migration.embedded import dagster_storage_url
from xata_migration.plan import save_plan
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import execute_sql, plan_for
from xata_migration_tests.whole_schema import WHOLE_SCHEMA

pytestmark = pytest.mark.slow  # the CLI and Dagster run as processes of their own

ROOT = Path(__file__).resolve().parents[1]
ROLES = {"source": "xm_source_reader", "target": "xm_target_owner",
         "dagster": "xm_dagster_owner"}


def _as(url: str, role: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}:secret@" + parts.netloc.rsplit("@", 1)[-1]))


def _owned_database(pg_server, prefix: str, owner: str) -> str:
    url = pg_server.create_database(prefix)
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name),
                                                                     sql.Identifier(owner)))
    return _as(url, owner)


def test_migrate_with_exactly_the_documented_privileges(pg_server, source_url, tmp_path):
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        for role in ROLES.values():
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'secret' NOSUPERUSER "
                                     "NOCREATEDB NOCREATEROLE").format(sql.Identifier(role)))
    execute_sql(source_url, XATA_RUNTIME_SQL, WHOLE_SCHEMA)
    source = urlsplit(source_url).path.lstrip("/")
    reader = sql.Identifier(ROLES["source"])
    execute_sql(source_url,
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(source),
                                                                     reader),
                sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(reader),
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(reader),
                sql.SQL("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(reader))
    target_url = _owned_database(pg_server, "tgt", ROLES["target"])
    storage_url = _owned_database(pg_server, "dagster", ROLES["dagster"])
    reader_url = _as(source_url, ROLES["source"])
    save_plan(plan_for(reader_url), tmp_path / "plan.yaml")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster_home" / "dagster.yaml").read_text())
    env = dict(os.environ, DAGSTER_HOME=str(home),
               DAGSTER_PG_URL=dagster_storage_url(storage_url))
    done = subprocess.run(
        [sys.executable, "-m", "xata_migration.cli", "migrate", "--plan", "plan.yaml",
         "--source-url", reader_url, "--target-url", target_url],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 assets materialized; 9 of 9 checks passed." in done.stdout
    with psycopg.connect(target_url) as conn:  # all the target holds is its owner's
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog',"
            " 'information_schema', 'pg_toast')").fetchall()
    assert owners == [(ROLES["target"],)]
