"""Where a Xata database comes from, made into a Xata-shaped PostgreSQL source.

  dump.py        a pg_dump of a Postgres-enabled branch (any format, pg_dump 15 to 18),
                 restored in one transaction, Xata's runtime objects provided
  dump_script.py the dump's SQL read statement by statement, cut down to the application
  csv_import.py  CSV exports of a legacy database, with their schema.json
  xata_shape.py  a Xata-shaped database from a schema file
  demo.py        the demo source

May import: errors, masking, connections, embedded (its client programs), plan.
"""

from xata_migration.sources.demo import build_demo_source, load_schema
from xata_migration.sources.dump import DumpError, import_dump
from xata_migration.sources.dump_script import filter_script
from xata_migration.sources.xata_shape import XATA_RUNTIME_SQL

__all__ = ["XATA_RUNTIME_SQL", "CsvImportError", "DumpError", "build_demo_source",
           "filter_script", "import_csv", "import_dump", "load_schema"]


def __getattr__(name: str):
    """csv_import, and pandas with it, only when one of its names is asked for."""
    if name in ("CsvImportError", "import_csv"):
        from xata_migration.sources import csv_import
        return getattr(csv_import, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
