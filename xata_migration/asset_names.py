"""Dagster's names for a plan's tables: asset keys (the table's own name where Dagster
allows it) and op names, and the rule that no two tables share one. Pure names: the
plan is checked with it before any Dagster definition is built.
"""

import re

from xata_migration.plan.model import Plan, PlanError

_NOT_KEY_CHARS = re.compile(r"[^A-Za-z0-9_]")


def asset_key_part(name: str) -> str:
    """A table (or column) name as one part of a Dagster asset key.

    The name itself where Dagster accepts it (`tag-to-image`, `User`, `order`); Dagster
    derives Python identifiers from keys, so other characters become `_` and Python
    keywords or Dagster's reserved words (`from`, `config`) get a `_table` suffix.
    """
    from dagster._core.definitions.utils import is_valid_name  # pinned dagster version

    def valid(part: str) -> bool:
        return is_valid_name(part.replace("-", "_").replace(".", "_"))

    if valid(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"
    return cleaned if valid(cleaned) else cleaned + "_table"


def dagster_name(table: str, column: str | None = None) -> str:
    """The Dagster op name of a table's asset (or of a deferred link's asset).

    Op names allow only letters, digits and `_` (the asset key keeps the real name);
    the prefix keeps names such as `from` or `1st` valid.
    """
    if column is None:
        return "migrate_" + _NOT_KEY_CHARS.sub("_", table)
    return "link_" + _NOT_KEY_CHARS.sub("_", table) + "__" + _NOT_KEY_CHARS.sub("_", column)


def check_step_names(plan: Plan) -> None:
    """PlanError if two tables (or deferred links) would get one Dagster step or asset key."""
    seen: dict[str, str] = {}
    steps = [(dagster_name(t.name), f"table {t.name!r}") for t in plan.tables]
    steps += [(dagster_name(t.name, c.name), f"link {t.name}.{c.name}")
              for t in plan.tables for c in t.links if c.link.deferred]
    steps += [("asset key " + asset_key_part(t.name), f"table {t.name!r}") for t in plan.tables]
    views = [v for v in plan.views if v.carried]
    steps += [(dagster_name(v.name), f"view {v.name!r}") for v in views]
    steps += [("asset key " + asset_key_part(v.name), f"view {v.name!r}") for v in views]
    for step, what in steps:
        if step in seen:
            raise PlanError(
                f"{seen[step].capitalize()} and {what} would both be the Dagster step "
                f"{step!r}: their names differ only in characters other than letters, "
                "digits and `_`. Rename one of them in the source, or leave one out of the plan.")
        seen[step] = what
