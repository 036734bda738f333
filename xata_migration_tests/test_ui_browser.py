"""The Dagster UI flow an operator follows, in a real headless Chromium (Debian's
`chromium` and `chromium-driver`; `make test` installs them, see install_browser.sh):
open the asset graph of the demo, "Materialize all", see the run succeed and a table's
checks pass; then, with a link in the source that points nowhere, materialize that table,
see the failed check and its report, fix the source, "Re-execute" "From failure".

Screenshots of every step go to test-artifacts/ui/ (kept by CI as the test's artifacts).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from xata_migration.plan import save_plan
from xata_migration.sources import build_demo_source
from xata_migration_tests.support import execute_sql, free_port, plan_for

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "ui"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BROKEN_TABLE, BROKEN_COLUMN = "user-saved-documents", "document"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("XATA_MIGRATION_SKIP_BROWSER") == "1",
    reason="XATA_MIGRATION_SKIP_BROWSER=1: the browser test was turned off on purpose")]



@pytest.fixture
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("No headless browser: run xata_migration_tests/install_browser.sh (as root;"
                    " `make test` does), or set XATA_MIGRATION_SKIP_BROWSER=1 to skip this test.")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1600,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def dagster_ui(pg_server, tmp_path):
    """`xata-migration dev --plan` on a user's plan (of a demo source), run history in
    PostgreSQL as dagster_home says."""
    source_url = pg_server.create_database("ui_src")
    target_url = pg_server.create_database("ui_tgt")
    storage_url = pg_server.create_database("ui_dagster")
    build_demo_source(source_url, base_rows=10)
    plan_path = tmp_path / "plan.yaml"
    save_plan(plan_for(source_url), plan_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home),
               DAGSTER_PG_URL=storage_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    log = open(tmp_path / "dagster-dev.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "xata_migration.cli", "dev", "--plan", str(plan_path),
         "--source-url", source_url, "--target-url", target_url, "--port", str(port)],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, server, tmp_path / "dagster-dev.log")
        yield {"url": f"http://127.0.0.1:{port}", "source": source_url, "target": target_url,
               "storage": storage_url}
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def _wait_for_port(port, server, log_path, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, log_path.read_text()[-3000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dagster dev did not start: {log_path.read_text()[-3000:]}")


class Page:
    """The few things the test does in the browser, each waiting for the UI to catch up."""

    def __init__(self, driver, base_url):
        self.driver, self.base_url = driver, base_url

    def open(self, path: str, expect: str, timeout=60):
        self.driver.get(self.base_url + path)
        self.wait_for_text(expect, timeout)
        self.dismiss_newsletter()

    def text(self) -> str:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.TAG_NAME, "body").text

    def wait_for_text(self, expected: str, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expected in self.text():
                return
            time.sleep(0.5)
        self.shot("failed-here")
        raise AssertionError(f"{expected!r} not on the page: {self.text()[-2000:]}")

    def visible(self, xpath: str, what: str, timeout=30):
        from selenium.webdriver.common.by import By
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for found in self.driver.find_elements(By.XPATH, xpath):
                if found.is_displayed():
                    return found
            time.sleep(0.3)
        self.shot("failed-here")
        raise AssertionError(f"no {what} on the page: {self.text()[-2000:]}")

    def click(self, label: str):
        """Click the button labelled `label`."""
        self._click(f"//button[normalize-space()='{label}']", f"button {label!r}")

    def click_text(self, label: str):
        """Click what shows exactly `label` (a link, a list entry)."""
        self._click(f"//*[normalize-space(text())='{label}']", f"{label!r}")

    def _click(self, xpath: str, what: str, timeout=30):
        """Dagster's first-visit dialog can appear a moment after the page, over what is
        to be clicked: then it is skipped and the click made again."""
        from selenium.common.exceptions import ElementClickInterceptedException
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.visible(xpath, what).click()
                return
            except ElementClickInterceptedException:
                if time.monotonic() > deadline:
                    self.shot("failed-here")
                    raise
                self.dismiss_newsletter()
                time.sleep(0.5)

    def launched_run(self, storage_url, known: int, timeout=60) -> tuple[str, str]:
        """The run the last click launched, once finished: (run id, status). While it works
        the page is blank: the live asset graph would take much of the machine's CPU."""
        deadline = time.monotonic() + timeout
        while len(_runs(storage_url)) <= known:
            assert time.monotonic() < deadline, "the UI launched no run"
            time.sleep(0.3)
        self.driver.get("about:blank")
        return _wait_for_new_run(storage_url, known)

    def dismiss_newsletter(self):
        """Dagster's first-visit dialog covers the page."""
        if "Join the Dagster community" in self.text():
            self.click("Skip")
            time.sleep(0.5)

    def shot(self, name: str):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _runs(storage_url):
    with psycopg.connect(storage_url) as conn:
        return conn.execute("SELECT run_id, status FROM runs ORDER BY id").fetchall()


