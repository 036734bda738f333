"""Views and materialized views are assets downstream of the tables they read: made on the
target with their queries rewritten for the new ids, checked against the source's rows
(ids read back through the mappings), a materialized view refreshed on every run. Proven
with SQL that uses none of the tool's code."""

import dagster as dg
import psycopg
import pytest

from xata_migration import api
from xata_migration.defs import TargetDatabase, XataSource, build_definitions
from xata_migration.plan import PlanError, save_plan
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration.verify import view_rows
from xata_migration_tests.support import XATA_COLUMNS, check_outcomes, execute_sql, migrate

pytestmark = pytest.mark.slow  # end to end through Dagster

SCHEMA = f"""
CREATE TABLE org ({XATA_COLUMNS}, name text NOT NULL);
CREATE UNIQUE INDEX org_xata_id_key ON org (xata_id);
CREATE TABLE "Account" ({XATA_COLUMNS}, handle text, amount int,
    org text REFERENCES org (xata_id));
CREATE UNIQUE INDEX account_xata_id_key ON "Account" (xata_id);
INSERT INTO org (xata_id, name) VALUES ('rec_cn0d5r1u4s8g0000o001', 'acme'),
  ('rec_cn0d5r1u4s8g0000o002', 'globex');
INSERT INTO "Account" (xata_id, handle, amount, org) VALUES
  ('rec_cn0d5r1u4s8g0000a001', 'ann', 10, 'rec_cn0d5r1u4s8g0000o002'),
  ('rec_cn0d5r1u4s8g0000a002', 'bo', 5, 'rec_cn0d5r1u4s8g0000o001'),
  ('rec_cn0d5r1u4s8g0000a003', 'cy', 7, 'rec_cn0d5r1u4s8g0000o002'),
  ('rec_cn0d5r1u4s8g0000a004', 'di', 1, NULL);
CREATE VIEW account_orgs AS SELECT a.xata_id, a.handle, o.name, a.org
  FROM "Account" a JOIN org o ON o.xata_id = a.org;
CREATE MATERIALIZED VIEW org_totals AS SELECT o.xata_id AS org_id, o.name,
  sum(a.amount) AS total FROM org o JOIN "Account" a ON a.org = o.xata_id
  GROUP BY o.xata_id, o.name;
CREATE VIEW account_labels AS SELECT a.handle || '@' || a.xata_id AS label FROM "Account" a;
"""

# each view's rows, its id columns named by the old ids: on the source as they are, on
# the target read back through the mapping tables
ACCOUNT_ORGS = {
    "source": "SELECT xata_id, handle, name, org FROM account_orgs ORDER BY 1",
    "target": "SELECT m.xata_id, v.handle, v.name, om.xata_id FROM account_orgs v"
              " JOIN xata_id_map.\"Account\" m ON m.new_id = v.xata_id"
              " JOIN xata_id_map.org om ON om.new_id = v.org ORDER BY 1"}
ORG_TOTALS = {
    "source": "SELECT org_id, name, total FROM org_totals ORDER BY 1",
    "target": "SELECT m.xata_id, v.name, v.total FROM org_totals v"
              " JOIN xata_id_map.org m ON m.new_id = v.org_id ORDER BY 1"}


def same_rows(source_url, target_url, queries: dict) -> list[tuple]:
    with psycopg.connect(source_url) as source, psycopg.connect(target_url) as target:
        expected = source.execute(queries["source"]).fetchall()
        assert target.execute(queries["target"]).fetchall() == expected
    return expected


def test_views_follow_their_tables_with_ids_translated(source_url, target_url, tmp_path):
    execute_sql(source_url, XATA_RUNTIME_SQL, SCHEMA)
    plan = api.describe_source(source_url).plan
    views = {v.name: v for v in plan.views}
    assert views["account_orgs"].fate == "carry"
    assert "o.id = a.org" in views["account_orgs"].query  # the usual join, on new ids
    assert views["account_orgs"].id_columns == {"xata_id": "Account", "org": "org"}
    assert (views["org_totals"].kind, views["org_totals"].id_columns) == (
        "materialized", {"org_id": "org"})
    labels = views["account_labels"]
    assert labels.fate == "review" and "uses the record id of 'Account' as a value" in \
        labels.reason
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    with pytest.raises(PlanError, match="view 'account_labels'"):
        api.migrate(path, source_url, target_url, tmp_path / "log")
    labels.fate = "drop"

    # the lineage: each view downstream of the tables it reads
    graph = build_definitions(plan, resources={
        "xata_source": XataSource(url=source_url),
        "target_database": TargetDatabase(url=target_url)}).resolve_asset_graph()
    assert graph.get(api_key("account_orgs")).parent_keys == {api_key("Account"),
                                                              api_key("org")}
    assert api_key("account_labels") not in graph.get_all_asset_keys()

    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    assert ("account_orgs", "view_rows") in check_outcomes(result)
    assert len(same_rows(source_url, target_url, ACCOUNT_ORGS)) == 3
    assert same_rows(source_url, target_url, ORG_TOTALS) == [
        ("rec_cn0d5r1u4s8g0000o001", "acme", 5), ("rec_cn0d5r1u4s8g0000o002", "globex", 17)]

    # a new account in the source: the next run refreshes the materialized view
    execute_sql(source_url, "INSERT INTO \"Account\" (xata_id, handle, amount, org) VALUES"
                " ('rec_cn0d5r1u4s8g0000a005', 'ed', 100, 'rec_cn0d5r1u4s8g0000o001')",
                "REFRESH MATERIALIZED VIEW org_totals")
    again = migrate(plan, source_url, target_url)
    assert again.success and all(check_outcomes(again).values())
    assert same_rows(source_url, target_url, ORG_TOTALS)[0] == (
        "rec_cn0d5r1u4s8g0000o001", "acme", 105)
    # a view changed by hand on the target fails its check, naming the difference
    execute_sql(target_url, "CREATE OR REPLACE VIEW account_orgs AS SELECT a.id AS xata_id,"
                " a.handle, o.name, a.org FROM \"Account\" a JOIN org o ON o.id = a.org"
                " WHERE a.handle <> 'ann'")
    with api.open_connections(source_url, target_url) as connections:
        view = next(v for v in plan.views if v.name == "account_orgs")
        outcome = api.migrate_view(plan, view, connections).outcomes[0]
    assert outcome.passed  # the run remade it as planned, then checked it
    execute_sql(target_url, "CREATE OR REPLACE VIEW account_orgs AS SELECT a.id AS xata_id,"
                " a.handle, o.name, a.org FROM \"Account\" a JOIN org o ON o.id = a.org"
                " WHERE a.handle <> 'ann'")
    with api.open_connections(source_url, target_url) as connections:
        outcome = view_rows(connections.source, connections.target, plan, view)
    assert not outcome.passed and outcome.metadata["rows_only_in_source"] == 1


def api_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([name])
