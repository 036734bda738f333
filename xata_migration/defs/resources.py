"""Dagster resources: where the source (read only) and the target database are.

Each holds the name of the environment variable its URL is read from when a run starts
and when a step runs, so URLs and their passwords never enter the run config or the UI
(a URL given directly, as the tests do, is used as it is). The steps open their
connections through the core API (api.open_connections).
"""

from __future__ import annotations

import os

import dagster as dg

from xata_migration.errors import UsageError


def _from_environment(variable: str, what: str, option: str) -> str:
    url = os.environ.get(variable)
    if not url:
        raise UsageError(f"{variable} is not set: export the {what} database's URL in it "
                         f"before running migrate_all (`xata-migration migrate` takes it as "
                         f"{option} URL). Nothing was written.")
    return url


class XataSource(dg.ConfigurableResource):
    """The Xata-shaped source database. Only read: nothing is ever written to it."""

    url: str = ""
    url_variable: str = "XATA_SOURCE_URL"

    def resolved_url(self) -> str:
        """`url`, or else the URL in `url_variable` (UsageError naming it if unset)."""
        return self.url or _from_environment(self.url_variable, "source", "--source-url")


class TargetDatabase(dg.ConfigurableResource):
    """The PostgreSQL database the migrated tables and the id mapping are written to."""

    url: str = ""
    url_variable: str = "TARGET_DATABASE_URL"

    def resolved_url(self) -> str:
        """`url`, or else the URL in `url_variable` (UsageError naming it if unset)."""
        return self.url or _from_environment(self.url_variable, "target", "--target-url")


def resources_from_environment() -> dict:
    return {"xata_source": XataSource(), "target_database": TargetDatabase()}
