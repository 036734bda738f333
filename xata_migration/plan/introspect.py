"""Read the source catalog and describe it as a Plan.

Every table is migrated. Only Xata's ids change: a table's record id is the key its
links use (`xata_id` when foreign keys or `xata.link` comments point at it, else its own
single-column primary key), and it is remapped to new bigint ids when its values are
Xata's (`xata_id`, a default that calls Xata's xid(), or values shaped `rec_...`). Any
other key (integers, uuids, natural keys, a join table's pair) is kept as it is. Links
come from FOREIGN KEYs and from `{"xata.link": "T"}` column comments: to a remapped
record id they are rewritten, to any other column copied as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

import json
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from xata_migration.plan import graph
from xata_migration.plan import catalog
from xata_migration.plan.definitions import array_length_check, columns_read
from xata_migration.plan.introspect_objects import describe_objects, unlisted_objects
from xata_migration.plan.views import describe_views
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
       a.attidentity,
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

_KEYS_SQL = """
SELECT c.relname, i.indisprimary,
       ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, n)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.num ORDER BY k.n)
         AS columns,
       NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) k(num) JOIN pg_attribute a
                   ON a.attrelid = c.oid AND a.attnum = k.num WHERE NOT a.attnotnull)
         AS not_null
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE n.nspname = %(schema)s AND i.indisunique AND i.indexprs IS NULL
  AND i.indpred IS NULL AND i.indnkeyatts = i.indnatts
ORDER BY c.relname, NOT i.indisprimary, ic.relname
"""

_FOREIGN_KEYS_SQL = """
SELECT c.relname, a.attname, pc.relname AS parent, pa.attname AS parent_column,
       con.confdeltype, con.confupdtype, con.condeferrable, con.condeferred
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class pc ON pc.oid = con.confrelid
JOIN pg_namespace pn ON pn.oid = pc.relnamespace
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[1]
WHERE con.contype = 'f' AND n.nspname = %(schema)s AND pn.nspname = %(schema)s
  AND array_length(con.conkey, 1) = 1 AND con.convalidated
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
    identity: str = ""               # GENERATED "always" | "by default" AS IDENTITY


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
                calls_xata=bool(row["calls_xata"]),
                identity={"a": "always", "d": "by default"}.get(row["attidentity"], "")))
    return columns


def read_table_names(conn: psycopg.Connection, schema: str) -> list[str]:
    """The schema's tables, as introspection sees them (partitions are their parent's)."""
    return [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
        (schema,))]


# What check_source_matches_plan reads of a whole schema, by database, snapshot and
# schema: every table of a run is checked against the catalog its snapshot shows, read
# once by each process that runs its steps.
_CATALOG_OF_SNAPSHOT: dict[tuple, tuple[dict, list[str]]] = {}
_SNAPSHOTS_KEPT = 4
_catalog_lock = threading.Lock()


def _source_catalog(conn: psycopg.Connection, schema: str, table: str,
                    snapshot: Hashable | None) -> tuple[dict, list[str]]:
    """({table: columns}, the schema's table names): in a `snapshot`, of every table,
    read once per snapshot; without, of `table` alone."""
    key = (conn.info.host, conn.info.port, conn.info.dbname, snapshot, schema)
    with _catalog_lock:
        if snapshot is not None and key in _CATALOG_OF_SNAPSHOT:
            return _CATALOG_OF_SNAPSHOT[key]
    found = (read_columns(conn, schema, None if snapshot is not None else table),
             read_table_names(conn, schema))
    if snapshot is not None:
        with _catalog_lock:
            _CATALOG_OF_SNAPSHOT[key] = found
            for old in list(_CATALOG_OF_SNAPSHOT)[:-_SNAPSHOTS_KEPT]:
                del _CATALOG_OF_SNAPSHOT[old]
    return found


def check_source_matches_plan(conn: psycopg.Connection, plan: Plan, table: Table,
                              snapshot: Hashable | None = None) -> None:
    """Stop before writing anything if the source table no longer is what the plan says.
    `snapshot`: the one `conn` reads in, if any (a snapshot's catalog is read once)."""
    try:
        _check_source_matches_plan(conn, plan, table, snapshot)
    finally:
        conn.commit()


def _check_source_matches_plan(conn: psycopg.Connection, plan: Plan, table: Table,
                               snapshot: Hashable | None) -> None:
    columns, table_names = _source_catalog(conn, plan.source_schema, table.name, snapshot)
    found = {c.name: c for c in columns.get(table.name, [])}
    again = "or write the plan again with `xata-migration plan`."
    if not found:
        raise PlanError(f"Source table {plan.source_schema}.{table.name} no longer exists. "
                        f"Remove it from the plan, {again}")
    planned = {c.name: c.source_type for c in table.columns}
    for name in [*filter(None, [table.id_column]), *table.dropped, *planned]:
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
    unplanned = sorted(set(table_names)
                       - {t.name for t in plan.tables} - set(plan.skipped_tables))
    if unplanned:
        raise PlanError(f"Source schema {plan.source_schema!r} has table(s) {unplanned} that "
                        "the plan neither migrates nor skips, so they would be lost. Write "
                        "the plan again with `xata-migration plan`, or list them under "
                        "`skipped_tables` with the reason.")
    unlisted = unlisted_objects(conn, plan.source_schema, table)
    if unlisted:
        raise PlanError(f"Source table {table.name!r} has {', '.join(unlisted)}, which the plan "
                        "does not list, so they would be lost. Write the plan again with "
                        "`xata-migration plan` (or add them to the table's `objects`, with "
                        "`fate: drop` to leave them out on purpose).")


