"""The `xata-migration` command: import-dump, import-csv, plan, migrate, report, lookup,
demo, dev.

Thin wrappers over the core: `plan` introspects and saves; `migrate` runs the real
`dagster job execute ... -j migrate_all` and prints what each table's checks found; `demo`
does both on a generated source; `dev` opens the Dagster UI on the demo's data. Every
database URL may be `embedded:NAME`: database NAME on the embedded server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from xata_migration import api, embedded
from xata_migration.connections import connect, mask_url
from xata_migration.defs.names import check_step_names
from xata_migration.errors import UsageError, XataMigrationError
from xata_migration.plan.introspect import introspect, use_pgvector
from xata_migration.plan.model import load_plan, save_plan
from xata_migration.sources.csv_import import import_csv
from xata_migration.sources.dump import import_dump

DEMO_SOURCE, DEMO_TARGET, DAGSTER_DB = "xata_demo_source", "xata_demo_target", "dagster"


EMBEDDED_PREFIX = "embedded:"
_embedded_server = None  # kept while this process runs: the server stops when it exits


def resolve_url(url: str) -> str:
    """`embedded:NAME` -> a URL to database NAME on the embedded server (created if new)."""
    global _embedded_server
    if not url.startswith(EMBEDDED_PREFIX):
        return url
    name = url[len(EMBEDDED_PREFIX):]
    if not name:
        raise UsageError("Name the database: embedded:NAME, e.g. embedded:xata_source.")
    _embedded_server = _embedded_server or embedded.start()
    return embedded.ensure_database(_embedded_server, name)


def _url(given: str | None, variable: str, option: str, what: str) -> str:
    url = given or os.environ.get(variable)
    if not url:
        raise UsageError(f"Name the {what} database: {option} URL or {variable} "
                        f"(or {EMBEDDED_PREFIX}NAME for the embedded server).")
    return resolve_url(url)


def command_plan(args) -> int:
    url = _url(args.source_url, "XATA_SOURCE_URL", "--source-url", "source")
    with connect(url, "source", read_only=True) as conn:
        plan, skipped = introspect(conn, args.schema)
        vectors = use_pgvector(conn, plan) if args.vectors == "pgvector" else []
    check_step_names(plan)
    save_plan(plan, args.output)
    links = sum(len(t.links) for t in plan.tables)
    deferred = [f"{t.name}.{c.name}" for t in plan.tables for c in t.links if c.link.deferred]
    print(f"Wrote {args.output}: {len(plan.tables)} tables, {links} links.")
    if deferred:
        print("Links deferred to break cycles: " + ", ".join(deferred))
    if vectors:
        print("Stored as pgvector vector(n): " + ", ".join(vectors))
    for hint in plan.suggested_links:
        print(f"Column {hint['table']}.{hint['column']} holds ids of {hint['links_to']!r} "
              f"({hint['matched']} of {hint['sampled']} sampled values) but is not a link: "
              "to rewrite it, declare it as a link in the plan (see suggested_links).")
    for table, reason in sorted(skipped.items()):
        print(f"Left out {table!r}: {reason}")
    return 0


def _dagster_environment(source_url: str, target_url: str, plan_path) -> dict:
    """The job's environment. Run history goes where DAGSTER_HOME / DAGSTER_PG_URL say,
    by default to the project's dagster_home and the embedded server's `dagster` database."""
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(embedded.PROJECT_ROOT / "dagster_home"))
    if "DAGSTER_PG_URL" not in env:
        env["DAGSTER_PG_URL"] = embedded.dagster_storage_url(
            resolve_url(EMBEDDED_PREFIX + DAGSTER_DB))
    env.update({"XATA_SOURCE_URL": source_url, "TARGET_DATABASE_URL": target_url,
                "XATA_MIGRATION_PLAN": str(Path(plan_path).resolve())})
    return env


def run_migrate_all(env: dict, log_path: Path) -> bool:
    """`dagster job execute ... -j migrate_all`, its log to `log_path`; True if every table
    and every check passed."""
    print(f"Running: dagster job execute -m xata_migration.definitions -j migrate_all "
          f"(log: {log_path})", flush=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        finished = subprocess.run([sys.executable, "-m", "dagster", "job", "execute", "-m",
                                   "xata_migration.definitions", "-j", "migrate_all"],
                                  env=env, cwd=embedded.PROJECT_ROOT, stdout=log,
                                  stderr=subprocess.STDOUT)
    if finished.returncode != 0:
        print(f"dagster job execute exited with {finished.returncode}; last lines of the log:")
        print("\n".join(log_path.read_text().splitlines()[-15:]))
    return _print_run_summary(env)


def _print_run_summary(env: dict) -> bool:
    """Read the latest migrate_all run back from Dagster's storage; True if all passed."""
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "DAGSTER_PG_URL")})
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="migrate_all"), limit=1)
        if not runs:
            print("The migrate_all run did not start; see the log above.")
            return False
        run = runs[0]
        materialized, outcomes = {}, []
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                mat = event.event_specific_data.materialization
                rows = mat.metadata.get("dagster/row_count")
                materialized[mat.asset_key.to_user_string()] = rows.value if rows else None
            elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                outcomes.append(event.event_specific_data)
    passed = [o for o in outcomes if o.passed]
    print(f"Run {run.run_id}: {run.status.value}")
    for key, rows in sorted(materialized.items()):
        checks = [o for o in outcomes if o.asset_key.to_user_string() == key]
        ok = sum(o.passed for o in checks)
        print(f"  {key:42} {rows if rows is not None else '':>7} rows  checks {ok}/{len(checks)}")
    for failed in [o for o in outcomes if not o.passed]:
        print(f"  FAILED {failed.asset_key.to_user_string()}: {failed.check_name}")
    print(f"{len(materialized)} assets materialized; {len(passed)} of {len(outcomes)} checks "
          "passed.")
    return run.status == dg.DagsterRunStatus.SUCCESS and len(passed) == len(outcomes) > 0


