"""A plan is checked before anything runs: every problem is a PlanError that names the
table, the column and the fix. SQL text in it (types, defaults, generated expressions,
object definitions) is parsed as exactly what it claims to be (sql_text.py,
definitions.py)."""

from __future__ import annotations

from xata_migration.plan import graph
from xata_migration.plan.model import (DEFERRABLE_CHOICES, IDS_CHOICES, LINK_DECLARATIONS,
                                       ON_DELETE_ACTIONS, ROW_SECURITY_CHOICES, VIEW_KINDS,
                                       ON_MISSING_CHOICES, ON_UPDATE_ACTIONS, Column, Plan,
                                       PlanError, Table)
from xata_migration.plan.names import MAX_IDENTIFIER_BYTES, derived_name
from xata_migration.plan.objects import (ObjectError, validate_functions, validate_generated,
                                         validate_table_objects, validate_types)
from xata_migration.plan.definitions import view_query
from xata_migration.plan.sql_text import SqlTextError, check_expression, check_type_name


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
    _unique(["id"] * (not table.kept) + [c.target for c in table.columns], "target column",
            "Give one of them another `target` name in the plan (`id` is the new primary key).",
            where)
    _validate_ids(table, where)
    _fits(table.target, where)
    if table.row_security not in ROW_SECURITY_CHOICES:
        raise PlanError(f"{where}: row_security {table.row_security!r} is not one of "
                        "enabled, forced (or leave it out).")
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
            _validate_link(plan, column, cwhere, names, table.kept)
        if column.generated is not None:
            _validate_generated(table, column, cwhere)
        if column.identity and (column.identity not in ("always", "by default")
                                or column.default is not None or column.link):
            raise PlanError(f"{cwhere}: identity {column.identity!r} must be `always` or "
                            "`by default`, on a column with neither a default nor a link.")
    _fits_all([o.name for o in table.objects + table.sequences], where)
    try:
        validate_table_objects(where, table.target, table.objects, table.sequences,
                               table.target_columns)
    except ObjectError as error:
        raise PlanError(str(error)) from None


def _validate_ids(table: Table, where: str) -> None:
    if table.ids not in IDS_CHOICES:
        raise PlanError(f"{where}: ids {table.ids!r} is not one of {', '.join(IDS_CHOICES)}.")
    names = [c.name for c in table.columns]
    if table.kept:
        if table.id_column:
            raise PlanError(f"{where}: its ids are kept (`ids: keep`), so it has no "
                            f"`id_column` to replace: list {table.id_column!r} in `columns` "
                            "and leave `id_column` empty, or set `ids: remap`.")
        for name in table.key:
            if name not in names:
                raise PlanError(f"{where}: key column {name!r} must be one of the table's "
                                "`columns`.")
            if table.column(name).rewritten:
                raise PlanError(f"{where}: key column {name!r} is a link rewritten to new "
                                "ids, so it cannot tell rows apart across runs: leave `key` "
                                "empty (every load then replaces the table's rows).")
        return
    if not table.id_column:
        raise PlanError(f"{where}: `ids: remap` needs the `id_column` whose values new ids "
                        "replace. Name it, or set `ids: keep`.")
    if table.id_column in names:
        raise PlanError(f"{where}: the id column {table.id_column!r} is also listed in "
                        "`columns`. Remove it there: it becomes the bigint `id`.")
    if table.key:
        raise PlanError(f"{where}: `key` is for tables whose ids are kept; remove it.")


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


