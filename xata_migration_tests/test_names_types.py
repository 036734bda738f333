"""Hostile names, the longest custom ids Xata allowed, and vectors stored as pgvector."""

import psycopg

from xata_migration.connections import connect
from xata_migration.plan import use_pgvector
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import (XATA_COLUMNS, Expectation, check_outcomes,
                                          execute_sql, migrate, plan_for, run_checks,
                                          verify_migration)

LONGEST_ID = "a" * 200 + "_~-:" + "Z9" * 25 + "x"  # 255 characters
assert len(LONGEST_ID) == 255

NAMES = f"""
CREATE TABLE "select" ({XATA_COLUMNS}, "from" text, "group" text, "Mixed Case" int);
CREATE UNIQUE INDEX s_id ON "select" (xata_id);
CREATE TABLE "user group" ({XATA_COLUMNS}, "where" text REFERENCES "select" (xata_id),
    "user" text REFERENCES "select" (xata_id), "x""quote" text);
CREATE UNIQUE INDEX ug_id ON "user group" (xata_id);
CREATE TABLE "user" ({XATA_COLUMNS}, "order" text REFERENCES "user group" (xata_id),
    "select" text);
CREATE UNIQUE INDEX u_id ON "user" (xata_id);
ALTER TABLE "user" ADD FOREIGN KEY ("select") REFERENCES "user" (xata_id);
CREATE TABLE "from" ({XATA_COLUMNS}, "café" text REFERENCES "user group" (xata_id));
CREATE UNIQUE INDEX f_id ON "from" (xata_id);
INSERT INTO "select" (xata_id, "from", "group", "Mixed Case") VALUES
  ('{LONGEST_ID}', 'a', 'b', 1), ('s2', NULL, 'c', NULL);
INSERT INTO "user group" (xata_id, "where", "user", "x""quote") VALUES
  ('g1', '{LONGEST_ID}', 's2', 'q"q'), ('g2', NULL, '{LONGEST_ID}', NULL);
INSERT INTO "user" (xata_id, "order", "select") VALUES ('u1', 'g2', 'u2'), ('u2', 'g1', 'u2');
INSERT INTO "from" (xata_id, "café") VALUES ('f1', 'g1');
"""


def test_reserved_words_spaces_quotes_and_longest_ids(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, NAMES)
    plan = plan_for(source_url)
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    # asset keys: the table's name where Dagster accepts it, else a valid stand-in
    assert {e.asset_key.path[0] for e in result.get_asset_materialization_events()} == \
        {"select", "user_group", "user", "from_table"}
    assert verify_migration(source_url, target_url, {
        "select": Expectation(),
        "user group": Expectation(links={"where": "select", "user": "select"}),
        "user": Expectation(links={"order": "user group", "select": "user"}),
        "from": Expectation(links={"café": "user group"})}) == 7


VECTORS = f"""
CREATE TABLE docs ({XATA_COLUMNS}, title text,
    embedding real[] CHECK (array_length(embedding, 1) = 3),
    "Other Vec" real[] CHECK (array_length("Other Vec", 1) = 2), plain real[]);
CREATE UNIQUE INDEX docs_id ON docs (xata_id);
COMMENT ON COLUMN docs.embedding IS '{{"xata.search.dimension": 3}}';
INSERT INTO docs (xata_id, title, embedding, "Other Vec", plain) VALUES
  ('d1', 'a', '{{0.1,-0,3.4e38}}', '{{1,2}}', '{{1,NULL}}'),
  ('d2', 'b', NULL, '{{1.17549435e-38,-1.5}}', NULL);
"""


def test_vectors_stored_as_pgvector(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, VECTORS)
    plan = plan_for(source_url)
    with connect(source_url, "source", read_only=True) as conn:
        assert use_pgvector(conn, plan) == ["docs.embedding", "docs.Other Vec"]
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    with psycopg.connect(target_url) as conn:
        types = dict(conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM"
                                  " pg_attribute WHERE attrelid = 'docs'::regclass").fetchall())
        assert (types["embedding"], types["Other Vec"], types["plain"]) == \
            ("vector(3)", "vector(2)", "real[]")
        target = conn.execute('SELECT m.xata_id, d.embedding::real[]::text,'
                              ' d."Other Vec"::real[]::text FROM docs d JOIN xata_id_map.docs m'
                              ' ON m.new_id = d.id ORDER BY 1').fetchall()
    with psycopg.connect(source_url) as conn:
        source = conn.execute('SELECT xata_id, embedding::text, "Other Vec"::text FROM docs'
                              ' ORDER BY 1').fetchall()
    assert target == source


def test_values_check_sees_a_changed_vector(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, VECTORS)
    plan = plan_for(source_url)
    with connect(source_url, "source", read_only=True) as conn:
        use_pgvector(conn, plan)
    assert migrate(plan, source_url, target_url).success
    execute_sql(target_url, "UPDATE docs SET \"Other Vec\" = '[1,2.0001]' WHERE \"Other Vec\""
                " = '[1,2]'")
    outcome = run_checks(plan, source_url, target_url, "docs")["values_unchanged"]
    assert not outcome.passed and outcome.metadata["rows_differing"] == 1


PGVECTOR_SOURCE = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items ({XATA_COLUMNS}, embedding vector(3));
CREATE UNIQUE INDEX items_id ON items (xata_id);
INSERT INTO items (xata_id, embedding) VALUES ('rec_i1', '[1.5,-2,0.1]'),
  ('rec_i2', '[-0,3.4028235e+38,1e-45]'), ('rec_i3', NULL);
"""


def test_a_pgvector_column_of_the_source_stays_vector_and_is_compared_as_such(
        source_url, target_url):
    """The source already uses pgvector: the column stays vector(n), and the checks compare
    it as the vector it is on both sides (not as the real[] of a Xata vector)."""
    execute_sql(source_url, XATA_RUNTIME_SQL, PGVECTOR_SOURCE)
    plan = plan_for(source_url)
    column = plan.table("items").column("embedding")
    assert column.type == column.source_type == "vector(3)"
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                            " WHERE attrelid = 'items'::regclass AND attname = 'embedding'"
                            ).fetchone() == ("vector(3)",)
        target = conn.execute("SELECT m.xata_id, i.embedding::text FROM items i"
                              " JOIN xata_id_map.items m ON m.new_id = i.id ORDER BY 1"
                              ).fetchall()
    with psycopg.connect(source_url) as conn:
        source = conn.execute("SELECT xata_id, embedding::text FROM items ORDER BY 1").fetchall()
    assert target == source and len(source) == 3
    with psycopg.connect(target_url) as conn:  # the next float4 up from 0.1
        changed = conn.execute("UPDATE items SET embedding = '[1.5,-2,0.10000001]'"
                               " WHERE embedding = '[1.5,-2,0.1]' RETURNING embedding::text"
                               ).fetchall()
    assert changed == [("[1.5,-2,0.10000001]",)]
    outcome = run_checks(plan, source_url, target_url, "items")["values_unchanged"]
    assert not outcome.passed and outcome.metadata["rows_differing"] == 1
    assert [(e["xata_id"], e["column_name"]) for e in outcome.examples] == \
        [("rec_i1", "embedding")]
