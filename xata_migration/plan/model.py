"""The migration plan: what each source table becomes in the target.

A plan is a YAML file a person can review, diff and edit. `introspect` writes one from
the source catalog; the Dagster definitions and the loader only ever read it. Loading a
plan validates it and names the table, the column and the fix for every problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from xata_migration.errors import XataMigrationError
from xata_migration.plan import graph
from xata_migration.plan.names import MAX_IDENTIFIER_BYTES, derived_name
from xata_migration.plan.objects import (ObjectError, SchemaObject, object_from_dict,
                                         object_to_dict, validate_generated,
                                         validate_table_objects, validate_types)
from xata_migration.plan.sql_text import SqlTextError, check_expression, check_type_name

PLAN_VERSION = 1
MAPPING_SCHEMA = "xata_id_map"
ON_DELETE_ACTIONS = ("NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT")
ON_UPDATE_ACTIONS = ON_DELETE_ACTIONS
ON_MISSING_CHOICES = ("fail", "null", "skip")
LINK_DECLARATIONS = ("foreign_key", "comment", "plan")


class PlanError(XataMigrationError, ValueError):
    """A plan that cannot be run; the message names the table, the column and the fix."""


@dataclass
class Link:
    table: str
    on_delete: str = "SET NULL"
    on_update: str = "NO ACTION"
    declared_by: str = "foreign_key"
    # A deferred link is written after both tables are loaded: it breaks a cycle.
    deferred: bool = False
    # What to do with a value whose record does not exist in `table`.
    on_missing: str = "fail"


@dataclass
class Column:
    name: str
    type: str
    target: str = ""
    not_null: bool = False
    unique: bool = False
    default: str | None = None
    link: Link | None = None
    # The column's type in the source when the plan was made: a run stops if it changed.
    source_type: str = ""
    # Informative: where the column came from when that is not obvious (a CSV import's
    # Xata `object` column, kept as jsonb or split into one column per field).
    note: str = ""
    # GENERATED ALWAYS AS (generated) STORED: made by the target, never written by a load.
    generated: str | None = None
    comment: str | None = None
    # Why a person must look at the column before it is migrated ("" if nothing).
    review: str = ""

    def __post_init__(self):
        self.target = self.target or self.name
        self.source_type = self.source_type or ("text" if self.link else self.type)

    @property
    def is_pgvector(self) -> bool:
        """A column stored as pgvector's vector(n) in the target."""
        return not self.link and self.type.startswith("vector(")

    @property
    def compared_as_real_array(self) -> bool:
        """A Xata vector (real[] in the source) stored as pgvector's vector(n): the checks
        read the target's value back as the real[] it was. A source column that is already
        a vector is compared as a vector on both sides."""
        return self.is_pgvector and not self.source_type.startswith("vector(")

    @property
    def is_array_link(self) -> bool:
        """A text[] of ids (Xata `multiple`) rewritten element by element to bigint[]."""
        return bool(self.link) and self.source_type.endswith("[]")


@dataclass
class Table:
    name: str
    id_column: str
    columns: list[Column]
    target: str = ""
    # Source columns that order new ids; the source id breaks ties.
    id_order: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    # Target rows whose source row was deleted since an earlier run: keep or delete.
    deleted_rows: str = "keep"
    # Constraints and indexes (plan/objects.py), the sequences its defaults call.
    objects: list[SchemaObject] = field(default_factory=list)
    sequences: list[SchemaObject] = field(default_factory=list)
    comment: str | None = None

    def __post_init__(self):
        self.target = self.target or self.name

    @property
    def written_by_load(self) -> list[Column]:
        """The columns a load writes: all but generated ones, which the target computes."""
        return [c for c in self.columns if c.generated is None]

    @property
    def generated_columns(self) -> list[Column]:
        return [c for c in self.columns if c.generated is not None]

    @property
    def target_columns(self) -> set[str]:
        return {"id"} | {c.target for c in self.columns}

    @property
    def links(self) -> list[Column]:
        return [c for c in self.columns if c.link]

    @property
    def own_links(self) -> list[Column]:
        """The links the table's own asset writes: all but deferred ones."""
        return [c for c in self.links if not c.link.deferred]

    @property
    def value_columns(self) -> list[Column]:
        return [c for c in self.columns if not c.link]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass
class Plan:
    tables: list[Table]
    source_schema: str = "public"
    target_schema: str = "public"
    # Informative: text columns whose values are ids of a table (see introspect).
    suggested_links: list[dict] = field(default_factory=list)
    # User types the columns use (in creation order) and extensions whose types they use.
    types: list[SchemaObject] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)

    def object_summary(self) -> list[str]:
        """What the plan carries around the rows, and what it leaves out, in lines."""
        carried: dict[str, int] = {}
        dropped = []
        everything = [(None, t) for t in self.types] + [
            (table, item) for table in self.tables for item in table.sequences + table.objects]
        for table, item in everything:
            if item.fate == "carry":
                carried[item.kind] = carried.get(item.kind, 0) + 1
            elif item.fate == "drop":
                where = f"table {table.name!r}, " if table else ""
                dropped.append(f"Not carried: {where}{item.kind} {item.name!r}"
                               + (f" ({item.reason})" if item.reason else ""))
        generated = sum(len(t.generated_columns) for t in self.tables)
        comments = sum((t.comment is not None) + sum(c.comment is not None for c in t.columns)
                       for t in self.tables)
        parts = [f"{n} {kind}" for kind, n in sorted(carried.items())]
        parts += [f"{generated} generated column(s)"] if generated else []
        parts += [f"{comments} comment(s)"] if comments else []
        parts += [f"extension(s) {', '.join(self.extensions)}"] if self.extensions else []
        lines = ["Carried to the target: " + ", ".join(parts) + "."] if parts else []
        return lines + dropped

    def review_items(self) -> list[str]:
        """Every object and column held back for a person, one readable line each."""
        found = [f"type {t.name!r}: {t.reason}" for t in self.types if t.fate == "review"]
        for table in self.tables:
            for column in table.columns:
                if column.review:
                    found.append(f"table {table.name!r}, column {column.name!r}: "
                                 f"{column.review} (generated {column.generated!r})")
            for item in table.sequences + table.objects:
                if item.fate == "review":
                    found.append(f"table {table.name!r}, {item.kind} {item.name!r}: "
                                 f"{item.reason}\n    definition: {item.definition}")
        return found

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise PlanError(f"The plan has no table {name!r}.")

    def parents(self, table: Table) -> list[str]:
        """Tables that must be loaded before `table` (its non-deferred links)."""
        found = []
        for column in table.links:
            if not column.link.deferred and column.link.table != table.name:
                if column.link.table not in found:
                    found.append(column.link.table)
        return found

    def order(self) -> list[str]:
        edges = {t.name: self.parents(t) for t in self.tables}
        return graph.topological_order(edges)


# ---------------------------------------------------------------- YAML in and out


def _column_to_dict(column: Column) -> dict:
    out: dict = {"name": column.name, "type": column.type, "source_type": column.source_type}
    if column.target != column.name:
        out["target"] = column.target
    if column.not_null:
        out["not_null"] = True
    if column.unique:
        out["unique"] = True
    if column.default is not None:
        out["default"] = column.default
    if column.note:
        out["note"] = column.note
    if column.generated is not None:
        out["generated"] = column.generated
    if column.review:
        out["review"] = column.review
    if column.comment is not None:
        out["comment"] = column.comment
    if column.link:
        out["link"] = {
            "table": column.link.table,
            "on_delete": column.link.on_delete,
            "on_update": column.link.on_update,
            "declared_by": column.link.declared_by,
            "deferred": column.link.deferred,
            "on_missing": column.link.on_missing,
        }
    return out


def plan_to_dict(plan: Plan) -> dict:
    tables = []
    for table in plan.tables:
        entry = {"name": table.name, "target": table.target, "id_column": table.id_column,
                 "id_order": list(table.id_order),
                 "columns": [_column_to_dict(c) for c in table.columns],
                 "dropped": list(table.dropped), "deleted_rows": table.deleted_rows}
        if table.comment is not None:
            entry["comment"] = table.comment
        if table.sequences:
            entry["sequences"] = [object_to_dict(s) for s in table.sequences]
        if table.objects:
            entry["objects"] = [object_to_dict(o) for o in table.objects]
        tables.append(entry)
    return {"version": PLAN_VERSION, "source_schema": plan.source_schema,
            "target_schema": plan.target_schema, "mapping_schema": MAPPING_SCHEMA,
            "order": plan.order(), "suggested_links": plan.suggested_links,
            "extensions": list(plan.extensions),
            "types": [object_to_dict(t) for t in plan.types], "tables": tables}


