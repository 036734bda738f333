"""What surrounds each planned table's rows in the source, for the plan: its constraints
and indexes, the sequences its defaults call, its generated columns, comments, and the
user types and extensions its columns use. Each is rewritten for the key change
(definitions.py) and gets its fate: `carry`, or `review` with the reason, or `drop`
where the tool makes an equal object itself.

Xata's own objects are not listed: the `_pgroll_*` unique index and the length CHECK on
`xata_id`, its schemas' types and functions (the plan maps those already).
"""

from __future__ import annotations

import psycopg

from xata_migration.plan import catalog
from xata_migration.plan.definitions import (ColumnRole, function_names, policy_roles,
                                             rewrite_definition, rewrite_expression)
from xata_migration.plan.model import Plan, Table
from xata_migration.plan.names import derived_name
from xata_migration.plan.objects import SchemaObject

XATA_ID = "xata_id"


def describe_objects(conn: psycopg.Connection, plan: Plan, columns: dict) -> None:
    """Fill in each table's objects, sequences, comment and generated expressions, and the
    plan's types and extensions. `columns`: {table: [SourceColumn]} (introspect)."""
    schema = plan.source_schema
    for table in plan.tables:
        roles = column_roles(table)
        table.comment = catalog.table_comment(conn, schema, table.name)
        table.row_security = catalog.row_security(conn, schema, table.name)
        table.sequences = _sequences(conn, schema, table, columns[table.name])
        table.objects = [_table_object(found, table, roles)
                         for found in catalog.table_objects(conn, schema, table.name)
                         if not _mapped_already(found, table)]
        for column in table.generated_columns:
            rewritten = rewrite_expression(column.generated, roles)
            column.generated, column.review = rewritten.text, rewritten.review
    used = catalog.types_used(conn, schema, [t.name for t in plan.tables])
    plan.types = [_type_object(t, schema) for t in used.types]
    plan.extensions = used.extensions
    plan.functions = [_function_object(name, definition, plan)
                      for name, definition in catalog.functions(conn, schema).items()]
    conn.commit()


def _function_object(name: str, definition: str, plan: Plan) -> SchemaObject:
    """A function, carried as it is: its body is not rewritten, so one whose body names a
    record id that becomes a bigint id (as a word, not in a string) is `review`."""
    item = SchemaObject("function", name, definition)
    record_ids = sorted({t.id_column for t in plan.tables if not t.kept})
    named = [column for column in record_ids if function_names(definition, name, column)]
    if named:
        item.fate, item.reason = "review", (
            f"its body names {', '.join(named)}, a record id that becomes a bigint id: check "
            "it works with the new ids, then set `fate: carry`")
    return item


def unlisted_objects(conn: psycopg.Connection, schema: str, table: Table) -> list[str]:
    """Constraints and indexes of the source table that its plan does not list (made
    since the plan was written): "kind name" each."""
    listed = {o.name for o in table.objects}
    return [f"{found.kind} {found.name}" for found in catalog.table_objects(
        conn, schema, table.name) if found.name not in listed
        and not _mapped_already(found, table)]


def column_roles(table: Table) -> dict[str, ColumnRole]:
    """{source column: what it becomes}, for rewriting the table's definitions."""
    roles = {table.id_column: ColumnRole("id", "id")} if table.id_column else {}
    for column in table.columns:
        roles[column.name] = ColumnRole(column.target, "link" if column.rewritten else "value")
    for name in table.dropped:
        roles[name] = ColumnRole(name, "dropped")
    return roles


