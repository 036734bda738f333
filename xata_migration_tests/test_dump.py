"""A pg_dump of a Xata-shaped database, in each format Xata's guide can make, restored by
`xata-migration import-dump` into plain PostgreSQL, then migrated and verified against the
database that was dumped."""

import os
import subprocess

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from xata_migration.embedded import client_program
from xata_migration.cli import main
from xata_migration.sources import DumpError, import_dump
from xata_migration_tests.support import (check_outcomes, create_hostile_source, execute_sql,
                                          hostile_expectations, migrate, plan_for,
                                          verify_migration)

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own


def pg_dump(url: str, path, fmt: str, *options: str) -> None:
    subprocess.run([client_program("pg_dump"), f"--format={fmt}", "--file", str(path),
                    *options, make_conninfo(**conninfo_to_dict(url))], check=True)


# What a real branch's dump holds besides the application (as a whole-database pg_dump of a
# Xata branch does): Xata's schema with extensions and a function that uses schemas the
# dump lacks, the platform's schema with an event trigger, owners and grants to roles the
# target does not have, and contrib types in the application's own columns.
BRANCH_EXTRAS = """
CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE EXTENSION pg_trgm SCHEMA xata;
SET check_function_bodies = off;
CREATE FUNCTION xata.encoded_id() RETURNS text LANGUAGE sql AS $$ SELECT base32.encode('x') $$;
CREATE SCHEMA pgstream;
CREATE TABLE pgstream.schema_log (id serial PRIMARY KEY, version int);
INSERT INTO pgstream.schema_log (version) VALUES (1);
CREATE FUNCTION pgstream.log_schema() RETURNS event_trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pgstream.config(); END $$;
CREATE EVENT TRIGGER pgstream_log_schema ON ddl_command_end
  EXECUTE FUNCTION pgstream.log_schema();
ALTER EVENT TRIGGER pgstream_log_schema DISABLE;
CREATE TABLE contact (xata_id text NOT NULL DEFAULT ('rec_' || xata_private.xid()),
    email citext NOT NULL, attrs hstore);
CREATE UNIQUE INDEX contact_xata_id_key ON contact (xata_id);
INSERT INTO contact (xata_id, email, attrs) VALUES
  ('rec_contact_1', 'Ann@Example.org', 'tier=>gold, "quo\\"te"=>NULL'),
  ('rec_contact_2', 'bo@example.org', NULL);
"""

# Lines a newer pg_dump or the hosting platform writes that the bundled server and psql
# do not know or cannot run: put into a plain dump, as such dumps have them.
PLAIN_EXTRAS = """
SET some_setting_of_a_newer_server = 0;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA xata;
COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';
SET SESSION AUTHORIZATION rdsadmin;
GRANT ALL ON FUNCTION pg_catalog.pg_sleep(double precision) TO xata_ro_group_bb_missing;
RESET SESSION AUTHORIZATION;
"""


def make_branch_dump(source_url: str, pg_server, path, fmt: str, scope: str) -> None:
    """The hostile source and BRANCH_EXTRAS, owned by and granted to roles that exist only
    while the dump is made."""
    create_hostile_source(source_url)
    execute_sql(source_url, BRANCH_EXTRAS,
                'CREATE TRIGGER xata_maintain_metadata_trigger_pgroll BEFORE INSERT'
                ' OR UPDATE ON "User" FOR EACH ROW EXECUTE FUNCTION'
                ' xata_private.maintain_metadata_trigger_pgroll()')
    owner, reader = (f"xata_{kind}_bb_{os.getpid()}" for kind in ("owner", "ro_group"))
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        for role in (owner, reader):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    execute_sql(source_url, sql.SQL(
        "ALTER TABLE contact OWNER TO {owner}; ALTER SCHEMA xata OWNER TO {owner};"
        " GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader};"
        " GRANT USAGE ON SCHEMA public TO {reader}").format(
        owner=sql.Identifier(owner), reader=sql.Identifier(reader)).as_string(None))
    pg_dump(source_url, path, fmt, *(["--schema=public"] if scope == "public" else []))
    with psycopg.connect(source_url, autocommit=True) as conn:  # gone before the import
        for role in (owner, reader):
            conn.execute(sql.SQL("REASSIGN OWNED BY {r} TO CURRENT_USER; DROP OWNED BY {r};"
                                 " DROP ROLE {r}").format(r=sql.Identifier(role)))
    if fmt == "plain":
        text = path.read_text()
        first_set = text.index("SET statement_timeout")
        path.write_text(text[:first_set] + PLAIN_EXTRAS + text[first_set:])


