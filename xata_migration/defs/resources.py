"""Dagster resources: the source (read only) and the target database."""

from __future__ import annotations

import dagster as dg
import psycopg

from xata_migration.connections import connect
from xata_migration.errors import UsageError
from xata_migration.load.snapshot import SnapshotConnection


def _resolved(value: str) -> str:
    if not isinstance(value, dg.EnvVar):
        return value
    if not value.get_value():
        raise UsageError(f"{value.env_var_name} is not set: export the source "
                               "database's URL in it before running migrate_all.")
    return value.get_value()


class XataSource(dg.ConfigurableResource):
    """The Xata-shaped source database. Only read: nothing is ever written to it."""

    url: str

    def connect(self, label: str = "", snapshot_id: str = "") -> psycopg.Connection:
        """A read-only connection; with a `snapshot_id`, every transaction of it reads the
        source as of that exported snapshot (SnapshotLost if it cannot be imported)."""
        if not snapshot_id:
            return connect(self.url, "source", read_only=True, label=label)
        conn = connect(self.url, "source", read_only=True, label=label,
                       connection_class=SnapshotConnection)
        try:
            conn.pin(snapshot_id)
        except Exception:
            conn.close()
            raise
        return conn

    def resolved_url(self) -> str:
        """The URL outside a step (the executor's): an EnvVar read now."""
        return _resolved(self.url)


class TargetDatabase(dg.ConfigurableResource):
    """The PostgreSQL database the migrated tables and the id mapping are written to."""

    url: str

    def connect(self, label: str = "") -> psycopg.Connection:
        return connect(self.url, "target", label=label)


def resources_from_environment() -> dict:
    # EnvVar keeps the URLs (and their passwords) out of the run config and the UI.
    return {"xata_source": XataSource(url=dg.EnvVar("XATA_SOURCE_URL")),
            "target_database": TargetDatabase(url=dg.EnvVar("TARGET_DATABASE_URL"))}