def _plan_and_urls(args):
    """(plan path, plan, source URL, target URL) of `migrate` and `report`."""
    plan_path = args.plan or os.environ.get("XATA_MIGRATION_PLAN")
    if not plan_path:
        raise UsageError("Name the plan: --plan PATH or XATA_MIGRATION_PLAN (write one with "
                        "`xata-migration plan`).")
    plan = load_plan(plan_path)  # a plan that cannot run stops here, with its message
    check_step_names(plan)
    return (plan_path, plan,
            _url(args.source_url, "XATA_SOURCE_URL", "--source-url", "source"),
            _url(args.target_url, "TARGET_DATABASE_URL", "--target-url", "target"))


def command_migrate(args) -> int:
    plan_path, _, source_url, target_url = _plan_and_urls(args)
    for url, role in ((source_url, "source"), (target_url, "target")):
        connect(url, role).close()  # unreachable databases stop here, before Dagster starts
    env = _dagster_environment(source_url, target_url, plan_path)
    ok = run_migrate_all(env, Path(args.log))
    print("Every table migrated and every check passed." if ok else
          "Not every table migrated, or a check failed: see the lines above, the log, and "
          "the README's \"When a check fails\". Run the same command again once fixed.")
    return 0 if ok else 1


def command_report(args) -> int:
    from xata_migration.verify.report import write_report

    plan_path, plan, source_url, target_url = _plan_and_urls(args)
    markdown_path, html_path, ok = write_report(source_url, target_url, plan, plan_path,
                                                args.output)
    print(f"Wrote {markdown_path} and {html_path}: "
          + ("every check passed." if ok else "some checks FAILED (see the report)."))
    return 0 if ok else 1


def command_import_csv(args) -> int:
    url = resolve_url(args.into)
    result = import_csv(args.folder, args.schema, url, objects=args.objects)
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"Loaded {len(result.rows)} tables, {sum(result.rows.values())} rows into "
          f"{mask_url(url)}. Next: xata-migration plan --source-url URL --output plan.yaml")
    return 0


def command_import_dump(args) -> int:
    kind = import_dump(args.dump, resolve_url(args.into))
    print(f"Restored {args.dump} ({kind} format) into {mask_url(args.into)}. Next: "
          f"xata-migration plan --source-url URL --output plan.yaml")
    return 0


def command_lookup(args) -> int:
    """Old Xata id -> new id (or, with --reverse, new id -> old Xata id) in the target."""
    url = _url(args.target_url, "TARGET_DATABASE_URL", "--target-url", "target")
    with connect(url, "target") as conn:
        found = (api.lookup(conn, args.table, new_id=int(args.id)) if args.reverse
                 else api.lookup(conn, args.table, old_id=args.id))
    if found is None:
        print(f"{args.id} is not in xata_id_map.{args.table}", file=sys.stderr)
        return 1
    print(found)
    return 0


