"""PostgreSQL building blocks that the load and the checks share.

  objects.py    the target's objects by name (tables, mappings), and the tool's own
                schemas and tables: the loads' state, the checks' findings
  ranges.py     ranges of a table (its pages, or any value): several sessions reading it at once
  relay.py      COPY from a query on one server into a table of another, streamed
  stage.py      staging tables: source rows as the target receives them
  translate.py  the id translation of links, old -> new and new -> old
  waits.py      lock waits on the target: who blocks, and an error that says so

May import: errors, masking, connections, plan. Never load, verify, snapshot, api or
defs: both load/ and verify/ stand on it, and neither imports the other.
"""

from xata_migration.pg import ranges, relay
from xata_migration.pg.objects import (CHECKS_SCHEMA, FINDINGS, LOAD_SCHEMA, mapping_table,
                                       target_table)
from xata_migration.pg import waits
from xata_migration.pg.relay import copy_between
from xata_migration.pg.stage import id_order
from xata_migration.pg.waits import LockWatch

__all__ = ["CHECKS_SCHEMA", "FINDINGS", "LOAD_SCHEMA", "LockWatch", "copy_between", "id_order",
           "mapping_table", "ranges", "relay", "target_table", "waits"]
