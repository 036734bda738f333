"""The database around the rows: types, sequences, generated columns, constraints,
indexes, comments and link actions are planned, carried and checked (schema_intact).

What the target does is proven with plain SQL that uses none of the tool's code: each
constraint rejects what it rejected in the source, each index is used, sequences go on
past the source, the FK's actions act, comments are there."""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import yaml
from psycopg import errors

from xata_migration import api
from xata_migration.plan import PlanError, load_plan, save_plan
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import (LONG_COLUMN, LONG_TABLE, XATA_COLUMNS,
                                          check_outcomes, execute_sql, migrate, run_checks)
from xata_migration_tests.whole_schema import REVIEW_SCHEMA, VECTOR_SCHEMA, WHOLE_SCHEMA

ACCOUNT = '"Account"'


@pytest.fixture
def whole_source(source_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, WHOLE_SCHEMA, VECTOR_SCHEMA)
    return source_url


def objects_by_name(table):
    return {o.name: o for o in table.objects + table.sequences}


def test_the_plan_lists_every_object_with_its_fate(whole_source):
    plan = api.describe_source(whole_source).plan
    account = plan.table("Account")
    found = {name: (o.kind, o.fate) for name, o in objects_by_name(account).items()}
    assert found == {
        "account_price_positive": ("check", "carry"),
        "account_region_code": ("unique", "carry"),
        "account_no_overlap": ("exclusion", "carry"),
        "account_lower_handle": ("index", "carry"),
        "account_live_code": ("index", "carry"),
        "account_qty": ("index", "carry"),
        "account_tags": ("index", "carry"),
        "account_org_recent": ("index", "carry"),
        "account_org": ("index", "drop"),        # the tool makes the same index on a link
        "ticket_seq": ("sequence", "carry"),
        "Account_counter_seq": ("sequence", "carry"),
    }  # not Xata's own: the _pgroll_ unique index, the CHECK on xata_id
    assert objects_by_name(account)["Account_counter_seq"].owned_by == "counter"
    assert "created_at DESC" in objects_by_name(account)["account_org_recent"].definition
    assert [(t.kind, t.name) for t in plan.types] == [
        ("domain", "email"), ("enum", "mood"), ("composite", "price_tag"),
        ("domain", "positive_email")]  # a domain after the domain it is made from
    assert plan.extensions == ["vector"]
    assert account.column("total").generated == "price * CAST(qty AS numeric)"
    assert account.column("total").default is None
    assert account.column("ticket").default == "nextval('ticket_seq'::regclass)"
    # a default is kept unless it calls Xata's functions, whatever its text says
    assert account.column("note").default == "'made on xata, by nextval(''s'')'::text"
    assert account.column("org").link.on_update == "CASCADE"
    assert account.comment == "People who sign in"
    assert account.column("handle").comment == "shown to other users"
    assert account.column("org").comment is None  # Xata's {"xata.link": ...}
    assert plan.table("org").comment == "Organisations, one per customer"
    assert plan.review_items() == []


def test_objects_that_cannot_be_carried_are_marked_review_and_stop_migrate(
        whole_source, target_url, tmp_path):
    execute_sql(whole_source, REVIEW_SCHEMA)
    plan = api.describe_source(whole_source).plan
    review = {o.name: o.reason for o in plan.table("Account").objects if o.fate == "review"}
    assert review == {
        "account_org_text": "uses the link 'org' as a text value, and it becomes a bigint id",
        "account_not_own_id": "uses the record id as a text value, and it becomes a bigint id",
        "account_region_org": "a foreign key that is not one of the plan's links (it "
                              "references another key than a record id): recreate it by "
                              "hand after the migration, or drop it"}
    label = plan.table("Account").column("label")
    assert (label.generated, label.review) == (
        "handle || id", "uses the record id as a text value, and it becomes a bigint id")
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    with pytest.raises(PlanError) as stopped:
        api.migrate(path, whole_source, target_url, tmp_path / "log")
    assert "4 object(s) marked `review`" in str(stopped.value)
    assert "column 'label'" in str(stopped.value)
    assert "account_org_text" in str(stopped.value) and "fate: drop" in str(stopped.value)
    result = migrate(plan, whole_source, target_url)  # the assets refuse too
    assert not result.success
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT to_regclass('public.\"Account\"')").fetchone()[0] is None
    # resolved as the message says: drop the objects, move the column to `dropped`
    account = plan.table("Account")
    for item in account.objects:
        item.fate = "drop" if item.fate == "review" else item.fate
    account.columns.remove(label)
    account.dropped.append("label")
    result = migrate(plan, whole_source, target_url)
    assert result.success and all(check_outcomes(result).values())