@dataclass
class Keys:
    """A table's keys: its primary key's columns, and its unique keys over NOT NULL
    columns (primary first)."""
    primary: list[str]
    unique: list[list[str]]
    unique_columns: set[str] = field(default_factory=set)  # single-column unique, any NULLs


def read_catalog(conn: psycopg.Connection, schema: str):
    """(columns by table, keys by table, foreign keys)."""
    columns = read_columns(conn, schema)
    keys: dict[str, Keys] = {name: Keys([], []) for name in columns}
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        for row in cur.execute(_KEYS_SQL, {"schema": schema}):
            found = keys.setdefault(row["relname"], Keys([], []))
            if row["indisprimary"]:
                found.primary = list(row["columns"])
            if row["not_null"]:
                found.unique.append(list(row["columns"]))
            if len(row["columns"]) == 1 and (found.primary != list(row["columns"])):
                found.unique_columns.add(row["columns"][0])
        foreign_keys = cur.execute(_FOREIGN_KEYS_SQL, {"schema": schema}).fetchall()
    conn.commit()
    return columns, keys, foreign_keys


def _is_text(column: SourceColumn) -> bool:
    return column.target_type.split("(")[0] in TEXT_TYPES


def _record_id(table: str, columns: list[SourceColumn], keys: Keys,
               referenced: set[tuple[str, str]], comment_targets: set[str]) -> str | None:
    """The key the table's links use: `xata_id` when foreign keys or `xata.link` comments
    point at it, or when the table has no single-column primary key; else that key (an
    ORM's `id` beside Xata's `xata_id`, which the foreign keys reference); else None."""
    by_name = {c.name: c for c in columns}
    key = keys.primary[0] if len(keys.primary) == 1 else None
    has_xata_id = XATA_ID in by_name and _is_text(by_name[XATA_ID])
    if has_xata_id and ((table, XATA_ID) in referenced or table in comment_targets
                        or key is None):
        return XATA_ID
    return key


# Xata's record ids: "rec_" and 20 characters of an xid.
XATA_ID_PATTERN = "^rec_[0-9a-z]{20}$"


def _xata_shaped(conn, schema: str, table: str, column: str) -> bool:
    """Whether the column's values (a sample) all have the shape of Xata's record ids."""
    sampled, shaped = conn.execute(sql.SQL(
        "SELECT count(*), count(*) FILTER (WHERE v ~ {}) FROM (SELECT {}::text AS v FROM {}"
        " WHERE {} IS NOT NULL LIMIT {}) s").format(
        sql.Literal(XATA_ID_PATTERN), sql.Identifier(column), sql.Identifier(schema, table),
        sql.Identifier(column), sql.Literal(SAMPLE_VALUES))).fetchone()
    conn.commit()
    return sampled > 0 and shaped == sampled


def _ids_choice(conn, schema: str, table: str, columns: list[SourceColumn],
                record_id: str | None) -> tuple[str, str]:
    """("remap" | "keep", the reason) for the table's ids."""
    if record_id == XATA_ID:
        return "remap", "Xata's record id `xata_id`"
    if record_id is None:
        return "keep", "no single-column primary key (e.g. a join table): rows copied as they are"
    column = next(c for c in columns if c.name == record_id)
    if not _is_text(column):
        return "keep", f"its key {record_id!r} is {column.type_name}, not one of Xata's ids"
    if column.calls_xata:
        return "remap", f"the default of its key {record_id!r} calls Xata's xid()"
    if _xata_shaped(conn, schema, table, record_id):
        return "remap", f"the values of its key {record_id!r} have the shape of Xata's ids"
    return "keep", (f"its key {record_id!r} holds values that are not Xata's ids (a natural "
                    "key, a uuid, an ORM's own id)")


def _kept_key(keys: Keys, rewritten: set[str]) -> list[str]:
    """The columns that tell a kept table's rows apart across runs: its primary key, else
    a unique key over NOT NULL columns; none if it includes a rewritten link (its values
    change)."""
    key = keys.primary or next(iter(keys.unique), [])
    return [] if set(key) & rewritten else key


