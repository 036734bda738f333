"""The tool's operations, one call each: every `xata-migration` command is one of these
(after its arguments are read), and the Dagster assets and the tests call them too.
Everything else in the package is how they are done.

    import_dump(dump, into_url); import_csv(folder, schema_file, into_url)
    description = write_plan(source_url, "plan.yaml")     # describe_source, then save
    summary = migrate("plan.yaml", source_url, target_url, log_path)   # migrate_all
    paths = report("plan.yaml", source_url, target_url, "report.md")
    new_id = lookup(target_url, "posts", "rec_...")
    run_demo(); open_ui()

One table at a time (what each asset of migrate_all does):

    with open_connections(source_url, target_url) as connections:
        run = migrate_table(plan, table, connections)   # load, then every check of it
        outcomes = check_table(plan, table, connections)   # the checks alone, now

The load (load/) and the checks (verify/) never call each other: migrate_table hands
the rows' source fingerprint from one to the other and records that a load passed.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from xata_migration import embedded, jobs
from xata_migration.asset_names import check_step_names
from xata_migration.connections import connect, give_back, reuse_or_connect
from xata_migration.errors import UsageError, XataMigrationError
from xata_migration.load import (LoadResult, MissingLinks, RangeReaders, load_deferred_link,
                                 load_table, make_view, record_verified)
from xata_migration.pg import LockWatch
from xata_migration.plan import (Column, Plan, PlanError, Table, introspect, load_plan,
                                 require_nothing_to_review, review_policies_without_roles,
                                 save_plan, use_pgvector)
from xata_migration.plan.catalog import estimated_rows
from xata_migration.snapshot import SourceSnapshot, source_readers
from xata_migration.verify import (CheckOutcome, SourceFingerprint, SourceRanges, TableReport,
                                   TargetRanges, link_check, missing_links_outcome,
                                   table_checks, view_rows, write_report)

__all__ = ["CheckOutcome", "LoadResult", "MissingLinks", "Plan", "PlanError", "RunSummary",
           "SourceDescription", "TableConnections", "TableRun", "UsageError",
           "XataMigrationError", "check_table", "describe_source", "import_csv",
           "import_dump", "load_plan", "lookup", "migrate", "migrate_table", "migrate_view",
           "open_connections",
           "open_ui", "read_plan", "report", "run_demo", "save_plan", "write_deferred_link",
           "write_plan"]

RunSummary = jobs.RunSummary
DEMO_SOURCE, DEMO_TARGET = "xata_demo_source", "xata_demo_target"


# ---------------------------------------------------------------- sources and the plan


# sources/ is imported where it is used: the Dagster steps never need it (nor pandas).


def import_dump(dump_file: str | Path, into_url: str, replace: bool = False):
    """Restore a Xata pg_dump into an empty database (`replace`: one that holds an earlier
    import, dropped first in the same transaction): its format and what was left out."""
    from xata_migration import sources
    return sources.import_dump(dump_file, into_url, replace=replace)


def import_csv(folder: str | Path, schema_file: str | Path, into_url: str,
               objects: str = "jsonb"):
    """Load a legacy CSV export and its schema file into an empty database."""
    from xata_migration import sources
    return sources.import_csv(folder, schema_file, into_url, objects=objects)


@dataclass
class SourceDescription:
    """The plan of a source, the tables it leaves out (name -> why), and the columns
    planned as pgvector's vector(n)."""
    plan: Plan
    left_out: dict[str, str] = field(default_factory=dict)
    pgvector_columns: list[str] = field(default_factory=list)


def describe_source(source_url: str, schema: str = "public", vectors: str = "real[]",
                    target_url: str | None = None) -> SourceDescription:
    """The plan of the source's tables (`vectors="pgvector"`: Xata vectors planned as
    pgvector's vector(n)); PlanError if Dagster could not tell two apart. With a
    `target_url`, policies that name roles the target lacks are `review`."""
    with connect(source_url, "source", read_only=True) as conn:
        plan, left_out = introspect(conn, schema)
        pgvector = use_pgvector(conn, plan) if vectors == "pgvector" else []
    check_step_names(plan)
    if target_url:
        with connect(target_url, "target", read_only=True) as target:
            review_policies_without_roles(target, plan)
    return SourceDescription(plan, left_out, pgvector)