def _mapped_already(found: catalog.CatalogObject, table: Table) -> bool:
    """Objects the plan already carries another way, or Xata's own: the record id's
    uniqueness (the new primary key) and its length CHECK; links' foreign keys; a unique
    column's constraint (`unique: true`)."""
    if found.columns == [table.id_column]:
        if found.kind in ("primary_key", "unique", "index") and found.plain:
            return True
        if found.kind == "check" and table.id_column == XATA_ID:
            return True
    if found.kind == "trigger" and found.function_schema in catalog.XATA_SCHEMAS:
        return True  # Xata's metadata trigger
    if found.kind == "foreign_key" and len(found.columns) == 1:
        column = next((c for c in table.links if c.name == found.columns[0]), None)
        if column is not None:
            return True
    if found.kind in ("unique", "index") and found.plain and len(found.columns) == 1:
        column = next((c for c in table.columns if c.name == found.columns[0]), None)
        if column is not None and column.unique and (found.kind == "unique" or found.unique):
            return True
    return False


def _table_object(found: catalog.CatalogObject, table: Table, roles) -> SchemaObject:
    rewritten = rewrite_definition(found.definition, found.kind, found.name, table.target,
                                   roles)
    item = SchemaObject(found.kind, found.name, rewritten.text,
                        disabled=found.kind == "trigger" and found.enabled == "D")
    if found.kind == "trigger" and found.enabled in ("R", "A"):
        item.fate, item.reason = "review", (
            "a trigger enabled for replication (ENABLE REPLICA or ALWAYS TRIGGER), which this "
            "tool does not set: set `fate: drop` and make it on the target yourself")
    elif found.kind == "primary_key" and not table.kept:
        item.fate, item.reason = "review", (
            f"a primary key on {found.columns}, while the table's primary key becomes its new "
            "`id`: make it a UNIQUE constraint (edit the definition), or drop it")
    elif rewritten.review:
        item.fate, item.reason = "review", rewritten.review
    elif found.kind == "index" and found.plain and len(found.columns) == 1 and any(
            c.name == found.columns[0] for c in table.links) and not found.unique:
        link = next(c for c in table.links if c.name == found.columns[0])
        item.fate = "drop"
        item.reason = ("the same index as the one the tool makes on every link: "
                       f"{derived_name(table.target, link.target, 'idx')}")
    return item


def _sequences(conn, schema: str, table: Table, source_columns) -> list[SchemaObject]:
    found: dict[str, SchemaObject] = {}
    planned = {c.name: c for c in table.columns}
    for col in source_columns:
        column = planned.get(col.name)
        if column is None or not col.sequence or column.default is None:
            continue
        if col.sequence in found:
            continue
        if col.sequence_schema != schema:
            found[col.sequence] = SchemaObject(
                "sequence", col.sequence, fate="review",
                reason=f"the default of {col.name!r} calls a sequence of schema "
                       f"{col.sequence_schema!r}, which the plan does not migrate")
            continue
        found[col.sequence] = SchemaObject(
            "sequence", col.sequence, catalog.sequence_definition(conn, schema, col.sequence),
            owned_by=column.target if col.sequence_owned else "")
    return list(found.values())


def _type_object(user_type: catalog.UserType, schema: str) -> SchemaObject:
    item = SchemaObject(user_type.kind, user_type.name, user_type.definition)
    if user_type.schema != schema:
        item.fate, item.reason = "review", (
            f"a type of schema {user_type.schema!r}, which the plan does not migrate: create "
            "it on the target yourself and set `fate: drop`")
    elif not user_type.definition:
        item.fate, item.reason = "review", (
            f"a {user_type.kind} type, which this tool cannot create: create it on the target "
            "yourself and set `fate: drop`")
    return item


def review_policies_without_roles(target: psycopg.Connection, plan: Plan) -> None:
    """Set `review` on every carried policy that names a role the target does not have
    (roles belong to the server: the target's may differ from the source's)."""
    for table in plan.tables:
        for item in table.objects:
            if item.kind != "policy" or not item.carried:
                continue
            absent = [r for r in policy_roles(item.definition, item.name)
                      if target.execute("SELECT to_regrole(quote_ident(%s)) IS NULL",
                                        (r,)).fetchone()[0]]
            if absent:
                item.fate, item.reason = "review", (
                    f"it names role(s) {absent}, which the target does not have: create them "
                    "there (or edit the policy's roles) and set `fate: carry`, or set "
                    "`fate: drop`")
    target.commit()
