"""How fast is a migration, against what a user would do otherwise, in the same run.

    .venv/bin/python -m benchmarks.run [--parents 200000] [--children 1000000] [--demo-rows 150]
        [--wide-tables 120] [--big-rows 10000000] [--split-workers 1,2,4] [--repeat N]

On one embedded PostgreSQL server, builds a Xata-shaped source: `parent` (--parents rows),
`child` (--children rows, two links to `parent`, one often NULL) and a few small tables.
Then measures:
  (a) pg_dump | pg_restore of the source into an empty database (keeping the Xata ids:
      the user's alternative), the baseline;
  (b) the full migrate_all, every check included (in process; the Dagster instance, whose
      first creation imports Dagster's storage modules, is made before the clock starts,
      as a running deployment has it, and its time printed apart);
  (c) the row-by-row method (INSERT ... RETURNING id per row, then an UPDATE per row to
      fix its links) on --sample rows of `parent` (no links: the INSERT only) and of
      `child` (the INSERT and the UPDATE), into an empty copy of the tables (b) made,
      extrapolated to the source's tables, each as the kind it is;
  (d) the whole command a user waits for, process start to exit: `dagster job execute -m
      xata_migration.definitions -j migrate_all`, with Dagster's run storage in
      PostgreSQL as dagster_home/dagster.yaml has it, into an empty target.
(a) and (d) are also measured on the schema this tool was first asked for (26 tables,
many small ones): at its demo size (--demo-rows per table of the base size) and at 10x,
and on a wide schema (--wide-tables tables of 4 rows, 1-3 links each, self-links, a
cycle: benchmarks/shapes.py), each beside (e) Dagster alone: the same command on the same
assets and checks whose steps do nothing (benchmarks/noop_definitions.py), so d - e is
the tool's own work, printed per table too. Last, (a) and (d) on one big table (--big-rows
rows), (d) with the table read by each of --split-workers sessions at once (the plan's
split_workers), and the speed-up of each against the first.
Prints seconds, rows/s and peak memory (RSS) of this process and of (d)'s, the ratios
b/a, c/b and d/a for each source, and the CPU time the whole machine used during (a) and
during (b) (Linux's /proc/stat).
Machines here are shared and noisy: the ratios are what to compare between runs, and
--repeat N measures each method N times, in turn, and takes their medians.
"""

import argparse
import dataclasses
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from xata_migration import embedded
from xata_migration.connections import connect
from xata_migration.defs import TargetDatabase, XataSource, build_definitions, run_tags
from xata_migration.snapshot import HeldSnapshot
from xata_migration.plan import introspect, save_plan
from xata_migration.plan import SPLIT_ROWS
from xata_migration.sources import XATA_RUNTIME_SQL, build_demo_source
from benchmarks.shapes import build_big_source, build_wide_source

ROOT = Path(__file__).resolve().parents[1]

XATA = """xata_id text NOT NULL, xata_version integer NOT NULL DEFAULT 0,
    xata_createdat timestamptz NOT NULL DEFAULT now(),
    xata_updatedat timestamptz NOT NULL DEFAULT now()"""


@dataclass
class Rows:
    """The source's rows, by whether their table has links (row by row, those need an
    UPDATE after their INSERT)."""
    without_links: int
    with_links: int

    @property
    def total(self) -> int:
        return self.without_links + self.with_links


