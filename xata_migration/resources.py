"""Dagster resources: the source (read only) and the target database."""

from __future__ import annotations

import dagster as dg
import psycopg

from xata_migration.connections import connect


class XataSource(dg.ConfigurableResource):
    """The Xata-shaped source database. Only read: nothing is ever written to it."""

    url: str

    def connect(self, label: str = "") -> psycopg.Connection:
        return connect(self.url, "source", read_only=True, label=label)


class TargetDatabase(dg.ConfigurableResource):
    """The PostgreSQL database the migrated tables and the id mapping are written to."""

    url: str

    def connect(self, label: str = "") -> psycopg.Connection:
        return connect(self.url, "target", label=label)


def resources_from_environment() -> dict:
    # EnvVar keeps the URLs (and their passwords) out of the run config and the UI.
    return {"xata_source": XataSource(url=dg.EnvVar("XATA_SOURCE_URL")),
            "target_database": TargetDatabase(url=dg.EnvVar("TARGET_DATABASE_URL"))}
