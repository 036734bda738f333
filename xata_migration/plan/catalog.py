"""The objects around a table, read from a server's catalog: its constraints and
indexes (by the server's own pg_get_*def), the user types its columns use, its
sequences, its comment. The same reading serves both sides: introspection reads the
source to write the plan, and `schema_intact` reads the target to compare with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

XATA_SCHEMAS = ("xata", "xata_private")
# pg_constraint's letters for a foreign key's ON DELETE / ON UPDATE actions
FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
              "d": "SET DEFAULT"}
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")

_CONSTRAINTS_SQL = """
SELECT con.conname AS name, con.contype, pg_get_constraintdef(con.oid) AS definition,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) k
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k) AS columns,
       con.confupdtype, con.confdeltype
FROM pg_constraint con
WHERE con.conrelid = to_regclass(%(table)s) AND con.contype IN ('p', 'c', 'u', 'x', 'f')
ORDER BY con.conname
"""

_INDEXES_SQL = """
SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition, i.indisunique,
       (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) AS special, am.amname,
       ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) k
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k) AS columns,
       i.indnatts AS width
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = to_regclass(%(table)s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY ic.relname
"""

_TRIGGERS_SQL = """
SELECT g.tgname AS name, pg_get_triggerdef(g.oid) AS definition, g.tgenabled,
       pn.nspname AS function_schema
FROM pg_trigger g
JOIN pg_proc p ON p.oid = g.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE g.tgrelid = to_regclass(%(table)s) AND NOT g.tgisinternal
ORDER BY g.tgname
"""

_POLICIES_SQL = """
SELECT p.polname AS name, p.polpermissive, p.polcmd,
       ARRAY(SELECT CASE WHEN r = 0 THEN NULL ELSE r::regrole::text END
             FROM unnest(p.polroles) r) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS qual,
       pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
FROM pg_policy p WHERE p.polrelid = to_regclass(%(table)s) ORDER BY p.polname
"""

# pg_policy.polcmd -> the command a policy is FOR
POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}

_COMMENT_SQL = "SELECT obj_description(to_regclass(%(table)s), 'pg_class')"


@dataclass
class CatalogObject:
    kind: str                       # unique | check | exclusion | foreign_key | index
    name: str
    definition: str                 # a whole statement, on the table as the server names it
    columns: list[str] = field(default_factory=list)
    plain: bool = True              # an index: no expression, no predicate, btree
    unique: bool = False            # an index: a unique one
    on_update: str = ""             # a foreign key's actions (pg_constraint's letters)
    on_delete: str = ""
    enabled: str = ""               # a trigger: pg_trigger.tgenabled (O on, D off, ...)
    function_schema: str = ""       # a trigger: the schema of the function it executes


_CONSTRAINT_KINDS = {"p": "primary_key", "c": "check", "u": "unique", "x": "exclusion",
                     "f": "foreign_key"}


def qualified(schema: str, table: str) -> str:
    return sql.Identifier(schema, table).as_string(None)


def _as_json_rows(query: str) -> str:
    return f"(SELECT coalesce(json_agg(r ORDER BY r.name), '[]') FROM ({query}) r)"


# The four in one round trip: each kind's rows as a JSON array, by name
_OBJECTS_SQL = "SELECT " + ", ".join(_as_json_rows(q) for q in (
    _CONSTRAINTS_SQL, _INDEXES_SQL, _POLICIES_SQL, _TRIGGERS_SQL))


def table_objects(conn: psycopg.Connection, schema: str, table: str) -> list[CatalogObject]:
    """Every constraint (but NOT NULL), every index of a table but those a constraint
    made (which share the constraint's name), and every trigger but the constraints'."""
    constraints, indexes, policies, triggers = conn.execute(
        _OBJECTS_SQL, {"table": qualified(schema, table)}).fetchone()
    found = []
    for row in constraints:
        statement = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(schema, table), sql.Identifier(row["name"]),
            sql.SQL(row["definition"]))
        found.append(CatalogObject(
            _CONSTRAINT_KINDS[row["contype"]], row["name"], statement.as_string(conn),
            list(row["columns"]), on_update=row["confupdtype"] or "",
            on_delete=row["confdeltype"] or ""))
    for row in indexes:
        found.append(CatalogObject(
            "index", row["name"], row["definition"], list(row["columns"]),
            plain=not row["special"] and row["amname"] == "btree"
            and len(row["columns"]) == row["width"], unique=row["indisunique"]))
    for row in policies:
        found.append(CatalogObject("policy", row["name"],
                                   _policy_statement(schema, table, row).as_string(conn),
                                   plain=False))
    for row in triggers:
        found.append(CatalogObject("trigger", row["name"], row["definition"], plain=False,
                                   enabled=row["tgenabled"],
                                   function_schema=row["function_schema"]))
    return found


def _policy_statement(schema: str, table: str, row: dict) -> sql.Composed:
    """CREATE POLICY from the catalog: names quoted, expressions as the server's own
    pg_get_expr prints them (parsed again by whoever reads the plan)."""
    roles = [sql.Identifier(r) if r else sql.SQL("PUBLIC") for r in row["roles"]]
    parts = [sql.SQL("CREATE POLICY {} ON {} AS {} FOR {} TO {}").format(
        sql.Identifier(row["name"]), sql.Identifier(schema, table),
        sql.SQL("PERMISSIVE" if row["polpermissive"] else "RESTRICTIVE"),
        sql.SQL(POLICY_COMMANDS[row["polcmd"]]), sql.SQL(", ").join(roles))]
    if row["qual"] is not None:
        parts.append(sql.SQL("USING ({})").format(sql.SQL(row["qual"])))
    if row["with_check"] is not None:
        parts.append(sql.SQL("WITH CHECK ({})").format(sql.SQL(row["with_check"])))
    return sql.SQL(" ").join(parts)


_ROW_SECURITY_SQL = """
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(%(table)s)
"""


def row_security(conn: psycopg.Connection, schema: str, table: str) -> str:
    """"" (off), "enabled" or "forced": the table's ROW LEVEL SECURITY."""
    row = conn.execute(_ROW_SECURITY_SQL, {"table": qualified(schema, table)}).fetchone()
    if not row or not row[0]:
        return ""
    return "forced" if row[1] else "enabled"


def estimated_rows(conn: psycopg.Connection, schema: str, table: str) -> int | None:
    """The server's estimate of a table's rows (as of its last ANALYZE), or None."""
    rows = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                        (qualified(schema, table),)).fetchone()
    return rows[0] if rows and rows[0] is not None and rows[0] >= 0 else None


def objects_by_name(conn: psycopg.Connection, schema: str,
                    table: str) -> dict[str, CatalogObject]:
    return {o.name: o for o in table_objects(conn, schema, table)}


def table_comment(conn: psycopg.Connection, schema: str, table: str) -> str | None:
    return conn.execute(_COMMENT_SQL, {"table": qualified(schema, table)}).fetchone()[0]


def column_comments(conn: psycopg.Connection, schema: str, table: str) -> dict[str, str]:
    """{column: its comment (None if it has none)} of a table."""
    return dict(conn.execute(
        "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attnum > 0",
        (qualified(schema, table),)).fetchall())


# ---------------------------------------------------------------- user types

_TYPES_SQL = """
SELECT t.oid, t.typname, n.nspname, t.typtype, t.typbasetype, t.typrelid,
       CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0 END AS element,
       format_type(t.typbasetype, t.typtypmod) AS base_type, t.typdefault, t.typnotnull,
       e.extname
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid
  AND d.deptype = 'e'
LEFT JOIN pg_extension e ON e.oid = d.refobjid
WHERE t.oid = ANY(%(oids)s)
"""

_TABLE_TYPES_SQL = """
SELECT DISTINCT a.atttypid FROM pg_attribute a
WHERE a.attrelid = ANY(%(tables)s::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped
"""


@dataclass
class UserType:
    kind: str                 # enum | domain | composite | range | ...
    name: str
    schema: str
    definition: str = ""      # the CREATE statement, for the kinds the tool carries
    depends_on: list[str] = field(default_factory=list)


@dataclass
class TypesUsed:
    types: list[UserType]     # in an order they can be created in
    extensions: list[str]     # extensions whose types the columns use


def types_used(conn: psycopg.Connection, schema: str, tables: list[str]) -> TypesUsed:
    """The user types the tables' columns use, directly, as array elements, as a domain's
    base or a composite's field; and the extensions that own any type they use. Xata's
    own types (its schemas') are left out: the plan maps them already."""
    names = [qualified(schema, t) for t in tables]
    with conn.cursor() as cur:
        pending = {row[0] for row in cur.execute(_TABLE_TYPES_SQL, {"tables": names})}
    seen: dict[int, UserType] = {}
    extensions: list[str] = []
    while pending:
        rows = _type_rows(conn, pending)
        pending = set()
        for row in rows:
            if row["oid"] in seen:
                continue
            if row["element"]:
                pending.add(row["element"])
                continue
            if row["extname"]:
                if row["extname"] not in extensions:
                    extensions.append(row["extname"])
                continue
            if row["nspname"] in SYSTEM_SCHEMAS + XATA_SCHEMAS:
                continue
            user_type, more = _describe(conn, row)
            seen[row["oid"]] = user_type
            pending |= more
    return TypesUsed(_creation_order(list(seen.values())), sorted(extensions))


def _type_rows(conn, oids) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_TYPES_SQL, {"oids": list(oids)}).fetchall()