def build_source(url: str, parents: int, children: int) -> Rows:
    with psycopg.connect(url) as conn:
        conn.execute(XATA_RUNTIME_SQL)
        conn.execute(f"""
            CREATE TABLE parent ({XATA}, name text, score double precision, tags text[]);
            CREATE UNIQUE INDEX parent_id ON parent (xata_id);
            CREATE TABLE child ({XATA}, owner text REFERENCES parent (xata_id),
                reviewer text REFERENCES parent (xata_id), title text, body text,
                amount bigint, at timestamptz, meta jsonb);
            CREATE UNIQUE INDEX child_id ON child (xata_id);
            CREATE TABLE category ({XATA}, label text);
            CREATE UNIQUE INDEX category_id ON category (xata_id);
            CREATE TABLE note ({XATA}, category text REFERENCES category (xata_id), text text);
            CREATE UNIQUE INDEX note_id ON note (xata_id);""")
        conn.execute("""INSERT INTO parent (xata_id, xata_createdat, name, score, tags)
            SELECT 'rec_' || substr(md5('p' || g), 1, 20), timestamptz '2023-01-01' + g * interval
            '1 s', 'parent ' || g, g / 7.0, ARRAY['t' || g %% 10, 'x'] FROM generate_series(1, %s) g
            """, (parents,))
        conn.execute("""INSERT INTO child (xata_id, xata_createdat, owner, reviewer, title, body,
            amount, at, meta) SELECT 'rec_' || substr(md5('c' || g), 1, 20), timestamptz
            '2023-06-01' + g * interval '1 s', 'rec_' || substr(md5('p' || (g %% %s + 1)), 1, 20),
            CASE WHEN g %% 3 = 0 THEN 'rec_' || substr(md5('p' || (g * 7 %% %s + 1)), 1, 20) END,
            'title ' || g, repeat('body ', 8) || g, g::bigint * 1000, timestamptz '2024-01-01' + g *
            interval '1 min', jsonb_build_object('n', g) FROM generate_series(1, %s) g""",
                     (parents, parents, children))
        conn.execute("""INSERT INTO category (xata_id, label) SELECT 'cat' || g, 'c' || g
            FROM generate_series(1, 50) g""")
        conn.execute("""INSERT INTO note (xata_id, category, text) SELECT 'note' || g,
            'cat' || (g % 50 + 1), 'n' || g FROM generate_series(1, 5000) g""")
    return Rows(without_links=parents + 50, with_links=children + 5000)


def settle(server, url: str) -> None:
    """Start each method on a quiet server: the database just written vacuumed and
    analyzed (as a user's settled source is, and so no autovacuum of it runs during the
    next method), and a checkpoint, so no method pays for the WAL of the one before."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


@dataclass
class Timing:
    seconds: float
    core_seconds: float | None  # CPU time of every process of the machine meanwhile


def busy_core_seconds() -> float | None:
    """CPU time the machine's processes have used since it started (None where there is
    no /proc/stat): user, nice, system, irq and softirq; not idle, iowait or steal."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, _, _, irq, softirq = map(int, stat.readline().split()[1:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def timed(step):
    """Run `step`: its Timing, and what it returned."""
    cpu, started = busy_core_seconds(), time.monotonic()
    value = step()
    seconds, used = time.monotonic() - started, busy_core_seconds()
    return Timing(seconds, None if cpu is None or used is None else used - cpu), value


def pipe_dump(source_url: str, target_url: str, *options: str) -> None:
    """pg_dump of the source's public schema, piped into pg_restore into the target.
    pg_restore's exit code is not checked: restoring schema public into a database that
    has it always reports an error. The callers check what was restored."""
    from xata_migration.embedded import client_program
    source, target = (make_conninfo(**conninfo_to_dict(url)) for url in (source_url, target_url))
    dump = subprocess.Popen([client_program("pg_dump"), "--format=custom",
                             "--schema=public", "--no-owner", "--no-acl", *options, source],
                            stdout=subprocess.PIPE)
    subprocess.run([client_program("pg_restore"), "--no-owner", "--no-acl",
                    "--dbname", target], stdin=dump.stdout, check=False,
                   stderr=subprocess.DEVNULL)
    dump.wait()


