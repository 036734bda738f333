"""Dagster resources: where the source (read only) and the target database are.

Each holds a URL, read from the environment when a step runs (dg.EnvVar keeps URLs and
their passwords out of the run config and the UI); the steps open their connections
through the core API (api.open_connections).
"""

from __future__ import annotations

import dagster as dg

from xata_migration.errors import UsageError


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

    def resolved_url(self) -> str:
        """The URL outside a step (the executor's): an EnvVar read now."""
        return _resolved(self.url)


class TargetDatabase(dg.ConfigurableResource):
    """The PostgreSQL database the migrated tables and the id mapping are written to."""

    url: str


def resources_from_environment() -> dict:
    return {"xata_source": XataSource(url=dg.EnvVar("XATA_SOURCE_URL")),
            "target_database": TargetDatabase(url=dg.EnvVar("TARGET_DATABASE_URL"))}
