"""Bad input ends in one clear paragraph, a failed step, and the target exactly as before."""

import psycopg
import pytest
from psycopg import sql

from xata_migration.defs import TargetDatabase, XataSource, build_definitions
from xata_migration_tests.support import create_hostile_source, execute_sql, migrate, plan_for

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own


def target_state(url: str) -> list:
    """Every table outside the system schemas, with all its rows as text."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema"
            " NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()
        return [(schema, name, sorted(r[0] for r in conn.execute(sql.SQL(
            "SELECT t::text FROM {} t").format(sql.Identifier(schema, name)))))
            for schema, name in tables]


def failure_message(result, step: str) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == [step]
    return str(failures[0].event_specific_data.error)


@pytest.fixture
def hostile(source_url, target_url):
    create_hostile_source(source_url)
    return plan_for(source_url), source_url, target_url


@pytest.mark.parametrize("change, expected", [
    ('ALTER TABLE tag DROP COLUMN name', "has no column 'name' any more"),
    ('ALTER TABLE tag ALTER COLUMN name TYPE varchar(10)',
     "now of type character varying(10); the plan was made when it was text"),
    ('ALTER TABLE tag ADD COLUMN colour text', "['colour'] that the plan does not list"),
    ('DROP TABLE "tag-to-image"; DROP TABLE tag', "tag no longer exists"),
])
def test_plan_that_no_longer_matches_the_source(hostile, change, expected):
    plan, source_url, target_url = hostile
    execute_sql(source_url, change)
    result = migrate(plan, source_url, target_url)
    assert expected in failure_message(result, "migrate_tag")
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT to_regclass('public.tag'), to_regclass('xata_id_map.tag')"
                            ).fetchone() == (None, None)


def _shape(url: str, table: str) -> str:
    """The column definitions of a table, as CREATE TABLE takes them."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod),"
            " ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = to_regclass(%s)"
            " AND attnum > 0 AND NOT attisdropped", (table,)).fetchone()[0]


@pytest.mark.parametrize("same_shape", [False, True])
@pytest.mark.parametrize("with_rows", [False, True])
def test_a_target_table_the_tool_did_not_make_is_left_alone(hostile, pg_server, same_shape,
                                                            with_rows):
    """A table of the same name already in the target, of any shape, empty or not, that
    no load made: its table stops before anything is written."""
    plan, source_url, target_url = hostile
    if same_shape:  # exactly what a load would make: its shape read off a migrated target
        elsewhere = pg_server.create_database("tgt")
        assert migrate(plan, source_url, elsewhere).success
        columns = _shape(elsewhere, "public.tag")
    else:
        columns = "id bigint PRIMARY KEY, label text"
    execute_sql(target_url, f"CREATE TABLE tag ({columns})")
    if with_rows:
        execute_sql(target_url, "INSERT INTO tag (id) VALUES (7)")
    before = target_state(target_url)
    result = migrate(plan, source_url, target_url)
    message = failure_message(result, "migrate_tag")
    assert "Target table public.tag already exists, and xata-migration did not make it" \
        in message, message
    after = target_state(target_url)
    assert [t for t in after if t[1] == "tag"] == [t for t in before if t[1] == "tag"]
    assert ("xata_id_map", "tag") not in [(s, n) for s, n, _ in after]


def test_a_table_of_the_tool_with_another_shape_is_refused(hostile):
    plan, source_url, target_url = hostile
    assert migrate(plan, source_url, target_url).success
    execute_sql(target_url, "ALTER TABLE tag ADD COLUMN label text")
    before = target_state(target_url)
    result = migrate(plan, source_url, target_url)
    message = failure_message(result, "migrate_tag")
    assert "public.tag already exists with another shape" in message
    assert "'label': 'text'" in message
    after = target_state(target_url)
    assert [t for t in after if t[1] == "tag"] == [t for t in before if t[1] == "tag"]


@pytest.mark.parametrize("damage, expected", [
    ("ALTER TABLE tag ALTER COLUMN xata_id DROP NOT NULL;"
     " INSERT INTO tag (xata_id, name) VALUES (NULL, 'no id')", "1 NULL value(s)"),
    ("DROP INDEX tag_xata_id_key CASCADE; INSERT INTO tag (xata_id, name) VALUES ('rec_tag_a', 'twin')",
     "1 id(s) used by more than one row (e.g. ['rec_tag_a'])"),
])
def test_damaged_source_ids_are_reported_not_guessed(source_url, target_url, damage, expected):
    create_hostile_source(source_url)
    execute_sql(source_url, damage)
    plan = plan_for(source_url)
    before = target_state(target_url)
    result = migrate(plan, source_url, target_url)
    assert expected in failure_message(result, "migrate_tag")
    assert [t for t in target_state(target_url) if t[1] == "tag"] == \
        [t for t in before if t[1] == "tag"] == []


