"""A local fake of Slack's Web API that records every call.

The Slack bot's tests point the REAL ``slack_sdk.WebClient`` (and so a real Bolt app) at this
server on 127.0.0.1, the way bolt-python's own tests do: nothing is patched, and a test sees
exactly what the product sent.

    def test_reply(fake_slack):
        client = WebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)
        client.chat_postMessage(channel="C1", text="hi")
        assert fake_slack.last("chat.postMessage").params["text"] == "hi"
        assert fake_slack.messages["C1"][0]["text"] == "hi"

Besides ``api/<method>`` it serves the other URLs a Slack app meets, and records them under
these method names: ``file_download`` (``files/<id>/<name>``, the url_private of a file; bot
token required), ``upload_url`` (``upload/<id>``, the pre-signed URL of ``files_upload_v2``;
no token, as on Slack) and ``response_url`` (``response/<name>``).

The helpers at the bottom build Slack's inbound requests (events, slash commands, actions,
view submissions) signed with a signing secret, to send to a Bolt app.

Register the fixture with ``pytest_plugins = ["tests.fake_slack"]`` in ``tests/conftest.py``,
or import ``fake_slack`` into a test module.
"""

from __future__ import annotations

import itertools
import json
import mimetypes
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

__all__ = [
    "Call",
    "FakeSlack",
    "action_body",
    "command_body",
    "event_body",
    "fake_slack",
    "signed_headers",
    "view_submission_body",
]

TEAM_ID = "T0001"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
# Fields Slack takes as JSON strings inside form bodies; decoded so tests can inspect them.
JSON_FIELDS = ("blocks", "attachments", "view", "files")

Json = dict[str, Any]
Reply = tuple[int, str, bytes]  # status, content type, body


@dataclass
class Call:
    """One request the fake received.

    ``headers`` keys are lower-case: urllib (which slack_sdk uses) sends "Content-type".
    ``path`` is the URL path, for telling two response_urls or downloads apart.
    """

    method: str
    params: Json
    headers: dict[str, str]
    body: bytes
    path: str = ""


def _err(code: str) -> Json:
    return {"ok": False, "error": code}


def _json(payload: Json) -> Reply:
    # Slack answers API errors with HTTP 200 too; slack_sdk raises SlackApiError on ok=false.
    return 200, "application/json; charset=utf-8", json.dumps(payload).encode()


def _multipart(body: bytes, content_type: str) -> Json:
    """The fields of a multipart body: str for plain fields, bytes for file parts."""
    msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: Json = {}
    for part in msg.iter_parts():
        data = part.get_payload(decode=True)
        fields[part.get_param("name", header="content-disposition")] = data if part.get_filename() else data.decode()
    return fields


def _parse_body(body: bytes, content_type: str) -> Json:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(body)
    if content_type.startswith("multipart/form-data"):
        return _multipart(body, content_type)
    return {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}


def _present(message: Json) -> Json:
    # Slack leaves unset fields out of a message rather than sending nulls.
    return {k: v for k, v in message.items() if v is not None}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.fake._handle(self)

    do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not keep the test run alive
    fake: FakeSlack