def test_every_object_arrives_and_acts_as_in_the_source(whole_source, target_url):
    plan = api.describe_source(whole_source).plan
    result = migrate(plan, whole_source, target_url)
    outcomes = check_outcomes(result)
    assert result.success and all(outcomes.values())
    assert outcomes[("Account", "schema_intact")] and outcomes[("org", "schema_intact")]
    with psycopg.connect(target_url, autocommit=True) as conn:
        _rejects_what_the_source_rejected(conn)
        _indexes_are_used(conn)
        _sequences_go_on_past_the_source(conn)
        _values_of_user_types_are_exact(whole_source, conn)
        _comments_are_there(conn)
        _link_actions_act(conn)


def _rejects(conn, statement, error):
    with pytest.raises(error):
        conn.execute(statement)


def _insert(conn, values: str) -> None:
    conn.execute(f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty, region, code,"
                 f" deleted_at, during, contact) VALUES {values}")


def _rejects_what_the_source_rejected(conn):
    duplicate = errors.UniqueViolation
    _rejects(conn, f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty, region, code)"
                   " VALUES ('Dan', 'd@e', 1, 1, 'eu', 'A')", duplicate)  # (region, code)
    _rejects(conn, f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty)"
                   " VALUES ('ANN', 'd@e', 1, 1)", duplicate)  # lower(handle)
    _rejects(conn, f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty, code)"
                   " VALUES ('Eve', 'd@e', 1, 1, 'A')", duplicate)  # code, where not deleted
    _rejects(conn, f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty)"
                   " VALUES ('Fay', 'd@e', 0, 1)", errors.CheckViolation)  # price > 0
    _rejects(conn, f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty, contact)"
                   " VALUES ('Gus', 'd@e', 1, 1, 'no-at-sign')", errors.CheckViolation)
    _rejects(conn, f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty)"
                   " VALUES ('Hal', NULL, 1, 1)", errors.NotNullViolation)  # domain NOT NULL
    _rejects(conn, f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty, during)"
                   " VALUES ('Ivy', 'd@e', 1, 1, '[2026-01-15,2026-01-16)')",
             errors.ExclusionViolation)
    _rejects(conn, f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty, total)"
                   " VALUES ('Jo', 'd@e', 1, 1, 5)", errors.GeneratedAlways)
    # what the source accepts, the target accepts: a deleted row's code may repeat
    conn.execute(f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty, code, deleted_at)"
                 " VALUES ('Kim', 'k@l', 3, 2, 'A', now())")
    assert conn.execute(f"SELECT total FROM {ACCOUNT} WHERE handle = 'Kim'").fetchone()[0] == 6


def _plan_of(conn, query: str) -> str:
    conn.execute("SET enable_seqscan = off")
    try:
        return "\n".join(r[0] for r in conn.execute(f"EXPLAIN {query}"))
    finally:
        conn.execute("RESET enable_seqscan")


def _indexes_are_used(conn):
    for index, query in (
            ("account_qty", f"SELECT * FROM {ACCOUNT} WHERE qty = 4"),
            ("account_tags", f"SELECT * FROM {ACCOUNT} WHERE tags @> ARRAY['x']"),
            ("account_lower_handle", f"SELECT * FROM {ACCOUNT} WHERE lower(handle) = 'ann'"),
            ("account_live_code", f"SELECT * FROM {ACCOUNT} WHERE code = 'B'"
                                  " AND deleted_at IS NULL"),
            ("account_org_recent", f"SELECT * FROM {ACCOUNT} WHERE org = 1"
                                   " ORDER BY created_at DESC")):
        assert index in _plan_of(conn, query), (index, _plan_of(conn, query))