def write_plan(source_url: str, output: str | Path, schema: str = "public",
               vectors: str = "real[]", target_url: str | None = None) -> SourceDescription:
    """describe_source, saved as the YAML file `output`."""
    description = describe_source(source_url, schema, vectors, target_url)
    save_plan(description.plan, output)
    return description


def read_plan(plan_path: str | Path) -> Plan:
    """The plan file, validated, with names Dagster can tell apart."""
    plan = load_plan(plan_path)
    check_step_names(plan)
    return plan


# ---------------------------------------------------------------- one table


@dataclass
class TableConnections:
    """What one table's operations use: two source connections reading one snapshot
    (the second computes the source's fingerprint while the first loads) and the target.
    `snapshot`: the one they read (None: the source exports none, and each transaction
    reads its own); `own_snapshot`: taken for this table alone, not the run's, and
    `problem` says why."""
    source: psycopg.Connection
    second_source: psycopg.Connection
    target: psycopg.Connection
    snapshot: SourceSnapshot | None = None
    own_snapshot: bool = False
    problem: str = ""
    target_url: str = ""  # for a second target session that explains lock waits
    source_url: str = ""  # for the sessions that read a big table in ranges

    @contextmanager
    def lock_waits_explained(self, label: str, log=None):
        """Inside: the target session's lock waits logged with who blocks them, and a
        wait past XATA_MIGRATION_LOCK_TIMEOUT raised as a LoadError naming them."""
        with LockWatch(self.target_url, self.target.info.backend_pid, label, log) as watch:
            try:
                yield
            except psycopg.errors.LockNotAvailable as error:
                raise watch.explained(error) from None


@contextmanager
def open_connections(source_url: str, target_url: str, label: str = "",
                     run_snapshot: SourceSnapshot | None = None, run_problem: str = ""):
    """TableConnections, given back on leaving (kept for the next step of this process,
    connections.give_back). The sources read the run's snapshot if one is given and still
    held, else one held for this table (`run_problem`: why the run has none, for
    `problem`)."""
    labels = [label, f"{label} (fingerprint)"]
    with ExitStack() as stack:
        readers = stack.enter_context(source_readers(source_url, labels, run_snapshot,
                                                     run_problem, reuse=True))
        target = reuse_or_connect(target_url, "target", label=label)
        stack.callback(give_back, target)
        yield TableConnections(*readers.connections, target, readers.snapshot, readers.own,
                               readers.problem, target_url, source_url)


@dataclass
class TableRun:
    """A table migrated and checked: the load's counts (None if it stopped before writing),
    every check's outcome, the error that stopped it, and the load's time."""
    load: LoadResult | None
    outcomes: list[CheckOutcome] = field(default_factory=list)
    error: MissingLinks | None = None
    load_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outcomes)


def _stopped_by(missing: MissingLinks, started: float) -> TableRun:
    """A load that links to no record stopped, nothing written: its failed `links_intact`."""
    outcome = missing_links_outcome(missing.column, missing.count, missing.examples,
                                    str(missing), missing.source_sql)
    return TableRun(None, [outcome], missing, time.monotonic() - started)


def _record_if_verified(target: psycopg.Connection, table: Table,
                        outcomes: list[CheckOutcome]) -> None:
    """Every check of the table passed: its next load may read only what changed."""
    if outcomes and all(o.passed for o in outcomes):
        with target.transaction():
            record_verified(target, table)


