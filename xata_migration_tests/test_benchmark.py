"""The benchmark's one command works and prints every figure (small sizes: no timing here)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_prints_each_method_and_the_ratios():
    """One run of each method (--repeat 1: the medians of several are a unit test below).
    The demo schema is left out (--demo-rows 0): it is measured by the same code as the
    wide schema, and `make demo` migrates it."""
    scratch = Path(tempfile.mkdtemp(prefix="xmb"))  # short: the server's socket is in there
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--parents", "30", "--children", "120",
         "--sample", "5", "--demo-rows", "0", "--wide-tables", "7", "--big-rows", "2000",
         "--split-workers", "1,2", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TMPDIR=str(scratch)))
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert list(scratch.glob("xm-bench-*")) == []  # its server and databases deleted
    shutil.rmtree(scratch)
    out = finished.stdout
    assert "source: 5200 rows (30 parents, 120 children; 5120 in tables with links)" in out
    for method in ("(a) pg_dump | pg_restore", "(b) migrate_all + checks",
                   "(c) row by row (sample 5 of each kind, extrapolated)"):
        line = next(line for line in out.splitlines() if line.startswith(method))
        assert re.search(r"\s\d+(\.\d)? s\s+\d+ rows/s", line), line
    assert re.search(r"per row: \d+\.\d\d ms in a table without links \(INSERT\), "
                     r"\d+\.\d\d ms with \(INSERT, then UPDATE\)", out)
    # (c) writes into (b)'s tables: the keys, FOREIGN KEYs and indexes (b) made are there
    assert "into an empty copy of (b)'s tables: 4 tables, 3 FOREIGN KEYs, 7 indexes" in out
    assert re.search(r"b/a = \d+\.\d\d   c/b = \d+   peak RSS of this process: \d+ MB", out)
    # (d), the whole command, beside (a) of the same source, for each source
    assert "(d) the whole command, process start to exit, beside (a) of the same source:" in out
    assert "demo schema" not in out
    for source in ("wide schema (1-3 links a table, self-links, a cycle): 7 tables, 28 rows",
                   "parent and child: 4 tables, 5200 rows"):
        figures = out.split(source + "\n", 1)[1].splitlines()[0]
        assert re.fullmatch(r"    \(a\) [\d.]+ s   \(d\) [\d.]+ s   d/a = \d+\.\d\d"
                            r"   peak RSS of \(d\): \d+ MB", figures), figures
        if not source.startswith("parent"):  # with (e), Dagster alone on the same graph
            floor = out.split(source + "\n", 1)[1].splitlines()[1]
            assert re.fullmatch(r"    \(e\) Dagster alone, the same assets and checks doing "
                                r"nothing: [\d.]+ s   d - e = -?[\d.]+ s of the tool's own "
                                r"work, -?\d+\.\d\d\d s a table", floor), floor
    # the big table, read by 1 and 2 sessions at once
    big = out.split("one big table: 2000 rows in `event` (and 100 owners), split_rows 2000\n",
                    1)[1].splitlines()
    assert re.fullmatch(r"    \(a\) [\d.]+ s", big[0]), big[0]
    for line, workers in zip(big[1:3], (1, 2)):
        assert re.fullmatch(rf"    \(d\) split_workers {workers}: [\d.]+ s   d/a = \d+\.\d\d"
                            r"   speed-up \d+\.\d\dx   peak RSS of \(d\): \d+ MB", line), line
    assert "speed-up 1.00x" in big[1]
    for method in ("(a)", "(b)"):
        assert re.search(rf"CPU of the whole machine during {re.escape(method)}: \d+\.\d "
                         rf"core-seconds, \d+% of its {os.cpu_count()} cores' time", out), out


def test_several_runs_print_their_median_and_each_run():
    from benchmarks.run import CommandTiming, command_line, spread
    assert spread([1.0]) == ""
    assert spread([1.25, 2.0, 3.5]) == "  (median of 1.2, 2.0, 3.5)"
    line = command_line("x", 10, 2, [1.0, 3.0], [CommandTiming(4.0, None, 100.0),
                                                 CommandTiming(8.0, None, 120.0)])
    assert line == ("x: 2 tables, 10 rows\n    (a) 2.0 s  (median of 1.0, 3.0)   (d) 6.0 s"
                    "  (median of 4.0, 8.0)   d/a = 3.00   peak RSS of (d): 120 MB")


def test_the_wide_schema_has_one_to_three_links_a_table_and_a_cycle():
    from benchmarks.shapes import wide_parents
    parents = wide_parents(120)
    assert {len(links) for links in parents.values()} == {1, 2, 3}
    assert sum(i in links for i, links in parents.items()) == 24  # self-links
    assert parents[0] == [2] and parents[2] == [1] and parents[1] == [0]  # a cycle


def test_row_by_row_is_extrapolated_per_kind_of_table():
    """A table without links costs the row-by-row method an INSERT per row; one with links
    an INSERT and an UPDATE: each kind's rows are counted at their own price."""
    from benchmarks.run import Rows, extrapolated
    rows = Rows(without_links=10, with_links=5)
    assert rows.total == 15
    assert extrapolated((0.5, 2.0), rows) == 10 * 0.5 + 5 * 2.0


def test_timed_counts_the_cpu_a_step_uses():
    """A step that keeps one core busy for 0.3 s is charged at least most of that (other
    processes of the machine can only add to it)."""
    from benchmarks.run import timed

    def spin():
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
    timing, _ = timed(spin)
    assert timing.seconds >= 0.3
    assert 0.25 <= timing.core_seconds


def test_cpu_used_gives_the_medians_and_the_share_of_the_cores():
    from benchmarks.run import Timing, cpu_used
    cores = os.cpu_count()
    line = cpu_used("(a)", [Timing(2.0, 1.0 * cores), Timing(1.0, 0.25 * cores),
                            Timing(1.0, 0.75 * cores)])
    assert line.startswith(f"CPU of the whole machine during (a): {0.75 * cores:.1f} "
                           f"core-seconds, 50% of its {cores} cores' time"), line
    assert cpu_used("(b)", [Timing(1.0, None)]) == "CPU during (b): not measured (no /proc/stat)"