def _sequences_go_on_past_the_source(conn):
    # the source gave 100, 105, 110 (INCREMENT BY 5) and counters 1..3
    row = conn.execute(f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty)"
                       " VALUES ('Lee', 'l@m', 1, 1) RETURNING ticket, counter").fetchone()
    assert row[0] > 110 and row[0] % 5 == 0 and row[1] > 3
    owner = conn.execute("SELECT pg_get_serial_sequence('\"Account\"', 'counter')").fetchone()
    assert owner[0] == 'public."Account_counter_seq"'


def _values_of_user_types_are_exact(source_url, conn):
    query = ("SELECT {id}, mood::text, moods::text, contact, backup_contact, tag::text,"
             " total::text, embedding::text FROM \"Account\" ORDER BY 1")
    with psycopg.connect(source_url) as source:
        expected = source.execute(query.format(id="xata_id")).fetchall()
    found = conn.execute(query.format(
        id="(SELECT xata_id FROM xata_id_map.\"Account\" m WHERE m.new_id = id)")
        + " ").fetchall()
    assert [r for r in found if r[0] is not None] == expected


def _comments_are_there(conn):
    assert conn.execute("SELECT obj_description('\"Account\"'::regclass, 'pg_class'),"
                        " (SELECT col_description(attrelid, attnum) FROM pg_attribute"
                        "  WHERE attrelid = '\"Account\"'::regclass AND attname = 'handle'),"
                        " obj_description('org'::regclass, 'pg_class')").fetchone() == (
        "People who sign in", "shown to other users", "Organisations, one per customer")
    assert conn.execute("SELECT count(*) FROM pg_description WHERE description LIKE"
                        " '%xata.link%'").fetchone()[0] == 0


def _link_actions_act(conn):
    conn.execute("UPDATE org SET id = 1000 WHERE id = (SELECT org FROM \"Account\""
                 " WHERE handle = 'Ann')")  # ON UPDATE CASCADE
    assert conn.execute("SELECT org FROM \"Account\" WHERE handle = 'Ann'").fetchone()[0] == 1000
    conn.execute("DELETE FROM org WHERE id = 1000")  # ON DELETE CASCADE
    assert conn.execute("SELECT count(*) FROM \"Account\" WHERE handle = 'Ann'").fetchone()[0] == 0


OBJECT_OIDS = """
SELECT c.relname, c.oid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
WHERE i.indrelid = '"Account"'::regclass
UNION ALL SELECT conname, oid FROM pg_constraint WHERE conrelid = '"Account"'::regclass
UNION ALL SELECT typname, oid FROM pg_type WHERE typname IN ('mood', 'email', 'price_tag')
UNION ALL SELECT relname, oid FROM pg_class WHERE relkind = 'S'
ORDER BY 1
"""


def test_reruns_and_deltas_keep_every_object_without_recreating_it(whole_source, target_url):
    plan = api.describe_source(whole_source).plan
    assert migrate(plan, whole_source, target_url).success
    with psycopg.connect(target_url) as conn:
        before = conn.execute(OBJECT_OIDS).fetchall()
    execute_sql(whole_source, f"INSERT INTO {ACCOUNT} (xata_id, handle, backup_contact, price,"
                              " qty) VALUES ('rec_a4', 'Dee', 'd@e', 7, 3)")
    result = migrate(plan, whole_source, target_url)
    assert result.success and all(check_outcomes(result).values())
    with psycopg.connect(target_url) as conn:
        assert conn.execute(OBJECT_OIDS).fetchall() == before
        ticket, total = conn.execute(
            f"SELECT ticket, total FROM {ACCOUNT} WHERE handle = 'Dee'").fetchone()
        assert (ticket, total) == (115, 21)
        next_ticket = conn.execute(f"INSERT INTO {ACCOUNT} (handle, backup_contact, price, qty)"
                                   " VALUES ('Ed', 'e@f', 1, 1) RETURNING ticket").fetchone()
        assert next_ticket[0] == 120


