"""The plan as a YAML file: written with a header that says what each field means, read
back with every problem named (the table, the column, the fix), and validated
(validation.py) both ways.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from xata_migration.plan.model import (MAPPING_SCHEMA, PLAN_VERSION, SPLIT_ROWS, SPLIT_WORKERS,
                                       Column, Link, Plan,
                                       PlanError, Table, View)
from xata_migration.plan.objects import (ObjectError, SchemaObject, object_from_dict,
                                         object_to_dict)
from xata_migration.plan.validation import validate_plan


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
    if column.identity:
        out["identity"] = column.identity
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
        if column.link.column:
            out["link"]["column"] = column.link.column
        if column.link.deferrable:
            out["link"]["deferrable"] = column.link.deferrable
    return out


def table_to_dict(table: Table) -> dict:
    """One table's entry of the plan file."""
    entry = {"name": table.name, "target": table.target, "ids": table.ids}
    if table.ids_reason:
        entry["ids_reason"] = table.ids_reason
    if table.kept:
        entry["key"] = list(table.key)
    entry |= {"id_column": table.id_column, "id_order": list(table.id_order),
             "columns": [_column_to_dict(c) for c in table.columns],
             "dropped": list(table.dropped), "deleted_rows": table.deleted_rows}
    if table.comment is not None:
        entry["comment"] = table.comment
    if table.row_security:
        entry["row_security"] = table.row_security
    if table.sequences:
        entry["sequences"] = [object_to_dict(s) for s in table.sequences]
    if table.objects:
        entry["objects"] = [object_to_dict(o) for o in table.objects]
    return entry


def plan_to_dict(plan: Plan) -> dict:
    tables = [table_to_dict(table) for table in plan.tables]
    return {"version": PLAN_VERSION, "source_schema": plan.source_schema,
            "target_schema": plan.target_schema, "mapping_schema": MAPPING_SCHEMA,
            "order": plan.order(), "suggested_links": plan.suggested_links,
            "extensions": list(plan.extensions),
            "types": [object_to_dict(t) for t in plan.types],
            "functions": [object_to_dict(f) for f in plan.functions],
            "skipped_tables": dict(plan.skipped_tables),
            "split_rows": plan.split_rows, "split_workers": plan.split_workers,
            "tables": tables,
            "views": [_view_to_dict(v) for v in plan.views]}


def _view_to_dict(view: View) -> dict:
    out = {"name": view.name, "kind": view.kind, "fate": view.fate}
    if view.reason:
        out["reason"] = view.reason
    out |= {"reads": list(view.reads), "columns": list(view.columns),
            "id_columns": dict(view.id_columns), "query": view.query}
    return out


def _view_from_dict(raw) -> View:
    if not isinstance(raw, dict) or "name" not in raw or "query" not in raw:
        raise PlanError("Every entry of `views` needs at least `name` and `query`.")
    return View(name=str(raw["name"]), kind=str(raw.get("kind", "view")),
                query=str(raw["query"]), reads=[str(r) for r in raw.get("reads") or []],
                columns=[str(c) for c in raw.get("columns") or []],
                id_columns={str(k): str(v) for k, v in (raw.get("id_columns") or {}).items()},
                fate=str(raw.get("fate", "carry")), reason=str(raw.get("reason") or ""))


_HEADER = """\
# xata-migration plan. Review it, edit it, keep it under version control.
# Each table: its target name, what becomes of its ids, the source id column that new
# bigint ids replace, the columns that order new ids (ties broken by the id), every kept
# column with its target name and PostgreSQL type, and links.
#   ids: remap -- Xata's record ids (xata_id, or a key made by Xata's xid() or shaped
#     rec_...) become new bigint ids in `id`; keep -- the table's own keys (integers, uuids,
#     natural keys) stay as they are, and `key` names the columns that tell its rows apart
#     (none: every load replaces all its rows). `ids_reason` says why the plan chose.
#   link: rewritten to the parent's new bigint id; with `column: C`, copied as it is and
#     its FOREIGN KEY references the parent's column C (a parent whose ids are kept);
#     deferrable: immediate | deferred -- its FOREIGN KEY is DEFERRABLE INITIALLY that
#   link.on_missing: what to do with a link value whose record does not exist:
#     fail (default: the table stops, nothing written) | null (set NULL) | skip (leave the row out)
#   link.deferred: true  -- written after both tables load (breaks a cycle of links)
#   dropped: source columns not copied (move one into columns to keep it)
#   deleted_rows: keep (default) | delete -- target rows whose source row was deleted since
#     an earlier run; their mapping rows stay either way
#   generated: the expression of a GENERATED ALWAYS ... STORED column (the target computes it)
#   row_security: enabled | forced -- the table's ROW LEVEL SECURITY (its policies are objects)
#   objects / sequences (per table: constraints, indexes, triggers, policies), types (user
#     types, in creation order), functions (made before the tables; bodies are not
#     rewritten, one that names a record id is `review`), extensions: the database
#     around the rows, each with a `fate`: carry (made on the target, as its
#     `definition` says) | drop (left out) | review (cannot be carried as is: `reason` says
#     why; migrate refuses until you edit the definition and set carry, or set drop).
#     A definition is exactly one statement of its kind, on the table's target name.
# views: each view (kind: view) or materialized view (kind: materialized), made after the
#   tables it `reads`, its `query` rewritten for the new ids (a view's columns keep their
#   names; `id_columns` are the ones that now hold new ids, and the table that maps them);
#   `fate` as for objects: review when the query uses an id as a value or cannot be followed
# skipped_tables: {table: why} source tables left out on purpose (move one here to skip it)
# split_rows, split_workers: a first load of a table of at least split_rows rows is read by
#   split_workers source sessions at once, each a range of its pages (1: never split)
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
                on_missing=str(raw.get("on_missing", "fail")),
                column=str(raw.get("column") or ""),
                deferrable=str(raw.get("deferrable") or ""))


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
                  identity=str(raw.get("identity") or ""),
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
            id_column=str(entry.get("id_column") or ""),
            ids=str(entry.get("ids", "remap")), ids_reason=str(entry.get("ids_reason") or ""),
            key=[str(c) for c in entry.get("key") or []],
            id_order=[str(c) for c in entry.get("id_order") or []],
            columns=[_column_from_dict(c, name) for c in entry.get("columns") or []],
            dropped=[str(c) for c in entry.get("dropped") or []],
            deleted_rows=str(entry.get("deleted_rows", "keep")),
            comment=None if entry.get("comment") is None else str(entry["comment"]),
            row_security=str(entry.get("row_security") or ""),
            sequences=_objects(entry.get("sequences"), where),
            objects=_objects(entry.get("objects"), where)))
    return Plan(tables=tables, source_schema=str(raw.get("source_schema", "public")),
                target_schema=str(raw.get("target_schema", "public")),
                suggested_links=list(raw.get("suggested_links") or []),
                types=_objects(raw.get("types"), "The plan's types"),
                functions=_objects(raw.get("functions"), "The plan's functions"),
                extensions=[str(e) for e in raw.get("extensions") or []],
                skipped_tables={str(k): str(v) for k, v in
                                (raw.get("skipped_tables") or {}).items()},
                split_rows=_count(raw, "split_rows", SPLIT_ROWS, 1),
                split_workers=_count(raw, "split_workers", SPLIT_WORKERS, 1),
                views=[_view_from_dict(v) for v in raw.get("views") or []])


def _count(raw: dict, key: str, default: int, least: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise PlanError(f"`{key}` must be a whole number of at least {least}, not {value!r}.")
    return value


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
