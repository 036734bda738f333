"""A legacy Xata CSV export (files the test writes, as the console did) loaded with its
schema file, migrated, and compared value by value with what the files say, through the
mapping: quoting, embedded newlines, unicode, empty vs missing, arrays, JSON, vectors,
objects, a self-link, a junction table and an id that points nowhere."""

import csv
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg import sql

from xata_migration.plan import load_plan, save_plan
from xata_migration.sources import CsvImportError, import_csv
from xata_migration_tests.support import check_outcomes, migrate, plan_for

SCHEMA = {"tables": [
    {"name": "User", "columns": [
        {"name": "email", "type": "email", "unique": True},
        {"name": "name", "type": "string", "notNull": True, "defaultValue": "anon"},
        {"name": "bio", "type": "text"},
        {"name": "age", "type": "int"},
        {"name": "Score", "type": "float"},
        {"name": "active", "type": "bool"},
        {"name": "born", "type": "datetime"},
        {"name": "labels", "type": "multiple"},
        {"name": "prefs", "type": "json"},
        {"name": "embedding", "type": "vector", "vector": {"dimension": 3}},
        {"name": "avatar", "type": "file"},
        {"name": "photos", "type": "file[]"},
        {"name": "address", "type": "object", "columns": [
            {"name": "street", "type": "string"}, {"name": "zip", "type": "int"}]},
        {"name": "manager", "type": "link", "link": {"table": "User"}}]},
    {"name": "tag", "columns": [
        {"name": "label", "type": "string"},
        {"name": "color", "type": "string", "defaultValue": "red"}]},
    {"name": "tag-to-User", "columns": [
        {"name": "user", "type": "link", "link": {"table": "User"}},
        {"name": "tag", "type": "link", "link": {"table": "tag"}}]},
]}
META = ["id", "xata.createdAt", "xata.updatedAt", "xata.version"]
USER_HEADER = META + ["email", "name", "bio", "age", "Score", "active", "born", "labels",
                      "prefs", "embedding", "avatar", "photos", "address", "manager"]
CREATED = "2023-04-01T10:00:00.123Z"


def _user(n, **fields):
    row = {"id": f"rec_user{n}", "xata.createdAt": CREATED,
           "xata.updatedAt": "2023-04-02T10:00:00Z", "xata.version": "3",
           "email": f"u{n}@example.org", "name": f"User {n}", "bio": "", "age": "",
           "Score": "", "active": "", "born": "", "labels": "", "prefs": "",
           "embedding": "", "avatar": "", "photos": "", "address": "", "manager": ""}
    return {**row, **fields}


USERS = [
    _user(1, bio='A "quoted", comma\nsecond line\r\nthird, Ünïcødé ✓ 日本', age="-42",
          Score="NaN", active="true", born="1947-06-24T00:00:00Z",
          labels='["a,b", null, "c \\"d\\""]', prefs='{"theme": "dark", "n": [1, 2]}',
          embedding="[0.5, -1.25, 3]", avatar='{"name": "me.png", "size": 10}',
          photos='[{"name": "a.jpg"}]', address='{"street": "Main St 1", "zip": 1000}'),
    _user(2, name="", age="9223372036854775807", Score="-0.0", active="FALSE",
          born="2024-02-29T23:59:59.999999+02:00", labels="[]", manager="rec_user1"),
    _user(3, manager="rec_user3", born="2001-01-01T12:00:00"),  # a self-link to itself
    _user(4, email="", manager="rec_user2"),
]
TAGS = [{"id": "tag_custom-id:1", "label": "sky, blue", **{"xata.createdAt": CREATED}},
        {"id": "rec_tag2", "label": "", "xata.createdAt": CREATED}]
JUNCTION = [{"id": "rec_j1", "user": "rec_user1", "tag": "tag_custom-id:1"},
            {"id": "rec_j2", "user": "rec_user2", "tag": ""},
            {"id": "rec_j3", "user": "rec_gone", "tag": "rec_tag2"}]  # points nowhere


def write_export(folder, users=USERS, user_header=USER_HEADER, schema=SCHEMA):
    folder.mkdir(exist_ok=True)
    _write(folder / "User.csv", user_header, users)
    _write(folder / "tag.csv", ["id", "xata.createdAt", "label"], TAGS)
    _write(folder / "tag-to-User.csv", ["id", "user", "tag"], JUNCTION)
    schema_path = folder.parent / "schema.json"
    schema_path.write_text(json.dumps(schema))
    return schema_path


