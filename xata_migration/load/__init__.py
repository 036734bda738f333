"""Writing the target: one table (or one deferred link) per call, in one transaction.

  table.py      the orchestrator: load_table and load_deferred_link, phase by phase
  kept.py       a table whose ids are kept (`ids: keep`): copied, matched on its key
  views.py      a view or materialized view, made after its tables, refreshed each run
  stage.py      source rows -> the load's unlogged staging table (COPY, streamed)
  split.py      a big table's first load: its stage filled by several sessions at once,
                each a range of its pages
  ids.py        new ids: the append-only mapping xata_id_map.<table>, in a stable order
  links.py      links written as new ids; links that point nowhere (MissingLinks)
  write.py      the rows into the target table: CREATE TABLE AS, or an upsert
  deletions.py  rows gone from the source
  objects.py    shared objects (schemas, pgvector, lookup functions), the table's shape,
                a link's constraint
  ddl.py        DDL of target objects: mapping, lookup functions, keys, indexes
  schema.py     the plan's objects around the rows: extensions, types, sequences,
                generated columns, constraints, indexes, comments
  sync.py       delta runs: what the last load read, and whether it was verified
  result.py     LoadResult, what a load did

May import: errors, masking, connections, plan, pg, snapshot. Never verify, api, defs or
the CLI.
"""

from xata_migration.errors import LoadError
from xata_migration.load.links import MissingLinks
from xata_migration.load import split
from xata_migration.load.result import LoadResult
from xata_migration.load.split import RangeReaders
from xata_migration.load.sync import record_verified
from xata_migration.load.table import load_deferred_link, load_table
from xata_migration.load.views import make_view

__all__ = ["LoadError", "LoadResult", "MissingLinks", "RangeReaders", "load_deferred_link",
           "load_table", "make_view", "record_verified", "split"]
