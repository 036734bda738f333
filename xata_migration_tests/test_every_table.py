"""Every table of an app is migrated, whatever its keys, and only Xata's ids change:
Prisma-like tables with text keys made by Xata's xid() (remapped, the ORM's `id` name
kept), the same with integer keys (kept), a Django-like database (integer ids, a natural
text key, two tables that also have Xata's columns), and join tables. Proven on the
target with SQL that uses none of the tool's code (app_shapes.py)."""

import psycopg
import pytest

from xata_migration import api
from xata_migration.plan import PlanError, load_plan, save_plan
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.app_shapes import (DJANGO, DJANGO_NEXT_ROWS, DJANGO_SAME,
                                             PRISMA_INTEGER_KEYS, PRISMA_INTEGER_SAME,
                                             PRISMA_TEXT_KEYS, PRISMA_TEXT_SAME)
from xata_migration_tests.support import (check_outcomes, execute_sql, migrate, run_checks,
                                          step_failure_text)

pytestmark = pytest.mark.slow  # end to end through Dagster


def rows(url: str, queries: list[str]) -> list[list[tuple]]:
    with psycopg.connect(url) as conn:
        return [conn.execute(query).fetchall() for query in queries]


def migrated_exactly(plan, source_url, target_url, same: list[str],
                     kept_deleted: dict[str, int] | None = None) -> None:
    """Migrated, every check green, `same` equal on both sides, every table with as many
    rows (plus `kept_deleted`: rows deleted in the source, kept by `deleted_rows: keep`)."""
    result = migrate(plan, source_url, target_url)
    assert result.success
    outcomes = check_outcomes(result)
    assert outcomes and all(outcomes.values()), outcomes
    assert rows(target_url, same) == rows(source_url, same)
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        for table in plan.tables:  # every table, with all its rows
            count = f'SELECT count(*) FROM "{table.name}"'
            extra = (kept_deleted or {}).get(table.name, 0)
            assert target.execute(count).fetchone()[0] == source.execute(count).fetchone()[0] \
                + extra, table.name


def table_ids(url: str, tables: list[str]) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}


def foreign_key_actions(url: str) -> set[tuple]:
    with psycopg.connect(url) as conn:
        return set(conn.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text, confupdtype,"
            " confdeltype, condeferrable, condeferred FROM pg_constraint"
            " WHERE contype = 'f' AND connamespace = 'public'::regnamespace").fetchall())


def test_prisma_text_keys_are_remapped_with_their_names_and_the_join_table_follows(
        source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, PRISMA_TEXT_KEYS)
    plan = api.describe_source(source_url).plan
    assert {t.name: (t.ids, t.id_column) for t in plan.tables} == {
        "User": ("remap", "id"), "Chat": ("remap", "id"), "Tag": ("remap", "id"),
        "_ChatToTag": ("keep", "")}
    join = plan.table("_ChatToTag")
    assert join.key == [] and [c.name for c in join.rewritten_links] == ["A", "B"]
    migrated_exactly(plan, source_url, target_url, PRISMA_TEXT_SAME)
    assert foreign_key_actions(target_url) == {
        ('"Chat"', '"User"', "c", "c", False, False),
        ('"_ChatToTag"', '"Chat"', "c", "c", False, False),
        ('"_ChatToTag"', '"Tag"', "c", "c", False, False)}
    with psycopg.connect(target_url, autocommit=True) as target:
        chat_a = target.execute(
            "SELECT id FROM \"Chat\" WHERE xata_id = 'rec_cn0d5r1u4s8g0000c001'").fetchone()[0]
        assert target.execute("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE"
                              " attrelid = '\"_ChatToTag\"'::regclass AND attname = 'A'"
                              ).fetchone() == ("bigint",)
        # both old ids of a row resolve, in SQL and through the CLI's lookup
        assert target.execute("SELECT xata_id_map.new_id('Chat', 'ch_a'),"
                              " xata_id_map.new_id('Chat', 'rec_cn0d5r1u4s8g0000c001')"
                              ).fetchone() == (chat_a, chat_a)
        target.execute("INSERT INTO \"_ChatToTag\" VALUES (%s, (SELECT min(id) FROM \"Tag\"))"
                       " ON CONFLICT DO NOTHING", (chat_a,))
    assert api.lookup(target_url, "Chat", "ch_a") == chat_a
    assert api.lookup(target_url, "Chat", "rec_cn0d5r1u4s8g0000c001") == chat_a
    assert api.lookup(target_url, "Chat", "rec_nothing") is None


