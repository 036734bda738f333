"""Test helpers: source schemas, running the job, and an independent verification.

`verify_migration` does not use any of xata_migration's code: it reads the source, the
mapping and the target with plain queries and compares them row by row in Python.
"""

import socket
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from xata_migration import api
from xata_migration.defs import TargetDatabase, XataSource, build_definitions, run_tags
from xata_migration.plan import save_plan
from xata_migration.snapshot import HeldSnapshot
from xata_migration.sources import XATA_RUNTIME_SQL

XATA_COLUMNS = """
    xata_id text NOT NULL DEFAULT ('rec_' || xata_private.xid()) CHECK (length(xata_id) < 256),
    xata_version integer NOT NULL DEFAULT 0,
    xata_createdat timestamptz NOT NULL DEFAULT now(),
    xata_updatedat timestamptz NOT NULL DEFAULT now()"""

LONG_TABLE = "a_table_name_that_is_exactly_sixty_three_bytes_long_xxxxxxxxxxx"
LONG_COLUMN = "a_column_name_that_is_exactly_sixty_three_bytes_long_yyyyyyyyyy"
assert len(LONG_TABLE) == len(LONG_COLUMN) == 63

# Self-links, several links to one table, null links, a junction table, names that need
# quoting, a link declared only by a comment, a Prisma-style table, a table with no column,
# custom ids, unicode, NaN, +-Infinity, -0, bigint extremes, arrays with NULLs, JSON, vectors.
HOSTILE_SCHEMA = f"""
CREATE TABLE "User" ({XATA_COLUMNS}, "emailAddress" text UNIQUE, "Waist" double precision,
    tags text[], profile jsonb, embedding real[], avatar xata.xata_file,
    photos xata.xata_file_array, big bigint);
CREATE UNIQUE INDEX "User_xata_id_key" ON "User" (xata_id);
CREATE TABLE "order" ({XATA_COLUMNS},
    buyer text REFERENCES "User" (xata_id) ON DELETE SET NULL,
    seller text REFERENCES "User" (xata_id) ON DELETE CASCADE,
    parent text, "select" text, amount numeric(12, 2), placed timestamptz);
CREATE UNIQUE INDEX order_xata_id_key ON "order" (xata_id);
ALTER TABLE "order" ADD FOREIGN KEY (parent) REFERENCES "order" (xata_id) ON DELETE SET NULL;
CREATE TABLE tag ({XATA_COLUMNS}, name text NOT NULL);
CREATE UNIQUE INDEX tag_xata_id_key ON tag (xata_id);
CREATE TABLE image ({XATA_COLUMNS}, caption text, "ownerId" text);
CREATE UNIQUE INDEX image_xata_id_key ON image (xata_id);
COMMENT ON COLUMN image."ownerId" IS '{{"xata.link": "User"}}';
CREATE TABLE "tag-to-image" ({XATA_COLUMNS},
    image text REFERENCES image (xata_id) ON DELETE SET NULL,
    tag text REFERENCES tag (xata_id) ON DELETE SET NULL);
CREATE UNIQUE INDEX tag_to_image_xata_id_key ON "tag-to-image" (xata_id);
CREATE TABLE "{LONG_TABLE}" ({XATA_COLUMNS}, "{LONG_COLUMN}" text REFERENCES "User" (xata_id));
CREATE UNIQUE INDEX long_xata_id_key ON "{LONG_TABLE}" (xata_id);
CREATE TABLE empty_table ({XATA_COLUMNS});
CREATE UNIQUE INDEX empty_table_xata_id_key ON empty_table (xata_id);
CREATE TABLE prisma_user (id text PRIMARY KEY DEFAULT ('clx' || xata_private.xid()), name text);
CREATE TABLE prisma_session (id text PRIMARY KEY DEFAULT ('s' || xata_private.xid()),
    "userId" text NOT NULL REFERENCES prisma_user (id) ON DELETE CASCADE, expires timestamptz);
CREATE TABLE plain_log (id bigserial PRIMARY KEY, message text);
"""

