"""`xata-migration report`: the checks' outcomes, as Markdown and HTML, fit to attach to
a change ticket.

api.report runs every table's checks again now (the same code as the assets' checks) and
hands them here, timed, to be written with the counts on both sides, the links checked,
the values compared, the first findings of a failed check with the SQL that lists them
all, and the plan it ran with. Database URLs appear with their password masked; the plan
holds none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import markdown
import yaml

from xata_migration.masking import mask_url
from xata_migration.plan.files import plan_to_dict
from xata_migration.plan.model import Plan
from xata_migration.verify import checks, findings


def markdown_table(header: tuple, rows: list) -> str:
    def cell(value) -> str:
        text = "NULL" if value is None else str(value)
        text = text if len(text) <= 80 else text[:77] + "..."
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def findings_table(outcome: findings.CheckOutcome) -> str:
    return markdown_table(
        ("old id", "new id", "column", "source value", "target value", "problem"),
        [tuple(e[c] for c in findings.FINDING_COLUMNS) for e in outcome.examples])


@dataclass
class TableReport:
    name: str
    outcomes: list[findings.CheckOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def value(self, check: str, key: str, default=""):
        for outcome in self.outcomes:
            if outcome.name == check:
                return outcome.metadata.get(key, default)
        return default


def render(reports: list[TableReport], plan: Plan, source_url: str, target_url: str,
           plan_path: str) -> str:
    failed = [(r.name, o) for r in reports for o in r.outcomes if not o.passed]
    checked = sum(len(r.outcomes) for r in reports)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        "# Migration report", "",
        f"Made {now} by `xata-migration report`.", "",
        f"- Source: `{mask_url(source_url)}` (schema `{plan.source_schema}`)",
        f"- Target: `{mask_url(target_url)}` (schema `{plan.target_schema}`, old ids in "
        "`xata_id_map`)",
        f"- Plan: `{plan_path}`", "",
        f"**{'All' if not failed else checked - len(failed)} of {checked} checks passed** "
        f"on {len(reports)} tables."
        + ("" if not failed else " Failed: " + ", ".join(f"{t} {o.name}" for t, o in failed)),
        "", "## Tables", "",
        markdown_table(("table", "source rows", "target rows", "links checked",
                        "values compared", "checks passed", "seconds"),
                       [_summary_row(r) for r in reports]), "",
    ]
    for report in reports:
        lines += _table_section(report)
    lines += ["## The plan", "", "```yaml",
              yaml.safe_dump(plan_to_dict(plan), sort_keys=False, allow_unicode=True,
                             width=100).rstrip(), "```", ""]
    return "\n".join(lines)


def _summary_row(report: TableReport) -> tuple:
    links = report.value("links_intact", "links", {})
    linked = sum(r["linked"] for r in links.values()) if links else "-"
    values = report.value("values_unchanged", "source_rows",
                          report.value("values_unchanged", "target_rows"))
    columns = report.value("values_unchanged", "columns_compared")
    passed = sum(o.passed for o in report.outcomes)
    return (report.name, report.value("row_counts", "source_rows"),
            report.value("row_counts", "target_rows"), linked,
            f"{values} rows x {columns} columns", f"{passed}/{len(report.outcomes)}",
            f"{report.seconds:.2f}")


def _table_section(report: TableReport) -> list[str]:
    lines = [f"### {report.name}", ""]
    lines += [markdown_table(("check", "proves", "result", "what it found"),
                             [(o.name, checks.proves(o.name),
                               "passed" if o.passed else "**FAILED**", o.summary)
                              for o in report.outcomes]), ""]
    for outcome in report.outcomes:
        lines += [f"{outcome.name}:", "",
                  markdown_table(("compared", "source", "target"), outcome.compared), ""]
        if outcome.examples:
            lines += [f"First findings of {outcome.name}:", "", findings_table(outcome), "",
                      f"All of them (run on the {outcome.findings_on}):", "", "```sql",
                      outcome.findings_sql + ";", "```", ""]
    return lines


HTML_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Migration report</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:.2em .5em}}
pre{{background:#f4f4f4;padding:.5em;overflow-x:auto}}</style></head>
<body>
{body}
</body></html>
"""


def write_report(reports: list[TableReport], source_url: str, target_url: str, plan: Plan,
                 plan_path: str, output: str | Path) -> tuple[Path, Path, bool]:
    """Write OUTPUT (Markdown) and OUTPUT with .html; True if every check passed."""
    text = render(reports, plan, source_url, target_url, plan_path)
    output = Path(output)
    html_path = output.with_suffix(".html") if output.suffix != ".html" else output
    markdown_path = output if output.suffix != ".html" else output.with_suffix(".md")
    markdown_path.write_text(text, encoding="utf-8")
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    html_path.write_text(HTML_PAGE.format(body=body), encoding="utf-8")
    return markdown_path, html_path, all(o.passed for r in reports for o in r.outcomes)