def dump_and_restore(server, source_url: str) -> Timing:
    restored = embedded.recreate_database(server, "bench_restored")
    with psycopg.connect(restored, autocommit=True) as conn:
        conn.execute(XATA_RUNTIME_SQL)
    timing, _ = timed(lambda: pipe_dump(source_url, restored))
    got, expected = row_counts(restored), row_counts(source_url)
    if got != expected:
        raise RuntimeError(f"(a) restored {got} rows of the source's {expected}")
    return timing


def row_counts(url: str) -> dict[str, int]:
    """{table: rows} of the public schema."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        return {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier("public", t))).fetchone()[0] for t in tables}


@dataclass
class CommandTiming(Timing):
    peak_rss_mb: float = 0.0  # of the command's process


class JobCommand:
    """`dagster job execute ... -j migrate_all` as a user runs it: a plan file written
    beforehand, a DAGSTER_HOME with the project's dagster.yaml and its run storage in a
    database of the server, already created (as after a user's first run)."""

    def __init__(self, server, workdir: Path):
        self.home = workdir / "dagster_home"
        self.home.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", self.home / "dagster.yaml")
        storage = embedded.recreate_database(server, "bench_dagster")
        self.env = dict(os.environ, DAGSTER_HOME=str(self.home),
                        DAGSTER_PG_URL=embedded.dagster_storage_url(storage))
        self.plan = workdir / "plan.yaml"
        subprocess.run([sys.executable, "-m", "dagster", "instance", "migrate"],
                       env=self.env, check=True, capture_output=True)

    def run(self, source_url: str, target_url: str, module: str = "xata_migration.definitions",
            plan_changes: dict | None = None) -> CommandTiming:
        with connect(source_url, "source", read_only=True) as conn:
            save_plan(dataclasses.replace(introspect(conn)[0], **(plan_changes or {})),
                      self.plan)
        env = dict(self.env, XATA_SOURCE_URL=source_url, TARGET_DATABASE_URL=target_url,
                   XATA_MIGRATION_PLAN=str(self.plan))
        command = [sys.executable, "-m", "dagster", "job", "execute", "-m", module,
                   "-j", "migrate_all"]
        with tempfile.TemporaryFile("w+") as log:
            cpu, started = busy_core_seconds(), time.monotonic()
            process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                       stderr=log)
            _, status, usage = os.wait4(process.pid, 0)
            seconds, used = time.monotonic() - started, busy_core_seconds()
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode:
                log.seek(0)
                raise RuntimeError(f"(d) failed: {log.read()[-2000:]}")
        return CommandTiming(seconds, None if cpu is None or used is None else used - cpu,
                             peak_rss_mb=usage.ru_maxrss / 1024)


NOOP_DEFINITIONS = "benchmarks.noop_definitions"


def migrate_all(instance: dg.DagsterInstance, source_url: str, target_url: str) -> Timing:
    with connect(source_url, "source", read_only=True) as conn:
        plan, _ = introspect(conn)
    defs = build_definitions(plan, resources={"xata_source": XataSource(url=source_url),
                                              "target_database": TargetDatabase(url=target_url)})
    job = defs.resolve_job_def("migrate_all")

    def run():  # in the run's source snapshot, as the project's executor takes it
        with HeldSnapshot(source_url) as held:
            return job.execute_in_process(instance=instance, tags=run_tags(held))
    timing, result = timed(run)
    print_phases(result)
    return timing


def print_phases(result) -> None:
    """Where (b)'s time went, for the tables of more than 10,000 rows."""
    checks = {e.asset_key.to_user_string(): e.metadata["checks_seconds"].value
              for e in result.get_asset_check_evaluations()}
    for materialization in result.get_asset_materialization_events():
        event = materialization.materialization
        if event.metadata["dagster/row_count"].value > 10_000:
            name = event.asset_key.to_user_string()
            phases = ", ".join(f"{k.removeprefix('seconds_')} {v.value:.1f}"
                               for k, v in event.metadata.items() if k.startswith("seconds_"))
            print(f"    {name}: load {event.metadata['duration_seconds'].value:.1f} s"
                  f" ({phases}), checks {checks[name]:.1f} s")


