"""Order-independent fingerprints of a table, computed where the rows are.

Each row is one record, the same on both sides: (old id, every own link as the old id(s)
it points to, every other value). The source has the old ids in place; the target maps
its new ids back through the mappings. The row's hash is PostgreSQL's
hash_record_extended of that record, hashed once more as a whole (the record hash adds
its fields' hashes, so without that a value moved from one row to another would leave
the sum unchanged). The row hashes are summed over the table, exactly. Equal row counts
and equal sums mean the same rows: a difference stays unnoticed with a probability of
about 2^-64. Each side computes its own in one scan, both at once, and only one result
row crosses the network.

A field is hashed as itself only where a hash sees every difference two values can
have: text by its bytes, integers, dates, uuids, bytea, and the 8-byte types (bigint,
timestamps) by their binary form (their own hash folds 64 bits into 32). Every other
type is hashed as its text, which keeps what equality ignores: -0 and 0 in a float,
1.0 and 1.00 in a numeric, an array's dimensions.

Sums that differ only say "look closer": the row-by-row comparison in checks.py then
decides, and names the rows. So a fingerprint that differs for a reason that is not a
difference in the data (servers in other encodings, or a PostgreSQL whose hash differs)
costs time, never a wrong verdict.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from psycopg import sql

from xata_migration.pg import translate
from xata_migration.pg.objects import DELETED_IN_SOURCE, ID, mapping_table, target_table
from xata_migration.pg.stage import row_key
from xata_migration.plan.model import Column, Plan, Table

HASHED_AS_TEXT_BYTES = {"text", "character varying"}
HASHED_AS_IS = {"smallint", "integer", "boolean", "date", "uuid", "bytea"}
HASHED_AS_BINARY = {"bigint": "int8send", "timestamp with time zone": "timestamptz_send",
                    "timestamp without time zone": "timestamp_send",
                    "time without time zone": "time_send"}


def hashed(expression: sql.Composable, type_name: str) -> sql.Composed:
    """A field of the row's record, in the form its hash sees every difference in."""
    if type_name in HASHED_AS_TEXT_BYTES or type_name.startswith("character varying("):
        return sql.SQL('{} COLLATE "C"').format(expression)
    if type_name in HASHED_AS_IS:
        return sql.SQL("{}").format(expression)
    if type_name in HASHED_AS_BINARY:
        return sql.SQL("{}({})").format(sql.SQL(HASHED_AS_BINARY[type_name]), expression)
    return sql.SQL('({})::text COLLATE "C"').format(expression)


AS_TEXT = "any type, as its text"


def value_type(column: Column) -> str:
    """The type both sides hash a value column as: its own if the target kept the
    source's type, else its text (a vector's as the real[] it was)."""
    if column.type == column.source_type:
        return column.type
    return AS_TEXT


def _sum(where: sql.Composable = sql.SQL("true")) -> sql.Composed:
    """The sum of the row hashes (a sum PostgreSQL can split among parallel workers)."""
    return sql.SQL("coalesce(sum(row_hash) FILTER (WHERE {}), 0)").format(where)


def _row_hash(fields: list[sql.Composable]) -> sql.Composed:
    return sql.SQL("hashtextextended(hash_record_extended(ROW({}), 0)::text, 0) AS row_hash"
                   ).format(sql.SQL(", ").join(fields))


@dataclass
class Side:
    rows: int
    sum: int
    linked: dict[str, int]  # per own link: rows whose link is set
    ranges: int = 1         # sessions that computed it, each a range of the table

    @property
    def digest(self) -> str:
        """A short form of the sum, for people to compare at a glance."""
        return f"{self.sum % 2 ** 64:016x}"

    def __add__(self, other: Side) -> Side:
        """The fingerprint of two sets of rows with no row in common."""
        return Side(self.rows + other.rows, self.sum + other.sum,
                    {name: n + other.linked[name] for name, n in self.linked.items()},
                    self.ranges + other.ranges)


@dataclass
class TargetSide(Side):
    mapping_rows: int = 0
    mapping_keys: int = 0           # columns of the mapping with a unique index (2 = both)
    deleted_ids: int = 0            # mapped ids the source no longer had at the last load
    deleted_rows_kept: int = 0      # target rows of those ids (not hashed)
    joined_rows: int = 0            # target rows x their mapping rows (= rows if 1:1)
    rows_without_mapping: int = 0
    # per own link: values with no mapping back to an old id, or with no parent row
    # (0 without looking where a validated FOREIGN KEY proves it)
    unmapped_links: dict[str, int] = field(default_factory=dict)
    links_to_no_row: dict[str, int] = field(default_factory=dict)


