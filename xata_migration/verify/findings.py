"""What a check found, and where a user reads it.

A failed check writes its findings (old id, new id, column, source value, target value,
problem) to `xata_migration_checks.findings` in the target; its outcome carries the first
ten and the SQL that lists all. A check that passes clears its earlier findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

from xata_migration.pg.objects import FINDINGS, ensure_tool_tables

EXAMPLES = 10  # findings shown in a check's metadata
MAX_FINDINGS = 100_000  # per check and table: enough to act on, bounded if everything differs


FINDING_COLUMNS = ("xata_id", "new_id", "column_name", "source_value", "target_value",
                   "problem")


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    summary: str
    metadata: dict = field(default_factory=dict)
    # (what, source, target) rows: what was compared and the numbers on both sides
    compared: list[tuple] = field(default_factory=list)
    # the first findings of a failed check, and the SQL that lists all of them
    examples: list[dict] = field(default_factory=list)
    findings_sql: str = ""
    findings_on: str = "target"  # the database to run findings_sql on


def ensure_bookkeeping(target) -> None:
    """The tables the checks read and write (the checks may run on a target loaded long
    ago, by an earlier version): its own short transaction."""
    with target.transaction():
        ensure_tool_tables(target)


def record_findings(target, scope: str, check: str, select: sql.Composable) -> None:
    """Add what `select` (rows of FINDING_COLUMNS) found, up to MAX_FINDINGS."""
    already = target.execute(sql.SQL("SELECT count(*) FROM {} WHERE scope = %s AND"
                                     " check_name = %s").format(FINDINGS),
                             (scope, check)).fetchone()[0]
    target.execute(sql.SQL(
        "INSERT INTO {findings} (scope, check_name, {columns})"
        " SELECT {scope}, {check}, f.* FROM ({select}) f LIMIT {room}").format(
        findings=FINDINGS, columns=sql.SQL(", ").join(map(sql.Identifier, FINDING_COLUMNS)),
        scope=sql.Literal(scope), check=sql.Literal(check), select=select,
        room=sql.Literal(max(MAX_FINDINGS - already, 0))))


def _findings_select(scope: str, check: str) -> sql.Composed:
    return sql.SQL(
        "SELECT {columns} FROM {findings} WHERE scope = {scope} AND check_name = {check}"
        " ORDER BY xata_id, column_name").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, FINDING_COLUMNS)), findings=FINDINGS,
        scope=sql.Literal(scope), check=sql.Literal(check))


def findings_query(scope: str, check: str) -> str:
    """The SQL a person runs on the target to see every finding of one check."""
    return _findings_select(scope, check).as_string(None)


def with_findings(target, outcome: CheckOutcome, scope: str) -> CheckOutcome:
    """A failed check gets its first findings and the SQL that lists them all."""
    if outcome.passed:
        return outcome
    outcome.findings_sql = findings_query(scope, outcome.name)
    rows = target.execute(_findings_select(scope, outcome.name) + sql.SQL(" LIMIT {}").format(
        sql.Literal(EXAMPLES))).fetchall()
    outcome.examples = [dict(zip(FINDING_COLUMNS, row)) for row in rows]
    return outcome


def clear_findings(target, scope: str) -> None:
    """Before a scope's checks run again: what they find now replaces what they found."""
    target.execute(sql.SQL("DELETE FROM {} WHERE scope = %s").format(FINDINGS), (scope,))
