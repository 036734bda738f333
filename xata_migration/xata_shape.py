"""Build a Xata-shaped PostgreSQL database from a Xata schema file (schema.json).

The result looks like a restored branch of a Postgres-enabled Xata database: `xata_id`
text ids with a unique index, the metadata columns and trigger, Xata's file domains,
link columns as text FOREIGN KEYs to `xata_id` with `{"xata.link": ...}` comments.
`fill_demo_rows` adds deterministic synthetic rows; the demo and the tests use both.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from psycopg import sql

from xata_migration import graph
from xata_migration.connections import connect, mask_url

DEMO_SCHEMA = Path(__file__).parent / "fixtures" / "xata-schema-ultraterrestrial.json"

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


def load_schema(path: Path = DEMO_SCHEMA) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


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


# ---------------------------------------------------------------- deterministic rows


def record_id(table: str, n: sql.Composable) -> sql.Composed:
    """The demo id of row n of a table: rec_ + 20 base32hex characters, reproducible."""
    return sql.SQL("'rec_' || substr(md5({} || ':' || {}), 1, 20)").format(
        sql.Literal(table), n)


def _value_sql(table: str, column: dict, rows: dict[str, int]) -> sql.Composable:
    name, kind = column["name"], column["type"]
    literal = sql.Literal
    nullable = not column.get("notNull") and not column.get("unique")
    if kind in ("string", "email"):
        text = (sql.SQL("'user' || g || '@example.org'") if kind == "email" else sql.SQL(
            "{} || ' ' || g || CASE WHEN g % 7 = 0 THEN ' — Ünïcødé \"quoted\" back\\slash'"
            " ELSE '' END").format(literal(name)))
    elif kind in ("text", "object"):
        text = sql.SQL("{} || ' of row ' || g || E'\\nsecond line\\twith a tab'").format(
            literal(name))
        if kind == "object":
            text = sql.SQL("jsonb_build_object('text', {})").format(text)
    elif kind == "int":
        text = sql.SQL("(g * 7919) % 100000 - 500")
    elif kind == "float":
        text = sql.SQL("((g * 7919) % 18000) / 100.0 - 90.123456789")
    elif kind == "bool":
        text = sql.SQL("g % 2 = 0")
    elif kind == "datetime":
        text = sql.SQL("timestamptz '1947-06-24 00:00:00+00'"
                       " + g * interval '17 days 3 hours 1.123456 seconds'")
    elif kind == "multiple":
        text = sql.SQL("ARRAY['item-' || g, 'item, \"' || (g + 1) || '\"']")
    elif kind == "json":
        text = sql.SQL("jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g % 3))")
    elif kind == "vector":
        text = sql.SQL("(SELECT array_agg(((g * i) % 997)::real / 997 ORDER BY i)"
                       " FROM generate_series(1, {}) i)").format(
            literal(column["vector"]["dimension"]))
    elif kind == "file":
        text = sql.SQL("jsonb_build_object('name', 'file-' || g || '.png', 'mediaType',"
                       " 'image/png', 'size', g * 100)")
    elif kind == "file[]":
        text = sql.SQL("jsonb_build_array(jsonb_build_object('name', 'a-' || g || '.pdf'),"
                       " jsonb_build_object('name', 'b-' || g || '.pdf'))")
    elif kind == "link":
        parent = column["link"]["table"]
        text = record_id(parent, sql.SQL("1 + (g * 31) % {}").format(literal(rows[parent])))
    else:
        raise ValueError(f"unknown Xata type {kind!r} of column {table}.{name}")
    if nullable:
        return sql.SQL("CASE WHEN g % 9 = 4 THEN NULL ELSE {} END").format(text)
    return text


def _rows_for(table: dict, base_rows: int) -> int:
    columns = table.get("columns", [])
    if columns and all(c["type"] == "link" for c in columns):
        return base_rows * 2  # junction tables
    return base_rows


def fill_demo_rows(conn: psycopg.Connection, schema: dict, base_rows: int = 150) -> dict:
    """Insert deterministic rows into every table; returns {table: rows}."""
    rows = {t["name"]: _rows_for(t, base_rows) for t in schema["tables"]}
    parents = {t["name"]: [c["link"]["table"] for c in t.get("columns", [])
                           if c["type"] == "link" and c["link"]["table"] != t["name"]]
               for t in schema["tables"]}
    by_name = {t["name"]: t for t in schema["tables"]}
    for name in graph.topological_order(parents):
        columns = by_name[name].get("columns", [])
        targets = [sql.Identifier(c) for c in
                   ("xata_id", "xata_version", "xata_createdat", "xata_updatedat")]
        values = [record_id(name, sql.SQL("g")), sql.SQL("g % 4"),
                  # every three rows share a creation time: new ids then follow xata_id
                  sql.SQL("timestamptz '2023-01-01 00:00:00+00' + (g / 3) * interval "
                          "'61.123456 seconds'"),
                  sql.SQL("timestamptz '2023-06-01 00:00:00+00' + g * interval '1 second'")]
        targets += [sql.Identifier(c["name"]) for c in columns]
        values += [_value_sql(name, c, rows) for c in columns]
        conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM generate_series(1, {}) g").format(
            sql.Identifier(name), sql.SQL(", ").join(targets), sql.SQL(", ").join(values),
            sql.Literal(rows[name])))
    return rows


def build_demo_source(url: str, base_rows: int = 150) -> dict:
    with psycopg.connect(url) as conn:
        schema = load_schema()
        create_tables(conn, schema)
        rows = fill_demo_rows(conn, schema, base_rows)
    return rows