@dataclass
class Comparison:
    source: Side
    target: TargetSide
    deleted_rows_policy: str = "keep"
    kept_ids: bool = False   # a table whose ids are kept: no mapping to compare

    @property
    def identical(self) -> bool:
        """The same rows on both sides, besides those of ids deleted in the source; the
        mapping 1:1 with the target rows and the source ids, deleted ones included."""
        s, t = self.source, self.target
        hashed = t.rows - t.deleted_rows_kept
        if self.kept_ids:
            return (s.rows == hashed and s.sum == t.sum
                    and (self.deleted_rows_policy == "keep" or not t.deleted_rows_kept)
                    and not any(t.unmapped_links.values())
                    and not any(t.links_to_no_row.values()))
        return (s.rows == hashed and t.rows == t.joined_rows and t.mapping_keys == 2
                and t.mapping_rows == s.rows + t.deleted_ids
                and (self.deleted_rows_policy == "keep" or not t.deleted_rows_kept)
                and not t.rows_without_mapping and s.sum == t.sum
                and not any(t.unmapped_links.values()) and not any(t.links_to_no_row.values()))


def _source_sql(plan: Plan, table: Table, rows: sql.Composable = sql.SQL("true")
                ) -> sql.Composed:
    links = table.own_links
    row = [] if table.kept else [
        hashed(sql.SQL("src.{}::text").format(sql.Identifier(table.id_column)), "text")]
    row += [hashed(sql.SQL("src.{}::{}").format(sql.Identifier(c.name), sql.SQL(link_type(c))),
                   link_type(c)) for c in links]
    row += [hashed(sql.SQL("src.{}").format(sql.Identifier(c.name)), value_type(c))
            for c in table.value_columns]
    links_set = [sql.SQL(", src.{} AS {}").format(sql.Identifier(c.name),
                                                  sql.Identifier(f"l{i}"))
                 for i, c in enumerate(links)]
    counts = [sql.SQL(", count({})").format(sql.Identifier(f"l{i}")) for i in range(len(links))]
    return sql.SQL("SELECT count(*), {sum}{counts} FROM (SELECT {row}"
                   "{links_set} FROM {table} src WHERE {rows}) x").format(
        sum=_sum(), counts=sql.SQL("").join(counts), row=_row_hash(row),
        links_set=sql.SQL("").join(links_set),
        table=sql.Identifier(plan.source_schema, table.name), rows=rows)


def link_type(column: Column) -> str:
    """A link as both sides hash it: the old id(s) it points to."""
    return "text[]" if column.is_array_link else "text"


def _link_back(plan: Plan, column: Column, index: int,
               proven: bool) -> dict[str, sql.Composable]:
    """For one link of target row t: the old id(s) it points to (`old_ids`), how many of
    its values have no mapping (`unmapped`) or no parent row (`no_row`), and the joins.
    `proven`: a validated FOREIGN KEY already says every value has a parent row."""
    col, pmap = sql.Identifier(column.target), mapping_table(column.link.table)
    parent = target_table(plan, plan.table(column.link.table))
    value = sql.SQL("t.{}").format(col)
    if column.is_array_link:
        return {"old_ids": translate.old_ids_of_array(column.link.table, value),
                "unmapped": translate.elements_without_row(value, pmap, "new_id"),
                "no_row": translate.elements_without_row(value, parent, ID),
                "joins": sql.SQL("")}
    p, r = sql.Identifier(f"p{index}"), sql.Identifier(f"r{index}")
    link = {"old_ids": sql.SQL("{}.xata_id").format(p),
            "unmapped": sql.SQL("(t.{} IS NOT NULL AND {}.xata_id IS NULL)::int").format(col, p),
            "joins": sql.SQL(" ") + translate.join_old_ids(p, column.link.table, value)}
    if proven:
        return link | {"no_row": sql.SQL("0")}
    return link | {
        "no_row": sql.SQL("(t.{} IS NOT NULL AND {}.id IS NULL)::int").format(col, r),
        "joins": link["joins"] + sql.SQL(" LEFT JOIN {parent} {r} ON {r}.id = t.{col}").format(
            parent=parent, r=r, col=col)}