HOSTILE_DATA = f"""
INSERT INTO "User" (xata_id, xata_createdat, "emailAddress", "Waist", tags, profile, embedding,
                    avatar, photos, big) VALUES
 ('user_2aBcDeF', '2024-01-01 10:00:00.123456+00', 'ä@example.org', 'NaN',
  ARRAY['a', NULL, 'c,d', 'quote"s'], '{{"nested": {{"k": [1, 2, null]}}, "s": "é"}}',
  '{{0.1,-0,3.4e38}}'::real[], '{{"name": "a.png", "size": 10}}', '[]',
  9223372036854775807),
 ('rec_cn0d5r1u4s8g00000001', '2024-01-01 10:00:00.123456+00', 'b@example.org', 'Infinity',
  ARRAY[]::text[], '[]', NULL, NULL, '[{{"name": "x"}}]', -9223372036854775808),
 ('Custom:ID-~x', '2023-12-31 00:00:00+00', 'c@example.org', '-Infinity', NULL, 'null',
  ARRAY[1, 2, 3]::real[], NULL, '[]', 0),
 ('rec_cn0d5r1u4s8g00000000', '2024-01-01 10:00:00.123456+00', E'tab\\there\\nnewline', '-0',
  ARRAY[NULL, NULL]::text[], '"just a string"', ARRAY[]::real[], NULL, '[]', NULL);
INSERT INTO "order" (xata_id, xata_createdat, buyer, seller, parent, "select", amount, placed)
VALUES
 ('rec_order_1', '2024-02-01+00', 'user_2aBcDeF', 'Custom:ID-~x', 'rec_order_3', 'a''b\\c',
  12.50, '2024-02-01 01:02:03.456789+00'),
 ('rec_order_2', '2024-02-02+00', 'user_2aBcDeF', 'user_2aBcDeF', 'rec_order_1', NULL,
  -0.01, NULL),
 ('rec_order_3', '2024-02-03+00', NULL, 'rec_cn0d5r1u4s8g00000000', 'rec_order_3',
  '日本語 🚀', NULL, 'infinity'),
 ('rec_order_4', '2024-02-04+00', NULL, 'Custom:ID-~x', NULL, '', 0, '-infinity');
INSERT INTO tag (xata_id, name) VALUES ('rec_tag_a', 'sky'), ('rec_tag_b', 'sea');
INSERT INTO image (xata_id, caption, "ownerId") VALUES
 ('rec_img_1', 'first', 'user_2aBcDeF'), ('rec_img_2', NULL, NULL),
 ('rec_img_3', 'third', 'Custom:ID-~x');
INSERT INTO "tag-to-image" (xata_id, image, tag) VALUES
 ('rec_t2i_1', 'rec_img_1', 'rec_tag_a'), ('rec_t2i_2', 'rec_img_1', 'rec_tag_b'),
 ('rec_t2i_3', 'rec_img_3', 'rec_tag_a'), ('rec_t2i_4', NULL, 'rec_tag_b');
INSERT INTO "{LONG_TABLE}" (xata_id, "{LONG_COLUMN}") VALUES
 ('rec_long_1', 'user_2aBcDeF'), ('rec_long_2', NULL);
INSERT INTO empty_table (xata_id) VALUES ('rec_empty_1'), ('rec_empty_2');
INSERT INTO prisma_user (id, name) VALUES ('clx1', 'Ann'), ('clx2', 'Bob');
INSERT INTO prisma_session (id, "userId", expires) VALUES
 ('s1', 'clx2', '2030-01-01+00'), ('s2', 'clx1', NULL), ('s3', 'clx2', NULL);
INSERT INTO plain_log (message) VALUES ('not Xata-shaped: its ids are kept');
"""

METADATA_RENAMES = {"xata_createdat": "created_at", "xata_updatedat": "updated_at"}


