"""Where a Xata database comes from, made into a Xata-shaped PostgreSQL source.

  dump.py        a pg_dump of a Postgres-enabled branch, restored (Xata's roles and
                 runtime objects provided)
  csv_import.py  CSV exports of a legacy database, with their schema.json
  xata_shape.py  a Xata-shaped database from a schema file
  demo.py        the demo source

May import: errors, connections, plan.
"""
