"""Any Dagster executor keeps the run's snapshot (defs/executor.with_run_snapshot), and
the Kubernetes example of the README (docs/kubernetes/) loads and validates as Dagster
would load it. The Celery engine itself runs in test_celery.py."""

import importlib.util
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from xata_migration.defs import SNAPSHOT_TAG, build_definitions
from xata_migration.plan import load_plan
from xata_migration_tests import reexecution_job
from xata_migration_tests.support import (create_hostile_source, hostile_expectations,
                                          run_environment, verify_migration)
from xata_migration_tests.test_defs import PLAN

KUBERNETES = Path(__file__).resolve().parents[1] / "docs" / "kubernetes"
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN, sort_keys=False))
    return path


def _load_example():
    spec = importlib.util.spec_from_file_location("k8s_definitions",
                                                  KUBERNETES / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_kubernetes_definitions_load_and_validate(plan_file, monkeypatch):
    monkeypatch.setenv("XATA_MIGRATION_PLAN", str(plan_file))
    example = _load_example()
    job = example.defs().resolve_job_def("migrate_all")
    assert job.executor_def.name == "k8s_steps"
    assert "one snapshot held for the run" in job.executor_def.description
    assert dg.validate_run_config(job, {})
    assert {r.value for r in job.executor_def.get_requirements({})} >= {
        "NON_EPHEMERAL_INSTANCE", "PERSISTENT_OUTPUTS"}
    # the step pods' settings, as k8s_job_executor reads them
    schema = k8s_job_executor.config_schema.config_type
    assert validate_config(schema, example.STEP_POD_CONFIG).success
    assert not validate_config(schema, {**example.STEP_POD_CONFIG, "no_such": 1}).success


def test_a_wrapped_executor_keeps_its_config_schema(plan_file):
    defs = build_definitions(load_plan(plan_file), executor=k8s_job_executor)
    job = defs.resolve_job_def("migrate_all")
    assert dg.validate_run_config(job, {"execution": {"config": {"job_namespace": "x"}}})
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"execution": {"config": {"no_such_option": 1}}})


def test_the_kubernetes_instance_config_validates():
    config, _ = dagster_instance_config(str(KUBERNETES))  # raises on any unknown key
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert validate_config(K8sRunLauncher.config_type(), launcher["config"]).success
    storage = config["storage"]["custom"]
    storage_class = class_from_code_pointer(storage["module"], storage["class"])  # as Dagster
    assert validate_config(storage_class.config_type(), storage["config"]).success
    assert config["concurrency"]["pools"]["default_limit"] >= 1


def test_the_readme_shows_the_example_as_it_is():
    readme = README.read_text()
    for name in ("definitions.py", "dagster.yaml"):
        assert f"docs/kubernetes/{name}" in readme
    assert (KUBERNETES / "definitions.py").read_text().split('"""')[2].strip() in readme


def test_a_configured_executor_runs_in_one_snapshot(source_url, target_url, tmp_path,
                                                    monkeypatch):
    """An executor with its own settings (`configured`), wrapped: its settings apply and
    every step reads the run's snapshot."""
    create_hostile_source(source_url)
    run_environment(source_url, target_url, tmp_path, monkeypatch)
    job = reexecution_job.reconstructable(reexecution_job.configured_migrate_all)
    assert job.get_definition().executor_def.name == "in_process_no_retries"
    with dg.instance_for_test() as instance:
        result = dg.execute_job(job, instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id).tags[SNAPSHOT_TAG]
        assert {e.event_specific_data.materialization.metadata["source_snapshot"].value
                for e in result.get_asset_materialization_events()} == {"the run's"}
    verify_migration(source_url, target_url, hostile_expectations())
