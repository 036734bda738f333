"""Names derived from user table and column names, valid after PostgreSQL's 63-byte limit.

PostgreSQL silently truncates identifiers longer than 63 bytes, so two long names that
share a prefix would collide. Every derived name that would be too long is cut on a
UTF-8 character boundary and given a short hash of the full name, which keeps it distinct.
"""

import hashlib
import re

MAX_IDENTIFIER_BYTES = 63


def _cut_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def fit_identifier(name: str) -> str:
    """Return `name` if it fits in 63 bytes, else a truncated, hash-suffixed form."""
    if len(name.encode("utf-8")) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return _cut_utf8(name, MAX_IDENTIFIER_BYTES - 9) + "_" + digest


def derived_name(table: str, column: str, suffix: str) -> str:
    """A constraint or index name such as `order_buyer_fkey`, always <= 63 bytes."""
    return fit_identifier(f"{table}_{column}_{suffix}" if column else f"{table}_{suffix}")


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


def lock_key(table: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock, one per target table."""
    digest = hashlib.sha1(("xata_migration:" + table).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
