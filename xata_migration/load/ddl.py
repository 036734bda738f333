"""SQL for the target's tables, mapping tables, lookup functions and constraints.

Every name goes through psycopg.sql.Identifier; every derived name (constraint, index)
through names.derived_name, so it stays valid and distinct after the 63-byte limit.
Column types and defaults are SQL text from the plan (validated there).
"""

from __future__ import annotations

from psycopg import sql

from xata_migration.pg.objects import (ID, SYNC_STATE, foreign_key_name, mapping_table,
                                       target_table)
from xata_migration.plan.model import DEFERRABLE_SQL, MAPPING_SCHEMA, Column, Plan, Table
from xata_migration.plan.names import derived_name


def create_mapping_sql(table: Table) -> sql.Composed:
    """The permanent old-id -> new-id table. Append-only: an id once given never changes.
    Its keys come with mapping_keys_sql, once the first ids are in (faster, as pg_restore).
    Old ids are compared byte by byte ("C"): equality is the same in any deterministic
    collation, and the key on a million of them builds about three times faster."""
    return sql.SQL('CREATE TABLE {} (xata_id text COLLATE "C" NOT NULL,'
                   ' new_id bigint NOT NULL)').format(mapping_table(table.name))


def create_mapping_as_sql(table: Table, ids: sql.Composable) -> sql.Composed:
    """The mapping table made from `ids` (old id, new id) in one bulk write, which is
    faster than CREATE TABLE then INSERT; mapping_keys_sql then gives it the same columns
    as create_mapping_sql's."""
    return sql.SQL('CREATE TABLE {} (xata_id, new_id) AS SELECT old COLLATE "C", new'
                   " FROM ({}) ids(old, new)").format(mapping_table(table.name), ids)


def mapping_keys_sql(table: Table) -> sql.Composed:
    return sql.SQL("ALTER TABLE {map} ALTER COLUMN new_id SET NOT NULL,"
                   " ADD CONSTRAINT {pkey} PRIMARY KEY (xata_id),"
                   " ADD CONSTRAINT {ukey} UNIQUE (new_id)").format(
        map=mapping_table(table.name),
        pkey=sql.Identifier(derived_name(table.name, "", "pkey")),
        ukey=sql.Identifier(derived_name(table.name, "new_id", "key")))


# The lookup functions' comment, which also tells an older version of them (made before
# they looked beyond the mapping) from this one: prepare_target replaces those.
NEW_ID_COMMENT = ("The new id an old Xata record id became: through the table's mapping, "
                  "else the row whose kept xata_id column holds it (NULL if none).")

LOOKUP_FUNCTIONS_SQL = sql.SQL("""
CREATE OR REPLACE FUNCTION {schema}.new_id(table_name text, xata_id text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE answer bigint; place record;
BEGIN
  IF to_regclass(format('%I.%I', {literal}, table_name)) IS NOT NULL THEN
    EXECUTE format('SELECT new_id FROM %I.%I WHERE xata_id = $1', {literal}, table_name)
      INTO answer USING xata_id;
    IF answer IS NOT NULL THEN RETURN answer; END IF;
  END IF;
  SELECT s.target_table, s.id_column, s.xata_id_column INTO place FROM {state} s
    WHERE s.table_name = $1;
  IF NOT FOUND AND to_regclass(format('%I.%I', {literal}, table_name)) IS NULL THEN
    RAISE EXCEPTION 'xata_id_map has no table %', table_name;
  END IF;
  IF place.id_column IS NOT NULL AND place.xata_id_column IS NOT NULL
     AND to_regclass(place.target_table) IS NOT NULL THEN
    EXECUTE format('SELECT %I FROM %s WHERE %I = $1 LIMIT 1', place.id_column,
                   to_regclass(place.target_table), place.xata_id_column)
      INTO answer USING xata_id;
  END IF;
  RETURN answer;
END $$;
COMMENT ON FUNCTION {schema}.new_id(text, text) IS {comment};
CREATE OR REPLACE FUNCTION {schema}.xata_id(table_name text, new_id bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE answer text; place record;
BEGIN
  IF to_regclass(format('%I.%I', {literal}, table_name)) IS NOT NULL THEN
    EXECUTE format('SELECT xata_id FROM %I.%I WHERE new_id = $1', {literal}, table_name)
      INTO answer USING new_id;
    RETURN answer;
  END IF;
  SELECT s.target_table, s.id_column, s.xata_id_column INTO place FROM {state} s
    WHERE s.table_name = $1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'xata_id_map has no table %', table_name;
  END IF;
  IF place.id_column IS NOT NULL AND place.xata_id_column IS NOT NULL
     AND to_regclass(place.target_table) IS NOT NULL THEN
    EXECUTE format('SELECT %I FROM %s WHERE %I = $1', place.xata_id_column,
                   to_regclass(place.target_table), place.id_column)
      INTO answer USING new_id;
  END IF;
  RETURN answer;
END $$;
COMMENT ON FUNCTION {schema}.xata_id(text, bigint) IS
  'The old Xata record id a new bigint id came from (NULL if none).';
""").format(schema=sql.Identifier(MAPPING_SCHEMA), literal=sql.Literal(MAPPING_SCHEMA),
            state=SYNC_STATE, comment=sql.Literal(NEW_ID_COMMENT))