def _describe(conn, row: dict) -> tuple[UserType, set[int]]:
    name, kind = row["typname"], {"e": "enum", "d": "domain", "c": "composite",
                                  "r": "range", "m": "multirange"}.get(row["typtype"], "base")
    found = UserType(kind, name, row["nspname"])
    more: set[int] = set()
    if kind == "enum":
        labels = [r[0] for r in conn.execute(
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder",
            (row["oid"],))]
        found.definition = sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
            sql.Identifier(name), sql.SQL(", ").join(map(sql.Literal, labels))).as_string(conn)
    elif kind == "domain":
        more.add(row["typbasetype"])
        found.definition = _domain_definition(conn, row)
    elif kind == "composite":
        fields = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), atttypid FROM pg_attribute"
            " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (row["typrelid"],)).fetchall()
        more |= {f[2] for f in fields}
        found.definition = sql.SQL("CREATE TYPE {} AS ({})").format(
            sql.Identifier(name), sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(f[0]), sql.SQL(f[1]))
                for f in fields)).as_string(conn)
    found.depends_on = [r[0] for r in conn.execute(
        "SELECT typname FROM pg_type WHERE oid = ANY(%s) AND typtype IN ('e', 'd', 'c')",
        (list(more),))]
    return found, more


def _domain_definition(conn, row: dict) -> str:
    """CREATE DOMAIN from the catalog: base type, default, NOT NULL, and each CHECK as
    the server prints it (pg_get_constraintdef). The plan parses it before it is used."""
    parts = [sql.SQL("CREATE DOMAIN {} AS {}").format(sql.Identifier(row["typname"]),
                                                      sql.SQL(row["base_type"]))]
    if row["typdefault"] is not None:
        parts.append(sql.SQL("DEFAULT {}").format(sql.SQL(row["typdefault"])))
    if row["typnotnull"]:
        parts.append(sql.SQL("NOT NULL"))
    for name, definition in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contypid = %s AND contype = 'c' ORDER BY conname", (row["oid"],)):
        parts.append(sql.SQL("CONSTRAINT {} {}").format(sql.Identifier(name),
                                                        sql.SQL(definition)))
    return sql.SQL(" ").join(parts).as_string(conn)


