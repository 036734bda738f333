"""Writing the target: one table (or one deferred link) per call, in one transaction.

  table.py      the orchestrator: load_table and load_deferred_link, phase by phase
  stage.py      source rows -> an unlogged staging table of the target (COPY, streamed)
  ids.py        new ids: the append-only mapping xata_id_map.<table>, in a stable order
  links.py      the id translation of links, old -> new (the write) and new -> old (the
                checks), scalar and array; links that point nowhere
  write.py      the rows into the target table: CREATE TABLE AS, or an upsert
  deletions.py  rows gone from the source
  objects.py    shared objects (schemas, pgvector, lookup functions), the table's shape,
                constraints
  ddl.py        names and DDL of target objects: mapping, bookkeeping, keys, indexes
  sync.py       delta runs: the watermark and what the last load read
  snapshot.py   one source snapshot for every table of a run
  relay.py      COPY from one connection to another, streamed
  result.py     LoadResult, what a load did

May import: errors, connections, plan. Never verify, defs, api or the CLI.
"""

from xata_migration.errors import LoadError
from xata_migration.load.links import MissingLinks
from xata_migration.load.result import LoadResult
from xata_migration.load.table import load_deferred_link, load_table

__all__ = ["LoadError", "LoadResult", "MissingLinks", "load_deferred_link", "load_table"]