def _wait_for_new_run(storage_url, known: int, timeout=300) -> tuple[str, str]:
    """The run launched after the first `known` ones, once it has finished."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        runs = _runs(storage_url)
        if len(runs) > known and runs[known][1] in ("SUCCESS", "FAILURE", "CANCELED"):
            print(f"run {known + 1} finished after {time.monotonic() - started:.0f} s")
            return runs[known]
        time.sleep(1)
    raise AssertionError(f"no finished run after {known}: {_runs(storage_url)}")


def _started_steps(storage_url, run_id) -> set[str]:
    with psycopg.connect(storage_url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT step_key FROM event_logs WHERE run_id = %s"
            " AND dagster_event_type = 'STEP_START'", (run_id,))}


def test_materialize_fail_fix_and_reexecute_in_the_ui(browser, dagster_ui):
    page, storage = Page(browser, dagster_ui["url"]), dagster_ui["storage"]

    page.open("/asset-groups", "Materialize all")
    page.wait_for_text(BROKEN_TABLE)
    page.shot("01-asset-graph")
    page.click("Materialize all")
    run_id, status = page.launched_run(storage, 0)
    assert status == "SUCCESS"
    page.open(f"/runs/{run_id}", "Success")
    page.shot("02-run-succeeded")

    page.open("/assets/users?view=checks", "values_unchanged")
    page.wait_for_text("row_counts")
    assert "Failed" not in page.text()
    page.wait_for_text("Passed")
    page.shot("03-checks-passed")

    # A link that points nowhere, as a dump or CSV export can hold (no FOREIGN KEY).
    execute_sql(dagster_ui["source"],
                f'ALTER TABLE "{BROKEN_TABLE}" DROP CONSTRAINT "{BROKEN_TABLE}_{BROKEN_COLUMN}_fkey"',
                f'UPDATE "{BROKEN_TABLE}" SET "{BROKEN_COLUMN}" = \'rec_gone\''
                f" WHERE xata_id = (SELECT min(xata_id) FROM \"{BROKEN_TABLE}\")")
    page.open(f"/assets/{BROKEN_TABLE}", "Materialize")
    page.click("Materialize")
    failed_run, status = page.launched_run(storage, 1)
    assert status == "FAILURE"
    page.open(f"/assets/{BROKEN_TABLE}?view=checks", "links_intact")
    page.click_text("links_intact")
    page.wait_for_text("rec_gone")  # the report names the value that points nowhere
    page.wait_for_text("Run on the source to see every finding")
    page.shot("04-failed-check-report")

    execute_sql(dagster_ui["source"],
                f'UPDATE "{BROKEN_TABLE}" SET "{BROKEN_COLUMN}" = NULL'
                f" WHERE \"{BROKEN_COLUMN}\" = 'rec_gone'")
    page.open(f"/runs/{failed_run}", "Re-execute all")
    page.visible("//button[.//div[@aria-label='arrow_drop_down']]", "re-execute menu").click()
    page.click("From failure")
    rerun, status = page.launched_run(storage, 2)
    assert status == "SUCCESS"
    assert _started_steps(storage, rerun) == {"migrate_user_saved_documents"}
    page.open(f"/runs/{rerun}", "Success")
    page.shot("05-reexecuted-from-failure")
    page.open(f"/assets/{BROKEN_TABLE}?view=checks", "links_intact")
    page.wait_for_text("Passed")
    assert "Failed" not in page.text()
    page.shot("06-checks-passed-after-fix")
