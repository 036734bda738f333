"""Restore a pg_dump of a Postgres-enabled Xata branch into a plain PostgreSQL database.

Such a dump (Xata's guide: `pg_dump --no-acl --no-owner --no-privileges --schema=public
--format=tar`) refers to objects plain PostgreSQL lacks: column defaults call
`xata_private.xid()`, triggers call `xata_private.maintain_metadata_trigger_pgroll()`, file
columns use the domains `xata.xata_file` and `xata.xata_file_array`. They are created
first, then the dump is restored in one transaction with the embedded server's bundled
pg_restore (or psql for a plain SQL dump): it restores whole or not at all.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from xata_migration.errors import XataMigrationError
from xata_migration.masking import scrub
from xata_migration.sources.xata_shape import XATA_RUNTIME_SQL, require_empty


class DumpError(XataMigrationError, RuntimeError):
    """The dump could not be restored; the database is as it was."""


def dump_format(path: Path) -> str:
    """custom (starts with PGDMP), tar (ustar header), or plain SQL."""
    with open(path, "rb") as file:
        head = file.read(512)
    if head.startswith(b"PGDMP"):
        return "custom"
    if head[257:262] == b"ustar":
        return "tar"
    return "plain"


def _bundled(program: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH  # PostgreSQL 16 client programs

    return str(POSTGRES_BIN_PATH / program)


def _creates_public(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as file:
        return any(line.strip() == "CREATE SCHEMA public;" for line in file)


def _restore_command(path: Path, dbname: str, kind: str, workdir: Path) -> list[str]:
    """`pg_dump --schema=public` (Xata's guide) writes CREATE SCHEMA public, which every
    new database already has: that entry is left out (archives) or the empty schema is
    dropped first in the same transaction (plain SQL)."""
    if kind == "plain":
        drop = ["-c", "DROP SCHEMA public"] if _creates_public(path) else []
        return [_bundled("psql"), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1",
                "--single-transaction", "--dbname", dbname, *drop, "--file", str(path)]
    listing = subprocess.run([_bundled("pg_restore"), "--list", str(path)],
                             capture_output=True, text=True)
    if listing.returncode != 0:
        raise DumpError(f"{path.name} is not a dump pg_restore 16 can read: "
                        f"{listing.stderr.strip()}")
    entries = workdir / "restore.list"
    entries.write_text("".join(line for line in listing.stdout.splitlines(keepends=True)
                               if " SCHEMA - public " not in line))
    return [_bundled("pg_restore"), "--no-owner", "--no-acl", "--single-transaction",
            "--exit-on-error", "--use-list", str(entries), "--dbname", dbname, str(path)]


def import_dump(path: str | Path, url: str) -> str:
    """Restore the dump at `path` into the (empty) database at `url`; returns its format."""
    path = Path(path)
    if not path.is_file():
        raise DumpError(f"No dump file at {str(path)!r}.")
    require_empty(url, DumpError)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(XATA_RUNTIME_SQL)
    kind = dump_format(path)
    params = conninfo_to_dict(url)
    password = params.pop("password", None)  # through the environment, not the command line
    env = dict(os.environ, **({"PGPASSWORD": password} if password else {}))
    with tempfile.TemporaryDirectory() as workdir:
        command = _restore_command(path, make_conninfo(**params), kind, Path(workdir))
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        detail = scrub(finished.stderr.strip() or finished.stdout.strip(), url)
        raise DumpError(
            f"Restoring {path.name} ({kind} format) failed, and nothing of it was kept (one "
            f"transaction):\n{detail}\nIf the dump was made by a newer pg_dump than "
            "PostgreSQL 16, restore it with that version's pg_restore instead.")
    return kind