def _write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _target_rows(target_url, table):
    """{old Xata id: target row}, joined through the mapping."""
    with psycopg.connect(target_url) as conn, conn.cursor(
            row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.SQL("SELECT m.xata_id AS old_id, t.* FROM {} t JOIN {} m"
                            " ON m.new_id = t.id").format(sql.Identifier(table),
                                                          sql.Identifier("xata_id_map", table)))
        return {row.pop("old_id"): row for row in cur.fetchall()}


def _utc(text):
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def test_csv_export_migrates_value_for_value(tmp_path, source_url, target_url):
    schema_path = write_export(tmp_path / "export")
    loaded = import_csv(tmp_path / "export", schema_path, source_url)
    assert loaded.rows == {"User": 4, "tag": 2, "tag-to-User": 3}
    assert any("no column 'color'" in w for w in loaded.warnings)

    plan = plan_for(source_url)
    assert {(t.name, c.name): c.link.table for t in plan.tables for c in t.links} == {
        ("User", "manager"): "User", ("tag-to-User", "user"): "User",
        ("tag-to-User", "tag"): "tag"}
    assert plan.table("User").column("address").note.startswith("Xata object column")
    plan.table("tag-to-User").column("user").link.on_missing = "null"
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())

    users = _target_rows(target_url, "User")
    new_id = {old: row["id"] for old, row in users.items()}
    one, two, three, four = (users[f"rec_user{n}"] for n in (1, 2, 3, 4))
    assert one["bio"] == 'A "quoted", comma\nsecond line\r\nthird, Ünïcødé ✓ 日本'
    assert one["age"] == -42 and repr(one["Score"]) == "nan" and one["active"] is True
    assert one["born"] == _utc("1947-06-24T00:00:00+00:00")
    assert one["labels"] == ["a,b", None, 'c "d"']
    assert one["prefs"] == {"theme": "dark", "n": [1, 2]}
    assert one["embedding"] == [0.5, -1.25, 3.0]
    assert one["avatar"] == {"name": "me.png", "size": 10} and one["photos"] == [{"name": "a.jpg"}]
    assert one["address"] == {"street": "Main St 1", "zip": 1000}
    assert one["manager"] is None and one["created_at"] == _utc("2023-04-01T10:00:00.123+00:00")
    # empty fields: NULL, except the notNull string, which is ''
    assert one["email"] == "u1@example.org" and four["email"] is None
    assert two["name"] == "" and two["bio"] is None and two["labels"] == []
    assert two["age"] == 9223372036854775807 and repr(two["Score"]) == "-0.0"
    assert two["active"] is False and two["born"] == _utc("2024-02-29T21:59:59.999999+00:00")
    assert three["born"] == _utc("2001-01-01T12:00:00+00:00")  # no offset: UTC
    assert (two["manager"], three["manager"], four["manager"]) == (
        new_id["rec_user1"], new_id["rec_user3"], new_id["rec_user2"])

    tags = _target_rows(target_url, "tag")
    assert tags["tag_custom-id:1"]["label"] == "sky, blue" and tags["rec_tag2"]["label"] is None
    assert {t["color"] for t in tags.values()} == {"red"}  # missing column: its default
    junction = _target_rows(target_url, "tag-to-User")
    assert (junction["rec_j1"]["user"], junction["rec_j1"]["tag"]) == (
        new_id["rec_user1"], tags["tag_custom-id:1"]["id"])
    assert junction["rec_j2"]["tag"] is None
    assert junction["rec_j3"]["user"] is None and junction["rec_j3"]["tag"] == tags["rec_tag2"]["id"]


