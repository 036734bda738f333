"""Read the source catalog and describe it as a Plan.

A table is migrated when it has a text record id: Xata's `xata_id`, or (for tables made
outside Xata, e.g. by Prisma) a single-column text primary key. Links come from FOREIGN
KEYs to that id column, and from `{"xata.link": "T"}` column comments where no FK exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg import sql

from xata_migration.plan import graph
from xata_migration.plan import catalog
from xata_migration.plan.definitions import array_length_check, columns_read
from xata_migration.plan.introspect_objects import describe_objects, unlisted_objects
from xata_migration.plan.model import Column, Link, Plan, PlanError, Table

XATA_ID = "xata_id"
# Xata's metadata columns and what they become by default (None: dropped).
METADATA_COLUMNS = {"xata_createdat": "created_at", "xata_updatedat": "updated_at",
                    "xata_version": None}
XATA_SCHEMAS = catalog.XATA_SCHEMAS
TEXT_TYPES = ("text", "character varying", "character")

_COLUMNS_SQL = """
SELECT c.relname, a.attname, a.attnotnull,
       format_type(a.atttypid, a.atttypmod) AS type_name,
       t.typtype, tn.nspname AS type_schema,
       format_type(t.typbasetype, t.typtypmod) AS base_type,
       pg_get_expr(d.adbin, d.adrelid) AS default_sql,
       col_description(a.attrelid, a.attnum) AS comment, a.attgenerated = 's' AS generated,
       uses.sequence_schema, uses.sequence, uses.sequence_owned, uses.calls_xata
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN LATERAL (
  SELECT max(sn.nspname) AS sequence_schema, max(sc.relname) AS sequence,
         bool_or(EXISTS (SELECT 1 FROM pg_depend own WHERE own.classid = 'pg_class'::regclass
                         AND own.objid = sc.oid AND own.refobjid = a.attrelid
                         AND own.refobjsubid = a.attnum AND own.deptype IN ('a', 'i')))
           AS sequence_owned,
         bool_or(pn.nspname IN ('xata', 'xata_private')) AS calls_xata
  FROM pg_depend dep
  LEFT JOIN pg_class sc ON dep.refclassid = 'pg_class'::regclass AND sc.oid = dep.refobjid
    AND sc.relkind = 'S'
  LEFT JOIN pg_namespace sn ON sn.oid = sc.relnamespace
  LEFT JOIN pg_proc p ON dep.refclassid = 'pg_proc'::regclass AND p.oid = dep.refobjid
  LEFT JOIN pg_namespace pn ON pn.oid = p.pronamespace
  WHERE dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid) uses ON true
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND (%(table)s::text IS NULL OR c.relname = %(table)s)
ORDER BY c.relname, a.attnum
"""

_PRIMARY_AND_UNIQUE_SQL = """
SELECT c.relname, a.attname, i.indisprimary
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
WHERE n.nspname = %(schema)s AND i.indisunique AND i.indnkeyatts = 1
  AND i.indexprs IS NULL AND i.indpred IS NULL
"""

_FOREIGN_KEYS_SQL = """
SELECT c.relname, a.attname, pc.relname AS parent, pa.attname AS parent_column,
       con.confdeltype, con.confupdtype
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class pc ON pc.oid = con.confrelid
JOIN pg_namespace pn ON pn.oid = pc.relnamespace
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[1]
WHERE con.contype = 'f' AND n.nspname = %(schema)s AND pn.nspname = %(schema)s
  AND array_length(con.conkey, 1) = 1
"""


@dataclass
class SourceColumn:
    name: str
    not_null: bool
    type_name: str
    target_type: str
    default: str | None
    comment: str | None
    generated: bool = False          # GENERATED ALWAYS AS (default) STORED
    sequence: str | None = None      # the source-schema sequence its default calls
    sequence_schema: str | None = None
    sequence_owned: bool = False     # the sequence belongs to the column (serial)
    calls_xata: bool = False         # its default calls Xata's functions (xid())


def _target_type(row: dict) -> str:
    # Xata's file domains (xata.xata_file, xata.xata_file_array) become their base, jsonb.
    if row["typtype"] == "d" and row["type_schema"] in XATA_SCHEMAS:
        return row["base_type"]
    return row["type_name"]


def _kept_default(col: SourceColumn) -> str | None:
    """The column's default on the target: none for a generated column or one that calls
    Xata's functions (its ids), which the target has not; a sequence's comes with it."""
    if col.generated or col.calls_xata:
        return None
    return col.default


def _comment_json(comment: str | None) -> dict:
    """Xata's column comments are JSON objects ({"xata.link": ...}); others are ignored."""
    try:
        parsed = json.loads(comment or "null")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _comment_note(comment: str | None) -> str:
    """What a CSV import recorded about a Xata `object` column (see csv_import)."""
    found = _comment_json(comment)
    if found.get("xata.type") == "object":
        return "Xata object column, kept as one jsonb value"
    if "xata.object" in found:
        return f"a field of the Xata object column {found['xata.object']!r}"
    return ""


