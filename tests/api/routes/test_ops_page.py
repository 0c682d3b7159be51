"""The operator page over HTTP: login with an operator key, session cookie, logout; the
page's own origin only on state-changing requests, and its security headers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api.app import create_app
from core.config import Settings
from core.db.models import AuditLog, Source, Verification
from core.db.session import unit_of_work
from core.scheduling.runs import create_manual_run
from tests.api.conftest import FakeClock, Tenant
from tests.support import factories

#: The origin of the page as the test client reaches it.
OWN_ORIGIN = "http://testserver"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def login(client: TestClient, key: str, origin: str | None = OWN_ORIGIN, **headers: str):
    if origin is not None:
        headers["origin"] = origin
    return client.post(
        "/ops/login", content=f"key={key}", headers={**FORM, **headers}, follow_redirects=False
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
    client.post("/ops/logout", headers={"origin": OWN_ORIGIN}, follow_redirects=False)
    assert "Failing sources" not in client.get("/ops").text
    with Session(api_engine) as s:
        assert s.scalars(select(Verification)).all() == []


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "https://evil.example",
        "http://testserver.evil.example",
        "https://testserver",  # another scheme is another origin
        "http://testserver:8080",
        "",
        None,
    ],
)
def test_state_changing_requests_from_anywhere_but_the_page_are_403(
    client: TestClient, operator_key: str, api_engine: Engine, origin: str | None
):
    headers = {} if origin is None else {"origin": origin}
    answer = login(client, operator_key, origin=origin)
    assert answer.status_code == 403, answer.text
    assert "newsmon_ops" not in answer.cookies
    login(client, operator_key)  # a real session, which the forged posts must not touch
    for path in ("/ops/logout", "/ops/dead-letters/replay", "/ops/deliveries/replay"):
        forged = client.post(path, content="queue=fetch&message_id=x", headers={**FORM, **headers})
        assert forged.status_code == 403, (path, forged.text)
    assert "Failing sources" in client.get("/ops").text  # still logged in
    with Session(api_engine) as s:
        assert s.scalars(select(AuditLog.action)).all() == ["ops.login"]


def test_a_browser_sending_only_a_referer_of_the_page_is_accepted(
    client: TestClient, operator_key: str
):
    answer = login(client, operator_key, origin=None, referer=f"{OWN_ORIGIN}/ops")
    assert answer.status_code == 303
    refused = login(client, operator_key, origin=None, referer="https://evil.example/ops")
    assert refused.status_code == 403


def test_behind_a_tls_proxy_the_public_url_is_the_origin_and_the_cookie_is_secure(
    api_engine: Engine, operator_key: str
):
    settings = Settings(public_url="https://ops.example.com/")
    with TestClient(create_app(settings, api_engine)) as proxied:  # the app sees http
        assert login(proxied, operator_key).status_code == 403  # http://testserver
        answer = login(proxied, operator_key, origin="https://ops.example.com")
        assert answer.status_code == 303
        assert "secure" in answer.headers["set-cookie"].lower()
        logout = proxied.post(
            "/ops/logout", headers={"origin": "https://ops.example.com"}, follow_redirects=False
        )
        assert "secure" in logout.headers["set-cookie"].lower()


def test_over_plain_http_without_a_public_url_the_cookie_is_not_secure(
    client: TestClient, operator_key: str
):
    answer = login(client, operator_key)
    assert "secure" not in answer.headers["set-cookie"].lower()


def test_every_ops_response_carries_the_security_headers(client: TestClient, operator_key: str):
    answers = [
        client.get("/ops"),
        login(client, operator_key, origin="null"),
        login(client, "nmop_" + "x" * 64),
        login(client, operator_key),
        client.get("/ops"),
        client.get("/ops/static/ops.css"),
        client.get("/ops/nothing-here"),
    ]
    assert [a.status_code for a in answers] == [200, 403, 401, 303, 200, 200, 404]
    for answer in answers:
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in client.get("/healthz").headers


def test_pages_have_no_inline_script_or_style_for_the_csp_to_block(
    client: TestClient, operator_key: str
):
    pages = [client.get("/ops").text, login(client, "nmop_" + "x" * 64).text]
    login(client, operator_key)
    pages.append(client.get("/ops").text)
    assert "Failing sources" in pages[-1]
    for page in pages:
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", page, re.I)


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


def test_page_writes_lags_and_times_to_the_second_in_words(
    client: TestClient, operator_key: str, api_engine: Engine, clock: FakeClock
):
    now = clock()
    next_fetch = now.replace(microsecond=654321) + timedelta(minutes=5)
    with unit_of_work(api_engine) as session:
        search = factories.news(session, factories.org(session, "lagging"))
        factories.schedule(
            session, search, nextRun=now - timedelta(seconds=73, microseconds=845162)
        )
        create_manual_run(session, search.organizationId, search.id, now=now)
        session.add(
            Source(
                url="https://slow.example/feed",
                status="failing",
                failureCount=1,
                nextFetchAt=next_fetch,
            )
        )
    login(client, operator_key)
    page = client.get("/ops").text
    assert "oldest overdue schedule 1 min 13 s" in page, page
    assert not re.search(r"\d:\d\d:\d\d\.\d|\.\d{6}|\+00:00", page), page
    assert next_fetch.strftime("%Y-%m-%d %H:%M:%S UTC") in page