def test_objects_as_columns(tmp_path, source_url, target_url):
    header = [h for h in USER_HEADER if h != "address"] + ["address.street", "address.zip"]
    users = [{**u, "address.street": f"Street {i}", "address.zip": str(i)}
             for i, u in enumerate(USERS)]
    schema_path = write_export(tmp_path / "export", users, header)
    import_csv(tmp_path / "export", schema_path, source_url, objects="columns")
    plan = plan_for(source_url)
    street = plan.table("User").column("address.street")
    assert street.type == "text" and "object column 'address'" in street.note
    assert plan.table("User").column("address.zip").type == "bigint"
    plan.table("tag-to-User").column("user").link.on_missing = "null"
    assert migrate(plan, source_url, target_url).success
    users = _target_rows(target_url, "User")
    assert (users["rec_user3"]["address.street"], users["rec_user3"]["address.zip"]) == (
        "Street 2", 2)


def _tables(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                            ).fetchone()[0]


@pytest.mark.parametrize("users, expected", [
    # after a field with two embedded line breaks: the line is the file's, not the record's
    ([USERS[0], _user(5, age="12.5")], "User.csv, line 5, column 'age': '12.5' is not an "
                                       "integer"),
    ([_user(5, active="yes")], "line 2, column 'active': 'yes' is not true or false"),
    ([_user(5, embedding="[1, 2]")], "'[1, 2]' has 2 numbers; the vector has 3"),
    ([_user(5, labels="a;b")], "column 'labels': 'a;b' is not JSON"),
    ([_user(5, born="yesterday")], "'yesterday' is not an ISO 8601 date and time"),
    ([_user(5, id="")], "column 'id': '' is empty, and the column is notNull"),
])
def test_a_value_that_does_not_parse_is_named_and_nothing_is_loaded(
        tmp_path, source_url, users, expected):
    schema_path = write_export(tmp_path / "export", users)
    with pytest.raises(CsvImportError) as raised:
        import_csv(tmp_path / "export", schema_path, source_url)
    assert expected in str(raised.value)
    assert _tables(source_url) == 0


def test_malformed_files_are_refused(tmp_path, source_url):
    schema_path = write_export(tmp_path / "export")
    with open(tmp_path / "export" / "tag.csv", "a", encoding="utf-8") as file:
        file.write("rec_short\n")  # fewer fields than the header
    with pytest.raises(CsvImportError, match="tag.csv, line 4, column 'xata.createdAt': '' is "
                                             "missing"):
        import_csv(tmp_path / "export", schema_path, source_url)
    write_export(tmp_path / "export", [{**USERS[1], "nickname": "x"}],
                 USER_HEADER + ["nickname"])
    with pytest.raises(CsvImportError, match="has 'nickname', which table 'User'"):
        import_csv(tmp_path / "export", schema_path, source_url)
    (tmp_path / "export" / "tag.csv").unlink()
    with pytest.raises(CsvImportError, match="No CSV file for 1 table"):
        import_csv(tmp_path / "export", schema_path, source_url)
    assert _tables(source_url) == 0


def test_duplicate_ids_are_refused_with_the_id(tmp_path, source_url):
    schema_path = write_export(tmp_path / "export", [USERS[0], _user(9, id="rec_user1")])
    with pytest.raises(CsvImportError, match=r"User.csv: PostgreSQL refused a row.*rec_user1"):
        import_csv(tmp_path / "export", schema_path, source_url)
    assert _tables(source_url) == 0


@pytest.mark.slow
def test_documented_commands_on_the_embedded_server(tmp_path):
    """The README's sequence, as a new user types it, on the embedded server."""
    schema_path = write_export(tmp_path / "export")
    env = dict(os.environ, XATA_MIGRATION_HOME=str(tmp_path / "home"))
    env.pop("DAGSTER_PG_URL", None)
    cli = [sys.executable, "-m", "xata_migration.cli"]

    def run(*args):
        done = subprocess.run(cli + list(args), env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "Loaded 3 tables, 9 rows" in run("import-csv", "export", "--schema", schema_path,
                                            "--into", "embedded:legacy_source")
    run("plan", "--source-url", "embedded:legacy_source", "--output", "plan.yaml")
    plan = load_plan(tmp_path / "plan.yaml")
    plan.table("tag-to-User").column("user").link.on_missing = "null"  # the review step
    save_plan(plan, tmp_path / "plan.yaml")
    out = run("migrate", "--plan", "plan.yaml", "--source-url", "embedded:legacy_source",
              "--target-url", "embedded:legacy_target")
    assert "3 assets materialized; 14 of 14 checks passed." in out
    assert "Every table migrated and every check passed." in out