def introspect(conn: psycopg.Connection, schema: str = "public") -> tuple[Plan, dict[str, str]]:
    """Describe the source as a Plan. Also returns {table: reason} for tables left out."""
    columns, keys, foreign_keys = read_catalog(conn, schema)
    if not columns:
        raise PlanError(f"Schema {schema!r} of the source has no table. Check "
                        "XATA_SOURCE_URL names the right database, or pass --schema.")
    referenced = {(fk["parent"], fk["parent_column"]) for fk in foreign_keys}
    comment_targets = {_comment_link(c.comment) for cs in columns.values() for c in cs}
    id_columns: dict[str, str] = {}   # remapped tables' record ids
    reasons: dict[str, tuple[str, str]] = {}
    for table, table_columns in columns.items():
        record_id = _record_id(table, table_columns, keys[table], referenced,
                               comment_targets)
        reasons[table] = _ids_choice(conn, schema, table, table_columns, record_id)
        if reasons[table][0] == "remap":
            id_columns[table] = record_id
    fk_links = {(fk["relname"], fk["attname"]): fk for fk in foreign_keys}
    tables = [_table(name, columns[name], id_columns, keys[name], fk_links, reasons[name])
              for name in sorted(columns)]
    _defer_cycles(tables)
    plan = Plan(tables=tables, source_schema=schema, target_schema="public")
    describe_objects(conn, plan, columns)
    describe_views(conn, plan)
    plan.suggested_links = find_hidden_links(conn, plan)
    return plan, dict(plan.skipped_tables)


def _table(name, table_columns, id_columns, keys: Keys, fk_links, reason) -> Table:
    id_column = id_columns.get(name, "")
    # single-column unique keys the tool declares itself (`unique: true`); a kept table's
    # primary key is carried as the object it is
    unique_columns = keys.unique_columns | (set(keys.primary) if len(keys.primary) == 1
                                            and id_column else set())
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
        if col.name == XATA_ID:  # beside another key: kept, so old Xata ids still resolve
            column.not_null = False
            column.note = ("Xata's record id of each row, kept as it was (lookup finds the "
                           "row by it); the application's new rows leave it NULL")
        kept.append(column)
    rewritten = {c.name for c in kept if c.rewritten}
    ids, ids_reason = reason
    return Table(name=name, id_column=id_column, columns=kept, id_order=id_order,
                 dropped=dropped, ids=ids, ids_reason=ids_reason,
                 key=[] if id_column else _kept_key(keys, rewritten))


def _column(table, col, id_columns, unique_columns, fk_links) -> Column:
    link = None
    fk = fk_links.get((table, col.name))
    if fk:
        rewritten = id_columns.get(fk["parent"]) == fk["parent_column"]
        link = Link(table=fk["parent"], on_delete=catalog.FK_ACTIONS[fk["confdeltype"]],
                    on_update=catalog.FK_ACTIONS[fk["confupdtype"]], declared_by="foreign_key",
                    column="" if rewritten else fk["parent_column"],
                    deferrable=(("deferred" if fk["condeferred"] else "immediate")
                                if fk["condeferrable"] else ""))
    elif _comment_link(col.comment) in id_columns and col.target_type in TEXT_TYPES:
        link = Link(table=_comment_link(col.comment), declared_by="comment")
    rewritten_link = link is not None and not link.column
    return Column(name=col.name, type="bigint" if rewritten_link else col.target_type,
                  not_null=col.not_null, unique=col.name in unique_columns,
                  default=None if rewritten_link else _kept_default(col), link=link,
                  source_type=col.type_name, note=_comment_note(col.comment),
                  generated=col.default if col.generated and not rewritten_link else None,
                  identity="" if rewritten_link else col.identity,
                  comment=carried_comment(col.comment))


SAMPLE_VALUES = 1000


def _candidate_columns(plan: Plan):
    """Plain text and text[] columns (not links, not Xata's metadata)."""
    for table in plan.tables:
        for column in table.value_columns:
            base = column.source_type.removesuffix("[]").split("(")[0]
            if base in TEXT_TYPES and column.name not in METADATA_COLUMNS and not column.link:
                yield table, column


def find_hidden_links(conn: psycopg.Connection, plan: Plan) -> list[dict]:
    """Text columns whose values are ids of some table: links that nothing declares.

    Samples up to SAMPLE_VALUES distinct values of each column and looks each up in every
    table's id column (an index lookup each), so the cost does not grow with the tables.
    """
    suggestions = []
    parents = [t for t in plan.tables if not t.kept]
    if not parents:
        return suggestions
    for table, column in _candidate_columns(plan):
        value = sql.SQL("unnest({})" if column.source_type.endswith("[]") else "{}").format(
            sql.Identifier(column.name))
        lookups = [sql.SQL("count(*) FILTER (WHERE EXISTS (SELECT 1 FROM {} p WHERE p.{} = v))"
                           ).format(sql.Identifier(plan.source_schema, parent.name),
                                    sql.Identifier(parent.id_column))
                   for parent in parents]
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
                                "links_to": parents[best].name,
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
    links = [(t.name, c.name, c.link.table, not c.not_null) for t in tables if not t.kept
             for c in t.rewritten_links if not c.is_array_link]
    for table_name, column_name in graph.links_to_defer(links):
        table = next(t for t in tables if t.name == table_name)
        table.column(column_name).link.deferred = True
