"""The operator page over HTTP: login with an operator key, session cookie, logout."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.db.models import AuditLog, Source, Verification
from tests.api.conftest import Tenant


def login(client: TestClient, key: str):
    return client.post(
        "/ops/login",
        content=f"key={key}",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def test_without_session_the_page_is_the_login_form(client: TestClient):
    page = client.get("/ops")
    assert page.status_code == 200
    assert 'name="key"' in page.text and "Failing sources" not in page.text


def test_operator_key_logs_in_and_the_session_token_is_stored_hashed(
    client: TestClient, operator_key: str, api_engine: Engine
):
    answer = login(client, operator_key)
    assert answer.status_code == 303
    cookie = answer.cookies["newsmon_ops"]
    set_cookie = answer.headers["set-cookie"].lower()
    assert (
        "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/ops" in set_cookie
    )
    page = client.get("/ops")
    assert "Failing sources" in page.text and "Recent runs" in page.text
    with Session(api_engine) as s:
        stored = s.scalars(select(Verification)).one()
        assert cookie not in stored.identifier and cookie not in stored.value
        assert s.scalars(select(AuditLog.action)).all() == ["ops.login"]


def test_wrong_keys_never_log_in(client: TestClient, org_a: Tenant):
    for key in ("nmop_" + "x" * 64, org_a.key, "", "junk"):
        answer = login(client, key)
        assert answer.status_code == 401
        assert "newsmon_ops" not in answer.cookies
    assert "Failing sources" not in client.get("/ops").text


def test_logout_ends_the_session(client: TestClient, operator_key: str, api_engine: Engine):
    login(client, operator_key)
    client.post("/ops/logout", follow_redirects=False)
    assert "Failing sources" not in client.get("/ops").text
    with Session(api_engine) as s:
        assert s.scalars(select(Verification)).all() == []


def test_cross_site_posts_are_refused(client: TestClient, operator_key: str):
    answer = client.post(
        "/ops/login",
        content=f"key={operator_key}",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": "https://evil.example",
        },
    )
    assert answer.status_code == 403


def test_page_escapes_what_feeds_and_tenants_wrote(
    client: TestClient, operator_key: str, api_engine: Engine
):
    with Session(api_engine) as s, s.begin():
        s.add(
            Source(
                url="https://x.example/<script>alert(1)</script>",
                status="failing",
                failureCount=3,
                lastError={"error": "<img src=x onerror=alert(1)>"},
            )
        )
    login(client, operator_key)
    page = client.get("/ops").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page
