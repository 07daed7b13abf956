"""A scriptable OpenAI-compatible server: the tests' model, and the evals' scripted models.

Tests talk to models through the real ``ChatOpenAI`` client (langchain-openai), pointed at
this server on 127.0.0.1. The test scripts what the "model" answers and the server records
every request, so a test can assert on what the product sent (messages, tools, model) and
measure calls and prompt tokens per task.

    def test_two_turns(fake_openai):
        fake_openai.script(
            tool_calls(("search_contacts", {"query": "Borealis"})),   # gets id call_1
            lambda req: text(f"Found: {req['messages'][-1]['content']}"),  # sees the tool result
        )
        llm = ChatOpenAI(model="test-model", base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
        ...
        assert fake_openai.calls == 2

Only ``POST /v1/chat/completions`` is served (any other path answers 404 and is recorded
in ``unhandled``). Each request pops the next scripted reply; with none left the server
answers HTTP 500 so the test fails loudly instead of hanging. Use ``max_retries=0`` on the
client: the openai SDK retries 408/409/429/5xx and each retry pops another reply.

Tool-call ids are ``call_1``, ``call_2``, ... numbered by this server in the order it sends
them, so a test knows them in advance; pass a third tuple item to choose one yourself.

Tests get it through the ``fake_openai`` fixture (tests/fake_openai.py). The evals'
scripted models (evals/scripted.py) run it with a ``responder``: a callable that answers
every request the queue does not, so one server plays a whole dataset.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

__all__ = [
    "FakeOpenAI",
    "Reply",
    "error",
    "estimate_tokens",
    "text",
    "tool_calls",
]


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # the raw JSON string the model "wrote"
    id: str | None = None  # None: the server numbers it call_<n>


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with ``text``, ``tool_calls`` or ``error``."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    status: int = 200
    body: Any = None  # the error body when status != 200
    delay: float = 0.0  # seconds to wait before answering (for timeout tests)


ReplyFn = Callable[[dict[str, Any]], "Reply | str"]
Scripted = Reply | str | ReplyFn


def text(content: str, *, delay: float = 0.0) -> Reply:
    """A plain assistant message (finish_reason "stop")."""
    return Reply(content=content, delay=delay)


def tool_calls(*calls: tuple[Any, ...], content: str | None = None, delay: float = 0.0) -> Reply:
    """An assistant message calling tools (finish_reason "tool_calls").

    Each call is ``(name, args)`` or ``(name, args, id)``. ``args`` is a dict (encoded as
    JSON, unicode kept) or a str sent verbatim, e.g. broken JSON to test invalid tool calls.
    """
    if not calls:
        raise ValueError("tool_calls() needs at least one (name, args) call")
    built = []
    for call in calls:
        if len(call) not in (2, 3):
            raise ValueError(f"a tool call is (name, args) or (name, args, id), not {call!r}")
        name, args = call[0], call[1]
        arguments = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        built.append(ToolCall(name=name, arguments=arguments, id=call[2] if len(call) == 3 else None))
    return Reply(content=content, tool_calls=tuple(built), delay=delay)


def error(status: int = 500, body: Any = None, *, delay: float = 0.0) -> Reply:
    """An HTTP error. ``body`` is a dict (sent as JSON) or a str (wrapped in OpenAI's
    ``{"error": {"message": ...}}`` shape); by default a generic server error."""
    if status < 400:
        raise ValueError(f"an error reply needs an HTTP error status, not {status}")
    if body is None:
        body = f"fake server: scripted HTTP {status}"
    if isinstance(body, str):
        body = _error_body(body, status)
    return Reply(status=status, body=body, delay=delay)


def _error_body(message: str, status: int) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def estimate_tokens(request_json: dict[str, Any]) -> int:
    """Prompt-token ESTIMATE for one request: ceil(len(json(messages)) + len(json(tools))) / 4.

    Not a tokenizer: about 4 characters per token, which is close enough to compare prompt
    sizes between versions of the product, not to predict a bill.
    """
    size = len(json.dumps(request_json.get("messages", []), ensure_ascii=False))
    if request_json.get("tools"):
        size += len(json.dumps(request_json["tools"], ensure_ascii=False))
    return max(1, math.ceil(size / 4))


# --------------------------------------------------------------------------- server


class _Server(uvicorn.Server):
    """uvicorn without the 0.1 s polling main loop: it exits as soon as ``exit()`` is called."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        if not self.should_exit:
            await self._exit.wait()

    def exit(self) -> None:
        self.should_exit = True
        loop, event = self._loop, self._exit
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)