def create_table_as_sql(plan: Plan, table: Table, rows: sql.Composable) -> list[sql.Composed]:
    """The target table made from `rows` (id, then every column in the plan's order, each
    of its type) in one bulk write, which is faster than CREATE TABLE then INSERT; then
    what CREATE TABLE AS cannot declare: NOT NULLs, defaults and the id's identity.
    Constraints come after the data (table_constraints_sql), as pg_restore does."""
    name = target_table(plan, table)
    ids = [] if table.kept else [sql.Identifier(ID)]
    columns = ids + [sql.Identifier(c.target) for c in table.written_by_load]
    attributes = [sql.SQL("ALTER COLUMN {} SET NOT NULL").format(i) for i in ids]
    for column in table.written_by_load:
        # A deferred link stays nullable until its values are written (link_constraints_sql).
        if column.not_null and not (column.link and column.link.deferred):
            attributes.append(sql.SQL("ALTER COLUMN {} SET NOT NULL").format(
                sql.Identifier(column.target)))
        if column.default is not None:
            # in parentheses: the plan's default is one expression (plan/sql_text.py)
            attributes.append(sql.SQL("ALTER COLUMN {} SET DEFAULT ({})").format(
                sql.Identifier(column.target), sql.SQL(column.default)))
        if column.identity:
            attributes.append(sql.SQL("ALTER COLUMN {} ADD GENERATED {} AS IDENTITY").format(
                sql.Identifier(column.target), sql.SQL(IDENTITY_KINDS[column.identity])))
    if not table.kept:
        attributes.append(sql.SQL("ALTER COLUMN {} ADD GENERATED BY DEFAULT AS IDENTITY").format(
            sql.Identifier(ID)))
    statements = [sql.SQL("CREATE TABLE {} ({}) AS {}").format(
        name, sql.SQL(", ").join(columns), rows)]
    if attributes:
        statements.append(sql.SQL("ALTER TABLE {} {}").format(
            name, sql.SQL(", ").join(attributes)))
    return statements


IDENTITY_KINDS = {"always": "ALWAYS", "by default": "BY DEFAULT"}


def table_constraints_sql(plan: Plan, table: Table) -> list[sql.Composed]:
    """Primary key on the new id (a kept table's own comes with its objects), UNIQUE
    constraints, and the FOREIGN KEYs of non-deferred links."""
    name = table.target
    statements = [] if table.kept else [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
            target_table(plan, table), sql.Identifier(derived_name(name, "", "pkey")),
            sql.Identifier(ID))]
    for column in table.columns:
        if column.unique:
            statements.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})").format(
                target_table(plan, table),
                sql.Identifier(derived_name(name, column.target, "key")),
                sql.Identifier(column.target)))
    for column in table.links:
        if column.is_array_link:  # PostgreSQL has no FOREIGN KEY on array elements
            statements.append(sql.SQL("CREATE INDEX {} ON {} USING gin ({})").format(
                sql.Identifier(derived_name(table.target, column.target, "idx")),
                target_table(plan, table), sql.Identifier(column.target)))
        elif not column.link.deferred:
            statements += link_constraints_sql(plan, table, column)
    return statements


def link_constraints_sql(plan: Plan, table: Table, column: Column) -> list[sql.Composed]:
    """FOREIGN KEY to the parent's id (or, for a link copied as it is, to the parent's
    column it names) and an index on the link column."""
    parent = plan.table(column.link.table)
    referenced = parent.column(column.link.column).target if column.link.column else ID
    statements = []
    if column.not_null and column.link.deferred:
        statements.append(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL").format(
            target_table(plan, table), sql.Identifier(column.target)))
    statements.append(sql.SQL(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {}"
        " ON UPDATE {}{}").format(
        target_table(plan, table), sql.Identifier(foreign_key_name(table, column)),
        sql.Identifier(column.target), target_table(plan, parent), sql.Identifier(referenced),
        sql.SQL(column.link.on_delete), sql.SQL(column.link.on_update),
        sql.SQL(DEFERRABLE_SQL[column.link.deferrable])))
    statements.append(sql.SQL("CREATE INDEX {} ON {} ({})").format(
        sql.Identifier(derived_name(table.target, column.target, "idx")),
        target_table(plan, table), sql.Identifier(column.target)))
    return statements


def position_identity_sql(plan: Plan, table: Table) -> list[sql.Composed]:
    """Move each identity (the new id's, or a kept table's own) past the highest value,
    so the application's next INSERT works."""
    columns = [ID] * (not table.kept) + [c.target for c in table.columns if c.identity]
    return [sql.SQL(
        "SELECT setval(pg_get_serial_sequence(format('%I.%I', {schema}, {name}), {column}),"
        " coalesce((SELECT max({c}) FROM {table}), 1),"
        " (SELECT max({c}) IS NOT NULL FROM {table}))").format(
        schema=sql.Literal(plan.target_schema), name=sql.Literal(table.target),
        column=sql.Literal(column), c=sql.Identifier(column),
        table=target_table(plan, table)) for column in columns]
