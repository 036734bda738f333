"""Order-independent fingerprints of a table, computed where the rows are.

Each row is written as one text, ROW(old id, every own link as the old id(s) it points
to, every other value)::text, the same on both sides: the source has the old ids in place,
the target maps its new ids back through the mappings. Two 64-bit hashes of that text
(PostgreSQL's hashtextextended, seeds 0 and 1) are each summed over the table, exactly.
Equal row counts and equal sums mean the same rows: a difference stays unnoticed with a
probability of about 2^-128. Each side computes its own in one scan, both at once, and
only one result row crosses the network.

Sums that differ only say "look closer": the row-by-row comparison in checks.py then
decides, and names the rows. So a fingerprint that differs for a reason that is not a
difference in the data (servers in other encodings, or a PostgreSQL whose hash differs)
costs time, never a wrong verdict.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from psycopg import sql

from xata_migration import ddl
from xata_migration.plan import Column, Plan, Table

def _sums(where: sql.Composable = sql.SQL("true")) -> sql.Composed:
    """Two 64-bit hashes of each row's text (different seeds), each summed over the rows.
    The queries end their row subquery with OFFSET 0, which keeps PostgreSQL from
    computing the row's text once per hash."""
    return sql.SQL("coalesce(sum(hashtextextended(row_text, 0)) FILTER (WHERE {w}), 0),"
                   " coalesce(sum(hashtextextended(row_text, 1)) FILTER (WHERE {w}), 0)").format(
        w=where)


def _row_text(fields: list[sql.Composable]) -> sql.Composed:
    """In "C" collation, the hash is of the text's bytes whatever the database's default."""
    return sql.SQL('(ROW({})::text COLLATE "C") AS row_text').format(sql.SQL(", ").join(fields))


@dataclass
class Side:
    rows: int
    sums: tuple[int, int]
    linked: dict[str, int]  # per own link: rows whose link is set

    @property
    def digest(self) -> str:
        """A short form of the two sums, for people to compare at a glance."""
        return "".join(f"{s % 2 ** 64:016x}" for s in self.sums)


@dataclass
class TargetSide(Side):
    mapping_rows: int = 0
    mapping_keys: int = 0           # columns of the mapping with a unique index (2 = both)
    deleted_ids: int = 0            # mapped ids the source no longer had at the last load
    deleted_rows_kept: int = 0      # target rows of those ids (not hashed)
    joined_rows: int = 0            # target rows x their mapping rows (= rows if 1:1)
    rows_without_mapping: int = 0
    # per own link: values with no mapping back to an old id, or with no parent row
    unmapped_links: dict[str, int] = field(default_factory=dict)
    links_to_no_row: dict[str, int] = field(default_factory=dict)


@dataclass
class Comparison:
    source: Side
    target: TargetSide
    deleted_rows_policy: str = "keep"

    @property
    def identical(self) -> bool:
        """The same rows on both sides, besides those of ids deleted in the source; the
        mapping 1:1 with the target rows and the source ids, deleted ones included."""
        s, t = self.source, self.target
        hashed = t.rows - t.deleted_rows_kept
        return (s.rows == hashed and t.rows == t.joined_rows and t.mapping_keys == 2
                and t.mapping_rows == s.rows + t.deleted_ids
                and (self.deleted_rows_policy == "keep" or not t.deleted_rows_kept)
                and not t.rows_without_mapping and s.sums == t.sums
                and not any(t.unmapped_links.values()) and not any(t.links_to_no_row.values()))


def _source_sql(plan: Plan, table: Table) -> sql.Composed:
    links = table.own_links
    row = [sql.SQL("src.{}::text").format(sql.Identifier(table.id_column))]
    row += [sql.SQL("src.{}::{}").format(sql.Identifier(c.name),
                                         sql.SQL("text[]" if c.is_array_link else "text"))
            for c in links]
    row += [sql.SQL("src.{}").format(sql.Identifier(c.name)) for c in table.value_columns]
    links_set = [sql.SQL(", src.{} AS {}").format(sql.Identifier(c.name),
                                                  sql.Identifier(f"l{i}"))
                 for i, c in enumerate(links)]
    counts = [sql.SQL(", count({})").format(sql.Identifier(f"l{i}")) for i in range(len(links))]
    return sql.SQL("SELECT count(*), {sums}{counts} FROM (SELECT {row}"
                   "{links_set} FROM {table} src OFFSET 0) x").format(
        sums=_sums(), counts=sql.SQL("").join(counts), row=_row_text(row),
        links_set=sql.SQL("").join(links_set),
        table=sql.Identifier(plan.source_schema, table.name))


