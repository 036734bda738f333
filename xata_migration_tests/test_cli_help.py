"""The command's own help: every subcommand in the order of the workflow, defaults shown,
the environment it reads, and its version."""

from importlib import metadata

import pytest

from xata_migration.cli import main, parser

WORKFLOW = ["import-dump", "import-csv", "plan", "migrate", "report", "lookup", "demo", "dev"]
VARIABLES = ["XATA_SOURCE_URL", "TARGET_DATABASE_URL", "XATA_MIGRATION_PLAN",
             "XATA_MIGRATION_LOCK_TIMEOUT", "XATA_MIGRATION_CONNECT_TIMEOUT",
             "XATA_MIGRATION_PROGRESS_SECONDS", "XATA_MIGRATION_HOME", "DAGSTER_HOME",
             "DAGSTER_PG_URL"]


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_help_names_every_subcommand_in_the_order_of_the_workflow(capsys):
    text = _help(capsys)
    positions = [text.index(f"\n    {name}") for name in WORKFLOW]
    assert positions == sorted(positions)
    subcommands = parser()._subparsers._group_actions[0].choices
    assert list(subcommands) == WORKFLOW  # none missing from the list above
    assert all(variable in text for variable in VARIABLES)
    assert not text.rstrip().endswith(",")


def test_every_subcommand_shows_its_defaults(capsys):
    assert "(default: migrate-run.log)" in _help(capsys, "migrate")
    assert "(default: public)" in _help(capsys, "plan")
    assert "(default: 3000)" in _help(capsys, "dev")
    assert "(default: None)" not in _help(capsys, "report")


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == (
        f"xata-migration {metadata.version('xata-migration')}")
