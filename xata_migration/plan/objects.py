"""The objects around the rows, in the plan: user types and extensions (the plan's),
sequences, constraints and indexes (each table's), and what becomes of each.

Every object has a `fate`: `carry` (the default: made on the target, rewritten for the
key change), `drop` (left out, on purpose), or `review` (it cannot be carried as is:
`reason` says why; `migrate` refuses to start until a person edits the definition and
sets `carry`, or sets `drop`). Definitions are whole statements, parsed before use
(definitions.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from xata_migration.plan.definitions import (TABLE_OBJECT_KINDS, TYPE_KINDS, columns_read,
                                             expression_columns, parse_definition)
from xata_migration.plan.sql_text import SqlTextError, check_expression

FATES = ("carry", "drop", "review")


class ObjectError(ValueError):
    """A planned object that cannot be used; the plan turns it into a PlanError."""


@dataclass
class SchemaObject:
    kind: str            # enum | domain | composite | sequence | unique | check | ...
    name: str
    definition: str = ""
    fate: str = "carry"
    reason: str = ""     # why `review` (or why the plan chose `drop`)
    owned_by: str = ""   # a sequence: the target column it belongs to (OWNED BY)
    disabled: bool = False  # a trigger made disabled (ALTER TABLE ... DISABLE TRIGGER)

    @property
    def carried(self) -> bool:
        return self.fate == "carry"


def object_to_dict(item: SchemaObject) -> dict:
    out = {"kind": item.kind, "name": item.name, "fate": item.fate}
    if item.reason:
        out["reason"] = item.reason
    if item.owned_by:
        out["owned_by"] = item.owned_by
    if item.disabled:
        out["disabled"] = True
    out["definition"] = item.definition
    return out


def object_from_dict(raw, where: str) -> SchemaObject:
    if not isinstance(raw, dict) or "kind" not in raw or "name" not in raw:
        raise ObjectError(f"{where}: every object needs at least `kind` and `name`.")
    return SchemaObject(kind=str(raw["kind"]), name=str(raw["name"]),
                        definition=str(raw.get("definition") or ""),
                        fate=str(raw.get("fate", "carry")), reason=str(raw.get("reason") or ""),
                        owned_by=str(raw.get("owned_by") or ""),
                        disabled=bool(raw.get("disabled")))


# ---------------------------------------------------------------- validation


def _where(where: str, item: SchemaObject) -> str:
    return f"{where}, {item.kind} {item.name!r}"


def _fate(item: SchemaObject, where: str, kinds) -> None:
    if item.kind not in kinds:
        raise ObjectError(f"{_where(where, item)}: kind {item.kind!r} is not one of "
                          f"{', '.join(kinds)}.")
    if item.fate not in FATES:
        raise ObjectError(f"{_where(where, item)}: fate {item.fate!r} is not one of "
                          f"{', '.join(FATES)}.")


def _parsed(item: SchemaObject, where: str, table: str | None = None):
    try:
        return parse_definition(item.definition, item.kind, item.name, table)
    except SqlTextError as error:
        raise ObjectError(f"{_where(where, item)}: the definition {item.definition!r} is "
                          f"{error}. Correct it in the plan, or set `fate: drop`. Nothing "
                          "was written.") from None


def validate_types(types: list[SchemaObject]) -> None:
    for item in types:
        _fate(item, "The plan's types", (*TYPE_KINDS, "range", "multirange", "base"))
        if item.fate != "drop" and item.kind in TYPE_KINDS:
            _parsed(item, "The plan's types")
        if item.fate == "carry" and item.kind not in TYPE_KINDS:
            raise ObjectError(f"{_where('The plan types', item)}: this tool cannot create a "
                              f"{item.kind} type. Create it on the target yourself and set "
                              "`fate: drop`.")


def validate_functions(functions: list[SchemaObject]) -> None:
    for item in functions:
        _fate(item, "The plan's functions", ("function",))
        if item.fate != "drop":
            _parsed(item, "The plan's functions")


def validate_table_objects(where: str, table_target: str, objects: list[SchemaObject],
                           sequences: list[SchemaObject], target_columns: set[str]) -> None:
    """Each object of one table: a known kind and fate, a definition that is exactly one
    statement of its kind for that object on this table, reading only columns the
    target table has."""
    for item in sequences:
        _fate(item, where, ("sequence",))
        if item.fate != "drop":
            _parsed(item, where)
        if item.owned_by and item.owned_by not in target_columns:
            raise ObjectError(f"{_where(where, item)}: owned_by {item.owned_by!r} is not a "
                              "target column of the table.")
    for item in objects:
        _fate(item, where, TABLE_OBJECT_KINDS)
        if item.fate == "drop":
            continue
        _parsed(item, where, table_target)
        if item.fate == "carry" and item.kind == "foreign_key":
            raise ObjectError(f"{_where(where, item)}: a foreign key other than a link is not "
                              "carried by this tool: set `fate: drop` and add it on the "
                              "target after the migration.")
        unknown = columns_read(item.definition, item.kind, item.name) - target_columns
        if item.fate == "carry" and unknown:
            raise ObjectError(f"{_where(where, item)}: the definition reads {sorted(unknown)}, "
                              f"which the target table does not have (its columns: "
                              f"{sorted(target_columns)}). Edit the definition, or set "
                              "`fate: drop`.")


def validate_generated(where: str, expression: str, target_columns: set[str]) -> None:
    try:
        check_expression(expression)
    except SqlTextError as error:
        raise ObjectError(f"{where}: generated {expression!r} is {error}. Correct it in the "
                          "plan. Nothing was written.") from None
    unknown = expression_columns(expression) - target_columns
    if unknown:
        raise ObjectError(f"{where}: generated {expression!r} reads {sorted(unknown)}, which "
                          "the target table does not have. Edit the expression.")