def _validate_link(plan: Plan, column: Column, where: str, names: set[str],
                   table_kept: bool = False) -> None:
    link = column.link
    if link.table not in names:
        skipped = " (it is in `skipped_tables`)" if link.table in plan.skipped_tables else ""
        raise PlanError(f"{where} links to table {link.table!r}, which the plan does not "
                        f"migrate{skipped}. Add that table to the plan, or remove `link` to "
                        "copy the column's values unchanged.")
    parent = plan.table(link.table)
    if link.column:
        _validate_copied_link(parent, column, where)
    elif parent.kept:
        raise PlanError(f"{where} links to table {link.table!r}, whose ids are kept: give the "
                        "link the parent's `column` it references (its values are copied as "
                        "they are), or set the parent's `ids: remap`.")
    wanted = "bigint[]" if column.is_array_link else "bigint"
    if column.rewritten and column.type != wanted:
        raise PlanError(f"{where} is a link from a {column.source_type} column, so its target "
                        f"type must be {wanted} (the parent's new id), not {column.type!r}.")
    if column.link.deferred and table_kept:
        raise PlanError(f"{where}: a table whose ids are kept cannot have a deferred link "
                        "(its rows have no new id to find them by): defer another link of "
                        "the cycle.")
    if column.link.deferred and column.link.on_missing == "skip":
        raise PlanError(f"{where}: a deferred link is written after its rows, so it cannot "
                        "skip them: use on_missing: fail or null, or defer another link.")
    if column.is_array_link and column.link.deferred:
        raise PlanError(f"{where}: a link from an array column cannot be deferred. Defer "
                        "another link of the cycle.")
    for field_name, choices in (("on_update", ON_UPDATE_ACTIONS),
                                ("on_delete", ON_DELETE_ACTIONS),
                                ("on_missing", ON_MISSING_CHOICES),
                                ("deferrable", DEFERRABLE_CHOICES),
                                ("declared_by", LINK_DECLARATIONS)):
        value = getattr(link, field_name)
        if value not in choices:
            raise PlanError(f"{where}: {field_name} {value!r} is not one of "
                            f"{', '.join(choices)}.")


def _validate_copied_link(parent: Table, column: Column, where: str) -> None:
    link = column.link
    referenced = next((c for c in parent.columns if c.name == link.column), None)
    if referenced is None or referenced.rewritten:
        raise PlanError(f"{where}: link column {link.column!r} must be a column of "
                        f"{parent.name!r} copied as it is (not its record id, not a rewritten "
                        "link). Remove `column` to point to the parent's new ids.")
    if link.deferred or link.on_missing != "fail":
        raise PlanError(f"{where}: a link copied as it is keeps every value, so it can be "
                        "neither deferred nor `on_missing: null/skip`: remove those.")


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
    _unique(list(plan.skipped_tables) + [t.name for t in plan.tables], "source table",
            "A table is either in `tables` or in `skipped_tables`.")
    _validate_views(plan)
    cycle = graph.find_cycle({t.name: plan.parents(t) for t in plan.tables})
    if cycle:
        raise PlanError("The links form a cycle: " + " -> ".join(cycle) + ". Set "
                        "`deferred: true` on one link of that cycle (preferably a nullable "
                        "one) so it is written after both tables are loaded.")


def _validate_views(plan: Plan) -> None:
    _unique([t.target for t in plan.tables] + [v.name for v in plan.views],
            "table or view", "Rename the view in the plan.")
    earlier = {t.name for t in plan.tables}
    for view in plan.views:
        where = f"View {view.name!r}"
        _fits(view.name, where)
        if view.kind not in VIEW_KINDS or view.fate not in ("carry", "drop", "review"):
            raise PlanError(f"{where}: kind must be one of {', '.join(VIEW_KINDS)} and fate "
                            "one of carry, drop, review.")
        if view.fate == "carry":
            missing = [r for r in view.reads if r not in earlier]
            if missing:
                raise PlanError(f"{where} reads {missing}, which the plan does not make "
                                "before it (a table it migrates, or a view listed earlier). "
                                "Set the view's `fate: drop`, or add them.")
            try:
                view_query(view)
            except SqlTextError as error:
                raise PlanError(f"{where}: its query is {error}. Correct it, or set "
                                "`fate: drop`.") from None
        earlier.add(view.name)


def _tool_index_names(table: Table) -> list[str]:
    """The indexes the tool makes itself: the primary key, each unique column's, each
    link's (load/ddl.py)."""
    names = [derived_name(table.target, "", "pkey")] * (not table.kept)
    names += [derived_name(table.target, c.target, "key") for c in table.columns if c.unique]
    names += [derived_name(table.target, c.target, "idx") for c in table.links]
    return names


def _validate_schema_wide(plan: Plan) -> None:
    """Types, and the names that share one namespace in the target schema: tables,
    indexes, sequences and types (a constraint's name is its table's)."""
    try:
        validate_types(plan.types)
        validate_functions(plan.functions)
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
    shared += [f for f in plan.functions if f.fate != "drop"]
    if (plan.types or shared) and plan.target_schema != "public":
        raise PlanError(
            f"The plan creates types, sequences or functions, which it names without a schema, "
            f"and its target_schema is {plan.target_schema!r}: this version makes them only "
            "in `public`. Set target_schema: public, or set those types and sequences to "
            "`fate: drop` and create them on the target yourself.")
