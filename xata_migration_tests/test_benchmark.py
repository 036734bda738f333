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
    assert "source: 5200 rows (30 parents, 120 children)" in out
    # each of (a) and (b) is the median of its two runs, which are listed
    for method in ("(a) pg_dump | pg_restore", "(b) migrate_all + checks"):
        line = next(line for line in out.splitlines() if line.startswith(method))
        runs = [float(r) for r in re.search(r"median of ([\d.]+), ([\d.]+)\)", line).groups()]
        median = float(re.search(r"\s(\d+\.\d) s\s", line).group(1))
        assert abs(median - sum(runs) / 2) <= 0.11, line  # each figure rounded to 0.1
    assert re.search(r"\(c\) row by row \(sample 5, extrapolated\)\s+\d+ s", out)
    assert re.search(r"b/a = \d+\.\d\d   c/b = \d+   peak RSS of this process: \d+ MB", out)