def migrate_table(plan: Plan, table: Table, connections: TableConnections,
                  log=None) -> TableRun:
    """Load one table (one target transaction: all or nothing) and run its checks against
    the snapshot the load read: the source computes its fingerprint of the rows the load
    read while the target writes them. Links that point nowhere (`on_missing: fail`) stop
    the load with nothing written: the run then holds them as a failed `links_intact`."""
    started = time.monotonic()
    c = connections
    if log:
        rows = estimated_rows(c.source, plan.source_schema, table.name)
        log.info(f"{table.name}: started, " + (f"about {rows:,} rows in the source"
                                              if rows is not None else "rows not yet counted"))
    with c.lock_waits_explained(table.name, log), \
            SourceFingerprint(c.second_source, plan, table) as source_fingerprint, \
            SourceRanges(plan, table) as by_ranges:  # a split load's ranges compute it

        def on_phase(phase: str) -> None:
            if phase == "transfer" and c.snapshot and not by_ranges.used:
                source_fingerprint.start()  # both sources read the load's rows

        try:
            result = load_table(c.source, c.target, plan, table, c.snapshot, log=log,
                                on_phase=on_phase, readers=RangeReaders(
                                    c.source_url, c.target_url, c.snapshot, by_ranges))
        except MissingLinks as missing:
            return _stopped_by(missing, started)
        run = TableRun(result, load_seconds=time.monotonic() - started)
        split = result.ranges > 1
        run.outcomes = table_checks(
            c.source, c.target, plan, table,
            by_ranges.side() if split else source_fingerprint.side(),
            TargetRanges(c.target_url, result.ranges) if split else None)
        _record_if_verified(c.target, table, run.outcomes)
    return run


def write_deferred_link(plan: Plan, table: Table, column: Column,
                        connections: TableConnections, log=None) -> TableRun:
    """Write a link that closes a cycle, once both its tables are loaded, and check it."""
    started = time.monotonic()
    c = connections
    with c.lock_waits_explained(f"{table.name}.{column.name}", log):
        try:
            result = load_deferred_link(c.source, c.target, plan, table, column, c.snapshot,
                                        log=log)
        except MissingLinks as missing:
            return _stopped_by(missing, started)
        run = TableRun(result, load_seconds=time.monotonic() - started)
        run.outcomes = [link_check(c.source, c.target, plan, table, column)]
    return run


@dataclass
class ViewRun:
    """A view made (`done`: created, replaced, refreshed or unchanged) and checked."""
    done: str
    outcomes: list[CheckOutcome]
    seconds: float


def migrate_view(plan: Plan, view, connections: TableConnections) -> ViewRun:
    """Make the view on the target (its tables are loaded), then check its rows against
    the source's, in the run's snapshot."""
    started = time.monotonic()
    c = connections
    require_nothing_to_review(plan)
    with c.lock_waits_explained(view.name):
        done = make_view(c.target, plan, view)
        outcome = view_rows(c.source, c.target, plan, view)
    return ViewRun(done, [outcome], time.monotonic() - started)


def check_table(plan: Plan, table: Table, connections: TableConnections) -> list[CheckOutcome]:
    """Every check of a table now, without loading: its own, then those of its deferred
    links (named `links_intact (column, deferred)`)."""
    c = connections
    with c.lock_waits_explained(table.name):
        outcomes = table_checks(c.source, c.target, plan, table)
        _record_if_verified(c.target, table, outcomes)
        for column in table.links:
            if column.link.deferred:
                outcome = link_check(c.source, c.target, plan, table, column)
                outcome.name = f"links_intact ({column.name}, deferred)"
                outcomes.append(outcome)
    return outcomes


# ---------------------------------------------------------------- the whole migration


def migrate(plan_path: str | Path, source_url: str, target_url: str,
            log_path: str | Path, say=print) -> RunSummary:
    """Run migrate_all with `dagster job execute` (its log to `log_path`), after checking
    the plan and that both databases answer; the run as Dagster recorded it. `say` is
    told when the run starts."""
    require_nothing_to_review(read_plan(plan_path))  # a plan that cannot run stops here
    for url, role in ((source_url, "source"), (target_url, "target")):
        connect(url, role).close()  # unreachable databases stop here, before Dagster starts
    return _run_migrate_all(source_url, target_url, plan_path, Path(log_path), say)


