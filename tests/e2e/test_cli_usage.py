"""Limits and usage from the shell: `newsmon org limits` and `newsmon org usage`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import newsmon

NONE_SET = {"maxSearches": None, "maxSources": None, "maxDeliveriesPerDay": None}


def test_org_limits_are_set_kept_enforced_and_lifted(tmp_path: Path) -> None:
    assert newsmon("org", "create", "Acme", cwd=tmp_path).returncode == 0
    shown = newsmon("org", "limits", "acme", "--max-searches", "1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {**NONE_SET, "maxSearches": 1}
    kept = newsmon("org", "limits", "acme", "--max-deliveries-per-day", "50", cwd=tmp_path)
    assert json.loads(kept.stdout) == {**NONE_SET, "maxSearches": 1, "maxDeliveriesPerDay": 50}
    search = ("search", "add", "--org", "acme", "--feed", "https://example.com/feed.xml")
    assert newsmon(*search, "--name", "One", cwd=tmp_path).returncode == 0
    refused = newsmon(*search, "--name", "Two", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: limit maxSearches reached: the organization may have 1 searches and has 1"
    )
    lifted = newsmon("org", "limits", "acme", "--lift", "maxSearches", cwd=tmp_path)
    assert json.loads(lifted.stdout) == {**NONE_SET, "maxDeliveriesPerDay": 50}
    assert newsmon(*search, "--name", "Two", cwd=tmp_path).returncode == 0
    wrong = newsmon("org", "limits", "acme", "--lift", "maxStories", cwd=tmp_path)
    assert wrong.returncode == 2 and "--lift" in wrong.stderr


def test_org_usage_prints_a_months_counters(tmp_path: Path) -> None:
    assert newsmon("org", "create", "Acme", cwd=tmp_path).returncode == 0
    usage = newsmon("org", "usage", "acme", "--month", "2026-11", cwd=tmp_path)
    assert usage.returncode == 0, usage.stderr
    assert json.loads(usage.stdout) == {
        "month": "2026-11",
        "fetches": 0,
        "storiesStored": 0,
        "deliveriesSent": 0,
        "apiRequests": 0,
    }
    bad = newsmon("org", "usage", "acme", "--month", "2026-13", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --month: must be a month as YYYY-MM, e.g. 2026-12"
