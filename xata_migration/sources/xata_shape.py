"""Build a Xata-shaped PostgreSQL database from a Xata schema file (schema.json).

The result looks like a restored branch of a Postgres-enabled Xata database: `xata_id`
text ids with a unique index, the metadata columns and trigger, Xata's file domains,
link columns as text FOREIGN KEYs to `xata_id` with `{"xata.link": ...}` comments. The
CSV import and the demo build their sources with it.
"""

from __future__ import annotations

import json

import psycopg
from psycopg import sql

from xata_migration.connections import connect
from xata_migration.masking import mask_url

XATA_RUNTIME_SQL = """
CREATE SCHEMA IF NOT EXISTS xata_private;
CREATE SCHEMA IF NOT EXISTS xata;
CREATE SEQUENCE IF NOT EXISTS xata_private.xid_counter;
CREATE OR REPLACE FUNCTION xata_private.xid() RETURNS text LANGUAGE sql AS $$
  SELECT substr(md5(clock_timestamp()::text || nextval('xata_private.xid_counter')::text), 1, 20)
$$;
CREATE OR REPLACE FUNCTION xata_private.maintain_metadata_trigger_pgroll() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    NEW.xata_version = OLD.xata_version + 1;
    NEW.xata_updatedat = now();
  END IF;
  RETURN NEW;
END $$;
DO $$ BEGIN
  CREATE DOMAIN xata.xata_file AS jsonb;
  CREATE DOMAIN xata.xata_file_array AS jsonb DEFAULT '[]'::jsonb;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
"""


XATA_TYPES = {
    "string": "text", "email": "text", "text": "text", "int": "bigint",
    "float": "double precision", "bool": "boolean", "datetime": "timestamptz",
    "multiple": "text[]", "json": "jsonb", "vector": "real[]", "file": "xata.xata_file",
    "file[]": "xata.xata_file_array", "link": "text", "object": "jsonb",
}


def _column_sql(column: dict) -> sql.Composed:
    parts = [sql.Identifier(column["name"]), sql.SQL(XATA_TYPES[column["type"]])]
    if column.get("notNull"):
        parts.append(sql.SQL("NOT NULL"))
    if column.get("defaultValue") is not None:
        parts.append(sql.SQL("DEFAULT {}").format(sql.Literal(column["defaultValue"])))
    if column["type"] in ("string", "email"):
        parts.append(sql.SQL("CHECK (length({}) <= 2048)").format(sql.Identifier(column["name"])))
    if column["type"] == "vector":
        parts.append(sql.SQL("CHECK (array_length({}, 1) = {})").format(
            sql.Identifier(column["name"]), sql.Literal(column["vector"]["dimension"])))
    return sql.SQL(" ").join(parts)


def create_tables(conn: psycopg.Connection, schema: dict, foreign_keys: bool = True) -> None:
    """Create every table of a Xata schema file the way a Postgres-enabled branch has them.
    Without `foreign_keys`, links are declared by their column comment alone (CSV exports
    can hold ids that point nowhere; the plan's `on_missing` decides what they become)."""
    conn.execute(XATA_RUNTIME_SQL)
    for table in schema["tables"]:
        name = sql.Identifier(table["name"])
        columns = [sql.SQL(
            "xata_id text NOT NULL DEFAULT ('rec_' || xata_private.xid())"
            " CHECK (length(xata_id) < 256)"),
            sql.SQL("xata_version integer NOT NULL DEFAULT 0"),
            sql.SQL("xata_createdat timestamptz NOT NULL DEFAULT now()"),
            sql.SQL("xata_updatedat timestamptz NOT NULL DEFAULT now()")]
        columns += [_column_sql(c) for c in table.get("columns", [])]
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(name, sql.SQL(", ").join(columns)))
        conn.execute(sql.SQL("CREATE UNIQUE INDEX {} ON {} (xata_id)").format(
            sql.Identifier(f"_pgroll_new_{table['name']}_xata_id_key"[:63]), name))
        conn.execute(sql.SQL(
            "CREATE TRIGGER xata_maintain_metadata_trigger_pgroll BEFORE INSERT OR UPDATE ON {}"
            " FOR EACH ROW EXECUTE FUNCTION xata_private.maintain_metadata_trigger_pgroll()"
        ).format(name))
        for column in table.get("columns", []):
            if column.get("unique"):
                conn.execute(sql.SQL("ALTER TABLE {} ADD UNIQUE ({})").format(
                    name, sql.Identifier(column["name"])))
    for table in schema["tables"]:
        for column in table.get("columns", []):
            if column["type"] == "link":
                _add_link(conn, table["name"], column, foreign_keys)
            if column["type"] == "vector":
                conn.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                    sql.Identifier(table["name"]), sql.Identifier(column["name"]),
                    sql.Literal(json.dumps(
                        {"xata.search.dimension": column["vector"]["dimension"]}))))


def _add_link(conn: psycopg.Connection, table: str, column: dict, foreign_key: bool) -> None:
    if foreign_key:
        conn.execute(sql.SQL("ALTER TABLE {} ADD FOREIGN KEY ({}) REFERENCES {} (xata_id)"
                             " ON DELETE SET NULL").format(
            sql.Identifier(table), sql.Identifier(column["name"]),
            sql.Identifier(column["link"]["table"])))
    conn.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
        sql.Identifier(table), sql.Identifier(column["name"]),
        sql.Literal(json.dumps({"xata.link": column["link"]["table"]}))))


def require_empty(url: str, error: type[Exception]) -> None:
    """Imports go into a new database: raise `error` if `url` already has tables."""
    with connect(url, "target") as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') LIMIT 5")]
    if tables:
        raise error(f"The database at {mask_url(url)} already has tables in public "
                    f"({', '.join(tables)}). Import into a new, empty database.")