def carried_comment(comment: str | None) -> str | None:
    """A comment of the user's, carried to the target; Xata's JSON comments ({"xata.link":
    ...}), which describe the branch to Xata, are not."""
    if any(key.startswith("xata.") for key in _comment_json(comment)):
        return None
    return comment


def _comment_link(comment: str | None) -> str | None:
    target = _comment_json(comment).get("xata.link")
    return target if isinstance(target, str) else None


def read_columns(conn: psycopg.Connection, schema: str,
                 table: str | None = None) -> dict[str, list[SourceColumn]]:
    """{table: its columns} of the schema, or of its one `table`."""
    columns: dict[str, list[SourceColumn]] = {}
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        for row in cur.execute(_COLUMNS_SQL, {"schema": schema, "table": table}):
            columns.setdefault(row["relname"], []).append(SourceColumn(
                name=row["attname"], not_null=row["attnotnull"], type_name=row["type_name"],
                target_type=_target_type(row), default=row["default_sql"],
                comment=row["comment"], generated=bool(row["generated"]),
                sequence=row["sequence"], sequence_schema=row["sequence_schema"],
                sequence_owned=bool(row["sequence_owned"]),
                calls_xata=bool(row["calls_xata"])))
    return columns


def check_source_matches_plan(conn: psycopg.Connection, plan: Plan, table: Table) -> None:
    """Stop before writing anything if the source table no longer is what the plan says."""
    found = {c.name: c for c in read_columns(conn, plan.source_schema, table.name).get(
        table.name, [])}
    conn.commit()
    again = "or write the plan again with `xata-migration plan`."
    if not found:
        raise PlanError(f"Source table {plan.source_schema}.{table.name} no longer exists. "
                        f"Remove it from the plan, {again}")
    planned = {c.name: c.source_type for c in table.columns}
    for name in [table.id_column, *table.dropped, *planned]:
        if name not in found:
            raise PlanError(f"Source table {table.name!r} has no column {name!r} any more. "
                            f"Remove it from the plan, {again}")
    for name, source_type in planned.items():
        if found[name].type_name != source_type:
            raise PlanError(
                f"Source column {table.name}.{name} is now of type {found[name].type_name}; "
                f"the plan was made when it was {source_type}. Update its `source_type` (and "
                f"`type`) in the plan, {again}")
    unknown = [name for name in found if name not in planned and name != table.id_column
               and name not in table.dropped]
    if unknown:
        raise PlanError(f"Source table {table.name!r} has column(s) {unknown} that the plan "
                        "does not list, so they would be lost. Add them to `columns` (or to "
                        f"`dropped` to leave them out on purpose), {again}")
    unlisted = unlisted_objects(conn, plan.source_schema, table)
    conn.commit()
    if unlisted:
        raise PlanError(f"Source table {table.name!r} has {', '.join(unlisted)}, which the plan "
                        "does not list, so they would be lost. Write the plan again with "
                        "`xata-migration plan` (or add them to the table's `objects`, with "
                        "`fate: drop` to leave them out on purpose).")


def read_catalog(conn: psycopg.Connection, schema: str):
    """(columns by table, unique columns by table, primary key by table, foreign keys)."""
    columns = read_columns(conn, schema)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        unique: dict[str, set[str]] = {}
        primary: dict[str, str] = {}
        for row in cur.execute(_PRIMARY_AND_UNIQUE_SQL, {"schema": schema}):
            unique.setdefault(row["relname"], set()).add(row["attname"])
            if row["indisprimary"]:
                primary[row["relname"]] = row["attname"]
        foreign_keys = cur.execute(_FOREIGN_KEYS_SQL, {"schema": schema}).fetchall()
    conn.commit()
    return columns, unique, primary, foreign_keys