def _run_migrate_all(source_url: str, target_url: str, plan_path, log_path: Path,
                     say) -> RunSummary:
    say(f"Running: dagster job execute -m xata_migration.definitions -j migrate_all "
        f"(log: {log_path})")
    env = jobs.dagster_environment(source_url, target_url, plan_path)
    return jobs.run_migrate_all(env, log_path, say)


def report(plan_path: str | Path, source_url: str, target_url: str,
           output: str | Path) -> tuple[Path, Path, bool]:
    """Every check of every table, now, written to `output` (Markdown) and beside it as
    HTML; True if every check passed."""
    plan = read_plan(plan_path)
    _writable_folder(Path(output).parent)  # before the checks, which may take long
    reports = []
    for table in plan.tables:
        started = time.monotonic()
        with open_connections(source_url, target_url, table.name) as connections:
            outcomes = check_table(plan, table, connections)
        reports.append(TableReport(table.name, outcomes, time.monotonic() - started))
    return write_report(reports, source_url, target_url, plan, str(plan_path), output)


def _writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"Cannot write into {str(folder)!r}: {error.strerror}. Choose "
                         "another --output.") from None


def lookup(target_url: str, table: str, old_id: str | None = None,
           new_id: int | None = None):
    """The new id of an old Xata id, or (given `new_id`) the old id of a new one; None if
    the mapping does not hold it. UsageError if the table has no mapping."""
    with connect(target_url, "target") as target:
        try:
            if new_id is not None:
                return target.execute("SELECT xata_id_map.xata_id(%s, %s)",
                                      (table, new_id)).fetchone()[0]
            return target.execute("SELECT xata_id_map.new_id(%s, %s)",
                                  (table, old_id)).fetchone()[0]
        except psycopg.Error as error:
            target.rollback()
            raise UsageError(f"Lookup failed: {str(error).strip().splitlines()[0]}") from None


# ---------------------------------------------------------------- the demo


def run_demo(rows: int = 150, say=print) -> RunSummary:
    """A demo Xata source on the embedded server, its plan, and migrate_all into a new
    target database; `say` is told each step."""
    from xata_migration import sources

    server = embedded.start()
    source_url = embedded.recreate_database(server, DEMO_SOURCE)
    target_url = embedded.recreate_database(server, DEMO_TARGET)
    built = sources.build_demo_source(source_url, rows)
    say(f"Demo source {DEMO_SOURCE}: {len(built)} Xata-shaped tables, "
        f"{sum(built.values())} rows.")
    plan_path = embedded.home() / "demo-plan.yaml"
    write_plan(source_url, plan_path)
    say(f"Plan written to {plan_path}.")
    return _run_migrate_all(source_url, target_url, plan_path,
                            embedded.home() / "demo-run.log", say)


def open_ui(host: str = "127.0.0.1", port: int = 3000, plan_path: str | Path | None = None,
            source_url: str | None = None, target_url: str | None = None) -> int:
    """The Dagster UI, until stopped (Ctrl-C or SIGTERM stops all it started); its exit
    code. On `plan_path` and the two databases: the assets of that plan and the run
    history `migrate` keeps (the same DAGSTER_HOME / DAGSTER_PG_URL rules). Without a
    plan: the demo's."""
    if plan_path is None:
        server = embedded.start()
        plan_path = embedded.home() / "demo-plan.yaml"
        if not plan_path.exists():
            raise UsageError("No demo yet: run `xata-migration demo` first, or give --plan.")
        source_url = embedded.database_url(server, DEMO_SOURCE)
        target_url = embedded.database_url(server, DEMO_TARGET)
    else:
        read_plan(plan_path)  # a plan that cannot load stops here, with its message
        for url, role in ((source_url, "source"), (target_url, "target")):
            connect(url, role).close()
    return jobs.serve_ui(jobs.dagster_environment(source_url, target_url, plan_path),
                         host, port)
