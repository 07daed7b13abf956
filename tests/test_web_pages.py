"""The web pages as files: rendered from the templates, and their one style sheet and one script
served with their content types and cache headers (the browser tests drive the pages themselves:
tests/test_web_chat.py, tests/test_dashboard.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest


@pytest.mark.parametrize(("path", "page", "title"), [("/", "chat", "Agent CRM"),
                                                     ("/dashboard", "dashboard", "Dashboard · Agent CRM")])
def test_each_page_is_its_template_with_the_shared_partials_and_assets(http, path: str, page: str, title: str) -> None:
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"  # revalidated: it names this release's assets
    html = response.text
    assert f'<html lang="en" class="page-{page}" data-page="{page}">' in html
    assert f"<title>{title}</title>" in html
    for partial in ('id="who"', 'id="banner"', 'id="signin-form"'):  # header, banner, sign-in form
        assert html.count(partial) == 1, partial
    assert re.search(r'<link rel="stylesheet" href="/static/crm\.css\?v=[0-9a-f]{16}">', html)
    assert re.search(r'<script src="/static/crm\.js\?v=[0-9a-f]{16}"></script>', html)
    assert "<style" not in html and "<script>" not in html  # no inline copies left


@pytest.mark.parametrize(("name", "content_type"), [("crm.css", "text/css; charset=utf-8"),
                                                    ("crm.js", "text/javascript; charset=utf-8")])
def test_the_assets_have_their_type_are_cached_for_good_and_revalidate(http, name: str, content_type: str) -> None:
    versioned = re.search(rf"/static/{re.escape(name)}\?v=[0-9a-f]+", http.get("/").text)
    assert versioned is not None
    response = http.get(versioned.group(0))
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = response.headers["etag"]
    assert etag == '"' + versioned.group(0).rsplit("=", 1)[1] + '"'  # the version is the content's hash
    assert response.content == (Path(__file__).parents[1] / "channels" / "web" / "static" / name).read_bytes()
    again = http.get(versioned.group(0), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert http.get("/static/other.js").status_code == 404


def test_the_templates_and_assets_ship_as_package_data() -> None:
    root = Path(__file__).parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["channels"]
    shipped = {p.relative_to(root / "channels") for g in globs for p in (root / "channels").glob(g)}
    web = {p.relative_to(root / "channels") for p in (root / "channels" / "web").rglob("*") if p.is_file()}
    assert web and web <= shipped