def test_unreachable_target_fails_without_showing_the_password(hostile, tmp_path):
    plan, source_url, _ = hostile
    bad_target = f"postgresql://owner:topsecret42@/nowhere?host={tmp_path}&connect_timeout=2"
    defs = build_definitions(plan, resources={"xata_source": XataSource(url=source_url),
                                              "target_database": TargetDatabase(url=bad_target)})
    result = defs.resolve_job_def("migrate_all").execute_in_process(raise_on_error=False)
    assert not result.success
    failures = [str(e.event_specific_data.error) for e in result.all_events
                if e.event_type_value == "STEP_FAILURE"]
    assert failures and all("topsecret42" not in f for f in failures)
    assert "Cannot connect to the target database at postgresql://owner:***@" in failures[0]
    assert not any("topsecret42" in str(e) for e in result.all_events)


@pytest.fixture
def password_role(pg_server):
    """A role the embedded server authenticates with scram (it trusts everyone else)."""
    if not hasattr(pg_server, "embedded"):
        pytest.skip("edits the embedded server's pg_hba.conf")
    hba = pg_server.embedded.pgdata / "pg_hba.conf"
    original = hba.read_text()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS pw_user")
        conn.execute("CREATE ROLE pw_user LOGIN PASSWORD 'the-right-one'")
        hba.write_text("local all pw_user scram-sha-256\n" + original)
        conn.execute("SELECT pg_reload_conf()")
    yield "pw_user"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        hba.write_text(original)
        conn.execute("SELECT pg_reload_conf()")


def test_refused_password_is_reported_without_it(pg_server, password_role, target_url):
    from xata_migration.connections import ConnectionFailed, connect
    good = pg_server.url("postgres").replace("postgres@", f"{password_role}:the-right-one@", 1)
    connect(good, "source").close()  # the right password gets in
    bad = good.replace("the-right-one", "Wr0ng-S3cret")
    with pytest.raises(ConnectionFailed) as error:
        connect(bad, "source")
    message = str(error.value)
    assert "password authentication failed" in message
    assert "Wr0ng-S3cret" not in message and "***" in message


def test_plan_command_errors_exit_non_zero_with_one_paragraph(source_url, tmp_path, capsys):
    from xata_migration.cli import main
    assert main(["plan", "--source-url", source_url, "--output", str(tmp_path / "p.yaml")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Schema 'public' of the source has no table")
    assert not (tmp_path / "p.yaml").exists()


def test_every_error_of_the_tool_is_one_paragraph_and_exit_2(monkeypatch, capsys):
    """cli.main catches the one base class: a usage error (no plan named) included."""
    from xata_migration.cli import main
    from xata_migration.connections import ConnectionFailed
    from xata_migration.errors import XataMigrationError
    from xata_migration.load import MissingLinks
    from xata_migration.plan import PlanError
    from xata_migration.sources import CsvImportError
    from xata_migration.sources import DumpError
    for error in (ConnectionFailed, CsvImportError, DumpError, MissingLinks, PlanError):
        assert issubclass(error, XataMigrationError), error
    monkeypatch.delenv("XATA_MIGRATION_PLAN", raising=False)
    assert main(["migrate", "--source-url", "postgresql://x@h/db",
                 "--target-url", "postgresql://x@h/db2"]) == 2
    assert capsys.readouterr().err.startswith("error: Name the plan: --plan PATH")


def test_an_embedded_data_folder_of_an_earlier_version_is_explained(tmp_path, monkeypatch,
                                                                    capsys):
    """pgserver's PostgreSQL 16 data cannot be opened by the PostgreSQL 18 server: the
    command says what the folder is and how to move it aside, and starts nothing."""
    from xata_migration.cli import main
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "PG_VERSION").write_text("16\n")
    monkeypatch.setenv("XATA_MIGRATION_HOME", str(tmp_path))
    assert main(["lookup", "posts", "rec_x", "--target-url", "embedded:anything"]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'pgdata'} holds a PostgreSQL 16 data directory" in error
    assert f"mv {tmp_path / 'pgdata'} {tmp_path / 'pgdata'}-pg16" in error
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
