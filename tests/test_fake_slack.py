"""The fake Slack Web API works with the REAL slack_sdk WebClient and a real Bolt app, nothing patched."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from slack_bolt import Ack, App, BoltRequest, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.fake_slack import (
    FakeSlack,
    action_body,
    command_body,
    event_body,
    signed_headers,
    view_submission_body,
)
from tests.fake_slack import fake_slack as fake_slack  # the fixture (conftest may register it too)

SECRET = "test-signing-secret"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Borealis* renewal"}}]


def client_for(fake: FakeSlack, token: str | None = None) -> WebClient:
    return WebClient(token=token or fake.bot_token, base_url=fake.api_url)


def api_error(call: Callable[[], object]) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response["error"]


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --------------------------------------------------------------------------- auth


def test_auth_test_returns_the_bot_identity_and_is_recorded_with_the_token(fake_slack: FakeSlack) -> None:
    assert fake_slack.api_url == fake_slack.url + "api/" and fake_slack.url.startswith("http://127.0.0.1:")
    result = client_for(fake_slack).auth_test()
    assert (result["team_id"], result["user_id"], result["bot_id"]) == ("T0001", "UBOT", "BBOT")
    assert result["url"] and result["team"] and result["user"]
    assert fake_slack.last("auth.test").headers["authorization"] == "Bearer xoxb-test-token"


def test_a_wrong_or_missing_token_gets_invalid_auth_and_is_still_recorded(fake_slack: FakeSlack) -> None:
    assert api_error(client_for(fake_slack, "xoxb-wrong").auth_test) == "invalid_auth"
    no_token = WebClient(base_url=fake_slack.api_url)
    assert api_error(lambda: no_token.chat_postMessage(channel="C1", text="hi")) == "invalid_auth"
    assert [c.method for c in fake_slack.calls] == ["auth.test", "chat.postMessage"]
    assert fake_slack.messages == {}  # a rejected post is not in the conversation


def test_unknown_methods_and_paths_are_answered_and_recorded(fake_slack: FakeSlack) -> None:
    assert api_error(lambda: client_for(fake_slack).api_call("nope.nothing", params={"a": "1"})) == "unknown_method"
    assert fake_slack.last("nope.nothing").params == {"a": "1"}
    assert get(fake_slack.url + "elsewhere")[0] == 404
    assert fake_slack.calls[-1].path == "/elsewhere"
    # A request the fake cannot handle fails with the reason instead of a dropped connection.
    with pytest.raises(SlackApiError, match="fake_slack: ValueError"):
        client_for(fake_slack).api_call("files.getUploadURLExternal", params={"filename": "a.txt", "length": "many"})


# --------------------------------------------------------------------------- users


def test_users_info_and_lookup_by_email(fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U1", "Ana@Example.com", name="ana")
    fake_slack.add_user("U2", "old@example.com", team_id="T0002", deleted=True)
    client = client_for(fake_slack)

    user = client.users_info(user="U1")["user"]
    assert (user["id"], user["team_id"], user["name"], user["deleted"], user["is_bot"]) == ("U1", "T0001", "ana",
                                                                                          False, False)
    assert user["profile"] == {"email": "Ana@Example.com", "real_name": "ana", "display_name": "ana"}
    assert client.users_lookupByEmail(email="ana@example.com")["user"]["id"] == "U1"  # Slack ignores case
    old = client.users_info(user="U2")["user"]
    assert (old["team_id"], old["deleted"], old["name"]) == ("T0002", True, "old")

    assert api_error(lambda: client.users_info(user="U404")) == "user_not_found"
    assert api_error(lambda: client.users_lookupByEmail(email="nobody@example.com")) == "users_not_found"
    assert fake_slack.last("users.lookupByEmail").params == {"email": "nobody@example.com"}


# --------------------------------------------------------------------------- messages


def test_post_message_keeps_the_conversation_with_threads_and_blocks(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    first = client.chat_postMessage(channel="C1", text="Borealis renewal", blocks=BLOCKS)
    reply = client.chat_postMessage(channel="C1", text="details", thread_ts=first["ts"])

    assert first["channel"] == "C1" and first["ts"] == "1700000000.000100"
    assert float(reply["ts"]) > float(first["ts"]) and reply["ts"] > first["ts"]
    assert first["message"] == {"type": "message", "ts": first["ts"], "text": "Borealis renewal", "blocks": BLOCKS,
                                "user": "UBOT", "bot_id": "BBOT"}
    assert reply["message"]["thread_ts"] == first["ts"]
    assert [(m["text"], m["thread_ts"], m["blocks"]) for m in fake_slack.messages["C1"]] == [
        ("Borealis renewal", None, BLOCKS),
        ("details", first["ts"], None),
    ]
    assert fake_slack.calls_to("chat.postMessage")[0].params["blocks"] == BLOCKS


def test_form_encoded_json_fields_are_decoded(fake_slack: FakeSlack) -> None:
    # api_call(params=...) and older clients send blocks as a JSON string inside a form body.
    client_for(fake_slack).api_call("chat.postMessage", params={"channel": "C1", "blocks": json.dumps(BLOCKS)})
    assert fake_slack.last("chat.postMessage").params["blocks"] == BLOCKS
    assert fake_slack.messages["C1"][0]["blocks"] == BLOCKS


def test_not_in_channel(fake_slack: FakeSlack) -> None:
    fake_slack.not_in_channel("C9")
    client = client_for(fake_slack)
    assert api_error(lambda: client.chat_postMessage(channel="C9", text="hi")) == "not_in_channel"
    assert api_error(lambda: client.chat_postEphemeral(channel="C9", user="U1", text="hi")) == "not_in_channel"
    assert "C9" not in fake_slack.messages
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]


def test_chat_update_changes_the_stored_message(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    ts = client.chat_postMessage(channel="C1", text="Approve?")["ts"]
    updated = client.chat_update(channel="C1", ts=ts, text="Approved by Ana", blocks=BLOCKS)
    assert (updated["ts"], updated["text"], updated["message"]["blocks"]) == (ts, "Approved by Ana", BLOCKS)
    assert [(m["text"], m["blocks"]) for m in fake_slack.messages["C1"]] == [("Approved by Ana", BLOCKS)]
    assert api_error(lambda: client.chat_update(channel="C1", ts="1.000001", text="x")) == "message_not_found"
    assert api_error(lambda: client.chat_update(channel="C2", ts=ts, text="x")) == "message_not_found"


def test_post_ephemeral_returns_a_message_ts_and_records_who_saw_it(fake_slack: FakeSlack) -> None:
    result = client_for(fake_slack).chat_postEphemeral(channel="C1", user="U1", text="only you", blocks=BLOCKS)
    assert result["message_ts"].startswith("1700000000.")
    call = fake_slack.last("chat.postEphemeral")
    assert (call.params["user"], call.params["text"], call.params["blocks"]) == ("U1", "only you", BLOCKS)
    assert fake_slack.messages == {}  # ephemeral messages are not part of the channel's history


def test_conversations_open_and_reactions_add(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    assert client.conversations_open(users="U1")["channel"]["id"] == "DU1"
    assert client.conversations_open(users=["U1"])["channel"]["id"] == "DU1"
    assert client.reactions_add(channel="C1", timestamp="1.000100", name="white_check_mark")["ok"]
    assert fake_slack.last("reactions.add").params == {"channel": "C1", "timestamp": "1.000100",
                                                       "name": "white_check_mark"}


def test_views_open_push_update(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    modal = {"type": "modal", "callback_id": "log_note", "title": {"type": "plain_text", "text": "Note"},
             "blocks": BLOCKS, "private_metadata": "deal:7"}
    opened = client.views_open(trigger_id="1.2.t", view=modal)["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "log_note"
    assert (opened["private_metadata"], opened["blocks"], opened["state"]) == ("deal:7", BLOCKS, {"values": {}})
    pushed = client.views_push(trigger_id="1.2.t", view=modal)["view"]
    assert pushed["id"] != opened["id"]
    updated = client.views_update(view_id=opened["id"], view={**modal, "private_metadata": "deal:8"})["view"]
    assert (updated["id"], updated["private_metadata"]) == (opened["id"], "deal:8")
    assert fake_slack.last("views.update").params["view"]["private_metadata"] == "deal:8"
    assert api_error(lambda: client.views_open(trigger_id="", view=modal)) == "invalid_arguments"


# --------------------------------------------------------------------------- files


def test_files_info_and_download_need_the_bot_token(fake_slack: FakeSlack) -> None:
    shared = fake_slack.add_file("F1", "call notes.m4a", "audio/mp4", b"\x00audio\r\n", user="U1")
    info = client_for(fake_slack).files_info(file="F1")["file"]
    assert info == shared
    assert (info["name"], info["title"], info["mimetype"], info["filetype"], info["size"], info["user"]) == (
        "call notes.m4a", "call notes.m4a", "audio/mp4", "m4a", 8, "U1")
    assert info["url_private_download"] == fake_slack.url + "files/F1/call%20notes.m4a" == info["url_private"]

    assert get(info["url_private_download"], fake_slack.bot_token) == (200, b"\x00audio\r\n")
    assert get(info["url_private_download"])[0] == 403
    assert get(info["url_private_download"], "xoxb-wrong")[0] == 403
    assert get(fake_slack.url + "files/F404/x.txt", fake_slack.bot_token)[0] == 404
    assert [c.params["file"] for c in fake_slack.calls_to("file_download")] == ["F1", "F1", "F1", "F404"]
    assert api_error(lambda: client_for(fake_slack).files_info(file="F404")) == "file_not_found"


def test_files_upload_v2_round_trip(fake_slack: FakeSlack) -> None:
    data = b"%PDF-1.4\x00\r\n\xff binary"
    result = client_for(fake_slack).files_upload_v2(
        content=data, filename="quote.pdf", title="Quote Q-7", channel="C1", thread_ts="1700000000.000100",
        initial_comment="Here is the quote",
    )
    file_id = result["file"]["id"]
    assert result["files"] == [result["file"]] and result["file"]["title"] == "Quote Q-7"
    assert fake_slack.uploads == [{"id": file_id, "title": "Quote Q-7", "filename": "quote.pdf", "data": data,
                                   "channel": "C1", "thread_ts": "1700000000.000100",
                                   "initial_comment": "Here is the quote"}]
    assert fake_slack.last("files.getUploadURLExternal").params == {"filename": "quote.pdf", "length": str(len(data))}
    assert fake_slack.last("files.completeUploadExternal").params["files"] == [{"id": file_id, "title": "Quote Q-7"}]
    # The pre-signed upload URL carries no token, as on Slack; the uploaded file is then a normal file.
    assert "authorization" not in fake_slack.last("upload_url").headers
    info = client_for(fake_slack).files_info(file=file_id)["file"]
    assert (info["mimetype"], info["user"], info["size"]) == ("application/pdf", "UBOT", len(data))
    assert get(info["url_private_download"], fake_slack.bot_token) == (200, data)


def test_upload_url_accepts_multipart_and_rejects_unknown_ids(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    grant = client.files_getUploadURLExternal(filename="a.bin", length=6)
    body = (b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n\x00a\r\nb\n\r\n--XYZ--\r\n")
    request = urllib.request.Request(grant["upload_url"], data=body,
                                     headers={"Content-Type": "multipart/form-data; boundary=XYZ"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.read() == b"OK - 6"
    client.files_completeUploadExternal(files=[{"id": grant["file_id"], "title": "A"}])
    assert fake_slack.files[grant["file_id"]]["data"] == b"\x00a\r\nb\n"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(urllib.request.Request(fake_slack.url + "upload/F404", data=b"x"), timeout=5)
    assert missing.value.code == 404
    # Completing an upload whose bytes never arrived fails like Slack does.
    unsent = client.files_getUploadURLExternal(filename="b.bin", length=1)
    assert api_error(lambda: client.files_completeUploadExternal(files=[{"id": unsent["file_id"]}])) == \
        "file_not_found"


# --------------------------------------------------------------------------- response_url


def test_response_url_records_the_json_body(fake_slack: FakeSlack) -> None:
    url = fake_slack.response_url("cmd-1")
    assert url == fake_slack.url + "response/cmd-1"
    response = WebhookClient(url).send(text="Saved the note", replace_original=True)
    assert (response.status_code, response.body) == (200, "ok")
    call = fake_slack.last("response_url")
    assert call.params == {"text": "Saved the note", "replace_original": True}
    assert call.path == "/response/cmd-1"


# --------------------------------------------------------------------------- assertion helpers


def test_last_and_wait_for_explain_what_was_seen(fake_slack: FakeSlack) -> None:
    client = client_for(fake_slack)
    client.auth_test()
    with pytest.raises(AssertionError, match=r"no call to chat.update; calls seen: \['auth.test'\]"):
        fake_slack.last("chat.update")
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"waited 0.2s for 2 call\(s\) to auth.test, got 1; calls seen"):
        fake_slack.wait_for("auth.test", count=2, timeout=0.2)
    assert time.monotonic() - started >= 0.2


def test_wait_for_returns_once_another_thread_calls(fake_slack: FakeSlack) -> None:
    later = threading.Timer(0.1, lambda: client_for(fake_slack).chat_postMessage(channel="C1", text="late"))
    later.start()
    calls = fake_slack.wait_for("chat.postMessage", timeout=5)
    later.join()
    assert [c.params["text"] for c in calls] == ["late"]


def test_clear_forgets_calls_but_keeps_state(fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U1", "ana@example.com")
    client_for(fake_slack).chat_postMessage(channel="C1", text="hi")
    fake_slack.clear()
    assert fake_slack.calls == [] and fake_slack.calls_to("chat.postMessage") == []
    assert fake_slack.messages["C1"][0]["text"] == "hi"
    assert client_for(fake_slack).users_info(user="U1")["user"]["id"] == "U1"


def test_two_fakes_run_side_by_side() -> None:
    with FakeSlack(bot_token="xoxb-a") as a, FakeSlack(bot_token="xoxb-b") as b:
        assert a.url != b.url
        WebClient(token="xoxb-a", base_url=a.api_url).chat_postMessage(channel="C1", text="to a")
        assert api_error(lambda: WebClient(token="xoxb-a", base_url=b.api_url).auth_test()) == "invalid_auth"
        assert [c.method for c in a.calls] == ["chat.postMessage"] and b.messages == {}


# --------------------------------------------------------------------------- signed inbound requests


def test_signed_headers_pass_slack_signature_verification() -> None:
    body, content_type = command_body(text="deals")
    headers = signed_headers(SECRET, body, content_type=content_type)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert verifier.is_valid_request(body.encode(), signed_headers(SECRET, body.encode()))
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    stale = signed_headers(SECRET, body, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(body, stale)  # Slack's replay window is five minutes


def test_payload_builders_have_slacks_shapes() -> None:
    body, content_type = event_body({"type": "app_mention", "text": "hi"}, event_id="Ev1")
    event = json.loads(body)
    assert content_type == "application/json"
    assert (event["type"], event["event_id"], event["team_id"], event["api_app_id"]) == ("event_callback", "Ev1",
                                                                                        "T0001", "A0001")
    assert {"team_id": "T0001", "user_id": "UBOT", "is_bot": True}.items() <= event["authorizations"][0].items()

    form = dict(urllib.parse.parse_qsl(command_body("/crm", "deals", user_id="U1", response_url="http://r")[0]))
    assert (form["command"], form["text"], form["user_id"], form["response_url"]) == ("/crm", "deals", "U1",
                                                                                     "http://r")
    action = json.loads(dict(urllib.parse.parse_qsl(action_body({"type": "block_actions"})[0]))["payload"])
    assert action == {"type": "block_actions"}
    submitted = json.loads(dict(urllib.parse.parse_qsl(view_submission_body({"view": {"id": "V1"}})[0]))["payload"])
    assert submitted == {"type": "view_submission", "view": {"id": "V1"}}


def test_a_real_bolt_app_answers_signed_requests_through_the_fake(fake_slack: FakeSlack) -> None:
    app = App(signing_secret=SECRET, client=client_for(fake_slack))  # authorizes with the client's token
    app.event("app_mention")(lambda event, say: say(text="on it", thread_ts=event["ts"]))

    @app.command("/crm")
    def crm(ack: Ack, respond: Respond, command: dict[str, Any]) -> None:
        ack()
        respond(f"You asked for {command['text']}")

    @app.action("approve")
    def approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text="Approved")

    app.view("log_note")(lambda ack: ack(response_action="errors", errors={"note": "Too short"}))

    def send(body: str, content_type: str) -> tuple[int, str]:
        response = app.dispatch(BoltRequest(body=body, headers=signed_headers(SECRET, body, content_type=content_type)))
        return response.status, response.body

    mention = {"type": "app_mention", "user": "U1", "text": "<@UBOT> deals", "channel": "C1", "ts": "1.000001",
               "event_ts": "1.000001"}
    assert send(*event_body(mention, event_id="Ev1"))[0] == 200
    # Bolt's client adds the request's team_id to every call it makes for a listener.
    assert fake_slack.wait_for("chat.postMessage")[0].params == {"channel": "C1", "text": "on it",
                                                                 "thread_ts": "1.000001", "team_id": "T0001"}

    assert send(*command_body(text="deals", response_url=fake_slack.response_url()))[0] == 200
    assert fake_slack.wait_for("response_url")[0].params["text"] == "You asked for deals"

    ts = fake_slack.messages["C1"][0]["ts"]
    action = {"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T0001"}, "api_app_id": "A0001",
              "channel": {"id": "C1"}, "message": {"ts": ts}, "trigger_id": "1.2.t",
              "actions": [{"type": "button", "action_id": "approve", "block_id": "b", "value": "7"}]}
    assert send(*action_body(action))[0] == 200
    fake_slack.wait_for("chat.update")
    assert fake_slack.messages["C1"][0]["text"] == "Approved"

    submission = {"user": {"id": "U1"}, "team": {"id": "T0001"}, "api_app_id": "A0001",
                  "view": {"id": "V1", "type": "modal", "callback_id": "log_note", "state": {"values": {}}}}
    status, body = send(*view_submission_body(submission))
    assert (status, json.loads(body)) == (200, {"response_action": "errors", "errors": {"note": "Too short"}})

    bad = app.dispatch(BoltRequest(body="{}", headers=signed_headers("wrong-secret", "{}")))
    assert bad.status == 401
