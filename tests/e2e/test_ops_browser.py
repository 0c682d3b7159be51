"""The operator page in headless Chromium: log in, read the failures, log out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings
from core.db.models import Run, Source
from core.db.session import unit_of_work
from core.tenancy.api_keys import create_operator_key
from tests.support import factories
from tests.support.browser import chromium, csp_violations, serve
from tests.support.dead_letter_world import FlakyWorld, flaky_world, wait_until


@pytest.mark.slow
def test_operator_logs_in_sees_failures_and_logs_out(pg_engine: Engine):
    with unit_of_work(pg_engine) as session:
        key = create_operator_key(session, name="night shift").key
        search = factories.news(session, factories.org(session, "acme"), name="Chips")
        session.add(
            Source(
                url="https://feeds.example/broken.xml",
                status="failing",
                failureCount=4,
                lastError={"error": "HTTP 503"},
            )
        )
        session.add(
            Run(
                organizationId=search.organizationId,
                newsId=search.id,
                trigger="manual",
                scheduledFor=datetime(2026, 11, 24, 8, tzinfo=UTC),
                state="failed",
                attempts=5,
                error={"error": "gave up after 5 attempts"},
            )
        )
    with flaky_world() as world, chromium() as browser:
        world.send("poison-1")
        world.wait_dead(1)
        app = create_app(Settings(), pg_engine, broker=world.broker)
        with serve(app) as base:
            _walk_through(browser, base, key, world)


def _walk_through(browser: Any, base: str, key: str, world: FlakyWorld) -> None:
    """Log in wrong and right, read every section, replay a dead letter, log out."""
    browser.get(f"{base}/ops")
    browser.find_element(By.ID, "key").send_keys("nmop_" + "x" * 64)
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "login-error"))
    assert "not a valid operator key" in browser.find_element(By.ID, "login-error").text

    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "failing-sources"))
    sources = browser.find_element(By.ID, "failing-sources").text
    assert "https://feeds.example/broken.xml" in sources and "HTTP 503" in sources
    runs = browser.find_element(By.ID, "recent-runs").text
    assert "acme" in runs and "Chips" in runs and "gave up after 5 attempts" in runs
    assert "night shift" in browser.find_element(By.TAG_NAME, "header").text
    queues = browser.find_element(By.ID, "queues").text
    assert "fetch" in queues and "deliver" in queues
    letters = browser.find_element(By.ID, "dead-letters").text
    assert "poison-1" in letters and "flaky" in letters

    world.fail = False
    browser.find_element(By.CSS_SELECTOR, "#dead-letters button.replay").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "notice"))
    assert "Replayed poison-1" in browser.find_element(By.ID, "notice").text
    wait_until(lambda: world.done == 1)
    browser.get(f"{base}/ops")
    assert "No dead letters" in browser.find_element(By.ID, "dead-letters").text
    browser.save_screenshot(str(_screenshot_path()))

    # the stylesheet is allowed by the CSP: body { color: #222 } applies
    assert browser.execute_script("return getComputedStyle(document.body).color") == (
        "rgb(34, 34, 34)"
    )
    browser.find_element(By.ID, "logout").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "key"))
    browser.get(f"{base}/ops")  # the session is gone for good, not just this page
    assert browser.find_elements(By.ID, "key")
    assert not browser.find_elements(By.ID, "failing-sources")
    # Every page, form post and redirect above ran under the CSP without a violation.
    assert csp_violations(browser) == []


def _screenshot_path() -> Path:
    """Where the last run leaves its screenshot, for a person to look at."""
    path = Path(__file__).resolve().parents[2] / "data" / "test-ops-page.png"
    path.parent.mkdir(exist_ok=True)
    return path