_HEADER = """\
# xata-migration plan. Review it, edit it, keep it under version control.
# Each table: its target name, the source id column that new bigint ids replace, the
# columns that order new ids (ties broken by the id), every kept column with its target
# name and PostgreSQL type, and links (rewritten to the parent's new bigint id).
#   link.on_missing: what to do with a link value whose record does not exist:
#     fail (default: the table stops, nothing written) | null (set NULL) | skip (leave the row out)
#   link.deferred: true  -- written after both tables load (breaks a cycle of links)
#   dropped: source columns not copied (move one into columns to keep it)
#   deleted_rows: keep (default) | delete -- target rows whose source row was deleted since
#     an earlier run; their mapping rows stay either way
#   generated: the expression of a GENERATED ALWAYS ... STORED column (the target computes it)
#   objects / sequences (per table), types (user types, in creation order), extensions: the
#     database around the rows, each with a `fate`: carry (made on the target, as its
#     `definition` says) | drop (left out) | review (cannot be carried as is: `reason` says
#     why; migrate refuses until you edit the definition and set carry, or set drop).
#     A definition is exactly one statement of its kind, on the table's target name.
# `order` is informative: it is recomputed from the links every time.
# `suggested_links`: plain text / text[] columns whose values are ids of a table. To rewrite
#   one, give the column a `link: {table: T}` and `type: bigint` (text[] columns: bigint[]).
"""


def save_plan(plan: Plan, path: str | Path) -> None:
    validate_plan(plan)
    text = yaml.safe_dump(plan_to_dict(plan), sort_keys=False, allow_unicode=True, width=100)
    Path(path).write_text(_HEADER + text, encoding="utf-8")


def _require(mapping: dict, key: str, where: str):
    if key not in mapping:
        raise PlanError(f"{where}: missing key {key!r}. Add it, or write the plan again with "
                        "`xata-migration plan`.")
    return mapping[key]


def _link_from_dict(raw: dict, where: str) -> Link:
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: `link` must be a mapping with at least `table`.")
    return Link(table=str(_require(raw, "table", where)),
                on_delete=str(raw.get("on_delete", "SET NULL")).upper(),
                on_update=str(raw.get("on_update", "NO ACTION")).upper(),
                declared_by=str(raw.get("declared_by", "plan")),
                deferred=bool(raw.get("deferred", False)),
                on_missing=str(raw.get("on_missing", "fail")))


def _column_from_dict(raw: dict, table_name: str) -> Column:
    if not isinstance(raw, dict):
        raise PlanError(f"Table {table_name!r}: every entry of `columns` must be a mapping.")
    name = str(_require(raw, "name", f"Table {table_name!r}, a column"))
    where = f"Table {table_name!r}, column {name!r}"
    link = _link_from_dict(raw["link"], where) if raw.get("link") else None
    default, generated, comment = raw.get("default"), raw.get("generated"), raw.get("comment")
    return Column(name=name, type=str(_require(raw, "type", where)),
                  generated=None if generated is None else str(generated),
                  comment=None if comment is None else str(comment),
                  review=str(raw.get("review") or ""),
                  target=str(raw.get("target") or name), not_null=bool(raw.get("not_null")),
                  unique=bool(raw.get("unique")),
                  default=None if default is None else str(default), link=link,
                  source_type=str(raw.get("source_type") or ""),
                  note=str(raw.get("note") or ""))


def plan_from_dict(raw: dict) -> Plan:
    if not isinstance(raw, dict) or "tables" not in raw:
        raise PlanError("This is not an xata-migration plan: it has no `tables`. "
                        "Write one with `xata-migration plan --source-url URL --output PATH`.")
    if raw.get("version", PLAN_VERSION) != PLAN_VERSION:
        raise PlanError(f"Plan version {raw.get('version')!r} is not supported "
                        f"(this tool reads version {PLAN_VERSION}). Write the plan again.")
    tables = []
    for entry in raw["tables"] or []:
        name = str(_require(entry, "name", "A table"))
        where = f"Table {name!r}"
        tables.append(Table(
            name=name, target=str(entry.get("target") or name),
            id_column=str(_require(entry, "id_column", where)),
            id_order=[str(c) for c in entry.get("id_order") or []],
            columns=[_column_from_dict(c, name) for c in entry.get("columns") or []],
            dropped=[str(c) for c in entry.get("dropped") or []],
            deleted_rows=str(entry.get("deleted_rows", "keep")),
            comment=None if entry.get("comment") is None else str(entry["comment"]),
            sequences=_objects(entry.get("sequences"), where),
            objects=_objects(entry.get("objects"), where)))
    return Plan(tables=tables, source_schema=str(raw.get("source_schema", "public")),
                target_schema=str(raw.get("target_schema", "public")),
                suggested_links=list(raw.get("suggested_links") or []),
                types=_objects(raw.get("types"), "The plan's types"),
                extensions=[str(e) for e in raw.get("extensions") or []])


