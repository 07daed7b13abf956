"""API tokens are listed and revoked (a user her own, an admin anyone's in the workspace), over
HTTP and with `crm token list` / `crm token revoke`; a revoked token opens no door."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from store.models import ApiToken, AuditLog
from store.services.org import create_token
from tests import factories as f


def token_doors(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every operation that takes a bearer token (the OpenAPI schema's security),
    path parameters filled in."""
    doors = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if {"HTTPBearer": []} in operation.get("security", []):
                doors.append((method.upper(), re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)))
    return doors


def test_a_revoked_token_gets_401_at_every_door(session, app, http) -> None:
    w = f.world(session)
    priya = f.api(session, http, w.priya)
    assert priya.get("/me").status_code == 200
    doors = token_doors(app)
    assert len(doors) > 100 and not any("{" in path for _, path in doors)
    assert {("GET", "/api/v1/approvals/waiting"), ("GET", "/api/v1/inbox"), ("GET", "/api/v1/dashboard"),
            ("GET", "/api/v1/deals")} <= set(doors)

    mine = priya.get("/tokens").json()
    assert [t["prefix"] for t in mine] == [priya.token[:10]] and "token_hash" not in mine[0]
    revoked = priya.post(f"/tokens/{mine[0]['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    for method, path in doors:
        got = http.request(method, path, headers={"Authorization": f"Bearer {priya.token}"})
        assert got.status_code == 401, (method, path, got.status_code, got.text)
        assert "revoked" in got.json()["message"]
    assert f.api(session, http, w.priya).get("/me").status_code == 200  # a new token works


def test_a_user_revokes_her_own_tokens_and_an_admin_anyones(session, http) -> None:
    w = f.world(session)
    priya, raj, dana, admin = (f.api(session, http, u) for u in (w.priya, w.raj, w.dana, w.admin))
    laptop = create_token(session, user=w.priya, name="laptop")
    session.commit()
    other_admin = f.api(session, http, w.other_admin)

    listed = priya.get("/tokens").json()
    assert {t["name"] for t in listed} == {"", "laptop"} and {t["user_email"] for t in listed} == {w.priya.email}
    everyone = admin.get("/tokens").json()
    assert {t["user_email"] for t in everyone} == {u.email for u in (w.priya, w.raj, w.dana, w.admin)}
    assert [t["user_email"] for t in admin.get("/tokens", params={"user_id": str(w.raj.id)}).json()] == [w.raj.email]
    laptop_id = next(t["id"] for t in listed if t["name"] == "laptop")

    # Nobody else may revoke it (not a teammate, not her manager, not another workspace): as if it did not exist.
    for who in (raj, dana, other_admin):
        got = who.post(f"/tokens/{laptop_id}/revoke")
        assert got.status_code == 404 and "no token" in got.json()["message"]
        assert who.post(f"/tokens/{laptop[:10]}/revoke").status_code == 404
    assert raj.get("/tokens").json()[0]["user_email"] == w.raj.email

    # By the prefix the list shows; a second revoke changes nothing.
    first = priya.post(f"/tokens/{laptop[:10]}/revoke")
    assert first.status_code == 200 and first.json()["id"] == laptop_id
    assert priya.post(f"/tokens/{laptop_id}/revoke").json()["revoked_at"] == first.json()["revoked_at"]
    assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {laptop}"}).status_code == 401
    assert priya.get("/me").status_code == 200  # her other token still works

    assert admin.post(f"/tokens/{raj.token[:10]}/revoke").status_code == 200  # an admin: anyone's
    assert raj.get("/me").status_code == 401
    assert priya.post("/tokens/nonsense/revoke").status_code == 422
    entries = session.scalars(select(AuditLog).where(AuditLog.entity_type == "api_token",
                                                     AuditLog.note == "revoked")).all()
    assert {e.entity_id for e in entries} == {uuid.UUID(laptop_id), session.scalar(
        select(ApiToken.id).where(ApiToken.prefix == raj.token[:10]))}


runner = CliRunner()


def crm(*args: str, code: int = 0) -> str:
    from crm import app

    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output + repr(result.exception)
    return result.output


@pytest.mark.parametrize("by", ["prefix", "id", "token"])
def test_cli_lists_and_revokes_tokens(cli_env, by: str) -> None:
    from fastapi.testclient import TestClient

    from channels.api.app import create_app

    crm("setup", "--no-demo")
    crm("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin")
    crm("user", "add", "priya@acme.example", "--name", "Priya Raman")
    token = crm("token", "create", "--user", "priya@acme.example", "--name", "laptop").strip()
    crm("token", "create", "--user", "sam@acme.example")
    listing = crm("token", "list")
    assert f"{token[:10]}..." in listing and "laptop" in listing and "last used never" in listing
    assert "sam@acme.example" in listing and "priya@acme.example" in listing
    only = crm("token", "list", "--user", "priya@acme.example")
    assert "sam@acme.example" not in only and token[:10] in only

    with TestClient(create_app()) as client:
        def me() -> int:
            return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code

        assert me() == 200
        token_id = next(line.split()[1] for line in only.splitlines() if token[:10] in line)
        ref = {"prefix": token[:10], "id": token_id, "token": token}[by]
        out = crm("token", "revoke", ref)
        assert f"revoked {token[:10]}... (laptop) of priya@acme.example" in out
        assert me() == 401
    assert "REVOKED" in crm("token", "list", "--user", "priya@acme.example")
    assert "REVOKED" not in crm("token", "list", "--user", "sam@acme.example")

    assert "no token 'crm_zzzzzz'" in crm("token", "revoke", "crm_zzzzzz", code=1)
    assert "not a token id or prefix" in crm("token", "revoke", "abc", code=1)