@dataclass
class _State:
    queue: deque[Scripted] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, int]] = field(default_factory=list)
    unhandled: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    call_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    completion_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))


class FakeOpenAI:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, scripted by the test.

    ``start()``/``stop()`` or ``with FakeOpenAI() as server:``. ``base_url`` is
    ``http://127.0.0.1:PORT/v1``. Streaming answers split content and tool-call arguments
    into ``chunk_size``-character fragments, as OpenAI does.
    """

    def __init__(self, *, chunk_size: int = 7,
                 responder: Callable[[dict[str, Any], dict[str, str]], Reply | str] | None = None) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.chunk_size = chunk_size
        self.responder = responder  # (body, headers) -> reply, for every request the queue does not answer
        self._lock = threading.Lock()
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._port: int | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------------ scripting

    def script(self, *replies: Scripted) -> FakeOpenAI:
        """Queue replies; each request pops the next. A reply is ``text(...)``,
        ``tool_calls(...)``, ``error(...)``, a plain str (= text), or a callable taking
        the request's JSON body and returning one of those (evaluated when the request
        arrives, in the server's thread)."""
        for reply in replies:
            if not (isinstance(reply, Reply | str) or callable(reply)):
                raise TypeError(f"cannot script {reply!r}: use text(), tool_calls(), error() or a callable")
        with self._lock:
            self._state.queue.extend(replies)
        return self

    def fail_next(self, status: int = 500, body: Any = None) -> FakeOpenAI:
        """Make the very next request fail with HTTP ``status`` (ahead of anything queued)."""
        reply = error(status, body)
        with self._lock:
            self._state.queue.appendleft(reply)
        return self

    @property
    def pending(self) -> int:
        """How many scripted replies have not been used yet."""
        with self._lock:
            return len(self._state.queue)

    # ------------------------------------------------------------------ recording

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received on /v1/chat/completions, in order (a copy)."""
        with self._lock:
            return list(self._state.requests)

    @property
    def calls(self) -> int:
        """How many chat-completion requests arrived (answered or not)."""
        with self._lock:
            return len(self._state.requests)

    @property
    def prompt_tokens(self) -> int:
        """Sum of ``estimate_tokens`` over every request received (an ESTIMATE: ~4 chars per
        token of the JSON of messages + tools). Each successful reply reports its request's
        estimate as ``usage.prompt_tokens``."""
        with self._lock:
            return sum(estimate_tokens(body) for body in self._state.requests)

    @property
    def usage(self) -> list[dict[str, int]]:
        """The ``usage`` object of each successful reply, in order."""
        with self._lock:
            return [dict(u) for u in self._state.usage]

    @property
    def unhandled(self) -> list[str]:
        """``"METHOD /path"`` of requests to anything but POST /v1/chat/completions."""
        with self._lock:
            return list(self._state.unhandled)

    @property
    def errors(self) -> list[str]:
        """Why requests were answered 500 by the fake itself (empty queue, a reply callable
        that raised, a bad body)."""
        with self._lock:
            return list(self._state.errors)

    def reset(self) -> None:
        """Forget the queue and everything recorded (ids restart at call_1)."""
        with self._lock:
            self._state = _State()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> FakeOpenAI:
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # the OS picks a free port; no race with other tests
        sock.listen(128)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = _Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True)
        self._sock, self._server, self._thread = sock, server, thread
        self._port = sock.getsockname()[1]
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                self._cleanup()
                raise RuntimeError("FakeOpenAI failed to start (see the uvicorn log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"FakeOpenAI did not start within {timeout} s")
            time.sleep(0.002)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.exit()
        thread.join(timeout)
        if thread.is_alive():  # a request still running past the graceful timeout
            server.force_exit = True
            thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("FakeOpenAI thread did not stop")
        self._cleanup()

    def _cleanup(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
        # the port stays readable so a test can check it is closed after stop()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the app

    def _build_app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> Response:
            return await self._handle(request)

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def anything_else(request: Request, path: str) -> Response:
            what = f"{request.method} /{path}"
            with self._lock:
                self._state.unhandled.append(what)
            message = f"fake server: {what} is not implemented (only POST /v1/chat/completions)"
            return JSONResponse(_error_body(message, 404), status_code=404)

        return app

    def _fail(self, message: str) -> JSONResponse:
        with self._lock:
            self._state.errors.append(message)
        return JSONResponse(_error_body(message, 500), status_code=500)

    async def _handle(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as exc:
            return self._fail(f"fake server: request body is not a JSON object: {exc}")

        with self._lock:
            self._state.requests.append(body)
            n = len(self._state.requests)
            scripted = self._state.queue.popleft() if self._state.queue else None
        if scripted is None and self.responder is not None:
            headers, responder = dict(request.headers), self.responder
            scripted = lambda body: responder(body, headers)  # noqa: E731
        if scripted is None:
            return self._fail(f"fake server: no scripted reply left ({n} requests so far)")

        reply: Any = scripted
        if callable(reply):
            try:
                reply = reply(body)
            except Exception as exc:  # surface the test's own bug in the client's error
                return self._fail(f"fake server: reply callable raised {type(exc).__name__}: {exc}")
        if isinstance(reply, str):
            reply = text(reply)
        if not isinstance(reply, Reply):
            return self._fail(f"fake server: a reply callable returned {reply!r}, not a Reply or str")

        if reply.delay and await self._stopping_within(reply.delay):
            return JSONResponse(_error_body("fake server: stopping", 503), status_code=503)
        if reply.status != 200:
            return JSONResponse(reply.body, status_code=reply.status)

        model = body.get("model", "fake-model")
        with self._lock:
            calls = [
                {
                    "id": call.id or f"call_{next(self._state.call_ids)}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in reply.tool_calls
            ]
            completion_id = f"chatcmpl-fake-{next(self._state.completion_ids)}"
            prompt = estimate_tokens(body)
            completion = max(1, math.ceil(len(json.dumps([reply.content, calls], ensure_ascii=False)) / 4))
            usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
            self._state.usage.append(usage)

        finish_reason = "tool_calls" if calls else "stop"
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = self._stream(completion_id, model, reply.content, calls, finish_reason, usage, include_usage)
            return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
                "usage": usage,
            }
        )

    async def _stopping_within(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stop() is called first (then True), so a delayed reply
        never holds up the end of a test."""
        stopping = self._server._exit if self._server is not None else None
        if stopping is None:
            await asyncio.sleep(seconds)
            return False
        try:
            await asyncio.wait_for(stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _stream(
        self,
        completion_id: str,
        model: str,
        content: str | None,
        calls: list[dict[str, Any]],
        finish_reason: str,
        usage: dict[str, int],
        include_usage: bool,
    ) -> AsyncIterator[str]:
        created = int(time.time())
        size = self.chunk_size

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                data["usage"] = None  # OpenAI sends null on every chunk but the last
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        # First chunk: the role (and, for text, empty content), as OpenAI sends it.
        yield chunk({"role": "assistant", "content": "" if content is not None or not calls else None, "refusal": None})
        if content:
            for i in range(0, len(content), size):
                yield chunk({"content": content[i : i + size]})
        for index, call in enumerate(calls):
            # The call's first chunk carries id, type and name with empty arguments ...
            head = {"index": index, "id": call["id"], "type": "function"}
            yield chunk({"tool_calls": [{**head, "function": {"name": call["function"]["name"], "arguments": ""}}]})
            # ... later chunks only the index and a fragment of the arguments string.
            arguments = call["function"]["arguments"]
            for i in range(0, len(arguments), size):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[i : i + size]}}]})
            await asyncio.sleep(0)  # let the loop breathe between calls
        yield chunk({}, finish_reason)
        if include_usage:
            tail = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(tail, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"