@pytest.mark.parametrize("scope", ["whole", "public"])
@pytest.mark.parametrize("fmt", ["plain", "custom", "directory", "tar"])
def test_dump_restores_and_migrates(source_url, pg_server, target_url, tmp_path, fmt, scope,
                                    capsys):
    dump = tmp_path / f"branch.{fmt}"
    make_branch_dump(source_url, pg_server, dump, fmt, scope)
    restored = pg_server.create_database("restored")
    assert main(["import-dump", str(dump), "--into", restored]) == 0
    out = capsys.readouterr().out
    assert f"({fmt} format)" in out
    left_out = out.split("Left out, as Xata's or the platform's: ")[1].splitlines()[0]
    if scope == "whole":
        assert "objects of schema xata" in left_out and "objects of schema pgstream" in left_out
        assert "extensions installed in Xata's schemas" in left_out
    if fmt == "plain":
        assert "owners (OWNER TO)" in left_out and "grants and revokes" in left_out
        assert "session authorizations: 2" in left_out
        assert "settings the target server does not know: 1" in left_out
        assert "psql meta-commands: 2" in left_out  # \restrict, \unrestrict
    with psycopg.connect(restored) as conn:  # Xata's objects work in the restored copy
        conn.execute('INSERT INTO tag (name) VALUES (\'new\')')
        assert conn.execute("SELECT xata_id LIKE 'rec_%' FROM tag WHERE name = 'new'"
                            ).fetchone()[0]
        conn.rollback()
        assert conn.execute("SELECT to_regnamespace('pgstream'),"
                            " to_regprocedure('xata.encoded_id()'),"
                            " (SELECT count(*) FROM pg_event_trigger)").fetchone() == (
            None, None, 0)
    plan = plan_for(restored)
    assert plan.table("User").column("avatar").type == "jsonb"
    assert set(plan.extensions) == {"citext", "hstore"}
    if fmt not in MIGRATED_FORMATS:  # the rows restored are the rows dumped
        assert _public_rows(restored) == _public_rows(source_url)
        return
    result = migrate(plan, restored, target_url)
    assert result.success and all(check_outcomes(result).values())
    # compared with the database that was dumped, not with the restored copy
    assert verify_migration(source_url, target_url, hostile_expectations()) == 26
    contacts = ("SELECT {old}, email, attrs::text, email = 'ann@example.ORG'"
                " FROM contact c {mapped} ORDER BY 1")
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        assert target.execute(contacts.format(
            old="m.xata_id", mapped="JOIN xata_id_map.contact m ON m.new_id = c.id")
        ).fetchall() == source.execute(contacts.format(old="xata_id", mapped="")).fetchall()


# The plain script (the one our reader cuts) and one archive are migrated end to end; the
# other archives, restored the same way by pg_restore, are compared row by row.
MIGRATED_FORMATS = ("plain", "custom")


def _public_rows(url: str) -> dict[str, list]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        return {t: conn.execute(sql.SQL("SELECT x::text FROM {} x ORDER BY 1").format(
            sql.Identifier("public", t))).fetchall() for t in tables}


def test_failed_restore_names_the_line_and_keeps_nothing(pg_server, tmp_path):
    dump = tmp_path / "broken.sql"
    dump.write_text("-- a dump\nCREATE TABLE a (xata_id text);\nINSERT INTO a VALUES ('x');\n"
                    "ALTER TABLE a OWNER TO nobody_here;\n\n"
                    "CREATE TABLE b (\n  x no_such_type\n);\n")
    restored = pg_server.create_database("restored")
    with pytest.raises(DumpError) as error:
        import_dump(dump, restored)
    message = str(error.value)
    assert 'type "no_such_type" does not exist' in message
    assert "at line 8, in the statement `CREATE TABLE b (`" in message
    with psycopg.connect(restored) as conn:  # as it was: the tool's helpers gone too
        assert conn.execute("SELECT to_regclass('public.a'), to_regnamespace('xata_private'),"
                            " to_regnamespace('xata')").fetchone() == (None, None, None)


def test_a_database_that_holds_an_import_is_replaced_only_when_asked(pg_server, tmp_path,
                                                                    capsys):
    first, second = tmp_path / "first.sql", tmp_path / "second.sql"
    first.write_text("CREATE TABLE a (xata_id text);\nINSERT INTO a VALUES ('x');\n")
    second.write_text("CREATE TABLE b (xata_id text);\n")
    restored = pg_server.create_database("restored")
    assert main(["import-dump", str(first), "--into", restored]) == 0
    assert main(["import-dump", str(second), "--into", restored]) == 2
    assert "already holds an import or other tables (table a, schema xata, schema " \
        "xata_private)" in capsys.readouterr().err
    assert main(["import-dump", str(second), "--into", restored, "--replace"]) == 0
    with psycopg.connect(restored) as conn:
        assert conn.execute("SELECT to_regclass('public.a'), to_regclass('public.b')::text"
                            ).fetchone() == (None, "b")


def test_restore_refuses_a_database_with_tables(source_url, tmp_path):
    execute_sql(source_url, "CREATE TABLE existing (x int)")
    dump = tmp_path / "d.sql"
    dump.write_text("SELECT 1;")
    with pytest.raises(DumpError, match="already holds an import or other tables"):
        import_dump(dump, source_url)


def test_a_dump_made_by_pg_dump_15_imports(pg15_server, pg_server, target_url, tmp_path):
    """An archive of an older server, by its own pg_dump (Debian's PostgreSQL 15), read by
    the bundled pg_restore 18."""
    from xata_migration_tests.conftest import DEBIAN_PG15
    source = pg15_server.create_database("src15")
    create_hostile_source(source)
    dump = tmp_path / "branch15.dump"
    subprocess.run([str(DEBIAN_PG15 / "pg_dump"), "--format=custom", "--file", str(dump),
                    make_conninfo(**conninfo_to_dict(source))], check=True)
    assert dump.read_bytes()[:5] == b"PGDMP"
    restored = pg_server.create_database("restored")
    assert import_dump(dump, restored).kind == "custom"
    result = migrate(plan_for(restored), restored, target_url)
    assert result.success and all(check_outcomes(result).values())
    assert verify_migration(source, target_url, hostile_expectations()) == 26