def target_sql(plan: Plan, table: Table, proven: set[str], any_deleted: bool,
                rows: sql.Composable = sql.SQL("true"), whole: bool = True,
                mapped: sql.Composable = sql.SQL("true")) -> sql.Composed:
    """One scan of the target table's `rows` (a condition on `t`), each row with its
    mapping row and link parents: the counts and sums of PART_COLUMNS, then (`whole`) the
    mapping's, which are of the whole table. `mapped`: a condition on the mapping (`m`)
    that every mapping row of `rows` meets, so the join reads no more of it. Rows of ids
    deleted in the source (the list the load keeps) are counted, not hashed."""
    links = [_link_back(plan, c, i, c.name in proven) for i, c in enumerate(table.own_links)]
    # a kept table's rows have no old id: `old` stands in, never NULL, and no mapping
    old = sql.SQL("'kept'::text") if table.kept else sql.SQL("m.xata_id")
    mapping = target_table(plan, table) if table.kept else mapping_table(table.name)
    row = [] if table.kept else [hashed(old, "text")]
    row += [hashed(link["old_ids"], link_type(c)) for c, link in zip(table.own_links, links)]
    for column in table.value_columns:
        # pgvector's vector holds float4 exactly as real[] does: compared as real[]
        cast = sql.SQL("::real[]") if column.compared_as_real_array else sql.SQL("")
        row.append(hashed(sql.SQL("t.{}{}").format(sql.Identifier(column.target), cast),
                          value_type(column)))
    name = sql.Literal(table.name)
    key = row_key(table, "t", names="target") if table.kept else old
    gone = sql.SQL(
        "EXISTS (SELECT 1 FROM {} d WHERE d.table_name = {} AND d.xata_id = {})"
    ).format(DELETED_IN_SOURCE, name, key) if any_deleted else sql.SQL("false")
    fields = [sql.SQL("{} AS xata_id").format(old), _row_hash(row),
              sql.SQL("{} AS gone").format(gone)]
    counts = []
    for i, (column, link) in enumerate(zip(table.own_links, links)):
        fields += [sql.SQL("t.{} AS {}").format(sql.Identifier(column.target),
                                                sql.Identifier(f"l{i}")),
                   sql.SQL("{} AS {}").format(link["unmapped"], sql.Identifier(f"u{i}")),
                   sql.SQL("{} AS {}").format(link["no_row"], sql.Identifier(f"n{i}"))]
        counts.append(sql.SQL(
            ", count({l}) FILTER (WHERE NOT gone), coalesce(sum({u}), 0), coalesce(sum({n}), 0)"
        ).format(l=sql.Identifier(f"l{i}"), u=sql.Identifier(f"u{i}"),
                 n=sql.Identifier(f"n{i}")))
    mapping_counts = sql.SQL(
        ", (SELECT count(*) FROM {map}), (SELECT count(DISTINCT i.indkey[0]) FROM pg_index i"
        "   WHERE i.indrelid = {map_name}::regclass AND i.indisunique AND i.indisvalid"
        "   AND i.indnatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL)").format(
        map=mapping, map_name=sql.Literal(mapping.as_string(None)))
    return sql.SQL(
        "SELECT (SELECT count(*) FROM {t} t WHERE {rows}), count(*), count(*) - count(xata_id),"
        " {sum}, count(*) FILTER (WHERE gone){counts}{mapping_counts}"
        " FROM (SELECT {fields} FROM {t} t {mapped}{joins} WHERE {rows}) x").format(
        t=target_table(plan, table), rows=rows,
        mapped=sql.SQL("") if table.kept else sql.SQL(
            "LEFT JOIN {} m ON m.new_id = t.id AND {}").format(mapping, mapped),
        sum=_sum(sql.SQL("NOT gone")), counts=sql.SQL("").join(counts),
        mapping_counts=mapping_counts if whole else sql.SQL(""),
        fields=sql.SQL(", ").join(fields),
        joins=sql.SQL("").join(link["joins"] for link in links))


