"""SQL for the target's tables, mapping tables and constraints.

Every name goes through psycopg.sql.Identifier; every derived name (constraint, index)
through names.derived_name, so it stays valid and distinct after the 63-byte limit.
Column types and defaults are SQL text from the plan (validated there).
"""

from __future__ import annotations

from psycopg import sql

from xata_migration.plan.model import MAPPING_SCHEMA, Column, Plan, Table
from xata_migration.plan.names import derived_name

ID = "id"


def target_table(plan: Plan, table: Table) -> sql.Identifier:
    return sql.Identifier(plan.target_schema, table.target)


def mapping_table(table_name: str) -> sql.Identifier:
    return sql.Identifier(MAPPING_SCHEMA, table_name)


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


BOOKKEEPING_SCHEMA = "xata_migration_checks"
FINDINGS = sql.Identifier(BOOKKEEPING_SCHEMA, "findings")
DELETED_IN_SOURCE = sql.Identifier(BOOKKEEPING_SCHEMA, "deleted_in_source")
SYNC_STATE = sql.Identifier(BOOKKEEPING_SCHEMA, "sync_state")


def create_bookkeeping_sql() -> sql.Composed:
    """The tool's own tables in the target:
      findings           what failed checks found (verify/findings.py)
      deleted_in_source  per table, the mapped old ids the source no longer had at the
                         last load: the checks' fingerprints leave those target rows out
      sync_state         per table, the last load's watermark and the time of the source
                         snapshot it read (load/sync.py)"""
    return sql.SQL(
        "CREATE SCHEMA IF NOT EXISTS {schema};"
        " CREATE TABLE IF NOT EXISTS {findings} (scope text NOT NULL,"
        " check_name text NOT NULL, xata_id text, new_id bigint, column_name text,"
        " source_value text, target_value text, problem text NOT NULL,"
        " found_at timestamptz NOT NULL DEFAULT now());"
        " CREATE INDEX IF NOT EXISTS findings_scope_check ON {findings} (scope, check_name);"
        " CREATE TABLE IF NOT EXISTS {deleted} (table_name text NOT NULL,"
        ' xata_id text COLLATE "C" NOT NULL, PRIMARY KEY (table_name, xata_id));'
        " CREATE TABLE IF NOT EXISTS {state} (table_name text PRIMARY KEY,"
        " plan_signature text NOT NULL, watermark timestamptz,"
        " verified boolean NOT NULL DEFAULT false, source_as_of timestamptz)").format(
        schema=sql.Identifier(BOOKKEEPING_SCHEMA), findings=FINDINGS,
        deleted=DELETED_IN_SOURCE, state=SYNC_STATE)


def create_bookkeeping(target) -> None:
    """The tool's own tables, and what earlier versions' tables lack (ALTER TABLE only
    when needed: it would wait for every load in progress)."""
    target.execute(create_bookkeeping_sql())
    if not target.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attname = 'source_as_of' AND NOT attisdropped)",
            (SYNC_STATE.as_string(target),)).fetchone()[0]:
        target.execute(sql.SQL("ALTER TABLE {} ADD COLUMN source_as_of timestamptz").format(
            SYNC_STATE))