def command_demo(args) -> int:
    from xata_migration.sources.demo import build_demo_source

    started = time.monotonic()
    server = embedded.start()
    source_url = embedded.recreate_database(server, DEMO_SOURCE)
    target_url = embedded.recreate_database(server, DEMO_TARGET)
    rows = build_demo_source(source_url, args.rows)
    print(f"Demo source {DEMO_SOURCE}: {len(rows)} Xata-shaped tables, {sum(rows.values())} rows.")
    with connect(source_url, "source", read_only=True) as conn:
        plan, _ = introspect(conn)
    plan_path = embedded.home() / "demo-plan.yaml"
    save_plan(plan, plan_path)
    print(f"Plan written to {plan_path}.")
    env = _dagster_environment(source_url, target_url, plan_path)
    ok = run_migrate_all(env, embedded.home() / "demo-run.log")
    print(f"Demo finished in {time.monotonic() - started:.0f} s. Target database: "
          f"{DEMO_TARGET}. Open the Dagster UI on this data: xata-migration dev")
    return 0 if ok else 1


def command_dev(args) -> int:
    server = embedded.start()
    plan_path = embedded.home() / "demo-plan.yaml"
    if not plan_path.exists():
        raise UsageError("No demo yet: run `xata-migration demo` first.")
    env = _dagster_environment(embedded.database_url(server, DEMO_SOURCE),
                               embedded.database_url(server, DEMO_TARGET), plan_path)
    print(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C to stop)")
    return subprocess.call([sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml",
                            "-h", args.host, "-p", str(args.port)],
                           env=env, cwd=embedded.PROJECT_ROOT)


def _plan_and_databases(command: argparse.ArgumentParser) -> None:
    command.add_argument("--plan", help="the plan (default: $XATA_MIGRATION_PLAN)")
    command.add_argument("--source-url", help="default: $XATA_SOURCE_URL")
    command.add_argument("--target-url", help="default: $TARGET_DATABASE_URL")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="xata-migration", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="introspect the source and write a plan (YAML)")
    plan.add_argument("--source-url", help="source database URL (default: $XATA_SOURCE_URL)")
    plan.add_argument("--output", required=True, help="where to write the plan")
    plan.add_argument("--schema", default="public", help="source schema (default: public)")
    plan.add_argument("--vectors", choices=["real[]", "pgvector"], default="real[]",
                      help="store Xata vectors as real[] (default, as in the source) or as "
                           "pgvector's vector(n) (the target needs the extension)")
    plan.set_defaults(run=command_plan)
    dump = commands.add_parser("import-dump", help="restore a Xata pg_dump (tar, custom or "
                               "plain) into an empty database, creating what it needs first")
    dump.add_argument("dump", help="the dump file")
    dump.add_argument("--into", required=True, help="URL of an empty database to restore into")
    dump.set_defaults(run=command_import_dump)
    csv_parser = commands.add_parser("import-csv", help="load a legacy Xata CSV export (one "
                                     "file per table) and its schema file into an empty "
                                     "database")
    csv_parser.add_argument("folder", help="the folder holding <table>.csv for every table")
    csv_parser.add_argument("--schema", required=True,
                            help="the schema file (schema.json / `xata schema dump`)")
    csv_parser.add_argument("--into", required=True,
                            help="URL of an empty database to load into")
    csv_parser.add_argument("--objects", choices=["jsonb", "columns"], default="jsonb",
                            help="Xata `object` columns: one jsonb column (default) or one "
                                 "column per field")
    csv_parser.set_defaults(run=command_import_csv)
    migrate = commands.add_parser("migrate", help="run migrate_all (dagster job execute) "
                                  "and print every table's checks")
    _plan_and_databases(migrate)
    migrate.add_argument("--log", default="migrate-run.log", help="where the run's log goes")
    migrate.set_defaults(run=command_migrate)
    report = commands.add_parser("report", help="check the target against the source now and "
                                 "write a Markdown and HTML report")
    report.add_argument("--output", required=True, help="the Markdown file (the HTML file "
                        "goes beside it, with .html)")
    _plan_and_databases(report)
    report.set_defaults(run=command_report)
    lookup = commands.add_parser("lookup", help="the new id of an old Xata record id")
    lookup.add_argument("table", help="source table name, e.g. tag-to-image")
    lookup.add_argument("id", help="the old Xata id (or, with --reverse, the new id)")
    lookup.add_argument("--reverse", action="store_true", help="new id -> old Xata id")
    lookup.add_argument("--target-url", help="target URL (default: $TARGET_DATABASE_URL)")
    lookup.set_defaults(run=command_lookup)
    demo = commands.add_parser("demo", help="migrate a demo Xata database on an embedded server")
    demo.add_argument("--rows", type=int, default=150, help="rows per table (junctions: 2x)")
    demo.set_defaults(run=command_demo)
    dev = commands.add_parser("dev", help="open the Dagster UI on the demo's databases")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(run=command_dev)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except XataMigrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
