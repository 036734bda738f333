"""The Dagster definitions, loaded from a plan file with no database anywhere (as Dagster's
example projects' test_defs.py do): assets, deps, checks, job, and `dagster definitions
validate` on the code location users run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xata_migration.defs import build_definitions
from xata_migration.plan import PlanError, load_plan
from xata_migration.verify import CHECKS

README = Path(__file__).resolve().parents[1] / "README.md"

# A self-link, two links to one table, a cycle broken by a deferred link, and names that
# need quoting; written by hand, as a user may edit one.
PLAN = {
    "source_schema": "public", "target_schema": "public", "mapping_schema": "xata_id_map",
    "tables": [
        {"name": "User", "target": "User", "id_column": "xata_id", "columns": [
            {"name": "name", "target": "name", "type": "text"},
            {"name": "team", "target": "team", "type": "bigint",
             "link": {"table": "team", "deferred": True}}]},
        {"name": "team", "target": "team", "id_column": "xata_id", "columns": [
            {"name": "owner", "target": "owner", "type": "bigint", "link": {"table": "User"}},
            {"name": "parent", "target": "parent", "type": "bigint",
             "link": {"table": "team"}}]},
        {"name": "tag-to-image", "target": "tag-to-image", "id_column": "xata_id", "columns": [
            {"name": "from", "target": "from", "type": "bigint", "link": {"table": "User"}},
            {"name": "to", "target": "to", "type": "bigint", "link": {"table": "User"}}]},
    ]}


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN, sort_keys=False))
    return path


def test_definitions_load_from_a_plan_without_a_database(plan_file, monkeypatch):
    monkeypatch.delenv("XATA_SOURCE_URL", raising=False)
    monkeypatch.delenv("TARGET_DATABASE_URL", raising=False)
    defs = build_definitions(load_plan(plan_file))
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {"User", "team", "tag-to-image", "User/team"}
    deps = {key.to_user_string(): sorted(k.to_user_string() for k in graph.get(key).parent_keys)
            for key in graph.get_all_asset_keys()}
    # a self-link (team.parent) is no dependency: the table loads its own rows at once
    assert deps == {"User": [], "team": ["User"], "tag-to-image": ["User"],
                    "User/team": ["User", "team"]}
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("team", "links_intact") in checks and ("User/team", "links_intact") in checks
    assert {name for key, name in checks if key == "User"} == {
        "row_counts", "id_mapping", "values_unchanged", "schema_intact"}  # its link: later
    assert all(graph.get(key).kinds == {"postgres"} for key in graph.get_all_asset_keys())
    assert defs.resolve_job_def("migrate_all").name == "migrate_all"


def test_each_check_is_described_once_for_the_ui_and_the_readme(plan_file):
    """What a check proves is written beside it (verify.CHECKS): the UI shows it on each
    check, and the README's table of checks says the same."""
    defs = build_definitions(load_plan(plan_file))
    specs = {spec.name: spec.description for asset in defs.assets
             for spec in asset.check_specs}
    # those two: on tables with kept ids, on views
    assert set(specs) | {"ids_unchanged", "view_rows"} == set(CHECKS)
    readme = README.read_text()
    for name, proves in CHECKS.items():
        assert specs.get(name, proves).lower().startswith(proves.lower()), name
        assert f"| `{name}` | {proves} |" in readme, name


def test_two_tables_that_would_share_a_dagster_step_are_refused(plan_file):
    plan = load_plan(plan_file)
    twin = yaml.safe_load(yaml.safe_dump(PLAN))["tables"][2]
    twin["name"] = twin["target"] = "tag_to_image"
    raw = dict(PLAN, tables=PLAN["tables"] + [twin])
    plan_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    plan = load_plan(plan_file)
    with pytest.raises(PlanError, match="would both be the Dagster step 'migrate_tag_to_image'"):
        build_definitions(plan)


@pytest.mark.slow
def test_dagster_validates_the_code_location(plan_file):
    env = {k: v for k, v in os.environ.items()
           if k not in ("XATA_SOURCE_URL", "TARGET_DATABASE_URL")}
    env["XATA_MIGRATION_PLAN"] = str(plan_file)
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m",
         "xata_migration.definitions"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr
    env["XATA_MIGRATION_PLAN"] = str(plan_file.parent / "missing.yaml")
    failed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m",
         "xata_migration.definitions"], env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0
    assert "missing.yaml' does not exist" in failed.stdout + failed.stderr


LOADED_THREE_TIMES = r"""
import gc, os, pathlib
import dagster as dg
import xata_migration.definitions as module
tracked_before = len(gc.get_objects())
first, second = module.defs(), module.defs()
assert isinstance(first, dg.Definitions)
plan = pathlib.Path(os.environ["XATA_MIGRATION_PLAN"])
plan.write_text(plan.read_text() + "# changed\n")
third = module.defs()
print(first is second, third is first, tracked_before, gc.get_freeze_count(),
      len(gc.get_objects()))
"""


def test_the_code_location_is_built_once_and_left_out_of_the_garbage_collector(plan_file):
    """Dagster loads the code location several times a process: the definitions are built
    once for each content of the plan file. Then what the process has loaded is frozen
    (gc.freeze): the collector's full collections, and the one at exit, no longer walk
    it."""
    env = dict(os.environ, XATA_MIGRATION_PLAN=str(plan_file))
    done = subprocess.run([sys.executable, "-c", LOADED_THREE_TIMES], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    same, same_after_change, *counts = done.stdout.split()
    assert (same, same_after_change) == ("True", "False")
    tracked_before, frozen, tracked_after = map(int, counts)
    assert frozen >= tracked_before > 10_000  # Dagster alone is well over that
    assert tracked_after < tracked_before / 10