def execute_sql(url: str, *statements: str) -> None:
    with psycopg.connect(url) as conn:
        for statement in statements:
            conn.execute(statement)


def create_hostile_source(url: str) -> None:
    execute_sql(url, XATA_RUNTIME_SQL, HOSTILE_SCHEMA, HOSTILE_DATA)


# Links as the test knows them, independently of introspection: {table: {column: parent}}.
HOSTILE_LINKS = {
    "order": {"buyer": "User", "seller": "User", "parent": "order"},
    "image": {"ownerId": "User"},
    "tag-to-image": {"image": "image", "tag": "tag"},
    LONG_TABLE: {LONG_COLUMN: "User"},
    "prisma_session": {"userId": "prisma_user"},
}
HOSTILE_TABLES = ["User", "order", "tag", "image", "tag-to-image", LONG_TABLE, "empty_table",
                  "prisma_user", "prisma_session"]


def plan_for(source_url: str):
    return api.describe_source(source_url).plan


def run_environment(source_url: str, target_url: str, tmp_path, monkeypatch) -> Path:
    """The source's plan written to a file, and the three variables the code location
    reads (as `dagster job execute` finds them) pointing at it and the databases."""
    plan_path = tmp_path / "plan.yaml"
    save_plan(plan_for(source_url), plan_path)
    monkeypatch.setenv("XATA_MIGRATION_PLAN", str(plan_path))
    monkeypatch.setenv("XATA_SOURCE_URL", source_url)
    monkeypatch.setenv("TARGET_DATABASE_URL", target_url)
    return plan_path


def migrate(plan, source_url: str, target_url: str, raise_on_error: bool = False):
    """Run the migrate_all job in process, as Dagster would, with explicit resources, in
    one source snapshot for the run as the project's executor takes it."""
    defs = build_definitions(plan, resources={"xata_source": XataSource(url=source_url),
                                              "target_database": TargetDatabase(url=target_url)})
    with HeldSnapshot(source_url) as held:
        return defs.resolve_job_def("migrate_all").execute_in_process(
            raise_on_error=raise_on_error, tags=run_tags(held))


def run_checks(plan, source_url: str, target_url: str, table_name: str) -> dict:
    """Run one table's checks directly (no load first): {check name: CheckOutcome}."""
    with api.open_connections(source_url, target_url) as connections:
        return {o.name: o for o in api.check_table(plan, plan.table(table_name), connections)}


def step_failure_text(result) -> str:
    """The first failed step's error of a run, with its causes, as text."""
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.step_failure_data.error.to_string()


def check_outcomes(result) -> dict[tuple[str, str], bool]:
    """{(asset key, check name): passed} for every check evaluated in a run."""
    return {(e.asset_key.to_user_string(), e.check_name): e.passed
            for e in result.get_asset_check_evaluations()}


# ---------------------------------------------------------------- independent verification


def _comparable(value):
    """Make values comparable exactly: floats by repr (NaN, -0.0, inf), containers deeply."""
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def _rows(conn, table: str, schema: str = "public") -> list[dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table)))
        return cur.fetchall()


def _mapping(conn, table: str) -> dict[str, int]:
    return dict(conn.execute(sql.SQL("SELECT xata_id, new_id FROM {}").format(
        sql.Identifier("xata_id_map", table))).fetchall())


@dataclass
class Expectation:
    id_column: str = "xata_id"
    links: dict = field(default_factory=dict)
    array_links: dict = field(default_factory=dict)
    dropped: tuple = ("xata_version",)
    renames: dict = field(default_factory=lambda: dict(METADATA_RENAMES))
    order_by: tuple = ("xata_createdat",)
    # ids deleted in the source since an earlier run, with `deleted_rows: delete`: their
    # mapping rows stay, their target rows are gone
    deleted: tuple = ()


def _verifier_connection(url: str) -> psycopg.Connection:
    # Python's datetime has no infinity: compare date and time values as their text.
    conn = psycopg.connect(url)
    conn.execute("SET TimeZone = 'UTC'")
    for type_name in ("timestamptz", "timestamp", "date"):
        conn.adapters.register_loader(type_name, TextLoader)
    return conn