def _link_back(plan: Plan, column: Column, index: int) -> dict[str, sql.Composable]:
    """For one link of target row t: the old id(s) it points to (`old_ids`), how many of
    its values have no mapping (`unmapped`) or no parent row (`no_row`), and the joins."""
    col, pmap = sql.Identifier(column.target), ddl.mapping_table(column.link.table)
    parent = ddl.target_table(plan, plan.table(column.link.table))
    if column.is_array_link:
        elements_without = sql.SQL(
            "(SELECT count(*) FROM unnest(t.{}) u(v) WHERE u.v IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM {} q WHERE q.{} = u.v))")
        return {"old_ids": sql.SQL(
                    "CASE WHEN t.{col} IS NULL THEN NULL ELSE ARRAY(SELECT q.xata_id FROM"
                    " unnest(t.{col}) WITH ORDINALITY u(v, n) LEFT JOIN {pmap} q"
                    " ON q.new_id = u.v ORDER BY u.n) END").format(col=col, pmap=pmap),
                "unmapped": elements_without.format(col, pmap, sql.Identifier("new_id")),
                "no_row": elements_without.format(col, parent, sql.Identifier(ddl.ID)),
                "joins": sql.SQL("")}
    p, r = sql.Identifier(f"p{index}"), sql.Identifier(f"r{index}")
    return {"old_ids": sql.SQL("{}.xata_id").format(p),
            "unmapped": sql.SQL("(t.{} IS NOT NULL AND {}.xata_id IS NULL)::int").format(col, p),
            "no_row": sql.SQL("(t.{} IS NOT NULL AND {}.id IS NULL)::int").format(col, r),
            "joins": sql.SQL(" LEFT JOIN {pmap} {p} ON {p}.new_id = t.{col}"
                             " LEFT JOIN {parent} {r} ON {r}.id = t.{col}").format(
                pmap=pmap, p=p, col=col, parent=parent, r=r)}


def _target_sql(plan: Plan, table: Table) -> sql.Composed:
    """One scan of the target table, each row with its mapping row and link parents.
    Rows of ids deleted in the source (the list the load keeps) are counted, not hashed."""
    links = [_link_back(plan, c, i) for i, c in enumerate(table.own_links)]
    row = [sql.SQL("m.xata_id")] + [link["old_ids"] for link in links]
    for column in table.value_columns:
        # pgvector's vector holds float4 exactly as real[] does: compared in real[]'s text
        cast = sql.SQL("::real[]") if column.is_pgvector else sql.SQL("")
        row.append(sql.SQL("t.{}{}").format(sql.Identifier(column.target), cast))
    name = sql.Literal(table.name)
    fields = [sql.SQL("m.xata_id"), _row_text(row), sql.SQL(
        "EXISTS (SELECT 1 FROM {} d WHERE d.table_name = {} AND d.xata_id = m.xata_id) AS gone"
    ).format(ddl.DELETED_IN_SOURCE, name)]
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
    return sql.SQL(
        "SELECT (SELECT count(*) FROM {t}), (SELECT count(*) FROM {map}), count(*),"
        " count(*) - count(xata_id), {sums}, (SELECT count(DISTINCT i.indkey[0]) FROM pg_index i"
        "   WHERE i.indrelid = {map_name}::regclass AND i.indisunique AND i.indisvalid"
        "   AND i.indnatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL),"
        " count(*) FILTER (WHERE gone),"
        " (SELECT count(*) FROM {deleted} d WHERE d.table_name = {name}){counts}"
        " FROM (SELECT {fields} FROM {t} t LEFT JOIN {map} m ON m.new_id = t.id{joins}"
        " OFFSET 0) x").format(
        t=ddl.target_table(plan, table), map=ddl.mapping_table(table.name),
        sums=_sums(sql.SQL("NOT gone")),
        map_name=sql.Literal(ddl.mapping_table(table.name).as_string(None)),
        deleted=ddl.DELETED_IN_SOURCE, name=name,
        counts=sql.SQL("").join(counts), fields=sql.SQL(", ").join(fields),
        joins=sql.SQL("").join(link["joins"] for link in links))


def _source_side(source, plan: Plan, table: Table) -> Side:
    try:
        row = source.execute(_source_sql(plan, table)).fetchone()
    finally:
        source.commit()
    return Side(rows=row[0], sums=(int(row[1]), int(row[2])),
                linked={c.name: n for c, n in zip(table.own_links, row[3:])})


def _target_side(target, plan: Plan, table: Table) -> TargetSide:
    row = target.execute(_target_sql(plan, table)).fetchone()
    links = table.own_links
    per_link = [row[9 + 3 * i: 12 + 3 * i] for i in range(len(links))]
    return TargetSide(
        rows=row[0], mapping_rows=row[1], joined_rows=row[2], rows_without_mapping=row[3],
        sums=(int(row[4]), int(row[5])), mapping_keys=row[6], deleted_rows_kept=row[7],
        deleted_ids=row[8],
        linked={c.name: counts[0] for c, counts in zip(links, per_link)},
        unmapped_links={c.name: int(counts[1]) for c, counts in zip(links, per_link)},
        links_to_no_row={c.name: int(counts[2]) for c, counts in zip(links, per_link)})


def compare(source, target, plan: Plan, table: Table) -> Comparison:
    """Both sides' fingerprints, computed at the same time on their own servers."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        source_side = pool.submit(_source_side, source, plan, table)
        target_side = _target_side(target, plan, table)
        return Comparison(source_side.result(), target_side, table.deleted_rows)