def row_by_row(source_url: str, migrated_url: str, target_url: str,
               sample: int) -> tuple[float, float]:
    """The row-by-row method on `sample` rows of each kind, into an empty copy of the
    tables (b) made (`migrated_url`: same columns, keys, FOREIGN KEYs and indexes, as a
    user's schema made first by their own migrations), each statement committed on its
    own: seconds per row of a table without links (INSERT ... RETURNING id), and of one
    with links (INSERT ... RETURNING id, then UPDATE its links to parents inserted)."""
    pipe_dump(migrated_url, target_url, "--schema-only")
    made, copied = schema_of(migrated_url), schema_of(target_url)
    if copied != made:
        raise RuntimeError(f"(c)'s copy of (b)'s tables has {copied}, (b)'s have {made}")
    with psycopg.connect(source_url) as src, psycopg.connect(target_url, autocommit=True) as tgt:
        parents = src.execute("SELECT xata_createdat, xata_updatedat, name, score, tags"
                              " FROM parent LIMIT %s", (sample,)).fetchall()
        children = src.execute("SELECT xata_createdat, xata_updatedat, title, body, amount, at,"
                               " meta::text, reviewer IS NOT NULL FROM child LIMIT %s",
                               (sample,)).fetchall()
        started = time.monotonic()
        new_parents = [tgt.execute("INSERT INTO parent (created_at, updated_at, name, score, tags)"
                                   " VALUES (%s, %s, %s, %s, %s) RETURNING id", row).fetchone()[0]
                       for row in parents]
        without_links = (time.monotonic() - started) / len(parents)
        started = time.monotonic()
        for i, (*values, has_reviewer) in enumerate(children):
            new_id = tgt.execute("INSERT INTO child (created_at, updated_at, title, body, amount,"
                                 " at, meta) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                                 values).fetchone()[0]
            owner = new_parents[i % len(new_parents)]
            tgt.execute("UPDATE child SET owner = %s, reviewer = %s WHERE id = %s",
                        (owner, owner if has_reviewer else None, new_id))
        with_links = (time.monotonic() - started) / len(children)
    return without_links, with_links


def schema_of(url: str) -> str:
    """What the public schema of a database holds, in one line."""
    with psycopg.connect(url) as conn:
        tables, foreign_keys, indexes = conn.execute(
            "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'),"
            " (SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
            "   AND connamespace = 'public'::regnamespace),"
            " (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public')").fetchone()
    return f"{tables} tables, {foreign_keys} FOREIGN KEYs, {indexes} indexes"


def extrapolated(per_row: tuple[float, float], rows: Rows) -> float:
    """(c) for the whole source: each kind's seconds per row times its rows."""
    without_links, with_links = per_row
    return without_links * rows.without_links + with_links * rows.with_links


def spread(runs: list[float], digits: int = 1) -> str:
    """The runs behind a median, if more than one."""
    return "" if len(runs) == 1 else "  (median of " + ", ".join(
        f"{r:.{digits}f}" for r in runs) + ")"


def cpu_used(name: str, timings: list[Timing]) -> str:
    """The machine's CPU time during a method, and its share of what the cores give."""
    if any(t.core_seconds is None for t in timings):
        return f"CPU during {name}: not measured (no /proc/stat)"
    cores, used = os.cpu_count(), [t.core_seconds for t in timings]
    share = statistics.median(t.core_seconds / (t.seconds * cores) for t in timings)
    return (f"CPU of the whole machine during {name}: {statistics.median(used):.1f} core-seconds,"
            f" {share:.0%} of its {cores} cores' time{spread(used)}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Shape:
    """A source to measure (a) and (d) on: its name, and how to build it."""
    name: str
    build: object  # url -> rows


def demo_shapes(demo_rows: int, wide_tables: int) -> list[Shape]:
    shapes = []
    if demo_rows:
        shapes += [Shape("demo schema, demo size", lambda url: build_demo_source(url, demo_rows)),
                   Shape("demo schema, 10x", lambda url: build_demo_source(url, 10 * demo_rows))]
    if wide_tables:
        shapes.append(Shape("wide schema (1-3 links a table, self-links, a cycle)",
                            lambda url: build_wide_source(url, wide_tables)))
    return shapes


def measure_command(server, command: JobCommand, source: str,
                    module: str = "xata_migration.definitions",
                    plan_changes: dict | None = None) -> CommandTiming:
    target = embedded.recreate_database(server, "bench_target")
    settle(server, target)
    timing = command.run(source, target, module, plan_changes)
    settle(server, source)
    return timing


def command_line(name: str, rows: int, tables: int, a_runs: list[float],
                 d_timings: list[CommandTiming]) -> str:
    d_runs = [t.seconds for t in d_timings]
    a, d = statistics.median(a_runs), statistics.median(d_runs)
    return (f"{name}: {tables} tables, {rows} rows\n"
            f"    (a) {a:.1f} s{spread(a_runs)}   (d) {d:.1f} s{spread(d_runs)}   d/a = {d / a:.2f}"
            f"   peak RSS of (d): {max(t.peak_rss_mb for t in d_timings):.0f} MB")


def floor_line(d_timings: list[CommandTiming], e_timings: list[CommandTiming],
               tables: int) -> str:
    """(e), Dagster alone on the same graph, and what (d) spends beyond it."""
    e_runs = [t.seconds for t in e_timings]
    d, e = statistics.median(t.seconds for t in d_timings), statistics.median(e_runs)
    return (f"    (e) Dagster alone, the same assets and checks doing nothing: {e:.1f} s"
            f"{spread(e_runs)}   d - e = {d - e:.1f} s of the tool's own work, "
            f"{(d - e) / tables:.3f} s a table")


def split_lines(server, command: JobCommand, rows: int, workers: list[int],
                repeat: int) -> list[str]:
    """One big table: (a), and (d) with the table read by each number of `workers` at
    once (split_rows below its size), with the speed-up against the first."""
    source = embedded.recreate_database(server, "bench_source")
    build_big_source(source, rows)
    settle(server, source)
    a_runs, d_timings = [], {w: [] for w in workers}
    for _ in range(repeat):
        a_runs.append(dump_and_restore(server, source).seconds)
        embedded.recreate_database(server, "bench_restored")
        for count in workers:
            d_timings[count].append(measure_command(
                server, command, source,
                plan_changes={"split_rows": min(rows, SPLIT_ROWS), "split_workers": count}))
    a = statistics.median(a_runs)
    first = statistics.median(t.seconds for t in d_timings[workers[0]])
    lines = [f"one big table: {rows} rows in `event` (and 100 owners), split_rows "
             f"{min(rows, SPLIT_ROWS)}", f"    (a) {a:.1f} s{spread(a_runs)}"]
    for count in workers:
        runs = [t.seconds for t in d_timings[count]]
        d = statistics.median(runs)
        lines.append(f"    (d) split_workers {count}: {d:.1f} s{spread(runs)}   d/a = "
                     f"{d / a:.2f}   speed-up {first / d:.2f}x   peak RSS of (d): "
                     f"{max(t.peak_rss_mb for t in d_timings[count]):.0f} MB")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=200_000)
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2000,
                        help="rows of each kind for method (c)")
    parser.add_argument("--demo-rows", type=int, default=150,
                        help="base rows per table of the demo schema (150: its demo size; "
                             "0: not measured)")
    parser.add_argument("--wide-tables", type=int, default=120,
                        help="tables of the wide schema (0: not measured)")
    parser.add_argument("--big-rows", type=int, default=10_000_000,
                        help="rows of the one big table (0: not measured)")
    parser.add_argument("--split-workers", default="1,2,4",
                        help="split_workers to measure the big table with")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each method")
    args = parser.parse_args()
    commands = []
    with embedded.scratch_server("xm-bench-") as server:  # deleted when done
        command = JobCommand(server, Path(server.pgdata).parent)
        for shape in demo_shapes(args.demo_rows, args.wide_tables):
            source = embedded.recreate_database(server, "bench_source")
            rows = shape.build(source)
            settle(server, source)
            a_runs, d_timings, e_timings = [], [], []
            for _ in range(args.repeat):
                a_runs.append(dump_and_restore(server, source).seconds)
                embedded.recreate_database(server, "bench_restored")
                d_timings.append(measure_command(server, command, source))
                e_timings.append(measure_command(server, command, source, NOOP_DEFINITIONS))
            commands.append(command_line(shape.name, sum(rows.values()), len(rows), a_runs,
                                         d_timings) + "\n" + floor_line(d_timings, e_timings,
                                                                        len(rows)))
        if args.big_rows:
            commands += split_lines(server, command, args.big_rows,
                                    [int(w) for w in args.split_workers.split(",")],
                                    args.repeat)
        source = embedded.recreate_database(server, "bench_source")
        rows = build_source(source, args.parents, args.children)
        settle(server, source)
        setup = time.monotonic()
        instance = dg.DagsterInstance.ephemeral()
        setup = time.monotonic() - setup
        a_timings, b_timings, per_row, d_timings = [], [], [], []
        for _ in range(args.repeat):
            a_timings.append(dump_and_restore(server, source))
            embedded.recreate_database(server, "bench_restored")  # or its autovacuum runs in (b)
            target = embedded.recreate_database(server, "bench_target")
            settle(server, target)
            b_timings.append(migrate_all(instance, source, target))
            settle(server, target)
            row_by_row_target = embedded.recreate_database(server, "bench_row_by_row")
            per_row.append(row_by_row(source, target, row_by_row_target, args.sample))
            embedded.recreate_database(server, "bench_row_by_row")
            schema = schema_of(target)  # what (c) wrote into a copy of, checked in each run
            settle(server, source)
            d_timings.append(measure_command(server, command, source))
    a_runs, b_runs = ([t.seconds for t in timings] for timings in (a_timings, b_timings))
    c_runs = [extrapolated(prices, rows) for prices in per_row]
    a, b, c = (statistics.median(runs) for runs in (a_runs, b_runs, c_runs))
    total = rows.total
    print(f"source: {total} rows ({args.parents} parents, {args.children} children; "
          f"{rows.with_links} in tables with links)")
    print(f"(a) pg_dump | pg_restore   {a:8.1f} s  {total / a:10.0f} rows/s{spread(a_runs)}")
    print(f"(b) migrate_all + checks   {b:8.1f} s  {total / b:10.0f} rows/s{spread(b_runs)}"
          f"  (+ {setup:.1f} s creating the Dagster instance, once)")
    print(f"(c) row by row (sample {args.sample} of each kind, extrapolated) {c:8.0f} s  "
          f"{total / c:10.0f} rows/s{spread(c_runs, digits=0)}")
    without_links, with_links = (statistics.median(kind) * 1000 for kind in zip(*per_row))
    print(f"    per row: {without_links:.2f} ms in a table without links (INSERT), "
          f"{with_links:.2f} ms with (INSERT, then UPDATE)")
    print(f"    into an empty copy of (b)'s tables: {schema}")
    print(f"b/a = {b / a:.2f}   c/b = {c / b:.0f}   peak RSS of this process: "
          f"{peak_rss_mb():.0f} MB")
    for name, timings in (("(a)", a_timings), ("(b)", b_timings)):
        print(cpu_used(name, timings))
    print("(d) the whole command, process start to exit, beside (a) of the same source:")
    for line in commands + [command_line("parent and child", total, 4, a_runs, d_timings)]:
        print(line)


if __name__ == "__main__":
    main()
