"""The delta watermark: from when the next load must read the source.

Xata's trigger sets a row's `xata_updatedat` to now(), the start time of the transaction
that inserts or updates it. Just before a load's source snapshot is taken, the watermark
is noted: the start of the oldest transaction then open on the source database (or now if
none). A row that the snapshot does not see is written by a transaction open then or
started later, so its `xata_updatedat` is at or after the watermark: the next load reads
only rows with `xata_updatedat >= watermark`, a superset of what changed since.

It is not known (None), and the next load is a full one, when the source has prepared
transactions or shows sessions on its database whose transactions the migration's role
may not see: another role's, without pg_read_all_stats. PostgreSQL names their database
but hides the rest (backend_type, state, xact_start NULL; query '<insufficient
privilege>').
"""

from __future__ import annotations

from datetime import datetime


def watermark(source) -> datetime | None:
    """The time from which the next load must read; None if it cannot be known. Its own
    transaction, so it is taken before the load's snapshot."""
    try:
        now, oldest, hidden, prepared = source.execute(
            "SELECT now(), (SELECT min(xact_start) FROM pg_stat_activity"
            "   WHERE datname = current_database() AND pid <> pg_backend_pid()),"
            " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            "   AND pid <> pg_backend_pid()"
            "   AND (backend_type IS NULL OR query = '<insufficient privilege>')),"
            " (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database())"
        ).fetchone()
    finally:
        source.commit()
    if hidden or prepared:
        return None
    return min(now, oldest) if oldest else now
