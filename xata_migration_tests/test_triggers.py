"""The application's functions and triggers are carried, and never fire on the tool's own
writes (the first load, a rerun, a delta), only for the application afterwards. Proven on
the target with SQL that uses none of the tool's code."""

import psycopg
import pytest

from xata_migration import api
from xata_migration.plan import PlanError, save_plan
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import (XATA_COLUMNS, check_outcomes, execute_sql, migrate,
                                          step_failure_text)

pytestmark = pytest.mark.slow  # end to end through Dagster

SCHEMA = f"""
CREATE TABLE "Account" ({XATA_COLUMNS}, handle text NOT NULL);
CREATE UNIQUE INDEX "_pgroll_new_Account_xata_id_key" ON "Account" (xata_id);
CREATE TRIGGER xata_maintain_metadata_trigger_pgroll BEFORE INSERT OR UPDATE ON "Account"
  FOR EACH ROW EXECUTE FUNCTION xata_private.maintain_metadata_trigger_pgroll();
INSERT INTO "Account" (xata_id, handle) VALUES
  ('rec_cn0d5r1u4s8g0000a001', 'MiXeD'), ('rec_cn0d5r1u4s8g0000a002', 'ÜberCase');
CREATE FUNCTION lower_handle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.handle := lower(NEW.handle); RETURN NEW; END $$;
CREATE TRIGGER account_lower_handle BEFORE INSERT OR UPDATE OF handle ON "Account"
  FOR EACH ROW EXECUTE FUNCTION lower_handle();
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'a disabled trigger fired'; END $$;
CREATE TRIGGER account_refuse BEFORE INSERT ON "Account"
  FOR EACH ROW EXECUTE FUNCTION refuse();
ALTER TABLE "Account" DISABLE TRIGGER account_refuse;
"""

# a function that uses the record id by name: its body is not rewritten, so it is `review`
USES_THE_ID = """
CREATE FUNCTION account_label(a "Account") RETURNS text LANGUAGE sql AS
  $$ SELECT a.handle || ':' || a.xata_id $$;
"""

HANDLES = 'SELECT handle FROM "Account" ORDER BY handle'
TRIGGERS = ("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = '\"Account\"'::regclass"
            " AND NOT tgisinternal ORDER BY 1")


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def load_kind(result) -> str:
    event = next(iter(result.asset_materializations_for_node("migrate_Account")))
    return event.metadata["load"].value


def test_triggers_fire_for_the_application_never_for_the_loads(source_url, target_url,
                                                              tmp_path):
    execute_sql(source_url, XATA_RUNTIME_SQL, SCHEMA, USES_THE_ID)
    plan = api.describe_source(source_url).plan
    functions = {f.name: f.fate for f in plan.functions}
    assert functions == {"lower_handle()": "carry", "refuse()": "carry",
                         'account_label(a "Account")': "review"}
    triggers = {o.name: o.disabled for o in plan.table("Account").objects
                if o.kind == "trigger"}
    assert triggers == {"account_lower_handle": False, "account_refuse": True}
    with pytest.raises(PlanError, match="account_label"):
        api.migrate(save_plan(plan, tmp_path / "plan.yaml") or tmp_path / "plan.yaml",
                    source_url, target_url, tmp_path / "log")
    next(f for f in plan.functions if f.name.startswith("account_label")).fate = "drop"

    first = migrate(plan, source_url, target_url)
    assert first.success and all(check_outcomes(first).values())
    assert rows(target_url, HANDLES) == rows(source_url, HANDLES)  # not lower-cased
    assert rows(target_url, TRIGGERS) == [("account_lower_handle", "O"),
                                          ("account_refuse", "D")]

    # changed in the source while its trigger is off: the delta must not lower-case them
    execute_sql(source_url, 'ALTER TABLE "Account" DISABLE TRIGGER account_lower_handle',
                "UPDATE \"Account\" SET handle = 'UpDaTeD' WHERE handle = 'MiXeD'",
                "INSERT INTO \"Account\" (xata_id, handle) VALUES"
                " ('rec_cn0d5r1u4s8g0000a003', 'AnOtHeR')",
                'ALTER TABLE "Account" ENABLE TRIGGER account_lower_handle')
    again = migrate(plan, source_url, target_url)
    assert again.success and all(check_outcomes(again).values())
    assert load_kind(again).startswith("delta")
    assert rows(target_url, HANDLES) == rows(source_url, HANDLES) == [
        ("AnOtHeR",), ("UpDaTeD",), ("ÜberCase",)]
    assert rows(target_url, TRIGGERS) == [("account_lower_handle", "O"),
                                          ("account_refuse", "D")]
    with psycopg.connect(target_url) as target:  # the application's writes: it fires
        assert target.execute("INSERT INTO \"Account\" (handle) VALUES ('NewOne')"
                              " RETURNING handle").fetchone() == ("newone",)
        target.rollback()


