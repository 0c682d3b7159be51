"""OPML import into a search (with its report) and export of an organization's sources."""

from __future__ import annotations

from typing import Any

import defusedxml.ElementTree as SafeET
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from core.db.models import NewsSource
from tests.api.conftest import Tenant

#: What names resolve to in these tests (no lookup leaves the machine).
ADDRESSES = {"intranet.example": "10.0.0.5"}
PUBLIC = "93.184.215.14"


def resolver(host: str, _port: int) -> list[str]:
    return [ADDRESSES.get(host, host if host[0].isdigit() else PUBLIC)]


def create_search(client: TestClient, tenant: Tenant, name: str, urls: list[str]) -> str:
    body = {"name": name, "searchQuery": {"query": "", "sources": [{"url": u} for u in urls]}}
    response = client.post("/news", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    news_id: str = response.json()["id"]
    return news_id


def opml(*outlines: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><opml version="2.0"><head><title>x</title>'
        f"</head><body>{''.join(outlines)}</body></opml>"
    )


def feed(url: str, title: str = "") -> str:
    return f'<outline type="rss" text="{title}" xmlUrl="{url}"/>'


def post_opml(client: TestClient, tenant: Tenant, news_id: str, document: str) -> Any:
    return client.post(
        f"/news/{news_id}/sources/opml", json={"opml": document}, headers=tenant.headers
    )


def test_import_adds_new_feeds_and_reports_each_refusal_with_its_reason(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    client.app.state.fetch_resolver = resolver  # type: ignore[attr-defined]
    news_id = create_search(client, org_a, "Tech", ["https://a.example/feed"])
    document = opml(
        feed("https://a.example/feed", "Already followed"),
        '<outline text="Folder">',
        feed("https://b.example/rss", "B"),
        feed("ftp://c.example/feed", "Not http"),
        '<outline text="Nested">' + feed("https://d.example/atom ") + "</outline>",
        "</outline>",
        feed("http://127.0.0.1:8080/feed", "Loopback"),
        feed("https://intranet.example/rss", "Intranet"),
        feed("http://169.254.169.254/latest", "Metadata"),
        feed("https://b.example/rss", "B again"),
        '<outline text="no feed here"/>',
    )
    response = post_opml(client, org_a, news_id, document)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["accepted"] == [
        {"url": "https://b.example/rss", "title": "B"},
        {"url": "https://d.example/atom", "title": None},
    ]
    assert [(r["url"], r["reason"]) for r in report["refused"]] == [
        ("https://a.example/feed", "duplicate"),
        ("ftp://c.example/feed", "invalid_url"),
        ("http://127.0.0.1:8080/feed", "private_address"),
        ("https://intranet.example/rss", "private_address"),
        ("http://169.254.169.254/latest", "private_address"),
        ("https://b.example/rss", "duplicate"),
    ]
    assert all(r["message"] for r in report["refused"])
    assert report["sourceCount"] == 3

    search = client.get(f"/news/{news_id}", headers=org_a.headers).json()
    assert [s["url"] for s in search["searchQuery"]["sources"]] == [
        "https://a.example/feed",
        "https://b.example/rss",
        "https://d.example/atom",
    ]
    with api_engine.connect() as conn:  # the new sources are followed, not only listed
        linked = conn.scalar(
            select(func.count()).select_from(NewsSource).where(NewsSource.newsId == news_id)
        )
    assert linked == 3


def test_import_stops_at_the_source_limit_of_a_search(client: TestClient, org_a: Tenant) -> None:
    client.app.state.fetch_resolver = resolver  # type: ignore[attr-defined]
    news_id = create_search(client, org_a, "Full", [f"https://s.example/{i}" for i in range(99)])
    document = opml(*(feed(f"https://n.example/{i}") for i in range(3)))
    report = post_opml(client, org_a, news_id, document).json()
    assert [f["url"] for f in report["accepted"]] == ["https://n.example/0"]
    assert [r["reason"] for r in report["refused"]] == ["over_limit", "over_limit"]
    assert report["sourceCount"] == 100


def test_hostile_or_wrong_documents_are_a_422_and_change_nothing(
    client: TestClient, org_a: Tenant
) -> None:
    news_id = create_search(client, org_a, "Safe", ["https://a.example/feed"])
    before = client.get(f"/news/{news_id}", headers=org_a.headers).json()
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
        + ']><opml><body><outline xmlUrl="https://x.example/&i;"/></body></opml>'
    )
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
        '<opml><body><outline xmlUrl="https://x.example/&x;"/></body></opml>'
    )
    for document, message in (
        (laughs, "DOCTYPE"),
        (xxe, "DOCTYPE"),
        ("<opml><body>", "well-formed"),
        ("<rss><channel/></rss>", "not an OPML"),
    ):
        response = post_opml(client, org_a, news_id, document)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["fields"][0]["field"] == "opml"
        assert message in error["fields"][0]["message"]
    too_big = opml(feed("https://a.example/x")) + " " * 300_000
    assert post_opml(client, org_a, news_id, too_big).status_code == 413
    assert client.get(f"/news/{news_id}", headers=org_a.headers).json() == before


def test_export_lists_each_searchs_sources_and_no_other_organizations(
    client: TestClient, org_a: Tenant, org_b: Tenant
) -> None:
    create_search(client, org_a, "Tech", ["https://b.example/rss", "https://a.example/feed"])
    create_search(client, org_a, "Energy", ["https://e.example/feed"])
    create_search(client, org_a, "Empty", [])
    create_search(client, org_b, "B only", ["https://secret-b.example/feed"])

    response = client.get("/opml", headers=org_a.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-opml")
    assert "secret-b" not in response.text
    root = SafeET.fromstring(response.content, forbid_dtd=True)
    assert root.get("version") == "2.0"
    folders = {
        folder.get("text"): [o.get("xmlUrl") for o in folder.findall("outline")]
        for folder in root.find("body").findall("outline")
    }
    assert folders == {
        "Energy": ["https://e.example/feed"],
        "Tech": ["https://a.example/feed", "https://b.example/rss"],
    }

    # and it is a file the import takes back
    client.app.state.fetch_resolver = resolver  # type: ignore[attr-defined]
    copy = create_search(client, org_a, "Copy", [])
    report = post_opml(client, org_a, copy, response.text).json()
    assert sorted(f["url"] for f in report["accepted"]) == [
        "https://a.example/feed",
        "https://b.example/rss",
        "https://e.example/feed",
    ]
