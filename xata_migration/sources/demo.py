"""The demo source: the schema of the database this tool was first asked for
(fixtures/), filled with deterministic synthetic rows. The demo, the tests and the
benchmark use it.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from psycopg import sql

from xata_migration.plan import graph
from xata_migration.sources.xata_shape import create_tables

DEMO_SCHEMA = Path(__file__).parent.parent / "fixtures" / "xata-schema-ultraterrestrial.json"


def load_schema(path: Path = DEMO_SCHEMA) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


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
