"""/docs works offline: every asset it names is served here, under the page's own CSP."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.testclient import TestClient

from api.routes.ops import SECURITY_HEADERS as OPS_HEADERS

#: Any URL of another origin (``//host`` or ``scheme://``) in an attribute or script.
EXTERNAL = re.compile(r"""(?:src|href|url)\s*[=:(]\s*["']?(?:[a-z]+:)?//""", re.IGNORECASE)


def _asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)="([^"]+)\"""", html)


def test_docs_page_names_no_outside_url_and_every_asset_answers(client: TestClient):
    page = client.get("/docs")
    assert page.status_code == 200
    assert not EXTERNAL.search(page.text), page.text
    urls = _asset_urls(page.text)
    assert {u.rsplit("/", 1)[1] for u in urls} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    bundle = client.get(next(u for u in urls if u.endswith("swagger-ui-bundle.js"))).text
    # Swagger UI 5 is the first that renders OpenAPI 3.1, which FastAPI writes.
    assert re.search(r'"5\.\d+\.\d+"', bundle)
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_only_the_named_assets_are_served(client: TestClient):
    for name in ("index.html", "swagger-initializer.js", "..%2F__init__.py", "LICENSE"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name


def test_docs_csp_allows_the_page_inline_script_by_hash_and_nothing_from_elsewhere(
    client: TestClient,
):
    page = client.get("/docs")
    csp = page.headers["content-security-policy"]
    for script in re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp and "unsafe-eval" not in csp
    # Every other header is the operator page's, on the page and its assets alike.
    asset = client.get("/docs/assets/swagger-ui.css")
    for name, value in OPS_HEADERS:
        if name != "content-security-policy":
            assert page.headers[name] == value and asset.headers[name] == value
    assert asset.headers["content-security-policy"] == csp


def test_docs_openapi_and_assets_have_their_own_metrics_route_label(client: TestClient):
    for path in ("/docs", "/openapi.json", "/docs/assets/swagger-ui.css"):
        assert client.get(path).status_code == 200
    text = client.get("/metrics").text
    for route in ("/docs", "/openapi.json", "/docs/assets/{name}"):
        assert f'route="{route}",status="200"' in text, route
    assert 'route="unmatched",status="200"' not in text