LOOKUP_FUNCTIONS_SQL = sql.SQL("""
CREATE OR REPLACE FUNCTION {schema}.new_id(table_name text, xata_id text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE found bigint;
BEGIN
  IF to_regclass(format('%I.%I', {literal}, table_name)) IS NULL THEN
    RAISE EXCEPTION 'xata_id_map has no table %', table_name;
  END IF;
  EXECUTE format('SELECT new_id FROM %I.%I WHERE xata_id = $1', {literal}, table_name)
    INTO found USING xata_id;
  RETURN found;
END $$;
COMMENT ON FUNCTION {schema}.new_id(text, text) IS
  'The new bigint id an old Xata record id became (NULL if it was never migrated).';
CREATE OR REPLACE FUNCTION {schema}.xata_id(table_name text, new_id bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE found text;
BEGIN
  IF to_regclass(format('%I.%I', {literal}, table_name)) IS NULL THEN
    RAISE EXCEPTION 'xata_id_map has no table %', table_name;
  END IF;
  EXECUTE format('SELECT xata_id FROM %I.%I WHERE new_id = $1', {literal}, table_name)
    INTO found USING new_id;
  RETURN found;
END $$;
COMMENT ON FUNCTION {schema}.xata_id(text, bigint) IS
  'The old Xata record id a new bigint id came from (NULL if none).';
""").format(schema=sql.Identifier(MAPPING_SCHEMA), literal=sql.Literal(MAPPING_SCHEMA))


def create_table_as_sql(plan: Plan, table: Table, rows: sql.Composable) -> list[sql.Composed]:
    """The target table made from `rows` (id, then every column in the plan's order, each
    of its type) in one bulk write, which is faster than CREATE TABLE then INSERT; then
    what CREATE TABLE AS cannot declare: NOT NULLs, defaults and the id's identity.
    Constraints come after the data (table_constraints_sql), as pg_restore does."""
    name = target_table(plan, table)
    columns = [sql.Identifier(ID)] + [sql.Identifier(c.target) for c in table.columns]
    attributes = [sql.SQL("ALTER COLUMN {} SET NOT NULL").format(sql.Identifier(ID))]
    for column in table.columns:
        # A deferred link stays nullable until its values are written (link_constraints_sql).
        if column.not_null and not (column.link and column.link.deferred):
            attributes.append(sql.SQL("ALTER COLUMN {} SET NOT NULL").format(
                sql.Identifier(column.target)))
        if column.default is not None:
            attributes.append(sql.SQL("ALTER COLUMN {} SET DEFAULT ").format(
                sql.Identifier(column.target)) + sql.SQL(column.default))
    return [sql.SQL("CREATE TABLE {} ({}) AS {}").format(name, sql.SQL(", ").join(columns), rows),
            sql.SQL("ALTER TABLE {} {}").format(name, sql.SQL(", ").join(attributes)),
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} ADD GENERATED BY DEFAULT AS IDENTITY").format(
                name, sql.Identifier(ID))]


def table_constraints_sql(plan: Plan, table: Table) -> list[sql.Composed]:
    """Primary key, UNIQUE constraints, and the FOREIGN KEYs of non-deferred links."""
    name = table.target
    statements = [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
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
    """FOREIGN KEY to the parent's id and an index on the link column."""
    parent = plan.table(column.link.table)
    statements = []
    if column.not_null and column.link.deferred:
        statements.append(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL").format(
            target_table(plan, table), sql.Identifier(column.target)))
    statements.append(sql.SQL(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {}"
    ).format(target_table(plan, table),
             sql.Identifier(foreign_key_name(table, column)),
             sql.Identifier(column.target), target_table(plan, parent), sql.Identifier(ID),
             sql.SQL(column.link.on_delete)))
    statements.append(sql.SQL("CREATE INDEX {} ON {} ({})").format(
        sql.Identifier(derived_name(table.target, column.target, "idx")),
        target_table(plan, table), sql.Identifier(column.target)))
    return statements


def foreign_key_name(table: Table, column: Column) -> str:
    return derived_name(table.target, column.target, "fkey")


def position_identity_sql(plan: Plan, table: Table) -> sql.Composed:
    """Move the identity past the highest id, so the application's next INSERT works."""
    return sql.SQL(
        "SELECT setval(pg_get_serial_sequence(format('%I.%I', {schema}, {name}), 'id'),"
        " coalesce((SELECT max(id) FROM {table}), 1),"
        " (SELECT max(id) IS NOT NULL FROM {table}))").format(
        schema=sql.Literal(plan.target_schema), name=sql.Literal(table.target),
        table=target_table(plan, table))