def _creation_order(types: list[UserType]) -> list[UserType]:
    ordered, placed = [], set()
    remaining = sorted(types, key=lambda t: t.name)
    while remaining:
        ready = [t for t in remaining if all(d in placed or d == t.name
                                             for d in t.depends_on
                                             if d in {u.name for u in types})]
        ready = ready or remaining[:1]
        for user_type in ready:
            ordered.append(user_type)
            placed.add(user_type.name)
        remaining = [t for t in remaining if t.name not in placed]
    return ordered


def type_definition(conn: psycopg.Connection, schema: str, name: str) -> str | None:
    """The CREATE statement of the type `schema.name` as types_used writes it, or None if
    there is no such type."""
    oid = conn.execute("SELECT to_regtype(%s)::oid", (qualified(schema, name),)).fetchone()[0]
    if oid is None:
        return None
    rows = _type_rows(conn, {oid})
    return _describe(conn, rows[0])[0].definition if rows else None


# ---------------------------------------------------------------- functions

_FUNCTIONS_SQL = """
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
       pg_get_functiondef(p.oid) AS definition
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
  AND (%(name)s::text IS NULL
       OR p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' = %(name)s)
ORDER BY 1
"""


def functions(conn: psycopg.Connection, schema: str,
              name: str | None = None) -> dict[str, str]:
    """{name(identity arguments): CREATE OR REPLACE statement} of the schema's functions
    and procedures (of one, if `name`), those of extensions left out."""
    return dict(conn.execute(_FUNCTIONS_SQL, {"schema": schema, "name": name}).fetchall())


# ---------------------------------------------------------------- sequences

_SEQUENCE_SQL = """
SELECT c.relname, format_type(s.seqtypid, NULL) AS type_name, s.seqincrement, s.seqmin,
       s.seqmax, s.seqstart, s.seqcache, s.seqcycle
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
WHERE s.seqrelid = to_regclass(%(sequence)s)
"""


def sequence_definition(conn: psycopg.Connection, schema: str, name: str) -> str | None:
    """CREATE SEQUENCE with every option the catalog holds, or None if there is none."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SEQUENCE_SQL, {"sequence": qualified(schema, name)}).fetchone()
    if row is None:
        return None
    return sql.SQL(
        "CREATE SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {}"
        " CACHE {} {}").format(
        sql.Identifier(name), sql.SQL(row["type_name"]), sql.Literal(row["seqincrement"]),
        sql.Literal(row["seqmin"]), sql.Literal(row["seqmax"]), sql.Literal(row["seqstart"]),
        sql.Literal(row["seqcache"]),
        sql.SQL("CYCLE" if row["seqcycle"] else "NO CYCLE")).as_string(conn)


def sequence_position(conn: psycopg.Connection, schema: str, name: str) -> tuple[int, bool]:
    """(last_value, is_called) of a sequence."""
    return conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
        sql.Identifier(schema, name))).fetchone()
