"""Cost of a delta run against a full run, measured in the same run on the same server.

    .venv/bin/python -m benchmarks.delta [--rows 2000] [--changed 0.01]

Builds the demo source (26 tables) with --rows rows per table on the embedded server,
times a full `migrate_all` (in process, every check included), changes a fraction of the
rows of every table (updates and deletes), and times the delta run. Prints both
and their ratio; machines here are shared, so only the ratio means much.
"""

import argparse
import time

import psycopg
from psycopg import sql

from xata_migration import embedded
from xata_migration.connections import connect
from xata_migration.defs import TargetDatabase, XataSource, build_definitions
from xata_migration.plan import introspect
from xata_migration.sources import build_demo_source, load_schema


def run(plan, source_url: str, target_url: str) -> float:
    defs = build_definitions(plan, resources={"xata_source": XataSource(url=source_url),
                                              "target_database": TargetDatabase(url=target_url)})
    started = time.monotonic()
    result = defs.resolve_job_def("migrate_all").execute_in_process()
    assert result.success
    return time.monotonic() - started


def change_rows(source_url: str, fraction: float) -> int:
    """Update and delete about `fraction` of each table's rows (deletes also null the
    links pointing at them, as Xata's ON DELETE SET NULL does)."""
    changed = 0
    modulo = max(int(1 / fraction), 1)
    with psycopg.connect(source_url) as conn:
        for table in load_schema()["tables"]:
            name = sql.Identifier(table["name"])
            changed += conn.execute(sql.SQL(
                "UPDATE {} SET xata_updatedat = now() WHERE abs(hashtext(xata_id)) % {} = 1"
            ).format(name, sql.Literal(modulo))).rowcount
            changed += conn.execute(sql.SQL(
                "DELETE FROM {} WHERE abs(hashtext(xata_id)) % {} = 2").format(
                name, sql.Literal(modulo))).rowcount
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows per table")
    parser.add_argument("--changed", type=float, default=0.01, help="fraction changed")
    args = parser.parse_args()
    with embedded.scratch_server("xm-bench-") as server:
        source = embedded.recreate_database(server, "bench_source")
        target = embedded.recreate_database(server, "bench_target")
        rows = sum(build_demo_source(source, args.rows).values())
        with connect(source, "source", read_only=True) as conn:
            plan, _ = introspect(conn)
        full = run(plan, source, target)
        changed = change_rows(source, args.changed)
        delta = run(plan, source, target)
    print(f"source rows: {rows}; changed before the delta: {changed}")
    print(f"full run {full:.1f} s, delta run {delta:.1f} s, delta/full = {delta / full:.2f}")


if __name__ == "__main__":
    main()