def test_prisma_integer_keys_are_kept_and_the_next_insert_works(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, PRISMA_INTEGER_KEYS)
    plan = api.describe_source(source_url).plan
    assert {t.name: (t.ids, t.key) for t in plan.tables} == {
        "User": ("keep", ["id"]), "Post": ("keep", ["id"]), "Category": ("keep", ["id"]),
        "_CategoryToPost": ("keep", ["A", "B"])}
    assert "integer" in plan.table("User").ids_reason
    author = plan.table("Post").column("authorId")
    assert (author.type, author.link.table, author.link.column) == ("integer", "User", "id")
    migrated_exactly(plan, source_url, target_url, PRISMA_INTEGER_SAME)
    assert foreign_key_actions(target_url) == foreign_key_actions(source_url)
    with psycopg.connect(target_url, autocommit=True) as target:
        user = target.execute("INSERT INTO \"User\" (email) VALUES ('new@example.org')"
                              " RETURNING id").fetchone()[0]
        category = target.execute("INSERT INTO \"Category\" (name) VALUES ('x') RETURNING id"
                                  ).fetchone()[0]
        assert (user, category) == (5, 3)  # past the highest kept id, from the sequences
        # Xata's old id of a kept row still finds it
        assert target.execute("SELECT xata_id_map.new_id('User', 'rec_cn0d5r1u4s8g0000u004'),"
                              " xata_id_map.xata_id('User', 4)").fetchone() == (
            4, "rec_cn0d5r1u4s8g0000u004")
    assert api.lookup(target_url, "Post", "rec_cn0d5r1u4s8g0000p003") == 3


