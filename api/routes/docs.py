"""The OpenAPI document and its interactive page, served without any outside request.

Swagger UI's files come from the ``swagger-ui-py`` package (a pinned copy of the
``swagger-ui`` 5 distribution, which renders OpenAPI 3.1) and are served here, so
``/docs`` works offline. The page's one inline script (FastAPI's initializer) is allowed
by its hash (:func:`security_headers`): the operator page's headers with a CSP that lets
Swagger UI run its own files, load ``/openapi.json`` and try requests on this origin.
Declared as routes (not FastAPI's built-in ones or a static mount), so that metrics count
them under their own route label.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from api.errors import ApiError
from api.routes.ops import SECURITY_HEADERS as OPS_SECURITY_HEADERS

#: Path of the OpenAPI document.
OPENAPI_URL = "/openapi.json"
#: Path of the interactive documentation; its assets live below ``<DOCS_URL>/assets/``.
DOCS_URL = "/docs"


def _swagger_ui_static() -> Path:
    """The package's folder of Swagger UI files, found without importing the package
    (its framework adapters are not used here)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("swagger-ui-py is not installed (pip install -e .)")
    return Path(spec.submodule_search_locations[0]) / "static"


#: The Swagger UI files the page loads, by the name it asks for.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_ASSET_DIR = _swagger_ui_static()
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


def docs_page(title: str) -> str:
    """The Swagger UI page of ``title``, every asset on this origin."""
    response = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{title} - API documentation",
        swagger_js_url=f"{DOCS_URL}/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_URL}/assets/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_URL}/assets/favicon-32x32.png",
    )
    return bytes(response.body).decode()


def security_headers(page: str) -> tuple[tuple[str, str], ...]:
    """The operator page's headers with a CSP for ``page``: scripts of this origin plus
    the page's inline scripts by hash; Swagger UI sets inline styles and data: images."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    csp = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return tuple(
        (name, csp if name == "content-security-policy" else value)
        for name, value in OPS_SECURITY_HEADERS
    )


@router.get(OPENAPI_URL)
def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get(DOCS_URL)
def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(request.app.state.docs_page)


@router.get(f"{DOCS_URL}/assets/{{name}}")
def docs_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:  # only the named files: no path below the folder is reachable
        raise ApiError(404, f"no documentation asset {name!r}")
    return FileResponse(_ASSET_DIR / name, media_type=media_type)