class FakeSlack:
    """A recording Slack Web API on 127.0.0.1. All state is guarded by one lock."""

    def __init__(self, bot_token: str = "xoxb-test-token") -> None:
        self.bot_token = bot_token
        self.team_id, self.bot_user_id, self.bot_id = TEAM_ID, BOT_USER_ID, BOT_ID
        self.url = self.api_url = ""
        self.calls: list[Call] = []
        self.messages: dict[str, list[Json]] = {}  # channel -> messages the bot posted, oldest first
        self.users: dict[str, Json] = {}
        self.files: dict[str, Json] = {}  # id -> the file, with its bytes under "data"
        self.uploads: list[Json] = []  # completed files_upload_v2 uploads
        self._pending: dict[str, Json] = {}  # upload URLs handed out, not yet completed
        self._not_in_channel: set[str] = set()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[Json], Json]] = {
            "auth.test": self._auth_test,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.open": self._conversations_open,
            "views.open": lambda p: self._view(p, needs_trigger=True),
            "views.push": lambda p: self._view(p, needs_trigger=True),
            "views.update": lambda p: self._view(p, needs_trigger=False),
            "views.publish": lambda p: self._view(p, needs_trigger=False),
            "reactions.add": lambda p: {"ok": True},
            "files.info": self._files_info,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    # ----------------------------------------------------------------------- lifecycle

    def start(self) -> FakeSlack:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self.api_url = self.url + "api/"
        # A short poll interval: stop() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------- test set-up

    def add_user(
        self,
        id: str,
        email: str,
        name: str | None = None,
        team_id: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
    ) -> Json:
        """Registers a workspace member for users.info / users.lookupByEmail; returns the user object."""
        name = name or email.split("@")[0]
        user = {
            "id": id,
            "team_id": team_id or self.team_id,
            "name": name,
            "real_name": name,
            "deleted": deleted,
            "is_bot": is_bot,
            "profile": {"email": email, "real_name": name, "display_name": name},
        }
        with self._lock:
            self.users[id] = user
        return user

    def add_file(
        self, id: str, name: str, mimetype: str, data: bytes, *, user: str = "U0001", title: str | None = None
    ) -> Json:
        """Registers a file (shared by ``user``); returns its files.info object, e.g. for a message event."""
        with self._lock:
            self.files[id] = {"id": id, "name": name, "title": title or name, "mimetype": mimetype, "data": data,
                              "user": user}
            return self._file_object(id)

    def not_in_channel(self, channel: str) -> None:
        """Makes posting to ``channel`` fail the way it does before the bot is invited."""
        with self._lock:
            self._not_in_channel.add(channel)

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}response/{name}"

    # ----------------------------------------------------------------------- assertions

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def last(self, method: str) -> Call:
        calls = self.calls_to(method)
        if not calls:
            raise AssertionError(f"no call to {method}; calls seen: {self._seen()}")
        return calls[-1]

    def clear(self) -> None:
        """Forgets the recorded calls (not users, files or messages), e.g. after a test's set-up."""
        with self._lock:
            self.calls.clear()

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Waits until ``method`` was called ``count`` times (Bolt may answer on another thread)."""
        deadline = time.monotonic() + timeout
        while len(calls := self.calls_to(method)) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"waited {timeout}s for {count} call(s) to {method}, got {len(calls)}; calls seen: {self._seen()}"
                )
            time.sleep(0.01)
        return calls

    def _seen(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    # ----------------------------------------------------------------------- HTTP

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in req.headers.items()}
        path, _, query = req.path.partition("?")
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        kind, _, rest = path.lstrip("/").partition("/")
        routes = {"api": self._api, "files": self._download, "upload": self._upload, "response": self._response}
        call = Call(path, params, headers, body, path)  # each route names the method and records it
        with self._lock:
            try:
                if kind in routes:
                    status, content_type, out = routes[kind](rest, call)
                else:
                    self.calls.append(call)
                    status, content_type, out = 404, "text/plain", b"not found"
            except Exception as e:  # a bug in the fake or a malformed request: fail the test loudly, not by hanging up
                status, content_type, out = 500, "text/plain", f"fake_slack: {e!r}".encode()
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(out)))
        req.end_headers()
        req.wfile.write(out)

    def _authorized(self, call: Call) -> bool:
        return call.headers.get("authorization") == f"Bearer {self.bot_token}"

    def _api(self, method: str, call: Call) -> Reply:
        call.method = method
        call.params.update(_parse_body(call.body, call.headers.get("content-type", "")))
        for key in JSON_FIELDS:
            if isinstance(value := call.params.get(key), str) and value.startswith(("[", "{")):
                call.params[key] = json.loads(value)
        self.calls.append(call)
        if not self._authorized(call):
            return _json(_err("invalid_auth"))
        handler = self._methods.get(method)
        return _json(handler(call.params) if handler else _err("unknown_method"))

    def _download(self, rest: str, call: Call) -> Reply:
        call.method, call.params["file"] = "file_download", rest.split("/")[0]
        self.calls.append(call)
        if not self._authorized(call):
            return 403, "text/plain", b"forbidden"
        file = self.files.get(call.params["file"])
        return (200, file["mimetype"], file["data"]) if file else (404, "text/plain", b"not found")

    def _upload(self, file_id: str, call: Call) -> Reply:
        call.method, call.params["file_id"] = "upload_url", file_id
        self.calls.append(call)
        if file_id not in self._pending:
            return 404, "text/plain", b"not found"
        # slack_sdk posts the raw bytes (urllib labels them x-www-form-urlencoded); other clients send multipart.
        data = call.body
        content_type = call.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            data = next((v for v in _multipart(data, content_type).values() if isinstance(v, bytes)), b"")
        self._pending[file_id]["data"] = data
        return 200, "text/plain", f"OK - {len(data)}".encode()

    def _response(self, name: str, call: Call) -> Reply:
        call.method = "response_url"
        call.params.update(_parse_body(call.body, call.headers.get("content-type", "")))
        self.calls.append(call)
        return 200, "text/html", b"ok"

    # ----------------------------------------------------------------------- Web API methods

    def _next_ts(self) -> str:
        n = next(self._ts)  # 1 -> "1700000000.000100": increasing as numbers and as strings
        return f"{1_700_000_000 + n // 10_000}.{n % 10_000 * 100:06d}"

    def _auth_test(self, p: Json) -> Json:
        return {"ok": True, "url": "https://fake-crm.slack.com/", "team": "Fake CRM", "user": "crm",
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _users_info(self, p: Json) -> Json:
        user = self.users.get(p.get("user", ""))
        return {"ok": True, "user": user} if user else _err("user_not_found")

    def _users_lookup_by_email(self, p: Json) -> Json:
        email = p.get("email", "").lower()
        user = next((u for u in self.users.values() if u["profile"]["email"].lower() == email), None)
        return {"ok": True, "user": user} if user else _err("users_not_found")

    def _post_message(self, p: Json) -> Json:
        channel = p.get("channel")
        if not channel:
            return _err("channel_not_found")
        if channel in self._not_in_channel:
            return _err("not_in_channel")
        message = {"type": "message", "ts": self._next_ts(), "text": p.get("text", ""), "blocks": p.get("blocks"),
                   "thread_ts": p.get("thread_ts"), "user": self.bot_user_id, "bot_id": self.bot_id}
        self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": _present(message)}

    def _update(self, p: Json) -> Json:
        channel = p.get("channel", "")
        message = next((m for m in self.messages.get(channel, []) if m["ts"] == p.get("ts")), None)
        if message is None:
            return _err("message_not_found")
        message.update({k: p[k] for k in ("text", "blocks") if k in p})
        return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"],
                "message": _present(message)}

    def _post_ephemeral(self, p: Json) -> Json:
        if p.get("channel") in self._not_in_channel:
            return _err("not_in_channel")
        return {"ok": True, "message_ts": self._next_ts()}

    def _conversations_open(self, p: Json) -> Json:
        users = p.get("users", "")
        if not users:
            return _err("users_list_not_supplied")
        return {"ok": True, "channel": {"id": "D" + users.replace(",", "")}}

    def _view(self, p: Json, *, needs_trigger: bool) -> Json:
        view = p.get("view")
        if not isinstance(view, dict) or (needs_trigger and not p.get("trigger_id")):
            return _err("invalid_arguments")
        view_id = p.get("view_id") or f"V{next(self._ids):07d}"
        defaults = {"team_id": self.team_id, "callback_id": "", "private_metadata": "", "state": {"values": {}},
                    "hash": f"{time.time():.6f}", "app_id": "A0001", "bot_id": self.bot_id}
        return {"ok": True, "view": {**defaults, **view, "id": view_id}}

    def _file_object(self, file_id: str) -> Json:
        f = self.files[file_id]
        url = f"{self.url}files/{file_id}/{urllib.parse.quote(f['name'])}"
        return {"id": file_id, "name": f["name"], "title": f["title"], "mimetype": f["mimetype"],
                "filetype": f["name"].rpartition(".")[2].lower() if "." in f["name"] else "binary",
                "size": len(f["data"]), "user": f["user"], "url_private": url, "url_private_download": url}

    def _files_info(self, p: Json) -> Json:
        file_id = p.get("file", "")
        return {"ok": True, "file": self._file_object(file_id)} if file_id in self.files else _err("file_not_found")

    def _get_upload_url(self, p: Json) -> Json:
        if not p.get("filename") or not p.get("length"):
            return _err("invalid_arguments")
        file_id = f"F{next(self._ids):07d}"
        self._pending[file_id] = {"filename": p["filename"], "length": int(p["length"]), "data": None}
        return {"ok": True, "upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, p: Json) -> Json:
        items = p.get("files")
        channel = p.get("channel_id") or p.get("channels")
        if not isinstance(items, list) or not items:
            return _err("invalid_arguments")
        if any(self._pending.get(item.get("id"), {}).get("data") is None for item in items):
            return _err("file_not_found")  # never handed out, or its bytes never arrived
        if channel in self._not_in_channel:
            return _err("not_in_channel")
        done = []
        for item in items:
            pending = self._pending.pop(item["id"])
            title = item.get("title") or pending["filename"]
            self.uploads.append({"id": item["id"], "title": title, "filename": pending["filename"],
                                 "data": pending["data"], "channel": channel, "thread_ts": p.get("thread_ts"),
                                 "initial_comment": p.get("initial_comment")})
            mimetype = mimetypes.guess_type(pending["filename"])[0] or "application/octet-stream"
            done.append(self.add_file(item["id"], pending["filename"], mimetype, pending["data"],
                                      user=self.bot_user_id, title=title))
        return {"ok": True, "files": done}


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A fresh, started FakeSlack per test; stopped (thread joined, port closed) after it."""
    with FakeSlack() as server:
        yield server