RLS_SCHEMA = f"""
CREATE TABLE note ({XATA_COLUMNS}, tenant int NOT NULL, body text);
CREATE UNIQUE INDEX note_xata_id_key ON note (xata_id);
INSERT INTO note (xata_id, tenant, body) VALUES ('rec_cn0d5r1u4s8g0000n001', 1, 'one''s'),
  ('rec_cn0d5r1u4s8g0000n002', 2, 'two'), ('rec_cn0d5r1u4s8g0000n003', 1, 'uno');
ALTER TABLE note ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON note FOR SELECT TO xm_app_reader
  USING (tenant = current_setting('app.tenant')::int);
CREATE POLICY own_writes ON note AS RESTRICTIVE FOR INSERT
  WITH CHECK (tenant > 0);
GRANT SELECT ON note TO xm_app_reader;
"""


@pytest.fixture
def app_reader(pg_server, source_url, target_url):
    """A role that is not the tables' owner (roles belong to the server: the source's and
    the target's are the same role here)."""
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS xm_app_reader")
        conn.execute("CREATE ROLE xm_app_reader")
    yield "xm_app_reader"
    for url in (source_url, target_url):  # its grants and policies, database by database
        execute_sql(url, "DROP OWNED BY xm_app_reader")
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE xm_app_reader")


def as_tenant(url: str, tenant: int) -> list[tuple]:
    with psycopg.connect(url) as conn:
        conn.execute("SET ROLE xm_app_reader")
        conn.execute("SELECT set_config('app.tenant', %s, false)", (str(tenant),))
        return conn.execute("SELECT body FROM note ORDER BY body").fetchall()


def test_row_level_security_hides_other_tenants_as_in_the_source(source_url, target_url,
                                                                  app_reader):
    execute_sql(source_url, XATA_RUNTIME_SQL, RLS_SCHEMA)
    plan = api.describe_source(source_url).plan
    note = plan.table("note")
    assert note.row_security == "enabled"
    assert {o.name for o in note.objects if o.kind == "policy"} == {"tenant_isolation",
                                                                    "own_writes"}
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    execute_sql(target_url, "GRANT SELECT ON note TO xm_app_reader")  # grants are yours
    assert as_tenant(target_url, 1) == as_tenant(source_url, 1) == [("one's",), ("uno",)]
    assert as_tenant(target_url, 2) == as_tenant(source_url, 2) == [("two",)]
    assert rows(target_url, "SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
                            " WHERE oid = 'note'::regclass") == [(True, False)]
    # a policy naming a role the target lacks stops the table, naming the role
    policy = next(o for o in note.objects if o.name == "tenant_isolation")
    policy.definition = policy.definition.replace("xm_app_reader", "xm_role_not_here")
    failed = migrate(plan, source_url, target_url)
    assert not failed.success
    assert "tenant_isolation names ['xm_role_not_here']" in step_failure_text(failed)


def test_forced_row_security_needs_a_target_role_that_bypasses_it(pg_server, source_url,
                                                                  app_reader):
    """FORCE makes the owner subject to the policies: the tool would see some rows only.
    A target role without BYPASSRLS is stopped before writing, with the fix; with it,
    the table arrives forced."""
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS xm_rls_owner")
        conn.execute("CREATE ROLE xm_rls_owner LOGIN PASSWORD 'secret' NOSUPERUSER")
    target = pg_server.create_database("rls")
    name = target.split("?")[0].rsplit("/", 1)[1]
    execute_sql(pg_server.admin_url, f'ALTER DATABASE "{name}" OWNER TO xm_rls_owner')
    as_owner = target.replace("postgres@", "xm_rls_owner:secret@", 1)
    execute_sql(source_url, XATA_RUNTIME_SQL, RLS_SCHEMA,
                "ALTER TABLE note FORCE ROW LEVEL SECURITY")
    plan = api.describe_source(source_url).plan
    assert plan.table("note").row_security == "forced"
    stopped = migrate(plan, source_url, as_owner)
    assert not stopped.success
    assert "Give that role BYPASSRLS" in step_failure_text(stopped)
    assert rows(target, "SELECT to_regclass('public.note')") == [(None,)]
    execute_sql(pg_server.admin_url, "ALTER ROLE xm_rls_owner BYPASSRLS")
    result = migrate(plan, source_url, as_owner)
    assert result.success and all(check_outcomes(result).values())
    assert rows(target, "SELECT relforcerowsecurity FROM pg_class WHERE oid = 'note'::regclass"
                ) == [(True,)]
    execute_sql(target, "DROP OWNED BY xm_app_reader")  # so the fixture can drop the role


def test_a_policy_naming_a_role_the_target_lacks_is_review(pg15_server, source_url,
                                                          target_url, app_reader, tmp_path,
                                                          capsys):
    """plan --target-url looks at the target's roles (another server: Debian's
    PostgreSQL 15, which has no xm_app_reader); the policy is then `review`, and migrate
    refuses to start, naming it and the role."""
    from xata_migration.cli import main
    execute_sql(source_url, XATA_RUNTIME_SQL, RLS_SCHEMA)
    elsewhere = pg15_server.create_database("roles")
    plan_file = tmp_path / "plan.yaml"
    assert main(["plan", "--source-url", source_url, "--output", str(plan_file),
                 "--target-url", elsewhere]) == 0
    out = capsys.readouterr().out
    assert "policy 'tenant_isolation': it names role(s) ['xm_app_reader']" in out
    assert main(["migrate", "--plan", str(plan_file), "--source-url", source_url,
                 "--target-url", target_url]) == 2
    assert "tenant_isolation" in capsys.readouterr().err
