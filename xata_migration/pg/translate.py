"""The id translation of links, in both directions, through the parents' mappings.

The load turns each old id into its parent's new id (join_new_ids, new_ids_of_array);
the checks and the fingerprints turn new ids back into old ones (join_old_ids,
old_ids_of_array). Both go through the same mapping tables, xata_id_map.<parent>.
"""

from __future__ import annotations

from psycopg import sql

from xata_migration.pg.objects import mapping_table
from xata_migration.pg.stage import stage_name
from xata_migration.plan.model import Column


def link_elements(column: Column, value: sql.Composable) -> sql.Composed:
    """A link's value as one row per id: the value itself, or each element of an array
    link (NULL elements included)."""
    return sql.SQL("unnest({})" if column.is_array_link else "{}").format(value)


def link_values(column: Column, index: int) -> sql.Composed:
    """The staged id(s) of a link (stage column `index` of stage row `s`), one per row
    (or per array element)."""
    return link_elements(column, sql.SQL("s.{}").format(stage_name(index)))


def join_new_ids(alias: sql.Identifier, parent: str, old_id: sql.Composable) -> sql.Composed:
    """LEFT JOIN the parent's mapping as `alias`, on the old id: `alias.new_id`."""
    return sql.SQL("LEFT JOIN {} {} ON {}.xata_id = {}").format(
        mapping_table(parent), alias, alias, old_id)


def join_old_ids(alias: sql.Identifier, parent: str, new_id: sql.Composable) -> sql.Composed:
    """LEFT JOIN the parent's mapping as `alias`, on the new id: `alias.xata_id`."""
    return sql.SQL("LEFT JOIN {} {} ON {}.new_id = {}").format(
        mapping_table(parent), alias, alias, new_id)


def new_ids_of_array(parent: str, old_ids: sql.Composable) -> sql.Composed:
    """A text[] of old ids as the bigint[] of their new ids: same order, NULL elements
    kept, an id with no mapping NULL."""
    return _mapped_array(old_ids, "new_id", "xata_id", parent)


def old_ids_of_array(parent: str, new_ids: sql.Composable) -> sql.Composed:
    """A bigint[] of new ids as the text[] of the old ids they were given for."""
    return _mapped_array(new_ids, "xata_id", "new_id", parent)


def mapped_old_ids(parent: str, old_ids: sql.Composable) -> sql.Composed:
    """A text[] of old ids with those the mapping lacks as NULL: what the written link
    gives back through old_ids_of_array when every element was rewritten right."""
    return sql.SQL(
        "CASE WHEN {a} IS NULL THEN NULL ELSE ARRAY(SELECT CASE WHEN EXISTS (SELECT 1 FROM"
        " {map} q WHERE q.xata_id = u.v) THEN u.v END FROM unnest({a}) WITH ORDINALITY"
        " u(v, n) ORDER BY u.n) END").format(a=old_ids, map=mapping_table(parent))


def _mapped_array(array: sql.Composable, to: str, key: str, parent: str) -> sql.Composed:
    return sql.SQL(
        "CASE WHEN {a} IS NULL THEN NULL ELSE ARRAY(SELECT q.{to} FROM unnest({a})"
        " WITH ORDINALITY u(v, n) LEFT JOIN {map} q ON q.{key} = u.v ORDER BY u.n) END"
    ).format(a=array, to=sql.Identifier(to), key=sql.Identifier(key),
             map=mapping_table(parent))


def elements_without_row(array: sql.Composable, table: sql.Composable,
                         key: str) -> sql.Composed:
    """How many non-NULL elements of an array link have no row in `table` whose `key`
    equals them (a mapping on xata_id or new_id, or the parent table on id)."""
    return sql.SQL(
        "(SELECT count(*) FROM unnest({}) u(v) WHERE u.v IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM {} q WHERE q.{} = u.v))").format(array, table, sql.Identifier(key))
