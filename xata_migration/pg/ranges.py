"""Ranges of a table's pages: a table read by several sessions at once, each its range.

Each range is a TID range scan, [first page, end page); the first starts at the table's
start and the last has no end (pages added since are in it), so the ranges hold every
row a snapshot sees exactly once, whatever the table's columns. `within` is the condition
of one range of any value (the checks' ranges of new ids use it too).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

Bounds = tuple  # (first, end) of a range; None: open


def table_pages(conn: psycopg.Connection, table: sql.Identifier) -> int:
    return conn.execute(
        "SELECT pg_relation_size(to_regclass(%s)) / current_setting('block_size')::bigint",
        (table.as_string(conn),)).fetchone()[0]


def page_ranges(conn: psycopg.Connection, table: sql.Identifier, workers: int) -> list[Bounds]:
    """Up to `workers` ranges of the table's pages, [first, end)."""
    pages = table_pages(conn, table)
    step = max(1, -(-pages // workers))  # ceiling
    bounds = [min(k * step, pages) for k in range(1, workers)]
    starts, ends = [None] + bounds, bounds + [None]
    return [(a, b) for a, b in zip(starts, ends) if a is None or b is None or a < b]


def within(value: sql.Composable, first: sql.Composable | None,
           end: sql.Composable | None) -> sql.Composable:
    """`value` in [first, end); a bound that is None is open."""
    parts = []
    if first is not None:
        parts.append(sql.SQL("{} >= {}").format(value, first))
    if end is not None:
        parts.append(sql.SQL("{} < {}").format(value, end))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def page_condition(first: int | None, end: int | None, alias: str = "src") -> sql.Composable:
    """The rows of alias's pages [first, end)."""
    def tid(page: int | None) -> sql.Composable | None:
        return None if page is None else sql.SQL("{}::tid").format(sql.Literal(f"({page},0)"))
    return within(sql.SQL("{}.ctid").format(sql.Identifier(alias)), tid(first), tid(end))


def page_conditions(conn: psycopg.Connection, table: sql.Identifier, workers: int,
                    alias: str = "src") -> list[sql.Composable]:
    """The conditions of up to `workers` page ranges of the table, in order."""
    return [page_condition(first, end, alias)
            for first, end in page_ranges(conn, table, workers)]
