"""Restore a pg_dump of a Postgres-enabled Xata branch into a plain PostgreSQL database.

Any dump Xata users hold: plain SQL, custom, directory or tar; made by pg_dump 15 to 18;
of the whole database or of `--schema=public`. An archive is first written out as the
SQL script it holds, by the embedded server's pg_restore (PostgreSQL 18, which reads
them all). The script is then read statement by statement and cut down to the
application's part (dump_script.py: Xata's and the platform's schemas, owners, grants,
unknown settings and meta-commands are left out, and counted). What Xata's objects the
application's tables use (`xata_private.xid()` defaults, the metadata trigger's function,
the file domains `xata.xata_file[_array]`) the tool creates itself, first.

All of it runs in one transaction of the bundled psql: the dump restores whole, or the
database stays as it was, the tool's own helper objects included.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from xata_migration.connections import connect
from xata_migration.embedded import client_program
from xata_migration.errors import XataMigrationError
from xata_migration.masking import mask_url, scrub
from xata_migration.sources.dump_script import Filtered, filter_script
from xata_migration.sources.xata_shape import XATA_RUNTIME_SQL


class DumpError(XataMigrationError, RuntimeError):
    """The dump could not be restored; the database is as it was."""


@dataclass
class Imported:
    kind: str          # plain | custom | directory | tar
    left_out: str      # what was left out, by kind ("" if nothing)


def dump_format(path: Path) -> str:
    """directory (pg_dump -Fd: a folder with toc.dat), custom (starts with PGDMP), tar
    (ustar header), or plain SQL."""
    if path.is_dir():
        return "directory"
    with open(path, "rb") as file:
        head = file.read(512)
    if head.startswith(b"PGDMP"):
        return "custom"
    if head[257:262] == b"ustar":
        return "tar"
    return "plain"


# A database that already holds an import is emptied first, in the import's transaction.
REPLACE_SQL = """
DROP SCHEMA IF EXISTS xata CASCADE;
DROP SCHEMA IF EXISTS xata_private CASCADE;
DROP SCHEMA public CASCADE;
CREATE SCHEMA public;
GRANT USAGE ON SCHEMA public TO PUBLIC;
"""


def _existing_import(url: str) -> list[str]:
    """What of an earlier import (or of anything else) the database holds."""
    with connect(url, "target") as conn:
        found = [f"table {r[0]}" for r in conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1 LIMIT 5")]
        found += [f"schema {r[0]}" for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('xata', 'xata_private')"
            " ORDER BY 1")]
    return found


def _known_settings(url: str) -> set[str]:
    with connect(url, "target") as conn:
        return {r[0].lower() for r in conn.execute("SELECT name FROM pg_settings")}


def _as_script(path: Path, kind: str, workdir: Path) -> Path:
    """The SQL script a dump holds: a plain dump is one; an archive is written out by
    pg_restore (owners and privileges already left out)."""
    if kind == "plain":
        return path
    script = workdir / "archive.sql"
    written = subprocess.run([client_program("pg_restore"), "--no-owner", "--no-acl",
                              "--file", str(script), str(path)],
                             capture_output=True, text=True)
    if written.returncode != 0:
        raise DumpError(f"{path.name} is not a dump the bundled pg_restore (PostgreSQL 18) "
                        f"can read: {written.stderr.strip()}")
    return script


def import_dump(path: str | Path, url: str, replace: bool = False) -> Imported:
    """Restore the dump at `path` into the database at `url`, which must hold no earlier
    import unless `replace` (then that is dropped, in the same transaction)."""
    path = Path(path)
    if not path.exists():
        raise DumpError(f"No dump file at {str(path)!r}.")
    existing = _existing_import(url)
    if existing and not replace:
        raise DumpError(f"The database at {mask_url(url)} already holds an import or other "
                        f"tables ({', '.join(existing)}). Import into a new, empty database, "
                        "or pass --replace to drop public and Xata's schemas there and "
                        "import again (in one transaction).")
    kind = dump_format(path)
    with tempfile.TemporaryDirectory() as workdir:
        script = _as_script(path, kind, Path(workdir))
        restore, prepare = Path(workdir) / "restore.sql", Path(workdir) / "prepare.sql"
        with open(script, encoding="utf-8") as source, \
                open(restore, "w", encoding="utf-8") as out:
            filtered = filter_script(source, out, _known_settings(url))
        added = [sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA public;\n").format(
            sql.Identifier(name)).as_string(None) for name in filtered.extensions_missing]
        prepare.write_text((REPLACE_SQL if replace else "") + XATA_RUNTIME_SQL + "".join(added))
        _run_psql([prepare, restore], url, filtered, path, kind)
    summary = filtered.summary()
    if filtered.extensions_missing:
        summary += ("; created, as the dump's tables use their types but it does not create "
                    "them (a --schema=public dump): extension(s) "
                    + ", ".join(filtered.extensions_missing))
    return Imported(kind, summary)


def _run_psql(files: list[Path], url: str, filtered: Filtered, path: Path,
              kind: str) -> None:
    """The files, in order, in one transaction of the bundled psql."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)  # through the environment, not the command line
    env = dict(os.environ, **({"PGPASSWORD": password} if password else {}))
    finished = subprocess.run(
        [client_program("psql"), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1",
         "--single-transaction", "--dbname", make_conninfo(**params),
         *[f"--file={file}" for file in files]],
        env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        detail = scrub(finished.stderr.strip() or finished.stdout.strip(), url)
        raise DumpError(_failure(detail, files[-1], filtered, path, kind))


def _failure(detail: str, restore: Path, filtered: Filtered, path: Path, kind: str) -> str:
    """The error, with the dump's line and the statement's first line."""
    where = ""
    found = re.search(r"^psql:([^\n]*?):(\d+): ", detail, re.MULTILINE)
    if found and found.group(1) == str(restore):
        line = int(found.group(2))
        statement = _first_statement_line(restore, filtered.item_start(line), line)
        script = ("" if kind == "plain" else
                  f" of the SQL that `pg_restore --file=- {path.name}` writes out")
        where = f" at line {filtered.dump_line(line)}{script}, in the statement `{statement}`"
    elif found:
        where = " in the tool's own preparation"
    detail = re.sub(r"^psql:[^\n]*?:\d+: ", "", detail, flags=re.MULTILINE)
    return (f"Restoring {path.name} ({kind} format) failed{where}; nothing of it was kept "
            f"(one transaction), the database is as it was:\n{detail}")


def _first_statement_line(restore: Path, start: int, end: int) -> str:
    """The first line of SQL (not a comment) between lines `start` and `end`."""
    with open(restore, encoding="utf-8") as file:
        lines = file.readlines()[start - 1:end]
    text = next((t for t in lines if t.strip() and not t.lstrip().startswith("--")), "")
    return text.strip()[:200]