# --------------------------------------------------------------------------- inbound requests to a Bolt app
# Bodies are str because slack_bolt's BoltRequest accepts only str raw bodies.


def signed_headers(
    secret: str, body: bytes | str, timestamp: int | None = None, content_type: str = "application/json"
) -> dict[str, str]:
    """The headers Slack signs a request with (v0 HMAC over timestamp and body)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def event_body(event: Json, *, event_id: str, team_id: str = TEAM_ID, api_app_id: str = "A0001") -> tuple[str, str]:
    """An Events API event_callback wrapping ``event``; Slack retries reuse the event_id, so tests choose it."""
    body = {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }
    return json.dumps(body), "application/json"


def command_body(
    command: str = "/crm",
    text: str = "",
    *,
    user_id: str = "U0001",
    channel_id: str = "C0001",
    response_url: str = "",
    trigger_id: str = "1.2.trigger",
    team_id: str = TEAM_ID,
) -> tuple[str, str]:
    """A slash command as Slack posts it (form-encoded)."""
    fields = {"token": "legacy-verification-token", "team_id": team_id, "team_domain": "fake-crm",
              "channel_id": channel_id, "channel_name": "general", "user_id": user_id, "user_name": user_id.lower(),
              "command": command, "text": text, "api_app_id": "A0001", "response_url": response_url,
              "trigger_id": trigger_id}
    return urllib.parse.urlencode(fields), "application/x-www-form-urlencoded"


def action_body(payload: Json) -> tuple[str, str]:
    """An interactivity request (block_actions, shortcut, ...): form-encoded ``payload=<json>``."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


def view_submission_body(payload: Json) -> tuple[str, str]:
    """A modal submission; Slack sends it the same way as an action, typed ``view_submission``."""
    return action_body({"type": "view_submission", **payload})