def _objects(raw, where: str) -> list[SchemaObject]:
    try:
        return [object_from_dict(item, where) for item in raw or []]
    except ObjectError as error:
        raise PlanError(str(error)) from None


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"Plan file {str(path)!r} does not exist. Write one with "
                        "`xata-migration plan --source-url URL --output PATH`.")
    try:
        # libyaml's parser where PyYAML has it: every Dagster process reads the plan
        raw = yaml.load(path.read_text(encoding="utf-8"),
                        Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise PlanError(f"Plan file {str(path)!r} is not valid YAML: {error}") from None
    plan = plan_from_dict(raw)
    validate_plan(plan)
    return plan


# ---------------------------------------------------------------- validation


def _unique(names: list[str], what: str, fix: str, where: str = "") -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            found = f"two {what}s are both named {name!r}. {fix}"
            raise PlanError(f"{where}: {found}" if where else found[0].upper() + found[1:])
        seen.add(name)


def _fits(name: str, where: str) -> None:
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise PlanError(f"{where}: target name {name!r} is longer than PostgreSQL's "
                        f"{MAX_IDENTIFIER_BYTES} bytes and would be cut. Choose a shorter "
                        "`target` name in the plan.")


def _validate_table(plan: Plan, table: Table, names: set[str]) -> None:
    where = f"Table {table.name!r}"
    _unique([c.name for c in table.columns] + table.dropped, "source column",
            "List each source column once, in `columns` or in `dropped`.", where)
    _unique(["id"] + [c.target for c in table.columns], "target column",
            "Give one of them another `target` name in the plan (`id` is the new primary key).",
            where)
    if table.id_column in [c.name for c in table.columns]:
        raise PlanError(f"{where}: the id column {table.id_column!r} is also listed in "
                        "`columns`. Remove it there: it becomes the bigint `id`.")
    _fits(table.target, where)
    if table.deleted_rows not in ("keep", "delete"):
        raise PlanError(f"{where}: deleted_rows {table.deleted_rows!r} is not keep or delete.")
    for name in table.id_order:
        if name not in [c.name for c in table.columns]:
            raise PlanError(f"{where}: id_order column {name!r} must be one of the table's "
                            "kept `columns`.")
    for column in table.columns:
        cwhere = f"{where}, column {column.name!r}"
        _fits(column.target, cwhere)
        _check_sql(column, cwhere)
        if column.link:
            _validate_link(column, cwhere, names)
        if column.generated is not None:
            _validate_generated(table, column, cwhere)
    _fits_all([o.name for o in table.objects + table.sequences], where)
    try:
        validate_table_objects(where, table.target, table.objects, table.sequences,
                               table.target_columns)
    except ObjectError as error:
        raise PlanError(str(error)) from None


def _fits_all(names: list[str], where: str) -> None:
    for name in names:
        _fits(name, where)


def _validate_generated(table: Table, column: Column, where: str) -> None:
    if column.link or column.default is not None:
        raise PlanError(f"{where}: a generated column can have neither a `link` nor a "
                        "`default`.")
    try:
        validate_generated(where, column.generated, table.target_columns)
    except ObjectError as error:
        raise PlanError(str(error)) from None


def _check_sql(column: Column, where: str) -> None:
    """A column's type and default are SQL text the target runs: each must be exactly one
    type name, one expression (plan/sql_text.py)."""
    checks = [("type", column.type, check_type_name)]
    if column.default is not None:
        checks.append(("default", column.default, check_expression))
    for field_name, text, check in checks:
        try:
            check(text)
        except SqlTextError as error:
            raise PlanError(f"{where}: {field_name} {text!r} is {error}. Correct it in the "
                            "plan, or write the plan again with `xata-migration plan`. "
                            "Nothing was written.") from None


def _validate_link(column: Column, where: str, names: set[str]) -> None:
    link = column.link
    if link.table not in names:
        raise PlanError(f"{where} links to table {link.table!r}, which the plan does not "
                        "migrate. Add that table to the plan, or remove `link` to copy the "
                        "column's values unchanged.")
    wanted = "bigint[]" if column.is_array_link else "bigint"
    if column.type != wanted:
        raise PlanError(f"{where} is a link from a {column.source_type} column, so its target "
                        f"type must be {wanted} (the parent's new id), not {column.type!r}.")
    if column.link.deferred and column.link.on_missing == "skip":
        raise PlanError(f"{where}: a deferred link is written after its rows, so it cannot "
                        "skip them: use on_missing: fail or null, or defer another link.")
    if column.is_array_link and column.link.deferred:
        raise PlanError(f"{where}: a link from an array column cannot be deferred. Defer "
                        "another link of the cycle.")
    if link.on_update not in ON_UPDATE_ACTIONS:
        raise PlanError(f"{where}: on_update {link.on_update!r} is not one of "
                        f"{', '.join(ON_UPDATE_ACTIONS)}.")
    if link.on_delete not in ON_DELETE_ACTIONS:
        raise PlanError(f"{where}: on_delete {link.on_delete!r} is not one of "
                        f"{', '.join(ON_DELETE_ACTIONS)}.")
    if link.on_missing not in ON_MISSING_CHOICES:
        raise PlanError(f"{where}: on_missing {link.on_missing!r} is not one of "
                        f"{', '.join(ON_MISSING_CHOICES)}.")
    if link.declared_by not in LINK_DECLARATIONS:
        raise PlanError(f"{where}: declared_by {link.declared_by!r} is not one of "
                        f"{', '.join(LINK_DECLARATIONS)}.")


def require_nothing_to_review(plan: Plan) -> None:
    """PlanError listing every object marked `review`: nothing may run until a person has
    decided about each."""
    items = plan.review_items()
    if items:
        raise PlanError(
            f"The plan holds {len(items)} object(s) marked `review`: they cannot be carried "
            "to the target as they are.\n" + "\n".join(f"  - {i}" for i in items) + "\n"
            "For each, edit its definition in the plan for the new bigint ids and set "
            "`fate: carry`, or set `fate: drop` to leave it out (a generated column: edit "
            "`generated` and remove `review`, or move the column to `dropped`). Nothing was "
            "written.")


def validate_plan(plan: Plan) -> None:
    if not plan.tables:
        raise PlanError("The plan has no tables: the source had no Xata-shaped table, or all "
                        "were removed from the plan.")
    _unique([t.name for t in plan.tables], "source table", "List each table once.")
    _unique([t.target for t in plan.tables], "target table name",
            "Give one of them another `target` name in the plan.")
    names = {t.name for t in plan.tables}
    for table in plan.tables:
        _validate_table(plan, table, names)
    _validate_schema_wide(plan)
    cycle = graph.find_cycle({t.name: plan.parents(t) for t in plan.tables})
    if cycle:
        raise PlanError("The links form a cycle: " + " -> ".join(cycle) + ". Set "
                        "`deferred: true` on one link of that cycle (preferably a nullable "
                        "one) so it is written after both tables are loaded.")


def _tool_index_names(table: Table) -> list[str]:
    """The indexes the tool makes itself: the primary key, each unique column's, each
    link's (load/ddl.py)."""
    names = [derived_name(table.target, "", "pkey")]
    names += [derived_name(table.target, c.target, "key") for c in table.columns if c.unique]
    names += [derived_name(table.target, c.target, "idx") for c in table.links]
    return names


def _validate_schema_wide(plan: Plan) -> None:
    """Types, and the names that share one namespace in the target schema: tables,
    indexes, sequences and types (a constraint's name is its table's)."""
    try:
        validate_types(plan.types)
    except ObjectError as error:
        raise PlanError(str(error)) from None
    relations = [t.target for t in plan.tables]
    relations += [o.name for t in plan.tables for o in t.objects
                  if o.kind in ("index", "unique", "exclusion") and o.fate != "drop"]
    relations += sorted({s.name for t in plan.tables for s in t.sequences if s.fate != "drop"})
    relations += [name for t in plan.tables for name in _tool_index_names(t)]
    _unique(relations, "target table, index or sequence name",
            "Rename one in the plan (its `name` and its definition).")
    _unique([t.name for t in plan.types], "type name", "List each type once.")
    shared = [s for t in plan.tables for s in t.sequences if s.fate != "drop"]
    if (plan.types or shared) and plan.target_schema != "public":
        raise PlanError(
            f"The plan creates types or sequences, which its columns name without a schema, "
            f"and its target_schema is {plan.target_schema!r}: this version makes them only "
            "in `public`. Set target_schema: public, or set those types and sequences to "
            "`fate: drop` and create them on the target yourself.")
