"""The command's own help: every subcommand in the order of the workflow, defaults shown,
the environment it reads, and its version."""

import os
import subprocess
import sys
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


@pytest.mark.slow  # the command, and the embedded server it starts, are processes
def test_a_command_that_starts_the_embedded_server_stops_it(tmp_path):
    env = dict(os.environ, XATA_MIGRATION_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "xata_migration.cli", "lookup", "tag",
                           "rec_x", "--target-url", "embedded:lookup_target"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "xata_id_map" in done.stderr  # no migration there yet
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
    assert (tmp_path / "pgdata" / "PG_VERSION").exists()  # the server did start
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()  # and stopped


def test_a_progress_line_drawn_as_a_bar_on_a_terminal():
    from xata_migration.cli import progress_bar

    assert progress_bar("big: copied 75,727 of about 300,000 rows (75,512 rows/s)") == (
        "big: [######..................]  25%  75,727 of about 300,000 rows, 75,512 rows/s")
    assert progress_bar("my table: copied 9 of about 3 rows (1 rows/s)").startswith(
        "my table: [########################] 100%")
    assert progress_bar("big: loaded in 3.1 s, 300,000 rows") is None
    assert progress_bar("big: copied 120 rows so far (60 rows/s)") is None  # no total: a line
