"""The web pages: the chat page and the manager's dashboard.

Both are Jinja2 templates (channels/web/templates: one base, shared partials for the header,
the error banner and the sign-in form), rendered once per app; they share one style sheet and
one script (channels/web/static), shipped as package data. A page is revalidated on every
visit (`no-cache`); the assets it names carry a content hash in their URL, so they are cached
for good and a new release's page names new ones.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

ASSETS = {"crm.css": "text/css", "crm.js": "text/javascript"}  # name -> content type (Starlette adds utf-8)
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"


def router() -> APIRouter:
    """`/` (chat), `/dashboard` and `/static/<asset>`, read and rendered once, here."""
    assets = {name: files("channels").joinpath("web", "static", name).read_bytes() for name in ASSETS}
    versions = {name: hashlib.sha256(body).hexdigest()[:16] for name, body in assets.items()}
    env = Environment(loader=PackageLoader("channels", "web/templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    env.globals["static_url"] = lambda name: f"/static/{name}?v={versions[name]}"
    pages = {page: env.get_template(f"{page}.html").render(page=page) for page in ("chat", "dashboard")}

    r = APIRouter(include_in_schema=False)

    def page(name: str) -> HTMLResponse:
        return HTMLResponse(pages[name], headers={"Cache-Control": PAGE_CACHE})

    @r.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        return page("chat")

    @r.get("/dashboard", response_class=HTMLResponse)
    def dashboard_home() -> HTMLResponse:
        return page("dashboard")

    @r.get("/static/{name}")
    def asset(name: str, request: Request) -> Response:
        if name not in assets:
            raise HTTPException(status_code=404, detail="no such file")
        etag = f'"{versions[name]}"'
        headers = {"Cache-Control": ASSET_CACHE, "ETag": etag}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(assets[name], media_type=ASSETS[name], headers=headers)

    return r
