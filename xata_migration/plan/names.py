"""Names derived from user table and column names, valid after PostgreSQL's 63-byte limit.

PostgreSQL silently truncates identifiers longer than 63 bytes, so two long names that
share a prefix would collide. Every derived name that would be too long is cut on a
UTF-8 character boundary and given a short hash of the full name, which keeps it distinct.
"""

import hashlib

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


def lock_key(table: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock, one per target table."""
    digest = hashlib.sha1(("xata_migration:" + table).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
