"""Bad input is a 422 naming the field, never a 500 or a silent change (row 65): NUL
characters anywhere, ``null`` on fields that cannot be emptied, date-times that leave
Python's range in UTC, JSON values of the wrong type, a preview with no entries yet."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Tenant
from tests.api.routes.test_news_routes import new_search

NUL = "\x00"
QUERY = {"query": "ai", "sources": [{"url": "https://example.com/feed.xml"}]}
EMAIL = {"host": "smtp.example.com", "from": "news@example.com", "to": ["a@example.com"]}
#: A webhook on loopback (allowed by the API tests' address policy).
HOOK = {"url": "http://127.0.0.1:9/hook", "secret": "whsec_" + "a" * 44}


def assert_422_naming(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]], error


#: Bodies holding a NUL character, and the field the 422 names.
NUL_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("/news", {"name": f"A{NUL}I", "searchQuery": QUERY}, "name"),
    ("/news", {"name": "AI", "searchQuery": {"query": f"ai{NUL}"}}, "searchQuery.query"),
    (
        "/news",
        {"name": "AI", "searchQuery": {"sources": [{"url": f"https://e.example/{NUL}"}]}},
        "searchQuery.sources.0.url",
    ),
    (
        "/news",
        {
            "name": "AI",
            "searchQuery": QUERY,
            "relevanceSettings": {"excludedTerms": ["x", NUL]},
        },
        "relevanceSettings.excludedTerms.1",
    ),
    (
        "/news",
        {"name": "AI", "searchQuery": QUERY, "relevanceSettings": {"boostedTerms": {NUL: 1}}},
        "relevanceSettings.boostedTerms.\\0",
    ),
    (
        "/news",
        {"name": "AI", "searchQuery": QUERY, "waitSettings": {"timezone": f"UTC{NUL}"}},
        "waitSettings.timezone",
    ),
    (
        "/channels",
        {"type": "email", "config": {**EMAIL, "to": [f"a{NUL}@example.com"]}},
        "config.to.0",
    ),
    ("/channels", {"name": NUL, "type": "webhook", "config": HOOK}, "name"),
    ("/teams", {"name": f"Research{NUL}"}, "name"),
    ("/keys", {"name": f"ci{NUL}"}, "name"),
    ("/invitations", {"email": f"ada{NUL}@example.com"}, "email"),
]
#: Bodies holding a JSON value of another type than the document states.
MISTYPED_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("/keys", {"name": "ci", "remaining": False}, "remaining"),
    ("/keys", {"name": "ci", "expiresAt": 1700000000}, "expiresAt"),
    ("/channels", {"type": "webhook", "config": HOOK, "isActive": 0}, "isActive"),
    (
        "/news",
        {"name": "AI", "searchQuery": QUERY, "waitSettings": {"minStories": True}},
        "waitSettings.minStories",
    ),
    (
        "/news",
        {"name": "AI", "searchQuery": QUERY, "relevanceSettings": {"threshold": "0.5"}},
        "relevanceSettings.threshold",
    ),
]


@pytest.mark.parametrize(("path", "body", "field"), [*NUL_BODIES, *MISTYPED_BODIES])
def test_nul_or_a_value_of_another_type_in_a_body_is_422_naming_the_field(
    client: TestClient, org_a: Tenant, path: str, body: dict[str, Any], field: str
) -> None:
    assert_422_naming(client.post(path, json=body, headers=org_a.headers), field)


def test_nul_in_a_patch_and_a_schedule_is_422(client: TestClient, org_a: Tenant) -> None:
    news = new_search(client, org_a)
    patched = client.patch(
        f"/news/{news['id']}", json={"searchQuery": {"query": NUL}}, headers=org_a.headers
    )
    assert_422_naming(patched, "searchQuery.query")
    schedule = client.post(
        f"/news/{news['id']}/schedules",
        json={"cronExpr": "* * * * *", "timezone": f"UTC{NUL}"},
        headers=org_a.headers,
    )
    assert_422_naming(schedule, "timezone")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/news/ab%00cd", "newsId"),
        ("/news/ab%00cd/schedules", "newsId"),
        ("/stories/%00", "storyId"),
        ("/news?cursor=a%00b", "cursor"),
        ("/stories?newsId=%00", "newsId"),
        ("/deliveries?channelId=x%00", "channelId"),
        ("/channels?cursor=%00&limit=5", "cursor"),
    ],
)
def test_nul_in_a_path_or_query_parameter_is_422_naming_it(
    client: TestClient, org_a: Tenant, url: str, field: str
) -> None:
    assert_422_naming(client.get(url, headers=org_a.headers), field)


def test_a_query_parameter_given_twice_is_422_naming_it(client: TestClient, org_a: Tenant) -> None:
    response = client.get("/stories?limit=5&limit=7", headers=org_a.headers)
    assert_422_naming(response, "limit")


def test_nul_in_a_header_is_422_naming_it(client: TestClient, org_a: Tenant) -> None:
    response = client.get("/news", headers={**org_a.headers, "x-trace": f"a{NUL}b"})
    assert_422_naming(response, "x-trace")


@pytest.mark.parametrize("field", ["name", "searchQuery", "relevanceSettings", "waitSettings"])
def test_null_on_a_search_field_is_422_and_changes_nothing(
    client: TestClient, org_a: Tenant, field: str
) -> None:
    news = new_search(client, org_a, relevanceSettings={"threshold": 0.5})
    response = client.patch(f"/news/{news['id']}", json={field: None}, headers=org_a.headers)
    assert_422_naming(response, field)
    assert client.get(f"/news/{news['id']}", headers=org_a.headers).json() == news


def test_null_is_active_does_not_deactivate_a_search(client: TestClient, org_a: Tenant) -> None:
    news = new_search(client, org_a)
    response = client.patch(
        f"/news/{news['id']}", json={"isActive": None, "name": "ML"}, headers=org_a.headers
    )
    assert_422_naming(response, "isActive")
    stored = client.get(f"/news/{news['id']}", headers=org_a.headers).json()
    assert (stored["isActive"], stored["name"]) == (True, "AI")


@pytest.mark.parametrize("field", ["cronExpr", "timezone", "catchUp", "isActive"])
def test_null_on_a_schedule_field_is_422(client: TestClient, org_a: Tenant, field: str) -> None:
    news = new_search(client, org_a)
    base = f"/news/{news['id']}/schedules"
    schedule = client.post(base, json={"cronExpr": "0 9 * * *"}, headers=org_a.headers).json()
    response = client.patch(f"{base}/{schedule['id']}", json={field: None}, headers=org_a.headers)
    assert_422_naming(response, field)


@pytest.mark.parametrize("field", ["name", "config", "isActive"])
def test_null_on_a_channel_field_is_422(client: TestClient, org_a: Tenant, field: str) -> None:
    created = client.post(
        "/channels",
        json={"name": "hook", "type": "webhook", "config": HOOK},
        headers=org_a.headers,
    )
    assert created.status_code == 201, created.text
    channel = created.json()
    response = client.patch(f"/channels/{channel['id']}", json={field: None}, headers=org_a.headers)
    assert_422_naming(response, field)
    assert client.get(f"/channels/{channel['id']}", headers=org_a.headers).json() == channel


@pytest.mark.parametrize("field", ["name", "isActive"])
def test_null_on_an_organization_field_is_422(
    client: TestClient, org_a: Tenant, operator_key: str, field: str
) -> None:
    response = client.patch(
        f"/operator/organizations/{org_a.id}",
        json={field: None},
        headers={"x-api-key": operator_key},
    )
    assert_422_naming(response, field)


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
        "1700000000",  # a number is not a date-time
        "2026-01-01T00:00:00",  # no offset: which time zone?
        "2026-02-30T00:00:00Z",
    ],
)
def test_since_outside_the_range_or_not_a_date_time_is_422(
    client: TestClient, org_a: Tenant, since: str
) -> None:
    response = client.get("/stories", params={"since": since}, headers=org_a.headers)
    assert_422_naming(response, "since")


@pytest.mark.parametrize("expires_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00"])
def test_key_expiry_outside_the_range_is_422(
    client: TestClient, org_a: Tenant, expires_at: str
) -> None:
    response = client.post(
        "/keys", json={"name": "ci", "expiresAt": expires_at}, headers=org_a.headers
    )
    assert_422_naming(response, "expiresAt")


def test_preview_of_a_search_without_entries_is_empty(client: TestClient, org_a: Tenant) -> None:
    news = new_search(client, org_a)
    response = client.post(f"/news/{news['id']}/preview", json={}, headers=org_a.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["wouldDeliver"], body["filtered"], body["notMatching"]) == ([], [], 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from", "news@example.com\r\nBcc: leak@evil.example"),
        ("to", ["a@example.com\r\nBcc: leak@evil.example"]),
        ("unsubscribeUrl", "https://newsmon.example/u\r\nBcc: leak@evil.example"),
        ("unsubscribeMailto", "u@newsmon.example\nX-Evil: 1"),
    ],
)
def test_crlf_in_an_email_header_field_is_422_at_create_and_update(
    client: TestClient, org_a: Tenant, field: str, value: object
) -> None:
    config = {**EMAIL, "host": "127.0.0.1", "security": "none"}
    created = client.post(
        "/channels",
        json={"type": "email", "config": {**config, field: value}},
        headers=org_a.headers,
    )
    assert_422_naming(created, f"config.{field}")
    channel = client.post(
        "/channels", json={"type": "email", "config": config}, headers=org_a.headers
    ).json()
    updated = client.patch(
        f"/channels/{channel['id']}",
        json={"config": {**config, field: value}},
        headers=org_a.headers,
    )
    assert_422_naming(updated, f"config.{field}")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/news", {"GET", "POST"}),
        ("POST", "/news/x", {"GET", "PATCH", "DELETE"}),
        ("GET", "/news/x/run", {"POST"}),
        ("OPTIONS", "/invitations/accept", {"POST"}),  # the literal path, not {invitationId}
    ],
)
def test_405_lists_every_method_of_the_path(
    client: TestClient, org_a: Tenant, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path, headers=org_a.headers)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    assert response.json()["error"]["type"] == "method_not_allowed"


def test_an_organization_name_without_latin_letters_gets_a_slug_and_a_taken_slug_is_409(
    client: TestClient, operator_key: str
) -> None:
    headers = {"x-api-key": operator_key}
    created = client.post("/operator/organizations", json={"name": "株式会社"}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["slug"].startswith("org-")
    first = client.post("/operator/organizations", json={"name": "Acme"}, headers=headers)
    again = client.post("/operator/organizations", json={"name": "Acme!"}, headers=headers)
    assert first.status_code == 201
    assert (again.status_code, again.json()["error"]["fields"][0]["field"]) == (409, "slug")