def test_schema_intact_names_an_object_missing_or_changed_and_a_rerun_remakes_it(
        whole_source, target_url):
    plan = api.describe_source(whole_source).plan
    assert migrate(plan, whole_source, target_url).success
    execute_sql(target_url, "DROP INDEX account_qty",
                "ALTER TABLE \"Account\" DROP CONSTRAINT account_price_positive,"
                " ADD CONSTRAINT account_price_positive CHECK (price >= 0)",
                "COMMENT ON TABLE org IS 'changed'",
                "ALTER TABLE \"Account\" DROP CONSTRAINT \"Account_org_fkey\","
                " ADD CONSTRAINT \"Account_org_fkey\" FOREIGN KEY (org) REFERENCES org (id)")
    account = run_checks(plan, whole_source, target_url, "Account")["schema_intact"]
    assert not account.passed
    differences = {d["object"]: (d["planned"], d["found"])
                   for d in account.metadata["differences"]}
    assert set(differences) == {"index account_qty", "check account_price_positive",
                                "foreign key of link org"}
    assert differences["index account_qty"][1] == "missing"
    assert "price >= CAST(0 AS numeric)" in differences["check account_price_positive"][1]
    assert differences["foreign key of link org"] == (
        "ON DELETE CASCADE ON UPDATE CASCADE", "ON DELETE NO ACTION ON UPDATE NO ACTION")
    org = run_checks(plan, whole_source, target_url, "org")["schema_intact"]
    assert not org.passed and org.metadata["differences"] == [
        {"object": "comment on the table", "planned": "Organisations, one per customer",
         "found": "changed"}]
    # the next run remakes the plan's objects and comments that differ; a link's FOREIGN
    # KEY, the tool's own, is reported, never changed behind the user's back
    result = migrate(plan, whole_source, target_url)
    assert check_outcomes(result)[("org", "schema_intact")]
    again = run_checks(plan, whole_source, target_url, "Account")["schema_intact"]
    assert [d["object"] for d in again.metadata["differences"]] == ["foreign key of link org"]
    with psycopg.connect(target_url) as conn:
        assert "account_qty" in _plan_of(conn, f"SELECT * FROM {ACCOUNT} WHERE qty = 4")


# ---------------------------------------------------------------- a tampered plan

TAMPERED_OBJECTS = [
    ("index", "account_qty", 'CREATE INDEX account_qty ON "Account" (qty); DROP TABLE org',
     "is not exactly one CREATE INDEX statement: found 2 statements"),
    ("index", "account_qty", "DROP TABLE org", "found a DropStmt"),
    ("index", "account_qty", "CREATE INDEX account_qty ON org (name)",
     "found a statement on table 'org', not on 'Account'"),
    ("index", "account_qty", 'CREATE INDEX other ON "Account" (qty)',
     "found a definition of 'other', not of 'account_qty'"),
    ("check", "account_price_positive", 'ALTER TABLE "Account" ADD CONSTRAINT '
     "account_price_positive CHECK (price > 0), DROP COLUMN qty", "found 2 ALTER TABLE actions"),
    ("check", "account_price_positive", 'ALTER TABLE "Account" ADD CONSTRAINT '
     "account_price_positive UNIQUE (qty)", "found a CONSTR_UNIQUE constraint"),
    ("sequence", "ticket_seq", "CREATE TABLE ticket_seq (x int)", "found a CreateStmt"),
    ("index", "account_qty", 'CREATE INDEX account_qty ON "Account" (nope)',
     "the definition reads ['nope'], which the target table does not have"),
]


