"""`xata-migration report`: the target against the source, for a change ticket."""

import pytest

from xata_migration.cli import main
from xata_migration.plan import save_plan
from xata_migration_tests.support import create_hostile_source, execute_sql, migrate, plan_for

pytestmark = pytest.mark.slow  # end to end through Dagster, or a process of its own


def _with_password(url: str) -> str:
    # the embedded server trusts local connections, so the password is sent and ignored
    return url.replace("postgresql://postgres@", "postgresql://postgres:Sup3rSecret@", 1)


def test_report_on_a_migrated_target(source_url, target_url, tmp_path, capsys):
    create_hostile_source(source_url)
    plan = plan_for(source_url)
    assert migrate(plan, source_url, target_url).success
    save_plan(plan, tmp_path / "plan.yaml")
    args = ["report", "--output", str(tmp_path / "for the ticket" / "report.md"), "--plan",
            str(tmp_path / "plan.yaml"), "--source-url", _with_password(source_url),
            "--target-url", _with_password(target_url)]
    assert "Sup3rSecret" in args[-1]  # the URLs given do carry a password

    assert main(args) == 0  # into a folder that did not exist
    text = (tmp_path / "for the ticket" / "report.md").read_text()
    assert "**All of 45 checks passed** on 10 tables." in text
    assert "| tag-to-image | 4 | 4 | 7 | 4 rows x 2 columns | 5/5 |" in text
    assert "| rows | 4 | 4 |" in text  # what row_counts compared, on both sides
    assert "- name: tag-to-image" in text  # the plan it ran with

    execute_sql(target_url, "UPDATE tag SET name = 'cloud' WHERE name = 'sky'")
    assert main(args) == 1
    assert "some checks FAILED" in capsys.readouterr().out
    text = (tmp_path / "for the ticket" / "report.md").read_text()
    html = (tmp_path / "for the ticket" / "report.html").read_text()
    assert "**44 of 45 checks passed** on 10 tables. Failed: tag values_unchanged" in text
    assert "| rec_tag_a | 1 | name | sky | cloud | value differs |" in text
    assert ("SELECT \"xata_id\", \"new_id\", \"column_name\", \"source_value\", "
            "\"target_value\", \"problem\" FROM \"xata_migration_checks\".\"findings\" WHERE "
            "scope = 'tag' AND check_name = 'values_unchanged'") in text
    assert "<td>rec_tag_a</td>" in html and "<td>cloud</td>" in html
    assert "Sup3rSecret" not in text + html and "postgres:***@" in text
