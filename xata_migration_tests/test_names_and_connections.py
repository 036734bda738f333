"""Derived names under PostgreSQL's 63-byte limit, and connections that never leak a password."""

import dagster as dg
import pytest

from xata_migration.connections import ConnectionFailed, connect, mask_url
from xata_migration.asset_names import dagster_name
from xata_migration.defs import XataSource
from xata_migration.errors import UsageError
from xata_migration.plan import MAX_IDENTIFIER_BYTES, derived_name, fit_identifier


def test_short_names_are_kept():
    assert derived_name("tag-to-image", "tag", "fkey") == "tag-to-image_tag_fkey"


def test_long_names_fit_and_stay_distinct():
    base = "x" * 60
    first, second = derived_name(base, "alpha", "fkey"), derived_name(base, "beta", "fkey")
    assert first != second
    assert all(len(n.encode()) <= MAX_IDENTIFIER_BYTES for n in (first, second))


def test_long_multibyte_names_are_cut_on_a_character_boundary():
    name = fit_identifier("é" * 40 + "_idx")
    assert len(name.encode()) <= MAX_IDENTIFIER_BYTES
    name.encode().decode("utf-8")  # still valid UTF-8
    assert name.startswith("é" * 27)


def test_asset_key_parts_keep_names_dagster_accepts():
    from xata_migration.asset_names import asset_key_part
    assert [asset_key_part(n) for n in ["tag-to-image", "User", "order", "1st", "a.b"]] == \
        ["tag-to-image", "User", "order", "1st", "a.b"]
    assert [asset_key_part(n) for n in ["user group", "café", "from", "config", 'x"q']] == \
        ["user_group", "caf_", "from_table", "config_table", "x_q"]


def test_step_names_are_valid_for_dagster():
    assert dagster_name("tag-to-image") == "migrate_tag_to_image"
    assert dagster_name("from") == "migrate_from"
    assert dagster_name("1st table") == "migrate_1st_table"
    assert dagster_name("teams", "owner") == "link_teams__owner"


@pytest.mark.parametrize("url, masked", [
    ("postgresql://alice:s3cr%40t@db.example:5432/app", "postgresql://alice:***@db.example:5432/app"),
    ("postgresql://alice@db/app", "postgresql://alice@db/app"),
    ("host=db user=alice password=s3cret dbname=app", "host=db user=alice password=*** dbname=app"),
    ("postgresql://db/app?password=s3cret&sslmode=require",
     "postgresql://db/app?password=***&sslmode=require"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_unreachable_database_error_has_no_password(tmp_path):
    url = f"postgresql://alice:hunter2secret@/app?host={tmp_path}&connect_timeout=2"
    with pytest.raises(ConnectionFailed) as error:
        connect(url, "source")
    message = str(error.value)
    assert "hunter2secret" not in message
    assert "source database" in message and "XATA_SOURCE_URL" in message


def test_wrong_database_name_is_reported(pg_server):
    url = pg_server.url("no_such_database_here")
    with pytest.raises(ConnectionFailed, match="no_such_database_here"):
        connect(url, "target")


def test_source_connection_is_read_only(source_url):
    import psycopg
    with connect(source_url, "source", read_only=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE should_not_exist (x int)")


def test_the_executor_names_a_source_url_that_is_not_set(monkeypatch):
    """The executor reads the source's URL before any step: a missing variable is named."""
    monkeypatch.delenv("XATA_SOURCE_URL", raising=False)
    with pytest.raises(UsageError, match="XATA_SOURCE_URL is not set"):
        XataSource(url=dg.EnvVar("XATA_SOURCE_URL")).resolved_url()
    monkeypatch.setenv("XATA_SOURCE_URL", "postgresql://u:secret@h/db")
    assert XataSource(url=dg.EnvVar("XATA_SOURCE_URL")).resolved_url() == \
        "postgresql://u:secret@h/db"
