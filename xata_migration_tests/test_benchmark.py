"""The benchmark's one command works and prints every figure (small sizes: no timing here)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_prints_each_method_and_the_ratios():
    scratch = Path(tempfile.mkdtemp(prefix="xmb"))  # short: the server's socket is in there
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--parents", "30", "--children", "120",
         "--sample", "5", "--repeat", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TMPDIR=str(scratch)))
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert list(scratch.glob("xm-bench-*")) == []  # its server and databases deleted
    shutil.rmtree(scratch)
    out = finished.stdout
    assert "source: 5200 rows (30 parents, 120 children; 5120 in tables with links)" in out
    # each of (a), (b) and (c) is the median of its two runs, which are listed
    for method, rounding in (("(a) pg_dump | pg_restore", 0.1), ("(b) migrate_all + checks", 0.1),
                             ("(c) row by row (sample 5 of each kind, extrapolated)", 1)):
        line = next(line for line in out.splitlines() if line.startswith(method))
        runs = [float(r) for r in re.search(r"median of ([\d.]+), ([\d.]+)\)", line).groups()]
        median = float(re.search(r"\s(\d+(?:\.\d)?) s\s", line).group(1))
        assert abs(median - sum(runs) / 2) <= rounding * 1.1, line  # each figure rounded
    assert re.search(r"per row: \d+\.\d\d ms in a table without links \(INSERT\), "
                     r"\d+\.\d\d ms with \(INSERT, then UPDATE\)", out)
    # (c) writes into (b)'s tables: the keys, FOREIGN KEYs and indexes (b) made are there
    assert "into an empty copy of (b)'s tables: 4 tables, 3 FOREIGN KEYs, 7 indexes" in out
    assert re.search(r"b/a = \d+\.\d\d   c/b = \d+   peak RSS of this process: \d+ MB", out)


def test_row_by_row_is_extrapolated_per_kind_of_table():
    """A table without links costs the row-by-row method an INSERT per row; one with links
    an INSERT and an UPDATE: each kind's rows are counted at their own price."""
    from benchmarks.run import Rows, extrapolated
    rows = Rows(without_links=10, with_links=5)
    assert rows.total == 15
    assert extrapolated((0.5, 2.0), rows) == 10 * 0.5 + 5 * 2.0
