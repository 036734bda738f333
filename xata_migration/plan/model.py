"""The migration plan: what each source table becomes in the target.

A plan is a YAML file a person can review, diff and edit (files.py reads and writes it,
validation.py checks it). `introspect` writes one from the source catalog; the Dagster
definitions and the loader only ever read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xata_migration.errors import XataMigrationError
from xata_migration.plan import graph
from xata_migration.plan.objects import SchemaObject

PLAN_VERSION = 1
MAPPING_SCHEMA = "xata_id_map"
SPLIT_ROWS, SPLIT_WORKERS = 2_000_000, 1  # 1: no split unless the plan asks
ON_DELETE_ACTIONS = ("NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT")
ON_UPDATE_ACTIONS = ON_DELETE_ACTIONS
ON_MISSING_CHOICES = ("fail", "null", "skip")
LINK_DECLARATIONS = ("foreign_key", "comment", "plan")
# A link's FOREIGN KEY DEFERRABLE choice, and the SQL that ends its definition.
DEFERRABLE_SQL = {"": "", "immediate": " DEFERRABLE INITIALLY IMMEDIATE",
                  "deferred": " DEFERRABLE INITIALLY DEFERRED"}
DEFERRABLE_CHOICES = tuple(DEFERRABLE_SQL)
ROW_SECURITY_CHOICES = ("", "enabled", "forced")


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
    # "" : the value is the parent's record id, rewritten to its new id. A column name: the
    # value is copied as it is and the FOREIGN KEY references that column of the parent
    # (a parent whose ids are kept, or another unique column of it).
    column: str = ""
    # The FOREIGN KEY's DEFERRABLE: "" (not), "immediate" or "deferred" (INITIALLY ...).
    deferrable: str = ""


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
    # A kept table's identity column: "always" or "by default" (GENERATED ... AS IDENTITY).
    identity: str = ""

    def __post_init__(self):
        self.target = self.target or self.name
        self.source_type = self.source_type or ("text" if self.rewritten else self.type)

    @property
    def rewritten(self) -> bool:
        """A link whose values become its parent's new ids (not one copied as it is)."""
        return bool(self.link) and not self.link.column

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
        return self.rewritten and self.source_type.endswith("[]")


IDS_CHOICES = ("remap", "keep")


@dataclass
class Table:
    name: str
    # remap: the record id whose values new bigint ids replace. keep: "" (the table's
    # own key columns are ordinary columns, copied as they are).
    id_column: str
    columns: list[Column]
    target: str = ""
    ids: str = "remap"
    ids_reason: str = ""
    # keep: the columns that tell one row from another across runs (its primary key or a
    # unique key); [] for a table without one, whose rows are all replaced on each load.
    key: list[str] = field(default_factory=list)
    # Source columns that order new ids; the source id breaks ties.
    id_order: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    # Target rows whose source row was deleted since an earlier run: keep or delete.
    deleted_rows: str = "keep"
    # Constraints and indexes (plan/objects.py), the sequences its defaults call.
    objects: list[SchemaObject] = field(default_factory=list)
    sequences: list[SchemaObject] = field(default_factory=list)
    comment: str | None = None
    # ROW LEVEL SECURITY: "" (off), "enabled" or "forced" (the owner is subject too)
    row_security: str = ""

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
    def kept(self) -> bool:
        """Its ids are kept as they are: no new ids, no mapping."""
        return self.ids == "keep"

    @property
    def target_columns(self) -> set[str]:
        return ({"id"} if not self.kept else set()) | {c.target for c in self.columns}

    @property
    def links(self) -> list[Column]:
        """Every link: the rewritten ones and those copied as they are."""
        return [c for c in self.columns if c.link]

    @property
    def rewritten_links(self) -> list[Column]:
        return [c for c in self.columns if c.rewritten]

    @property
    def own_links(self) -> list[Column]:
        """The rewritten links the table's own asset writes: all but deferred ones."""
        return [c for c in self.rewritten_links if not c.link.deferred]

    @property
    def value_columns(self) -> list[Column]:
        """Every column whose value is copied as it is (links copied as they are too)."""
        return [c for c in self.columns if not c.rewritten]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


VIEW_KINDS = ("view", "materialized")


@dataclass
class View:
    """A view or materialized view of the source schema, made on the target after the
    tables it reads. `query`: its SELECT, rewritten for the key change (plan/views.py)."""
    name: str
    kind: str                      # view | materialized
    query: str
    reads: list[str] = field(default_factory=list)     # tables and views it reads
    columns: list[str] = field(default_factory=list)   # its output columns, in order
    # output columns that are remapped ids: {column: the table whose mapping names them}
    id_columns: dict[str, str] = field(default_factory=dict)
    fate: str = "carry"
    reason: str = ""

    @property
    def carried(self) -> bool:
        return self.fate == "carry"


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
    # The source schema's functions and procedures (those of extensions aside).
    functions: list[SchemaObject] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    # Source tables left out on purpose: {name: why}.
    skipped_tables: dict[str, str] = field(default_factory=dict)
    # A first load of a table of at least split_rows rows is read by split_workers
    # sessions at once, each a range of its pages (load/split.py).
    split_rows: int = SPLIT_ROWS
    split_workers: int = SPLIT_WORKERS

    def object_summary(self) -> list[str]:
        """What the plan carries around the rows, and what it leaves out, in lines."""
        carried: dict[str, int] = {}
        dropped = []
        everything = [(None, t) for t in self.types + self.functions] + [
            (table, item) for table in self.tables for item in table.sequences + table.objects]
        for table, item in everything:
            if item.fate == "carry":
                carried[item.kind] = carried.get(item.kind, 0) + 1
            elif item.fate == "drop":
                where = f"table {table.name!r}, " if table else ""
                dropped.append(f"Not carried: {where}{item.kind} {item.name!r}"
                               + (f" ({item.reason})" if item.reason else ""))
        generated = sum(not c.review for t in self.tables for c in t.generated_columns)
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
        found = [f"{t.kind} {t.name!r}: {t.reason}" for t in self.types + self.functions
                 if t.fate == "review"]
        found += [f"{'view' if v.kind == 'view' else 'materialized view'} {v.name!r}: "
                  f"{v.reason}\n    query: {v.query}" for v in self.views if v.fate == "review"]
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
