"""Staging tables: source rows as the target receives them, before any id is changed.

A stage holds `xid` (the source's record id as text), then one column per planned column
(`c0`, `c1`, ...: positional names, so no user name needs quoting there), then any
extra columns. Links are staged as the source's ids (text, or text[]), values in their
target type, except the few types the write casts (cast_by_the_write). The load stages
every row it writes; the checks stage what they compare.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from xata_migration.plan.model import Column, Plan, Table

FIRST_USER_OID = 16384  # types below this are built in and have the same binary format

# JSON's binary COPY input is a parse of its text, done by the one backend COPY has:
# staged as text, it is parsed by the write, which parallel workers run (a shorter
# transfer, no measurable cost to the write: benchmarks/NOTES.md).
PARSED_BY_THE_WRITE = ("json", "jsonb")


def stage_name(index: int) -> sql.Identifier:
    return sql.Identifier(f"c{index}")


def stage_type(column: Column) -> str:
    """Links are staged as the source's ids (text, or text[]), values in their target
    type, except the few types the write casts (cast_by_the_write)."""
    if column.rewritten:
        return "text[]" if column.is_array_link else "text"
    if column.is_pgvector:  # the source has no pgvector: cast in the target
        return "real[]"
    if column.type in PARSED_BY_THE_WRITE:
        return "text"
    return column.type


def cast_by_the_write(column: Column) -> bool:
    """A value staged in another type than its target column's."""
    return not column.rewritten and stage_type(column) != column.type


def row_key(table: Table, alias: str, names: str = "source") -> sql.Composed:
    """What tells a row of `alias` apart, as text: its record id (a remapped table), its
    kept key's value (one column) or record (several), NULL for a table without a key.
    `names`: the table's "source" or "target" column names."""
    if table.id_column:
        return sql.SQL("{}.{}::text").format(sql.Identifier(alias),
                                            sql.Identifier(table.id_column))
    fields = [sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(
        name if names == "source" else table.column(name).target)) for name in table.key]
    if not fields:
        return sql.SQL("NULL::text")
    if len(fields) == 1:
        return sql.SQL("{}::text").format(fields[0])
    return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(fields))


def source_select(plan: Plan, table: Table, columns: list[Column],
                  extra: list[sql.Composable] = ()) -> sql.Composed:
    """The source rows (alias `src`) as a stage holds them: row key as text (row_key),
    rewritten links as text, values cast, then any `extra` fields."""
    fields = [row_key(table, "src")]
    for column in columns:
        fields.append(sql.SQL("src.{}::{}").format(sql.Identifier(column.name),
                                                    sql.SQL(stage_type(column))))
    return sql.SQL("SELECT {} FROM {} src").format(
        sql.SQL(", ").join(fields + list(extra)), sql.Identifier(plan.source_schema, table.name))


def id_order_keys(table: Table, alias: str = "src") -> list[sql.Composable]:
    """The order new ids follow, on the source rows of `alias`: the plan's id_order
    columns, then the id's bytes."""
    order = [sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(name))
             for name in table.id_order]
    order.append(sql.SQL('{}.{}::text COLLATE "C"').format(sql.Identifier(alias),
                                                         sql.Identifier(table.id_column)))
    return order


def id_order(table: Table, alias: str = "src") -> sql.Composed:
    return sql.SQL(", ").join(id_order_keys(table, alias))


def create_temp_table(target, name: sql.Identifier, definitions: list[sql.Composable]) -> None:
    # Dropped first: a savepoint inside a longer transaction does not drop it on commit.
    target.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(name))
    target.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        name, sql.SQL(", ").join(definitions)))


def create_stage(target: psycopg.Connection, stage: sql.Identifier,
                 columns: list[Column], extra: list[sql.Composable] = (),
                 temporary: bool = True) -> bool:
    """Create a staging table (xid, c0.., then `extra` column definitions): a temporary
    one, or else an unlogged one (the load's, which parallel workers can read); True if
    every column type allows binary COPY."""
    definitions = [sql.SQL("xid text")] + [
        sql.SQL("{} {}").format(stage_name(i), sql.SQL(stage_type(c)))
        for i, c in enumerate(columns)] + list(extra)
    with target.pipeline():  # one round trip for the three
        if temporary:
            create_temp_table(target, stage, definitions)
        else:
            target.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
            target.execute(sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(
                stage, sql.SQL(", ").join(definitions)))
        binary = target.execute(
            "SELECT bool_and(atttypid < %s) FROM pg_attribute"
            " WHERE attrelid = to_regclass(%s) AND attnum > 0",
            (FIRST_USER_OID, ("pg_temp." if temporary else "") + stage.as_string(target)))
    return bool(binary.fetchone()[0])
