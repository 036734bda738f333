"""Cycles of links: broken at a deferred link, every link correct and every FK in place."""

import psycopg
import pytest

from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import (XATA_COLUMNS, Expectation, check_outcomes,
                                          execute_sql, migrate, plan_for, snapshot,
                                          verify_migration)

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own

# Xata's own example: teams.owner -> users and users.team -> teams.
TEAMS_AND_USERS = f"""
CREATE TABLE teams ({XATA_COLUMNS}, name text UNIQUE, labels text[], owner text);
CREATE UNIQUE INDEX teams_xata_id ON teams (xata_id);
CREATE TABLE users ({XATA_COLUMNS}, email text, full_name text NOT NULL, team text);
CREATE UNIQUE INDEX users_xata_id ON users (xata_id);
ALTER TABLE teams ADD FOREIGN KEY (owner) REFERENCES users (xata_id) ON DELETE SET NULL;
ALTER TABLE users ADD FOREIGN KEY (team) REFERENCES teams (xata_id) ON DELETE SET NULL;
INSERT INTO users (xata_id, full_name, email) VALUES ('rec_u1', 'Ann', 'a@x'),
  ('rec_u2', 'Bob', NULL), ('rec_u3', 'Cid', 'c@x');
INSERT INTO teams (xata_id, name, labels, owner) VALUES ('rec_t1', 'red', '{{a,NULL}}', 'rec_u2'),
  ('rec_t2', 'blue', NULL, NULL);
UPDATE users SET team = 'rec_t1' WHERE xata_id IN ('rec_u1', 'rec_u2');
UPDATE users SET team = 'rec_t2' WHERE xata_id = 'rec_u3';
"""

# a -> b -> c -> a, where c also links to itself and every link but one is NOT NULL.
THREE_CYCLE = f"""
CREATE TABLE a ({XATA_COLUMNS}, b text NOT NULL);
CREATE TABLE b ({XATA_COLUMNS}, c text NOT NULL);
CREATE TABLE c ({XATA_COLUMNS}, a text, parent text);
CREATE UNIQUE INDEX a_id ON a (xata_id); CREATE UNIQUE INDEX b_id ON b (xata_id);
CREATE UNIQUE INDEX c_id ON c (xata_id);
ALTER TABLE a ADD FOREIGN KEY (b) REFERENCES b (xata_id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE b ADD FOREIGN KEY (c) REFERENCES c (xata_id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE c ADD FOREIGN KEY (a) REFERENCES a (xata_id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE c ADD FOREIGN KEY (parent) REFERENCES c (xata_id) DEFERRABLE INITIALLY DEFERRED;
"""


def test_two_table_cycle_from_xatas_example(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, TEAMS_AND_USERS)
    plan = plan_for(source_url)
    deferred = [(t.name, c.name) for t in plan.tables for c in t.links if c.link.deferred]
    assert deferred == [("teams", "owner")]  # alphabetically first nullable link of the cycle
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    assert ("teams/owner", "links_intact") in check_outcomes(result)
    verify_migration(source_url, target_url, {
        "teams": Expectation(links={"owner": "users"}),
        "users": Expectation(links={"team": "teams"})})
    with psycopg.connect(target_url) as conn:
        fks = {r[0] for r in conn.execute(
            "SELECT conrelid::regclass::text || '.' || pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'f'")}
    assert fks == {"teams.FOREIGN KEY (owner) REFERENCES users(id) ON DELETE SET NULL",
                   "users.FOREIGN KEY (team) REFERENCES teams(id) ON DELETE SET NULL"}
    before = snapshot(target_url, ["teams", "users"])
    assert migrate(plan, source_url, target_url).success
    assert snapshot(target_url, ["teams", "users"]) == before


def test_three_table_cycle_with_a_self_link(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, THREE_CYCLE)
    with psycopg.connect(source_url) as conn:  # one transaction: the FKs are deferred
        conn.execute("INSERT INTO a (xata_id, b) VALUES ('a1', 'b2'), ('a2', 'b1')")
        conn.execute("INSERT INTO b (xata_id, c) VALUES ('b1', 'c1'), ('b2', 'c3')")
        conn.execute("INSERT INTO c (xata_id, xata_createdat, a, parent) VALUES"
                     " ('c1', '2024-01-01+00', 'a2', 'c3'), ('c2', '2024-01-02+00', NULL, 'c2'),"
                     " ('c3', '2024-01-03+00', 'a1', NULL)")
    plan = plan_for(source_url)
    deferred = [(t.name, c.name) for t in plan.tables for c in t.links if c.link.deferred]
    assert deferred == [("c", "a")]  # the only nullable link of the cycle
    assert not plan.table("c").column("parent").link.deferred  # a self-link stays inside
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    verify_migration(source_url, target_url, {
        "a": Expectation(links={"b": "b"}), "b": Expectation(links={"c": "c"}),
        "c": Expectation(links={"a": "a", "parent": "c"})})


def test_a_deferred_not_null_link_gets_its_not_null_back(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, THREE_CYCLE)
    with psycopg.connect(source_url) as conn:
        conn.execute("INSERT INTO a (xata_id, b) VALUES ('a1', 'b1')")
        conn.execute("INSERT INTO b (xata_id, c) VALUES ('b1', 'c1')")
        conn.execute("INSERT INTO c (xata_id, a) VALUES ('c1', 'a1')")
    plan = plan_for(source_url)
    for table in plan.tables:  # choose a NOT NULL link to defer, as a user may in the plan
        for column in table.links:
            column.link.deferred = (table.name, column.name) == ("a", "b")
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'a'::regclass"
                            " AND attname = 'b'").fetchone()[0] is True
    verify_migration(source_url, target_url, {
        "a": Expectation(links={"b": "b"}), "b": Expectation(links={"c": "c"}),
        "c": Expectation(links={"a": "a", "parent": "c"})})
