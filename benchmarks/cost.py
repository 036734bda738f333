"""What a migration costs the target, beside pg_dump | pg_restore of the same source.

    .venv/bin/python -m benchmarks.cost [--children 1000000] [--parents 200000]

On one embedded PostgreSQL server, builds the Xata-shaped source of benchmarks/run.py
(`parent`, `child` with two links, two small tables), then measures (a) pg_dump |
pg_restore of it into an empty database, the baseline, and (d) the whole `dagster job
execute ... -j migrate_all` command into an empty target, each on a settled server: the
seconds from process start to exit, the target database's growth on disk
(pg_database_size) and the WAL the server wrote meanwhile (pg_current_wal_lsn; for (d)
this includes Dagster's run storage, on the same server). Prints each figure and the
ratio d/a.
"""

import argparse
import tempfile
import time
from pathlib import Path

import psycopg

from benchmarks.run import JobCommand, build_source, dump_and_restore, settle
from xata_migration import embedded


def _wal_and_size(server, database: str) -> tuple[int, int]:
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        return conn.execute("SELECT (pg_current_wal_lsn() - '0/0')::bigint,"
                            " pg_database_size(%s)", (database,)).fetchone()


def _measured(server, database: str, step) -> tuple[float, int, int]:
    """(seconds, bytes the database grew, bytes of WAL written) of `step`."""
    wal, size = _wal_and_size(server, database)
    started = time.monotonic()
    step()
    seconds = time.monotonic() - started
    wal_after, size_after = _wal_and_size(server, database)
    return seconds, size_after - size, wal_after - wal


def _mb(value: int) -> str:
    return f"{value / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=200_000)
    parser.add_argument("--children", type=int, default=1_000_000)
    args = parser.parse_args()
    with embedded.scratch_server("xm-cost-") as server:
        source_url = embedded.recreate_database(server, "cost_source")
        rows = build_source(source_url, args.parents, args.children)
        settle(server, source_url)
        with psycopg.connect(source_url) as conn:
            source_size = conn.execute("SELECT pg_database_size(current_database())"
                                       ).fetchone()[0]
        print(f"source: {rows.total:,} rows, {_mb(source_size)} on disk")

        def baseline():
            dump_and_restore(server, source_url)  # into bench_restored, made afresh
        embedded.recreate_database(server, "bench_restored")
        settle(server, source_url)
        a = _measured(server, "bench_restored", baseline)

        with tempfile.TemporaryDirectory(prefix="xm-cost-") as folder:
            command = JobCommand(server, Path(folder))
            target_url = embedded.recreate_database(server, "cost_target")
            settle(server, source_url)
            d = _measured(server, "cost_target", lambda: command.run(source_url, target_url))
        print("| | seconds | target on disk | WAL written |")
        print("|---|---|---|---|")
        print(f"| (a) pg_dump \\| pg_restore | {a[0]:.1f} s | {_mb(a[1])} | {_mb(a[2])} |")
        print(f"| (d) the whole command | {d[0]:.1f} s | {_mb(d[1])} | {_mb(d[2])} |")
        print(f"| d/a | {d[0] / a[0]:.2f} | {d[1] / a[1]:.2f} | {d[2] / a[2]:.2f} |")


if __name__ == "__main__":
    main()
