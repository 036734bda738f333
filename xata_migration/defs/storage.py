"""Dagster's storage in PostgreSQL (dagster-postgres), with its connections kept open.

dagster-postgres opens a new connection for every event a run stores (hundreds per run,
most of a small table's time) and looks up again, for every asset check event, whether
its own tables and columns exist; only dagster-webserver keeps connections open
(`optimize_for_webserver`). dagster_home/dagster.yaml names this class as its storage, so
every Dagster process (`dagster job execute`, the UI, a run's own process) keeps one open
connection per storage, and remembers the tables and columns it found: Dagster only ever
adds them (`dagster instance migrate`).
"""

from __future__ import annotations

from dagster._core.storage.base_storage import DagsterStorage
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

# What dagster-webserver gives its own storage connections (its command's defaults).
POOL = {"statement_timeout": 0, "pool_recycle": 3600, "max_overflow": 20}


class KnownSchemaEventLogStorage(PostgresEventLogStorage):
    """Asks the database once per process whether a table or column of its own exists."""

    def __init__(self, *args, **kwargs):
        self._present: set[tuple[str, str]] = set()
        super().__init__(*args, **kwargs)

    def has_table(self, table_name: str) -> bool:
        return self._remembered(("table", table_name), lambda: super(
            KnownSchemaEventLogStorage, self).has_table(table_name))

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        return self._remembered(("asset_keys column", column_name), lambda: super(
            KnownSchemaEventLogStorage, self)._has_asset_key_col_on_connection(conn, column_name))

    def _remembered(self, key: tuple[str, str], look) -> bool:
        if key in self._present:
            return True
        found = bool(look())
        if found:  # an absent one may be added by a migration meanwhile: asked again
            self._present.add(key)
        return found


class PooledPostgresStorage(DagsterPostgresStorage):
    """`storage: postgres` of dagster.yaml, with the same configuration, pooled."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data=None, token_provider=None):
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PostgresRunStorage(postgres_url, should_autocreate_tables,
                                               token_provider=token_provider)
        self._event_log_storage = KnownSchemaEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._schedule_storage = PostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider)
        DagsterStorage.__init__(self)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            storage.optimize_for_webserver(**POOL)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledPostgresStorage:
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))