def test_django_keeps_every_table_its_ids_and_its_session_keys(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, DJANGO)
    described = api.describe_source(source_url)
    plan = described.plan
    assert len(plan.tables) == 9 and not described.left_out
    assert all(t.kept for t in plan.tables)
    session = plan.table("django_session")
    assert (session.key, session.column("session_key").type) == (
        ["session_key"], "character varying(40)")
    assert plan.table("auth_user").column("id").identity == "by default"
    migrated_exactly(plan, source_url, target_url, DJANGO_SAME)
    assert foreign_key_actions(target_url) == foreign_key_actions(source_url)
    with psycopg.connect(target_url, autocommit=True) as target:
        for statement in DJANGO_NEXT_ROWS:
            target.execute(statement)
        assert target.execute("SELECT max(id) FROM auth_user").fetchone() == (6,)
        assert target.execute("SELECT xata_id_map.new_id('polls_question',"
                              " 'rec_cn0d5r1u4s8g0000q011')").fetchone() == (11,)
        indexes = {r[0] for r in target.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'django_session'")}
        assert indexes == {"django_session_pkey", "django_session_expire_date_a5c62663"}


def test_reruns_and_source_changes_keep_every_id(source_url, target_url, tmp_path):
    execute_sql(source_url, XATA_RUNTIME_SQL, DJANGO)
    plan = api.describe_source(source_url).plan
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    plan = load_plan(path)  # the plan as a user keeps it, read back
    assert migrate(plan, source_url, target_url).success
    names = [t.name for t in plan.tables]
    first = table_ids(target_url, names)
    migrated_exactly(plan, source_url, target_url, DJANGO_SAME)
    assert table_ids(target_url, names) == first  # a rerun changes nothing
    execute_sql(source_url,
                "UPDATE auth_user SET username = 'ann2' WHERE id = 1",
                "INSERT INTO auth_user (username, is_staff, date_joined) VALUES ('dee', true,"
                " '2024-05-01+00')",
                "DELETE FROM auth_user_groups WHERE user_id = 5",
                "INSERT INTO django_session VALUES ('newsessionkey', 'e30', '2031-01-01+00')",
                "UPDATE polls_choice SET votes = votes + 1 WHERE id = 3")
    migrated_exactly(plan, source_url, target_url, DJANGO_SAME[:4] + DJANGO_SAME[5:],
                     kept_deleted={"auth_user_groups": 1})
    after = table_ids(target_url, names)
    for table in names:  # every row that was there keeps its id
        ids_before = {r[0] for r in first[table]}
        assert ids_before - {r[0] for r in after[table]} <= (
            {3} if table == "auth_user_groups" else set()), table
    # the row deleted in the source is kept in the target (deleted_rows: keep), and counted
    assert [r for r in after["auth_user_groups"] if r[0] == 3] == [(3, 5, 3)]


def test_rerun_with_text_keys_keeps_the_new_ids_and_replaces_the_join_rows(
        source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, PRISMA_TEXT_KEYS)
    plan = api.describe_source(source_url).plan
    assert migrate(plan, source_url, target_url).success
    first = table_ids(target_url, ["Chat", "Tag"])
    execute_sql(source_url, "DELETE FROM \"_ChatToTag\" WHERE \"A\" = 'ch_b'",
                "INSERT INTO \"Chat\" (id, xata_id, title, \"userId\") VALUES"
                " ('ch_d', 'rec_cn0d5r1u4s8g0000c004', 'new', 'usr_2')",
                "INSERT INTO \"_ChatToTag\" VALUES ('ch_d', 'tag_x')")
    migrated_exactly(plan, source_url, target_url, PRISMA_TEXT_SAME)
    after = table_ids(target_url, ["Chat", "Tag"])
    assert after["Tag"] == first["Tag"]
    assert after["Chat"][:3] == first["Chat"]


def test_checks_of_kept_ids_name_what_differs(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, DJANGO)
    plan = api.describe_source(source_url).plan
    assert migrate(plan, source_url, target_url).success
    outcomes = run_checks(plan, source_url, target_url, "django_session")
    assert set(outcomes) == {"row_counts", "ids_unchanged", "values_unchanged",
                             "schema_intact"}
    assert all(o.passed for o in outcomes.values())
    execute_sql(target_url,
                "UPDATE django_session SET session_data = 'tampered'"
                " WHERE session_key = '0lqz2m3n4b5v6c7x8z9a0s1d2f3g4h5j'",
                "INSERT INTO django_session VALUES ('forged', 'e30', now())")
    outcomes = run_checks(plan, source_url, target_url, "django_session")
    values, ids = outcomes["values_unchanged"], outcomes["ids_unchanged"]
    assert not values.passed and values.metadata["compared_by"] == "row by row"
    assert [e["xata_id"] for e in values.examples] == ["0lqz2m3n4b5v6c7x8z9a0s1d2f3g4h5j"]
    assert not ids.passed and [(e["xata_id"], e["problem"]) for e in ids.examples] == [
        ("forged", "target row with no source row")]
    assert not outcomes["row_counts"].passed


def test_checks_of_a_join_table_catch_a_link_to_the_wrong_row(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, PRISMA_TEXT_KEYS)
    plan = api.describe_source(source_url).plan
    assert migrate(plan, source_url, target_url).success
    execute_sql(target_url, "UPDATE \"_ChatToTag\" SET \"B\" = (SELECT id FROM \"Tag\""
                " WHERE name = 'sea') WHERE \"A\" = (SELECT id FROM \"Chat\" WHERE title ="
                " 'second') AND \"B\" = (SELECT id FROM \"Tag\" WHERE name = 'sea')")
    assert all(o.passed for o in run_checks(plan, source_url, target_url,
                                            "_ChatToTag").values())  # no change: same row
    execute_sql(target_url, "UPDATE \"_ChatToTag\" SET \"B\" = (SELECT id FROM \"Tag\""
                " WHERE name = 'sky') WHERE \"A\" = (SELECT id FROM \"Chat\" WHERE title ="
                " 'second')")
    outcomes = run_checks(plan, source_url, target_url, "_ChatToTag")
    assert not outcomes["ids_unchanged"].passed  # without a key, a whole row differs
    assert outcomes["ids_unchanged"].metadata["source_ids_not_in_target"] == 1


def test_a_table_is_left_out_only_when_the_plan_says_so(source_url, target_url, tmp_path):
    execute_sql(source_url, XATA_RUNTIME_SQL, DJANGO)
    plan = api.describe_source(source_url).plan
    plan.tables.remove(plan.table("django_migrations"))
    plan.skipped_tables["django_migrations"] = "the app's migration history: made again"
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    plan = load_plan(path)
    assert plan.skipped_tables == {
        "django_migrations": "the app's migration history: made again"}
    assert migrate(plan, source_url, target_url).success
    with psycopg.connect(target_url) as target:
        assert target.execute("SELECT to_regclass('django_migrations')").fetchone() == (None,)
    # a table the plan neither migrates nor skips stops the run: it would be lost
    execute_sql(source_url, "CREATE TABLE audit_log (id serial PRIMARY KEY, line text)")
    result = migrate(plan, source_url, target_url)
    assert not result.success
    assert "['audit_log'] that the plan neither migrates nor skips" in step_failure_text(result)
    # and a link to a skipped table is refused when the plan is read
    plan.tables.remove(plan.table("auth_user"))
    plan.skipped_tables["auth_user"] = "not wanted"
    with pytest.raises(PlanError, match="links to table 'auth_user'.*skipped_tables"):
        save_plan(plan, path)
