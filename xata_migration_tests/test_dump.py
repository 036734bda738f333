"""A pg_dump of a Xata-shaped database, in each format Xata's guide can make, restored by
`xata-migration import-dump` into plain PostgreSQL, then migrated and verified against the
database that was dumped."""

import subprocess

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from xata_migration.cli import main
from xata_migration.sources import DumpError, import_dump
from xata_migration_tests.support import (check_outcomes, create_hostile_source, execute_sql,
                                          hostile_expectations, migrate, plan_for,
                                          verify_migration)

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own


def pg_dump(url: str, path, fmt: str) -> None:
    from pgserver._commands import POSTGRES_BIN_PATH
    subprocess.run([str(POSTGRES_BIN_PATH / "pg_dump"), "--no-acl", "--no-owner",
                    "--no-privileges", "--schema=public", f"--format={fmt}",
                    "--file", str(path), make_conninfo(**conninfo_to_dict(url))], check=True)


@pytest.mark.parametrize("fmt", ["tar", "custom", "plain"])
def test_dump_restores_and_migrates(source_url, pg_server, target_url, tmp_path, fmt, capsys):
    create_hostile_source(source_url)  # with Xata's file domains, xid() defaults, trigger
    execute_sql(source_url, 'CREATE TRIGGER xata_maintain_metadata_trigger_pgroll BEFORE INSERT'
                ' OR UPDATE ON "User" FOR EACH ROW EXECUTE FUNCTION'
                ' xata_private.maintain_metadata_trigger_pgroll()')
    dump = tmp_path / f"branch.{fmt}"
    pg_dump(source_url, dump, fmt)
    restored = pg_server.create_database("restored")
    assert main(["import-dump", str(dump), "--into", restored]) == 0
    assert f"({fmt} format)" in capsys.readouterr().out
    with psycopg.connect(restored) as conn:  # Xata's objects work in the restored copy
        conn.execute('INSERT INTO tag (name) VALUES (\'new\')')
        assert conn.execute("SELECT xata_id LIKE 'rec_%' FROM tag WHERE name = 'new'"
                            ).fetchone()[0]
        conn.rollback()
    plan = plan_for(restored)
    assert plan.table("User").column("avatar").type == "jsonb"
    result = migrate(plan, restored, target_url)
    assert result.success and all(check_outcomes(result).values())
    # compared with the database that was dumped, not with the restored copy
    assert verify_migration(source_url, target_url, hostile_expectations()) == 26


def test_failed_restore_keeps_nothing(pg_server, tmp_path):
    dump = tmp_path / "broken.sql"
    dump.write_text("CREATE TABLE a (xata_id text);\nINSERT INTO a VALUES ('x');\n"
                    "CREATE TABLE b (x no_such_type);\n")
    restored = pg_server.create_database("restored")
    with pytest.raises(DumpError) as error:
        import_dump(dump, restored)
    assert 'type "no_such_type" does not exist' in str(error.value)
    with psycopg.connect(restored) as conn:
        assert conn.execute("SELECT to_regclass('public.a')").fetchone()[0] is None


def test_restore_refuses_a_database_with_tables(source_url, tmp_path):
    execute_sql(source_url, "CREATE TABLE existing (x int)")
    dump = tmp_path / "d.sql"
    dump.write_text("SELECT 1;")
    with pytest.raises(DumpError, match="already has tables in public"):
        import_dump(dump, source_url)