def proven_by_foreign_key(target, plan: Plan, table: Table) -> set[str]:
    """The own links whose every value has a parent row, as PostgreSQL guarantees: a
    validated FOREIGN KEY from the column to the parent's id, none of its triggers off.
    One query for all the table's links."""
    links = [c for c in table.own_links if not c.is_array_link]
    if not links:
        return set()
    proven = target.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL(
            "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'f' AND c.convalidated"
            " AND c.conrelid = to_regclass({child}) AND c.confrelid = to_regclass({parent})"
            " AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute"
            "   WHERE attrelid = c.conrelid AND attname = {column})]"
            " AND c.confkey = ARRAY[(SELECT attnum FROM pg_attribute"
            "   WHERE attrelid = c.confrelid AND attname = {id})]"
            " AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgconstraint = c.oid"
            "   AND g.tgenabled = 'D'))").format(
            child=sql.Literal(target_table(plan, table).as_string(target)),
            parent=sql.Literal(target_table(plan, plan.table(c.link.table)).as_string(target)),
            column=sql.Literal(c.target), id=sql.Literal(ID))
        for c in links))).fetchone()
    return {c.name for c, is_proven in zip(links, proven) if is_proven}


def source_side_of(source, plan: Plan, table: Table,
                   rows: sql.Composable = sql.SQL("true")) -> Side:
    """The source's fingerprint of the table (of its `rows`: a condition on `src`), in
    one transaction of `source`."""
    try:
        row = source.execute(_source_sql(plan, table, rows)).fetchone()
    finally:
        source.commit()
    return Side(rows=row[0], sum=int(row[1]),
                linked={c.name: n for c, n in zip(table.own_links, row[2:])})


def target_side_from(table: Table, parts: list[tuple], deleted_ids: int) -> TargetSide:
    """The target's side from its parts' rows (target_sql; the first also `whole`)."""
    summed = [sum(int(part[i]) for part in parts) for i in range(5 + 3 * len(table.own_links))]
    rows, joined, without_mapping, row_sum, gone = summed[:5]
    mapping_rows, mapping_keys = parts[0][len(summed):]
    per_link = [summed[5 + 3 * i: 8 + 3 * i] for i in range(len(table.own_links))]
    links = table.own_links
    return TargetSide(
        rows=rows, mapping_rows=mapping_rows, joined_rows=joined,
        rows_without_mapping=without_mapping, sum=row_sum, mapping_keys=mapping_keys,
        deleted_rows_kept=gone, deleted_ids=deleted_ids, ranges=len(parts),
        linked={c.name: counts[0] for c, counts in zip(links, per_link)},
        unmapped_links={c.name: counts[1] for c, counts in zip(links, per_link)},
        links_to_no_row={c.name: counts[2] for c, counts in zip(links, per_link)})


def deleted_ids_of(target, table: Table) -> int:
    return target.execute(sql.SQL("SELECT count(*) FROM {} WHERE table_name = %s").format(
        DELETED_IN_SOURCE), (table.name,)).fetchone()[0]


def target_side_of(target, plan: Plan, table: Table) -> TargetSide:
    """The target's fingerprint of the table, its mapping's counts and its links' checks."""
    deleted_ids = deleted_ids_of(target, table)
    proven = proven_by_foreign_key(target, plan, table)
    row = target.execute(target_sql(plan, table, proven, deleted_ids > 0)).fetchone()
    return target_side_from(table, [row], deleted_ids)


def compare(source, target, plan: Plan, table: Table, source_side: Side | None = None,
            target_side: TargetSide | None = None) -> Comparison:
    """Both sides' fingerprints, computed at the same time on their own servers, unless
    given (the source's may come from the load: see SourceFingerprint; both may have been
    computed by ranges: fingerprint_ranges.py)."""
    if source_side is not None:
        return Comparison(source_side, target_side or target_side_of(target, plan, table),
                          table.deleted_rows, table.kept)
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(source_side_of, source, plan, table)
        target_side = target_side or target_side_of(target, plan, table)
        return Comparison(future.result(), target_side, table.deleted_rows, table.kept)


class SourceFingerprint:
    """The source's fingerprint of a table, computed on `connection` in a thread of its
    own: `start` begins it (the load calls for it once its rows are read, so the source
    computes it while the target still writes them), `side` waits for it (None if it was
    never started). `connection` must read the snapshot the load read. Use it as a
    context manager: on leaving, a computation nobody waited for (the load failed) is
    stopped."""

    def __init__(self, connection, plan: Plan, table: Table):
        self.connection, self.plan, self.table = connection, plan, table
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._future = None

    def start(self) -> None:
        if self._future is None:
            self._future = self._pool.submit(source_side_of, self.connection, self.plan,
                                             self.table)

    def side(self) -> Side | None:
        return self._future.result() if self._future else None

    def __enter__(self) -> SourceFingerprint:
        return self

    def __exit__(self, *exc) -> None:
        if self._future and not self._future.done():
            self.connection.cancel_safe()
        self._pool.shutdown(wait=True)
