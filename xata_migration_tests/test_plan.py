"""Introspection -> plan, the plan file, and validation errors that name the fix."""

import pytest
import yaml

from xata_migration.asset_names import check_step_names
from xata_migration.plan import PlanError, load_plan, save_plan
from xata_migration_tests.support import (LONG_COLUMN, LONG_TABLE, create_hostile_source,
                                          plan_for)


@pytest.fixture
def plan(source_url):
    create_hostile_source(source_url)
    return plan_for(source_url)


def test_introspection_finds_ids_links_and_types(plan):
    assert sorted(t.name for t in plan.tables) == sorted(
        ["User", "order", "tag", "image", "tag-to-image", LONG_TABLE, "empty_table",
         "prisma_user", "prisma_session", "plain_log"])
    user = plan.table("User")
    assert user.id_column == "xata_id" and user.id_order == ["xata_createdat"]
    assert user.dropped == ["xata_version"]
    assert user.column("xata_createdat").target == "created_at"
    assert user.column("avatar").type == "jsonb"  # xata.xata_file domain
    assert user.column("photos").type == "jsonb"  # xata.xata_file_array domain
    assert user.column("embedding").type == "real[]"
    assert user.column("emailAddress").unique
    order = plan.table("order")
    assert {c.name: (c.link.table, c.link.on_delete, c.link.declared_by) for c in order.links} \
        == {"buyer": ("User", "SET NULL", "foreign_key"),
            "seller": ("User", "CASCADE", "foreign_key"),
            "parent": ("order", "SET NULL", "foreign_key")}
    assert order.column("amount").type == "numeric(12,2)"
    owner = plan.table("image").column("ownerId")
    assert (owner.type, owner.link.table, owner.link.declared_by) == ("bigint", "User", "comment")
    session = plan.table("prisma_session")
    assert session.id_column == "id" and session.id_order == []
    assert session.ids == "remap" and "xid()" in session.ids_reason
    log = plan.table("plain_log")
    assert (log.ids, log.id_column, log.key) == ("keep", "", ["id"])
    assert session.column("userId").link.table == "prisma_user"
    assert session.column("userId").not_null
    assert plan.table(LONG_TABLE).column(LONG_COLUMN).link.table == "User"
    assert plan.table("empty_table").columns[0].target == "created_at"


def test_order_puts_parents_first(plan):
    order = plan.order()
    for table in plan.tables:
        for parent in plan.parents(table):
            assert order.index(parent) < order.index(table.name)


def test_plan_file_round_trips(plan, tmp_path):
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    raw = yaml.safe_load(path.read_text())
    assert raw["mapping_schema"] == "xata_id_map" and raw["order"] == plan.order()
    assert load_plan(path) == plan


def _edited(plan, tmp_path, edit) -> str:
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PlanError) as error:
        load_plan(path)
    return str(error.value)


def _table(raw, name):
    return next(t for t in raw["tables"] if t["name"] == name)


def _column(raw, table, name):
    return next(c for c in _table(raw, table)["columns"] if c["name"] == name)


def test_link_to_a_table_not_migrated_is_refused(plan, tmp_path):
    def edit(raw):
        raw["tables"] = [t for t in raw["tables"] if t["name"] != "tag"]
    message = _edited(plan, tmp_path, edit)
    assert "'tag-to-image', column 'tag'" in message and "does not migrate" in message


def test_cycle_without_a_deferred_link_is_refused(plan, tmp_path):
    def edit(raw):
        _column(raw, "User", "emailAddress").update(
            type="bigint", link={"table": "order"})
    message = _edited(plan, tmp_path, edit)
    assert "cycle" in message and "deferred: true" in message
    assert "User" in message and "order" in message


def test_two_columns_with_one_target_name_are_refused(plan, tmp_path):
    message = _edited(plan, tmp_path,
                      lambda raw: _column(raw, "tag", "name").update(target="created_at"))
    assert "Table 'tag'" in message and "created_at" in message


def test_a_column_named_like_the_new_key_is_refused(plan, tmp_path):
    message = _edited(plan, tmp_path, lambda raw: _column(raw, "tag", "name").update(target="id"))
    assert "'id'" in message and "target" in message


def test_bad_type_and_bad_choices_are_refused(plan, tmp_path):
    assert "is not exactly a type name: found a `;`" in _edited(
        plan, tmp_path, lambda raw: _column(raw, "tag", "name").update(type="text; DROP TABLE x"))
    assert "on_missing" in _edited(
        plan, tmp_path, lambda raw: _column(raw, "order", "buyer")["link"].update(
            on_missing="ignore"))
    assert "must be bigint" in _edited(
        plan, tmp_path, lambda raw: _column(raw, "order", "buyer").update(type="text"))


def test_target_names_over_63_bytes_are_refused(plan, tmp_path):
    message = _edited(plan, tmp_path,
                      lambda raw: _table(raw, "tag").update(target="é" * 32))
    assert "63 bytes" in message


def test_tables_whose_step_names_collide_are_refused(plan):
    import copy
    twin = copy.deepcopy(plan.table("tag-to-image"))
    twin.name = twin.target = "tag_to_image"
    plan.tables.append(twin)
    with pytest.raises(PlanError, match="'migrate_tag_to_image'"):
        check_step_names(plan)  # by `plan` and by the definitions (test_defs.py)


def test_missing_plan_file_says_how_to_make_one(tmp_path):
    with pytest.raises(PlanError, match="xata-migration plan"):
        load_plan(tmp_path / "nope.yaml")


def test_source_without_tables_is_reported(source_url):
    from xata_migration.connections import connect
    from xata_migration.plan import introspect
    with connect(source_url, "source", read_only=True) as conn:
        with pytest.raises(PlanError, match="has no table"):
            introspect(conn)
