"""Suggestions past the hard filter through the API: typed, tenant-scoped, permission-checked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from core.db.session import unit_of_work
from tests.api.conftest import Tenant, add_key
from tests.support.relevance import (
    MORE_NOISE,
    MORE_SPACE,
    NOISE,
    NOW,
    ORBITER,
    SPACE,
    add_entries,
    new_search,
    run,
    teach,
)

WORLD = SPACE + NOISE + MORE_SPACE + MORE_NOISE


@pytest.fixture
def taught(api_engine: Engine, org_a: Tenant) -> tuple[str, str]:
    """A search of org A with a feedback model, an entry its query misses, and a second
    search whose stories have no labels."""
    with unit_of_work(api_engine) as session:
        labeled = new_search(session, org_a.id)
        add_entries(session, WORLD, at=NOW)
        teach(session, labeled)
        add_entries(session, [ORBITER], at=NOW + timedelta(hours=1), tag="new-")
        fresh = new_search(session, org_a.id)
        run(session, fresh)
        return labeled.id, fresh.id


def test_you_may_have_missed_lists_the_entry_the_query_missed(
    client: TestClient, org_a: Tenant, taught: tuple[str, str]
) -> None:
    labeled, _ = taught
    response = client.get(f"/news/{labeled}/suggestions/missed", headers=org_a.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    [item] = body["items"]
    assert item["title"] == ORBITER[0] and item["explanation"]["suggested"] is True
    assert item["reason"].startswith("no query word, but like the stories you marked relevant")
    assert body["modelVersion"] == 1 and "deliverSuggestions" in body["note"]


def test_query_terms_are_the_models_strongest_words_the_query_lacks(
    client: TestClient, org_a: Tenant, taught: tuple[str, str]
) -> None:
    labeled, _ = taught
    response = client.get(f"/news/{labeled}/suggestions/terms?limit=3", headers=org_a.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert 1 <= len(items) <= 3
    assert "nasa" in [i["term"] for i in items]
    assert not {"rocket", "mars"} & {i["term"] for i in items}


def test_label_these_lists_unlabeled_stories_nearest_the_threshold(
    client: TestClient, org_a: Tenant, taught: tuple[str, str]
) -> None:
    labeled, fresh = taught
    response = client.get(f"/news/{fresh}/suggestions/to-label?limit=5", headers=org_a.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 5
    assert [i["distance"] for i in items] == sorted(i["distance"] for i in items)
    assert all(i["reason"] for i in items)
    done = client.get(f"/news/{labeled}/suggestions/to-label", headers=org_a.headers)
    assert done.json()["items"] == []  # every story there has its label


def test_responses_are_typed_in_openapi(client: TestClient) -> None:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    for path, schema in (
        ("/news/{newsId}/suggestions/missed", "MissedList"),
        ("/news/{newsId}/suggestions/terms", "TermList"),
        ("/news/{newsId}/suggestions/to-label", "ToLabelList"),
    ):
        ok = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{schema}"}


@pytest.mark.parametrize(
    ("path", "granted", "missing"),
    [
        ("missed", {"stories": ["read"]}, "news:read"),
        ("terms", {"stories": ["read"]}, "news:read"),
        ("to-label", {"news": ["read"]}, "stories:read"),
    ],
)
def test_each_route_demands_its_permission(
    client: TestClient,
    api_engine: Engine,
    org_a: Tenant,
    taught: tuple[str, str],
    path: str,
    granted: dict[str, list[str]],
    missing: str,
) -> None:
    key = add_key(api_engine, org_a, permissions=granted)
    response = client.get(f"/news/{taught[0]}/suggestions/{path}", headers={"x-api-key": key})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == f"missing permission {missing}"


def test_another_organizations_search_is_not_found_and_limits_are_checked(
    client: TestClient, org_b: Tenant, org_a: Tenant, taught: tuple[str, str]
) -> None:
    for path in ("missed", "terms", "to-label"):
        response = client.get(f"/news/{taught[0]}/suggestions/{path}", headers=org_b.headers)
        assert response.status_code == 404
        assert taught[0] not in response.text
    response = client.get(f"/news/{taught[0]}/suggestions/missed?limit=0", headers=org_a.headers)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "limit"