def _record_id(table: str, columns: list[SourceColumn], primary: dict[str, str],
               referenced: set[tuple[str, str]], comment_targets: set[str]) -> str | None:
    """The column whose values new ids replace: the key the table's links use. `xata_id`
    when foreign keys or `xata.link` comments point at it, or when the table has no other
    single-column text primary key; else that primary key (an ORM's `id` beside Xata's
    `xata_id`, which the foreign keys reference)."""
    by_name = {c.name: c for c in columns}
    key = primary.get(table)
    has_xata_id = XATA_ID in by_name and by_name[XATA_ID].target_type in TEXT_TYPES
    key_is_text = key is not None and by_name[key].target_type.split("(")[0] in TEXT_TYPES
    if has_xata_id and ((table, XATA_ID) in referenced or table in comment_targets
                        or not key_is_text):
        return XATA_ID
    return key if key_is_text else None


def introspect(conn: psycopg.Connection, schema: str = "public") -> tuple[Plan, dict[str, str]]:
    """Describe the source as a Plan. Also returns {table: reason} for tables left out."""
    columns, unique, primary, foreign_keys = read_catalog(conn, schema)
    referenced = {(fk["parent"], fk["parent_column"]) for fk in foreign_keys}
    comment_targets = {_comment_link(c.comment) for cs in columns.values() for c in cs}
    skipped: dict[str, str] = {}
    id_columns: dict[str, str] = {}
    for table, table_columns in columns.items():
        id_column = _record_id(table, table_columns, primary, referenced, comment_targets)
        if id_column:
            id_columns[table] = id_column
        else:
            skipped[table] = ("no text record id: neither a text `xata_id` column nor a "
                              "single-column text primary key")
    if not id_columns:
        raise PlanError(f"Schema {schema!r} of the source has no Xata-shaped table (a table "
                        "with a text `xata_id` column, or a single-column text primary key). "
                        "Check XATA_SOURCE_URL names the right database, or pass --schema.")
    fk_links = {(fk["relname"], fk["attname"]): fk for fk in foreign_keys
                if fk["parent"] in id_columns and fk["parent_column"] == id_columns[fk["parent"]]}
    tables = [_table(name, columns[name], id_columns, unique.get(name, set()), fk_links)
              for name in sorted(id_columns)]
    _defer_cycles(tables)
    plan = Plan(tables=tables, source_schema=schema, target_schema="public")
    describe_objects(conn, plan, columns)
    plan.suggested_links = find_hidden_links(conn, plan)
    return plan, skipped


def _table(name, table_columns, id_columns, unique_columns, fk_links) -> Table:
    id_column = id_columns[name]
    kept, dropped, id_order = [], [], []
    for col in table_columns:
        if col.name == id_column:
            continue
        if id_column == XATA_ID and col.name in METADATA_COLUMNS:
            target = METADATA_COLUMNS[col.name]
            if target is None:
                dropped.append(col.name)
                continue
            kept.append(Column(name=col.name, target=target, type=col.target_type,
                               not_null=True, default="now()", source_type=col.type_name))
            if col.name == "xata_createdat":
                id_order.append(col.name)
            continue
        column = _column(name, col, id_columns, unique_columns, fk_links)
        if col.name == XATA_ID:  # beside an ORM key: kept, so old Xata ids still resolve
            column.not_null = False
            column.note = ("Xata's record id of each row, kept as it was; the application's "
                           "new rows leave it NULL")
        kept.append(column)
    return Table(name=name, id_column=id_column, columns=kept, id_order=id_order,
                 dropped=dropped)


def _column(table, col, id_columns, unique_columns, fk_links) -> Column:
    link = None
    fk = fk_links.get((table, col.name))
    if fk:
        link = Link(table=fk["parent"], on_delete=catalog.FK_ACTIONS[fk["confdeltype"]],
                    on_update=catalog.FK_ACTIONS[fk["confupdtype"]], declared_by="foreign_key")
    elif _comment_link(col.comment) in id_columns and col.target_type in TEXT_TYPES:
        link = Link(table=_comment_link(col.comment), declared_by="comment")
    return Column(name=col.name, type="bigint" if link else col.target_type,
                  not_null=col.not_null, unique=col.name in unique_columns,
                  default=None if link else _kept_default(col), link=link,
                  source_type=col.type_name, note=_comment_note(col.comment),
                  generated=col.default if col.generated and not link else None,
                  comment=carried_comment(col.comment))