def verify_migration(source_url: str, target_url: str, tables: dict[str, Expectation]) -> int:
    """Compare every row of every table through the mapping; returns rows compared."""
    compared = 0
    with _verifier_connection(source_url) as source, _verifier_connection(target_url) as target:
        maps = {name: _mapping(target, name) for name in tables}
        for name, expect in tables.items():
            compared += _verify_table(source, target, name, expect, maps)
    return compared


def _verify_table(source, target, name: str, expect: Expectation, maps: dict) -> int:
    source_rows = _rows(source, name)
    target_rows = {row["id"]: row for row in _rows(target, name)}
    mapping = maps[name]
    source_ids = [row[expect.id_column] for row in source_rows]
    assert set(expect.deleted) <= set(mapping), f"{name}: a deleted id lost its mapping"
    assert sorted(source_ids) == sorted(set(mapping) - set(expect.deleted)), \
        f"{name}: mapped ids differ from source ids"
    assert len(set(mapping.values())) == len(mapping), f"{name}: a new id is used twice"
    assert set(target_rows) == {mapping[i] for i in source_ids}, \
        f"{name}: target ids differ from mapping"
    for row in source_rows:
        target_row = target_rows[mapping[row[expect.id_column]]]
        expected_columns = {"id"}
        for column, value in row.items():
            if column == expect.id_column or column in expect.dropped:
                continue
            target_column = expect.renames.get(column, column)
            expected_columns.add(target_column)
            if column in expect.links:
                parent_map = maps[expect.links[column]]
                wanted = None if value is None else parent_map[value]
                assert target_row[target_column] == wanted, (name, column, row[expect.id_column])
            elif column in expect.array_links:
                parent_map = maps[expect.array_links[column]]
                wanted = None if value is None else [
                    None if v is None else parent_map[v] for v in value]
                assert target_row[target_column] == wanted, (name, column, row[expect.id_column])
            else:
                assert _comparable(target_row[target_column]) == _comparable(value), (
                    name, column, row[expect.id_column], value, target_row[target_column])
        assert set(target_row) == expected_columns, f"{name}: target columns differ"
    return len(source_rows)


def expected_new_id_order(source_url: str, table: str, expect: Expectation) -> list[str]:
    """Source ids in the order new ids must follow: creation time, then id (byte order)."""
    with _verifier_connection(source_url) as source:
        rows = _rows(source, table)
    return [r[expect.id_column] for r in sorted(rows, key=lambda r: tuple(
        r[c] for c in expect.order_by) + (r[expect.id_column].encode("utf-8"),))]


def stage_tables(target_url: str) -> list[str]:
    """Load stages in the target that someone could see: there must never be one (a load
    makes its stage inside its transaction and drops it before committing)."""
    with psycopg.connect(target_url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables"
            " WHERE tablename LIKE 'load\\_stage\\_%'").fetchall()]


def snapshot(target_url: str, tables: list[str]) -> dict:
    """Every target row and mapping row with its xmin: any rewrite changes it."""
    with psycopg.connect(target_url) as conn:
        shot = {}
        for name in tables:
            for schema in ("public", "xata_id_map"):
                shot[(schema, name)] = sorted(conn.execute(sql.SQL(
                    "SELECT xmin::text, t::text FROM {} t").format(
                    sql.Identifier(schema, name))).fetchall())
        return shot


def hostile_expectations() -> dict[str, Expectation]:
    expectations = {}
    for name in HOSTILE_TABLES:
        if name.startswith("prisma_"):
            expectations[name] = Expectation(id_column="id", links=HOSTILE_LINKS.get(name, {}),
                                             dropped=(), renames={}, order_by=())
        else:
            expectations[name] = Expectation(links=HOSTILE_LINKS.get(name, {}))
    return expectations


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