@pytest.fixture(scope="module")
def whole_plan_text(pg_server, tmp_path_factory):
    source_url = pg_server.create_database("src")
    execute_sql(source_url, XATA_RUNTIME_SQL, WHOLE_SCHEMA, VECTOR_SCHEMA)
    path = tmp_path_factory.mktemp("plan") / "plan.yaml"
    save_plan(api.describe_source(source_url).plan, path)
    return path.read_text()


def _tampered(text: str, tmp_path, change) -> Path:
    raw = yaml.safe_load(text)
    change(raw)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _account(raw) -> dict:
    return next(t for t in raw["tables"] if t["name"] == "Account")


@pytest.mark.parametrize("kind, name, definition, found", TAMPERED_OBJECTS)
def test_a_tampered_definition_is_refused_when_the_plan_loads(whole_plan_text, tmp_path,
                                                              kind, name, definition, found):
    def change(raw):
        account = _account(raw)
        item = next(o for o in account["objects"] + account["sequences"] if o["name"] == name)
        item["definition"] = definition

    path = _tampered(whole_plan_text, tmp_path, change)
    with pytest.raises(PlanError) as refused:
        load_plan(path)
    message = str(refused.value)
    assert message.startswith(f"Table 'Account', {kind} {name!r}: "), message
    assert found in message, message


@pytest.mark.parametrize("where, value, found", [
    ("type", "CREATE TYPE mood AS ENUM ('a'); CREATE TABLE pwned (x int)", "found 2 statements"),
    ("type", "CREATE TYPE other AS ENUM ('a')", "found a definition of 'other'"),
    ("generated", "price * qty; DROP TABLE org", "found a `;`"),
    ("generated", "price * nope", "reads ['nope'], which the target table does not have")])
def test_a_tampered_type_or_generated_expression_is_refused(whole_plan_text, tmp_path,
                                                            where, value, found):
    def change(raw):
        if where == "type":
            next(t for t in raw["types"] if t["name"] == "mood")["definition"] = value
        else:
            column = next(c for c in _account(raw)["columns"] if c["name"] == "total")
            column["generated"] = value

    with pytest.raises(PlanError) as refused:
        load_plan(_tampered(whole_plan_text, tmp_path, change))
    assert found in str(refused.value)


def test_migrate_with_a_tampered_definition_writes_nothing(whole_plan_text, source_url,
                                                           target_url, tmp_path):
    def change(raw):
        item = next(o for o in _account(raw)["objects"] if o["name"] == "account_qty")
        item["definition"] = 'CREATE INDEX account_qty ON "Account" (qty); DROP TABLE org'

    with pytest.raises(PlanError):
        api.migrate(_tampered(whole_plan_text, tmp_path, change), source_url, target_url,
                    tmp_path / "log")
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                            " ON n.oid = c.relnamespace WHERE n.nspname NOT IN"
                            " ('pg_catalog', 'information_schema', 'pg_toast')"
                            ).fetchone()[0] == 0


def test_an_index_made_in_the_source_after_the_plan_stops_the_table(whole_source, target_url):
    plan = api.describe_source(whole_source).plan
    execute_sql(whole_source, 'CREATE INDEX account_late ON "Account" (region)')
    with api.open_connections(whole_source, target_url, "Account") as connections:
        with pytest.raises(PlanError, match="has index account_late, which the plan does not"):
            api.migrate_table(plan, plan.table("Account"), connections)
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT to_regclass('public.\"Account\"')").fetchone()[0] is None


