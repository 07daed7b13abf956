"""The fake OpenAI server works with the REAL ChatOpenAI client (langchain-openai), nothing patched."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from tests.fake_openai import FakeOpenAI, error, estimate_tokens, text, tool_calls
from tests.fake_openai import fake_openai as fake_openai  # the fixture (conftest may register it too)

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_contact",
        "description": "Find a contact by name.",
        "parameters": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "filters": {"type": "object"}},
            "required": ["name"],
        },
    },
}
LOG_NOTE = {
    "type": "function",
    "function": {
        "name": "log_note",
        "description": "Attach a note to a contact.",
        "parameters": {"type": "object", "properties": {"contact_id": {"type": "integer"}, "body": {"type": "string"}}},
    },
}

# Unicode (accents, CJK, emoji, a quote and a newline) and nested objects: several chunks' worth.
TRICKY_ARGS = {
    "name": "Zoë Ångström — 東京 🚀",
    "filters": {"tags": ["vip", 'renewal "Q3"'], "owner": {"id": 7, "note": "line1\nline2"}, "active": True},
}


def llm(server: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model="test-model", base_url=server.base_url, api_key="sk-test", max_retries=0, **kwargs)


def aggregate(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# ----------------------------------------------------------------------------- tool calls


def test_tool_call_non_streaming(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls(("lookup_contact", TRICKY_ARGS)))

    reply = llm(fake_openai).bind_tools([LOOKUP]).invoke("find Zoë")

    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == [{"name": "lookup_contact", "args": TRICKY_ARGS, "id": "call_1", "type": "tool_call"}]
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert fake_openai.requests[0]["stream"] is False


def test_tool_calls_streaming_reassemble_from_split_arguments(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls(("lookup_contact", TRICKY_ARGS), ("log_note", {"contact_id": 42, "body": "héllo"})))

    chunks = list(llm(fake_openai).bind_tools([LOOKUP, LOG_NOTE]).stream("find Zoë and log a note"))

    # The arguments really arrived in pieces: one head chunk per call, then many fragments.
    fragments = [tc for c in chunks for tc in c.tool_call_chunks if tc["index"] == 0 and tc["args"]]
    assert len(fragments) > 5
    heads = [tc for c in chunks for tc in c.tool_call_chunks if tc["id"]]
    assert [(h["id"], h["name"], h["args"]) for h in heads] == [
        ("call_1", "lookup_contact", ""),
        ("call_2", "log_note", ""),
    ]

    message = aggregate(chunks)
    assert message.tool_calls == [
        {"name": "lookup_contact", "args": TRICKY_ARGS, "id": "call_1", "type": "tool_call"},
        {"name": "log_note", "args": {"contact_id": 42, "body": "héllo"}, "id": "call_2", "type": "tool_call"},
    ]
    assert message.invalid_tool_calls == []
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert fake_openai.requests[0]["stream"] is True


def test_raw_argument_string_reaches_the_client_verbatim(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        tool_calls(("lookup_contact", '{"name": "Bor'), ("lookup_contact", '{"name": "Bo"}', "call_own"))
    )

    reply = llm(fake_openai).bind_tools([LOOKUP]).invoke("x")

    assert [c["id"] for c in reply.tool_calls] == ["call_own"]
    assert [(c["id"], c["args"]) for c in reply.invalid_tool_calls] == [("call_1", '{"name": "Bor')]


# ----------------------------------------------------------------------------- text


def test_text_reply_non_streaming_and_streaming(fake_openai: FakeOpenAI) -> None:
    answer = "Borealis Ltd — 3 open deals, €12 400 in total. 👍"
    fake_openai.script(text(answer), answer)  # a plain str is a text reply too
    model = llm(fake_openai)

    reply = model.invoke([HumanMessage("summarise Borealis")])
    assert reply.content == answer
    assert reply.tool_calls == []
    assert reply.response_metadata["finish_reason"] == "stop"

    chunks = list(model.stream("summarise Borealis"))
    assert len([c for c in chunks if c.content]) > 1  # streamed in pieces
    streamed = aggregate(chunks)
    assert streamed.content == answer
    assert streamed.response_metadata["finish_reason"] == "stop"


def test_tool_call_with_text_alongside(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls(("lookup_contact", {"name": "Bo"}), content="Let me look."))

    reply = llm(fake_openai).bind_tools([LOOKUP]).invoke("x")

    assert reply.content == "Let me look."
    assert reply.tool_calls[0]["name"] == "lookup_contact"


# ----------------------------------------------------------------------------- a two-turn exchange


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_tool_call_then_answer_from_the_tool_result(fake_openai: FakeOpenAI, stream: bool) -> None:
    fake_openai.script(
        tool_calls(("lookup_contact", {"name": "Borealis"})),
        lambda req: text(f"Found it: {req['messages'][-1]['content']}"),
    )
    model = llm(fake_openai).bind_tools([LOOKUP])

    def ask(messages: list[Any]) -> AIMessage:
        return aggregate(list(model.stream(messages))) if stream else model.invoke(messages)

    history: list[Any] = [HumanMessage("who is Borealis?")]
    first = ask(history)
    call = first.tool_calls[0]
    history += [first, ToolMessage(content='{"id": 9, "name": "Borealis Ltd"}', tool_call_id=call["id"])]
    second = ask(history)

    assert second.content == 'Found it: {"id": 9, "name": "Borealis Ltd"}'
    assert fake_openai.calls == 2
    sent = fake_openai.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"name": "Borealis"}
    assert sent[2] == {"content": '{"id": 9, "name": "Borealis Ltd"}', "role": "tool", "tool_call_id": "call_1"}


# ----------------------------------------------------------------------------- recording


def test_records_requests_and_estimates_prompt_tokens(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text("one"), text("two"))
    model = llm(fake_openai).bind_tools([LOOKUP, LOG_NOTE])

    first = model.invoke("hello")
    second = aggregate(list(model.stream("a much longer question " * 20, stream_usage=True)))

    assert fake_openai.calls == 2
    requests = fake_openai.requests
    assert [r["model"] for r in requests] == ["test-model", "test-model"]
    assert [r["stream"] for r in requests] == [False, True]
    assert [t["function"]["name"] for t in requests[0]["tools"]] == ["lookup_contact", "log_note"]
    assert requests[1]["stream_options"] == {"include_usage": True}

    estimates = [estimate_tokens(r) for r in requests]
    assert 0 < estimates[0] < estimates[1]
    assert fake_openai.prompt_tokens == sum(estimates)
    assert [u["prompt_tokens"] for u in fake_openai.usage] == estimates
    # the client sees the same number as usage
    assert first.usage_metadata is not None and first.usage_metadata["input_tokens"] == estimates[0]
    assert second.usage_metadata is not None and second.usage_metadata["input_tokens"] == estimates[1]


def test_streaming_without_usage_option_reports_no_usage(fake_openai: FakeOpenAI) -> None:
    # With a custom base_url, langchain-openai does not ask for streaming usage by default.
    fake_openai.script(text("hi"))

    message = aggregate(list(llm(fake_openai).stream("x")))

    assert "stream_options" not in fake_openai.requests[0]
    assert message.usage_metadata is None
    assert fake_openai.prompt_tokens > 0  # still measured on the server side


# ----------------------------------------------------------------------------- errors


def test_empty_queue_fails_loudly(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text("only one"))
    model = llm(fake_openai)
    model.invoke("first")

    with pytest.raises(openai.InternalServerError) as caught:
        model.invoke("second")

    assert caught.value.status_code == 500
    assert "fake server: no scripted reply left (2 requests so far)" in str(caught.value)
    assert fake_openai.errors == ["fake server: no scripted reply left (2 requests so far)"]
    assert fake_openai.calls == 2


def test_empty_queue_fails_loudly_when_streaming(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.APIStatusError, match="no scripted reply left"):
        list(llm(fake_openai).stream("x"))


def test_fail_next_goes_ahead_of_the_queue(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text("after the outage"))
    fake_openai.fail_next(status=503, body="upstream overloaded")
    model = llm(fake_openai)

    with pytest.raises(openai.InternalServerError) as caught:
        model.invoke("x")
    assert caught.value.status_code == 503
    assert "upstream overloaded" in str(caught.value)

    assert model.invoke("x").content == "after the outage"


@pytest.mark.parametrize(
    ("status", "exc"),
    [(400, openai.BadRequestError), (401, openai.AuthenticationError), (429, openai.RateLimitError)],
)
def test_fail_next_maps_to_the_sdk_exception(fake_openai: FakeOpenAI, status: int, exc: type[Exception]) -> None:
    fake_openai.fail_next(status=status, body={"error": {"message": "scripted", "type": "x", "code": "y"}})

    with pytest.raises(exc) as caught:
        llm(fake_openai).invoke("x")

    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == status
    assert caught.value.body == {"message": "scripted", "type": "x", "code": "y"}


def test_scripted_error_mid_sequence(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text("a"), error(500), text("c"))
    model = llm(fake_openai)

    assert model.invoke("x").content == "a"
    with pytest.raises(openai.InternalServerError):
        model.invoke("x")
    assert model.invoke("x").content == "c"


def test_a_reply_callable_that_raises_is_reported(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(lambda req: req["no such key"])

    with pytest.raises(openai.InternalServerError, match="reply callable raised KeyError"):
        llm(fake_openai).invoke("x")


def test_slow_reply_hits_the_client_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text("too late", delay=2))

    with pytest.raises(openai.APITimeoutError):
        llm(fake_openai, timeout=0.2).invoke("x")


def test_closed_port_raises_connection_error_quickly() -> None:
    with FakeOpenAI() as server:
        base_url = server.base_url
    model = ChatOpenAI(model="test-model", base_url=base_url, api_key="sk-test", max_retries=0, timeout=2)

    started = time.monotonic()
    with pytest.raises(openai.APIConnectionError):
        model.invoke("x")
    assert time.monotonic() - started < 2


def test_other_endpoints_are_404_and_recorded(fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)

    with pytest.raises(openai.NotFoundError, match="only POST /v1/chat/completions"):
        client.responses.create(model="test-model", input="x")

    assert fake_openai.unhandled == ["POST /v1/responses"]
    assert fake_openai.calls == 0


# ----------------------------------------------------------------------------- async client


def test_async_client(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls(("lookup_contact", TRICKY_ARGS)), text("done"))
    model = llm(fake_openai).bind_tools([LOOKUP])

    async def run() -> tuple[AIMessage, AIMessageChunk]:
        first = await model.ainvoke("x")
        chunks = [chunk async for chunk in model.astream("y")]
        return first, aggregate(chunks)

    first, second = asyncio.run(run())
    assert first.tool_calls[0]["args"] == TRICKY_ARGS
    assert second.content == "done"


# ----------------------------------------------------------------------------- lifecycle


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_stop_leaves_no_threads_or_ports() -> None:
    before = set(threading.enumerate())
    ports = []
    for _ in range(3):
        with FakeOpenAI() as server:
            server.script(text("hi"))
            assert port_is_open(server.port)
            assert llm(server).invoke("x").content == "hi"
            ports.append(server.port)
        assert not port_is_open(server.port)

    assert set(threading.enumerate()) == before
    assert len(set(ports)) == 3


def test_stop_with_a_request_in_flight_does_not_hang() -> None:
    server = FakeOpenAI().start()
    server.script(text("slow", delay=30))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            llm(server, timeout=10).invoke("x")
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while server.calls == 0:
        time.sleep(0.005)

    started = time.monotonic()
    server.stop()
    caller.join(10)

    assert time.monotonic() - started < 1  # the delayed reply is cut short, not waited out
    assert not caller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], openai.InternalServerError)
    assert "fake server: stopping" in str(outcome[0])
    assert not port_is_open(server.port)


def test_reset_and_pending() -> None:
    server = FakeOpenAI()
    server.script(text("a"), text("b"))
    assert server.pending == 2
    server.reset()
    assert server.pending == 0
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url
    with pytest.raises(TypeError):
        server.script(42)  # type: ignore[arg-type]
