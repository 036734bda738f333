"""Sources the benchmark builds besides the parent/child one and the demo schema:
a wide schema (many small tables, linked) and one big table."""

import psycopg
from psycopg import sql

from xata_migration.sources import XATA_RUNTIME_SQL

XATA = """xata_id text NOT NULL, xata_version integer NOT NULL DEFAULT 0,
    xata_createdat timestamptz NOT NULL DEFAULT now(),
    xata_updatedat timestamptz NOT NULL DEFAULT now()"""


def wide_parents(tables: int) -> dict[int, list[int]]:
    """Table i's links (1 to 3 each): to the table before it, to table i // 2, to itself
    every fifth table; table 0 links to table 2, closing the cycle 0 -> 2 -> 1 -> 0."""
    parents = {}
    for i in range(tables):
        links = [i - 1] if i else [min(2, tables - 1)]
        if i > 2 and i // 2 != i - 1:
            links.append(i // 2)
        if i % 5 == 4:
            links.append(i)
        parents[i] = list(dict.fromkeys(links))
    return parents


def build_wide_source(url: str, tables: int, rows: int = 4) -> dict[str, int]:
    """`tables` Xata tables of `rows` rows, linked as wide_parents says; every link value
    names a row of its parent. The foreign keys are added once every row is in."""
    parents = wide_parents(tables)
    with psycopg.connect(url) as conn:
        conn.execute(XATA_RUNTIME_SQL)
        for i in range(tables):
            links = sql.SQL("").join(sql.SQL(", {} text").format(sql.Identifier(f"link_{p}"))
                                     for p in parents[i])
            conn.execute(sql.SQL("CREATE TABLE {} ({}, name text{})").format(
                sql.Identifier(f"wide_{i}"), sql.SQL(XATA), links))
            conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (xata_id)").format(
                sql.Identifier(f"wide_{i}")))
        for i in range(tables):
            values = sql.SQL(", ").join(
                sql.SQL("{} || g").format(sql.Literal(f"rec_w{p}_")) for p in parents[i])
            conn.execute(sql.SQL(
                "INSERT INTO {} SELECT {} || g, 0, now(), now(), 'row ' || g, {}"
                " FROM generate_series(1, {}) g").format(
                sql.Identifier(f"wide_{i}"), sql.Literal(f"rec_w{i}_"), values,
                sql.Literal(rows)))
        for i in range(tables):
            for p in parents[i]:
                conn.execute(sql.SQL("ALTER TABLE {} ADD FOREIGN KEY ({}) REFERENCES {}"
                                     " (xata_id)").format(
                    sql.Identifier(f"wide_{i}"), sql.Identifier(f"link_{p}"),
                    sql.Identifier(f"wide_{p}")))
    return {f"wide_{i}": rows for i in range(tables)}


def build_big_source(url: str, rows: int) -> dict[str, int]:
    """One big table, `event` (`rows` rows, a link to `owner`, JSON), and its 100 owners."""
    with psycopg.connect(url) as conn:
        conn.execute(XATA_RUNTIME_SQL)
        conn.execute(f"""
            CREATE TABLE owner ({XATA}, name text);
            CREATE UNIQUE INDEX owner_id ON owner (xata_id);
            CREATE TABLE event ({XATA}, owner text REFERENCES owner (xata_id), title text,
                body text, amount bigint, at timestamptz, meta jsonb);
            CREATE UNIQUE INDEX event_id ON event (xata_id);""")
        conn.execute("""INSERT INTO owner (xata_id, name) SELECT 'rec_o' || g, 'owner ' || g
            FROM generate_series(1, 100) g""")
        conn.execute("""INSERT INTO event (xata_id, xata_createdat, owner, title, body, amount,
            at, meta) SELECT 'rec_' || substr(md5('e' || g), 1, 20), timestamptz '2023-06-01'
            + g * interval '1 s', 'rec_o' || (g %% 100 + 1), 'title ' || g,
            repeat('body ', 8) || g, g::bigint * 1000, timestamptz '2024-01-01'
            + g * interval '1 min', jsonb_build_object('n', g) FROM generate_series(1, %s) g""",
                     (rows,))
    return {"owner": 100, "event": rows}