@pytest.mark.slow  # PostgreSQL 15 runs as a process of its own
@pytest.mark.parametrize("server_name", ["embedded", "postgresql-15"])
def test_a_least_privilege_reader_of_either_server_carries_it_all(request, pg_server,
                                                                  target_url, server_name):
    """A role with only CONNECT, USAGE and SELECT on the tables: a sequence it cannot read
    stops the table with the GRANT that fixes it, nothing written; granted, all arrives.
    On PostgreSQL 15, the source's pg_get_*def output is compared with the target's 16."""
    server = pg_server if server_name == "embedded" else request.getfixturevalue("pg15_server")
    source_url = server.create_database("src")
    execute_sql(source_url, XATA_RUNTIME_SQL, WHOLE_SCHEMA)
    reader_url = _reader(source_url)
    plan = api.describe_source(reader_url).plan
    first = migrate(plan, reader_url, target_url)
    error = next(e for e in first.all_events if e.is_step_failure).step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    assert any("cannot read the source's sequence 'ticket_seq'" in m
               and "Grant the source role SELECT on it" in m for m in messages), messages
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT to_regclass('public.\"Account\"')").fetchone()[0] is None
    execute_sql(source_url, "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO xm_whole")
    second = migrate(plan, reader_url, target_url)
    assert second.success and all(check_outcomes(second).values())
    with psycopg.connect(target_url, autocommit=True) as conn:
        _rejects_what_the_source_rejected(conn)
        _sequences_go_on_past_the_source(conn)


def _reader(source_url: str) -> str:
    with psycopg.connect(source_url, autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()[0]
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'xm_whole'").fetchone():
            conn.execute("CREATE ROLE xm_whole LOGIN PASSWORD 'reader'")
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO xm_whole')
        conn.execute("GRANT USAGE ON SCHEMA public TO xm_whole")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO xm_whole")
    parts = urlsplit(source_url)
    return urlunsplit(parts._replace(netloc="xm_whole:reader@" + parts.netloc.rsplit("@", 1)[-1]))


LONG_INDEX = "an_index_name_that_is_exactly_sixty_three_bytes_long_zzzzzzzzzz"
QUOTED_NAMES = f"""
CREATE TABLE "order" ({XATA_COLUMNS}, "select" text, "Mixed Case" int, "x""quote" text,
    "café" text);
CREATE UNIQUE INDEX order_id ON "order" (xata_id);
CREATE INDEX "i x" ON "order" ("select", "Mixed Case") WHERE xata_createdat IS NOT NULL;
CREATE UNIQUE INDEX "lower café" ON "order" (lower("café"));
ALTER TABLE "order" ADD CONSTRAINT "x-check" CHECK (length("x""quote") < 5);
COMMENT ON COLUMN "order"."x""quote" IS 'it''s quoted';
CREATE TABLE {LONG_TABLE} ({XATA_COLUMNS}, {LONG_COLUMN} int);
CREATE UNIQUE INDEX long_id ON {LONG_TABLE} (xata_id);
CREATE INDEX {LONG_INDEX} ON {LONG_TABLE} ({LONG_COLUMN});
INSERT INTO "order" (xata_id, "select", "Mixed Case", "x""quote", "café")
  VALUES ('o1', 'a', 1, 'q"q', 'Été'), ('o2', NULL, NULL, NULL, 'été!');
INSERT INTO {LONG_TABLE} (xata_id, {LONG_COLUMN}) VALUES ('l1', 7);
"""


def test_objects_on_names_that_need_quoting_and_63_byte_names(source_url, target_url):
    assert len(LONG_INDEX) == 63
    execute_sql(source_url, XATA_RUNTIME_SQL, QUOTED_NAMES)
    plan = api.describe_source(source_url).plan
    assert {o.name for o in plan.table("order").objects} == {"i x", "lower café", "x-check"}
    assert [o.name for o in plan.table(LONG_TABLE).objects] == [LONG_INDEX]
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    with psycopg.connect(target_url, autocommit=True) as conn:
        _rejects(conn, "INSERT INTO \"order\" (\"café\") VALUES ('ÉTÉ')", errors.UniqueViolation)
        _rejects(conn, "INSERT INTO \"order\" (\"x\"\"quote\") VALUES ('toolong')",
                 errors.CheckViolation)
        assert conn.execute(
            "SELECT col_description('\"order\"'::regclass, attnum) FROM pg_attribute WHERE"
            " attrelid = '\"order\"'::regclass AND attname = 'x\"quote'").fetchone() == (
            "it's quoted",)
        assert conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                            (LONG_INDEX,)).fetchone()[0].endswith(f"({LONG_COLUMN})")
