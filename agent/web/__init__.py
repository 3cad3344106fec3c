"""The shopper's chat page and offline API docs, served by the API's own FastAPI app.

`mount_web(app)` adds:
- `GET /`: the chat page (`static/index.html`; its script and style URLs carry a content hash, so a new
  release is never mixed with a cached old script);
- `/static/...`: the page's files (`app.js`, `app.css`, `favicon.svg`), no build step;
- `/docs` (Swagger UI) and `/redoc` (ReDoc) whose scripts and styles come from the app
  (`/static/docs/...`, vendored by the pinned `fastapi-offline` package) instead of FastAPI's default CDN,
  so they render on a machine without internet. Create the app with `docs_url=None, redoc_url=None`.

Nothing here knows the API's internals: the page talks to `/api/v1/chat/...` like any client.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

STATIC_DIR = Path(__file__).parent / "static"
# Swagger UI 5 and ReDoc 2 bundles shipped inside the fastapi-offline wheel (pinned in pyproject.toml).
DOCS_ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
DOCS_ASSETS_URL = "/static/docs"
ASSETS = ("app.js", "app.css")

# The page loads nothing but its own files; product images may come from the catalog's image hosts.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@lru_cache(maxsize=1)
def page_html() -> str:
    """index.html with `?v=<content hash>` on its asset URLs (read once per process)."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for name in ASSETS:
        digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
        html = html.replace(f'"/static/{name}"', f'"/static/{name}?v={digest}"')
    return html


def mount_web(app: FastAPI) -> None:
    """Serve the chat page at `/`, its files under `/static/`, and offline `/docs` and `/redoc`."""
    # The docs mount goes first: `/static` would otherwise swallow `/static/docs/...`.
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="web-static")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/", include_in_schema=False)
    def chat_page() -> HTMLResponse:
        """The shopper's chat page."""
        return HTMLResponse(page_html(), headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI from the app's own assets."""
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/favicon.svg",
            # No online validator badge (it would call validator.swagger.io).
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        """Swagger UI's OAuth2 redirect helper page."""
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        """ReDoc from the app's own assets (no Google Fonts)."""
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/favicon.svg",
            with_google_fonts=False,
        )
