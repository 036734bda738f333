"""The source side: the source read at one point in time.

  held.py         HeldSnapshot: an exported snapshot held open (for a run, or a table)
  connections.py  source connections that read in it, wherever they run
  watermark.py    from when the next delta load must read

May import: errors, masking, connections. Knows nothing of Dagster (defs/ turns a run's
snapshot into run tags), of the plan, of loading or of checks.
"""

from xata_migration.snapshot.connections import (SnapshotConnection, SnapshotLost,
                                                 SourceReaders, give_back_source, open_source,
                                                 source_readers)
from xata_migration.snapshot.held import (HOLDER_LABEL, TIMEOUT_VARIABLE, HeldSnapshot,
                                          SourceSnapshot)
from xata_migration.snapshot.watermark import watermark

__all__ = ["HOLDER_LABEL", "TIMEOUT_VARIABLE", "HeldSnapshot", "SnapshotConnection",
           "SnapshotLost", "SourceReaders", "SourceSnapshot", "give_back_source", "open_source",
           "source_readers", "watermark"]