SAMPLE_VALUES = 1000


def _candidate_columns(plan: Plan):
    """Plain text and text[] columns (not links, not Xata's metadata)."""
    for table in plan.tables:
        for column in table.value_columns:
            base = column.source_type.removesuffix("[]").split("(")[0]
            if base in TEXT_TYPES and column.name not in METADATA_COLUMNS:
                yield table, column


def find_hidden_links(conn: psycopg.Connection, plan: Plan) -> list[dict]:
    """Text columns whose values are ids of some table: links that nothing declares.

    Samples up to SAMPLE_VALUES distinct values of each column and looks each up in every
    table's id column (an index lookup each), so the cost does not grow with the tables.
    """
    suggestions = []
    for table, column in _candidate_columns(plan):
        value = sql.SQL("unnest({})" if column.source_type.endswith("[]") else "{}").format(
            sql.Identifier(column.name))
        lookups = [sql.SQL("count(*) FILTER (WHERE EXISTS (SELECT 1 FROM {} p WHERE p.{} = v))"
                           ).format(sql.Identifier(plan.source_schema, parent.name),
                                    sql.Identifier(parent.id_column))
                   for parent in plan.tables]
        counts = conn.execute(sql.SQL(
            "SELECT count(*), {} FROM (SELECT DISTINCT v FROM (SELECT {} AS v FROM {} LIMIT {})"
            " s WHERE v IS NOT NULL LIMIT {}) sample").format(
            sql.SQL(", ").join(lookups), value,
            sql.Identifier(plan.source_schema, table.name), sql.Literal(SAMPLE_VALUES * 100),
            sql.Literal(SAMPLE_VALUES))
        ).fetchone()
        sampled, matches = counts[0], counts[1:]
        best = max(range(len(matches)), key=lambda i: matches[i])
        if matches[best]:
            suggestions.append({"table": table.name, "column": column.name,
                                "links_to": plan.tables[best].name,
                                "matched": matches[best], "sampled": sampled})
    conn.commit()
    return suggestions


def vector_dimensions(conn: psycopg.Connection, schema: str,
                      columns: dict[str, list[SourceColumn]]) -> dict[tuple[str, str], int]:
    """{(table, column): n} for real[] columns that Xata marks as vectors: the comment
    {"xata.search.dimension": n}, or a CHECK (array_length(c, 1) = n)."""
    found = {}
    for table, table_columns in columns.items():
        for column in table_columns:
            dimension = _comment_json(column.comment).get("xata.search.dimension")
            if column.type_name == "real[]" and isinstance(dimension, int):
                found[(table, column.name)] = dimension
    for table, table_columns in columns.items():
        kinds = {c.name: c.type_name for c in table_columns}
        for item in catalog.table_objects(conn, schema, table):
            length = item.kind == "check" and array_length_check(item.definition, item.name)
            if length and kinds.get(length[0]) == "real[]":
                found.setdefault((table, length[0]), length[1])
    conn.commit()
    return found


def use_pgvector(conn: psycopg.Connection, plan: Plan) -> list[str]:
    """Store every Xata vector column as pgvector's vector(n); returns their names."""
    dimensions = vector_dimensions(conn, plan.source_schema,
                                   read_columns(conn, plan.source_schema))
    changed = []
    for table in plan.tables:
        for column in table.value_columns:
            if (table.name, column.name) in dimensions:
                column.type = f"vector({dimensions[(table.name, column.name)]})"
                changed.append(f"{table.name}.{column.name}")
                _drop_length_checks(table, column)
    return changed


def _drop_length_checks(table: Table, column: Column) -> None:
    """A CHECK over the vector column alone (Xata's ARRAY_LENGTH(c, 1) = n) does not apply
    to a pgvector value, whose type holds its length."""
    for item in table.objects:
        if item.kind == "check" and item.fate == "carry" and columns_read(
                item.definition, item.kind, item.name) == {column.target}:
            item.fate = "drop"
            item.reason = f"{column.type} holds the length of {column.target!r}"


def _defer_cycles(tables: list[Table]) -> None:
    links = [(t.name, c.name, c.link.table, not c.not_null) for t in tables for c in t.links
             if not c.is_array_link]
    for table_name, column_name in graph.links_to_defer(links):
        table = next(t for t in tables if t.name == table_name)
        table.column(column_name).link.deferred = True
