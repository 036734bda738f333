"""SQL text in a plan (a column's `type` and `default`) is parsed as exactly what it
claims to be: a tampered plan is refused when it is loaded, before anything is written."""

import psycopg
import pytest
import yaml

from xata_migration import api
from xata_migration.cli import main
from xata_migration.plan import PlanError, load_plan, save_plan
from xata_migration_tests.support import create_hostile_source, plan_for

TAMPERED = [
    ("type", "text); CREATE TABLE pwned (x int); SELECT (1", "found a closing ')'"),
    ("type", "text --", "found a comment ('--')"),
    ("type", "text, pwned int", "found a `,` outside parentheses"),
    ("type", "text /* a comment */", "found a comment ('/* a comment */')"),
    ("type", "not a type at all", "found what PostgreSQL's parser refuses"),
    ("type", "(text", "found a '(' never closed"),
    ("default", "NULL; CREATE TABLE pwned (x int)", "found a `;`, which would end"),
    ("default", "'gallery') FROM pg_class --", "found a closing ')'"),
    ("default", "'gallery', ALTER COLUMN name DROP NOT NULL", "found a `,` outside"),
    ("default", "'gallery' AS pwned", "found what PostgreSQL's parser refuses"),
    ("type", "text FROM pg_class", "found a FROM clause"),
    ("default", "(SELECT 1) FROM pg_class", "found what PostgreSQL's parser refuses"),
    ("default", "'unterminated", "found what PostgreSQL's parser cannot read"),
]


def _tamper(plan_file, field: str, value: str) -> None:
    raw = yaml.safe_load(plan_file.read_text())
    tag = next(t for t in raw["tables"] if t["name"] == "tag")
    column = next(c for c in tag["columns"] if c["name"] == "name")
    column[field] = value
    plan_file.write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def hostile(pg_server, tmp_path_factory):
    """A source (only read here) and its plan, made once for the module."""
    source_url = pg_server.create_database("src")
    create_hostile_source(source_url)
    path = tmp_path_factory.mktemp("plan") / "plan.yaml"
    save_plan(plan_for(source_url), path)
    return source_url, path.read_text()


@pytest.fixture
def source_url(hostile):
    return hostile[0]


@pytest.fixture
def plan_file(hostile, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(hostile[1])
    return path


def test_the_plan_of_a_real_source_loads(plan_file):
    plan = load_plan(plan_file)  # every type and default introspect wrote is accepted
    assert any(c.default for t in plan.tables for c in t.columns)


@pytest.mark.parametrize("field, value, found", TAMPERED)
def test_a_tampered_plan_is_refused_when_loaded(plan_file, field, value, found):
    _tamper(plan_file, field, value)
    with pytest.raises(PlanError) as refused:
        load_plan(plan_file)
    message = str(refused.value)
    kind = "a type name" if field == "type" else "one expression"
    assert message.startswith(f"Table 'tag', column 'name': {field} {value!r} is not "
                              f"exactly {kind}: {found}"), message


@pytest.mark.parametrize("field, value", [
    ("type", "text); CREATE TABLE pwned (x int); SELECT (1"),
    ("default", "NULL; CREATE TABLE pwned (x int)")])
def test_migrate_with_a_tampered_plan_writes_nothing(plan_file, source_url, target_url,
                                                     capsys, field, value):
    _tamper(plan_file, field, value)
    code = main(["migrate", "--plan", str(plan_file), "--source-url", source_url,
                 "--target-url", target_url])
    assert code == 2
    assert "Table 'tag', column 'name'" in capsys.readouterr().err
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                            " ON n.oid = c.relnamespace WHERE n.nspname NOT IN"
                            " ('pg_catalog', 'information_schema', 'pg_toast')"
                            ).fetchone()[0] == 0


def test_a_default_stays_one_expression_in_the_target(plan_file, source_url, target_url):
    """A default is set in parentheses: an operator of lower precedence stays inside."""
    _tamper(plan_file, "default", "'a' || 'b'")
    plan = load_plan(plan_file)
    with api.open_connections(source_url, target_url, "tag") as connections:
        run = api.migrate_table(plan, plan.table("tag"), connections)
    assert run.passed
    with psycopg.connect(target_url) as conn:
        default = conn.execute("SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
                               " JOIN pg_attribute a ON a.attrelid = d.adrelid"
                               " AND a.attnum = d.adnum WHERE d.adrelid = 'tag'::regclass"
                               " AND a.attname = 'name'").fetchone()[0]
        conn.execute("INSERT INTO tag DEFAULT VALUES")
        assert conn.execute("SELECT name FROM tag ORDER BY id DESC LIMIT 1").fetchone() == ("ab",)
    assert default == "('a'::text || 'b'::text)"
