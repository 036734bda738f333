"""Ids kept in plain columns: found by `plan`, and rewritten once declared as links."""

import psycopg
import pytest

from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import (XATA_COLUMNS, Expectation, check_outcomes,
                                          execute_sql, migrate, plan_for, run_checks,
                                          verify_migration)

HIDDEN = f"""
CREATE TABLE users ({XATA_COLUMNS}, name text);
CREATE UNIQUE INDEX users_id ON users (xata_id);
CREATE TABLE posts ({XATA_COLUMNS}, "ownerId" text, "likedBy" text[], note text);
CREATE UNIQUE INDEX posts_id ON posts (xata_id);
INSERT INTO users (xata_id, name) VALUES ('rec_u1', 'Ann'), ('rec_u2', 'Bob'), ('rec_u3', 'Cy');
INSERT INTO posts (xata_id, xata_createdat, "ownerId", "likedBy", note) VALUES
  ('rec_p1', '2024-01-01+00', 'rec_u2', ARRAY['rec_u3', NULL, 'rec_u1', 'rec_u3'], 'hello'),
  ('rec_p2', '2024-01-02+00', NULL, ARRAY[]::text[], 'rec_u1 is not an id here'),
  ('rec_p3', '2024-01-03+00', 'rec_u1', NULL, NULL),
  ('rec_p4', '2024-01-04+00', 'rec_u3', ARRAY[NULL]::text[], 'x');
"""


@pytest.fixture
def hidden(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, HIDDEN)
    return plan_for(source_url), source_url, target_url


def declare_links(plan):
    posts = plan.table("posts")
    owner, liked = posts.column("ownerId"), posts.column("likedBy")
    from xata_migration.plan import Link
    owner.link, owner.type = Link(table="users", declared_by="plan"), "bigint"
    liked.link, liked.type = Link(table="users", declared_by="plan"), "bigint[]"


def test_plan_reports_columns_that_hold_ids(hidden):
    plan, *_ = hidden
    found = {(h["table"], h["column"]): h for h in plan.suggested_links}
    assert found[("posts", "ownerId")] == {"table": "posts", "column": "ownerId",
                                          "links_to": "users", "matched": 3, "sampled": 3}
    assert found[("posts", "likedBy")]["matched"] == 2  # distinct ids in the arrays
    assert ("posts", "note") not in found and ("users", "name") not in found


def test_declared_text_and_array_links_are_rewritten(hidden):
    plan, source_url, target_url = hidden
    declare_links(plan)
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    with psycopg.connect(target_url) as conn:
        users = dict(conn.execute("SELECT xata_id, new_id FROM xata_id_map.users").fetchall())
        rows = dict(conn.execute('SELECT m.xata_id, p."likedBy" FROM posts p JOIN'
                                 ' xata_id_map.posts m ON m.new_id = p.id').fetchall())
        types = dict(conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'posts'::regclass AND attnum > 0").fetchall())
        fks = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                           " WHERE conrelid = 'posts'::regclass AND contype = 'f'").fetchall()
    assert types["ownerId"] == "bigint" and types["likedBy"] == "bigint[]"
    assert fks == [('FOREIGN KEY ("ownerId") REFERENCES users(id) ON DELETE SET NULL',)]
    # order, duplicates and NULL elements kept; empty stays empty; NULL stays NULL
    assert rows == {"rec_p1": [users["rec_u3"], None, users["rec_u1"], users["rec_u3"]],
                    "rec_p2": [], "rec_p3": None, "rec_p4": [None]}
    verify_migration(source_url, target_url, {
        "users": Expectation(),
        "posts": Expectation(links={"ownerId": "users"}, array_links={"likedBy": "users"})})


def test_array_element_pointing_nowhere_fails_unless_allowed(hidden):
    plan, source_url, target_url = hidden
    declare_links(plan)
    execute_sql(source_url, "UPDATE posts SET \"likedBy\" = ARRAY['rec_u1', 'rec_gone']"
                " WHERE xata_id = 'rec_p3'")
    result = migrate(plan, source_url, target_url)
    assert not result.success
    plan.table("posts").column("likedBy").link.on_missing = "null"
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    with psycopg.connect(target_url) as conn:
        liked = conn.execute('SELECT "likedBy" FROM posts p JOIN xata_id_map.posts m'
                             " ON m.new_id = p.id WHERE m.xata_id = 'rec_p3'").fetchone()[0]
    assert liked == [1, None]


def test_links_intact_catches_a_wrong_array_element(hidden):
    plan, source_url, target_url = hidden
    declare_links(plan)
    assert migrate(plan, source_url, target_url).success
    execute_sql(target_url, 'UPDATE posts SET "likedBy"[2] = 1 WHERE "likedBy" = \'{3,NULL,1,3}\'')
    outcomes = run_checks(plan, source_url, target_url, "posts")
    assert not outcomes["links_intact"].passed
    assert outcomes["links_intact"].metadata["links"]["likedBy"]["wrong"] == 1
