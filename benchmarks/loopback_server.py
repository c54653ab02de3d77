"""A loopback HTTP/1.1 server that answers like OpenAI, Anthropic and Ollama, fast.

It exists so that benchmarks and reliability tests exercise real sockets and real HTTP parsing
without a network, and so that the server is never the bottleneck: a raw `asyncio.Protocol`
(no framework), keep-alive, every response body pre-rendered once per model name, one
`transport.write` per response. Run it in its own process for benchmarks
(`python benchmarks/loopback_server.py --port 0` prints `LOOPBACK_READY <url>`), or in a
background thread for tests (`LoopbackServer().start()`).

Endpoints (bodies are fixed, realistic: a ~200-token answer, streamed as 50 text chunks):

- `POST /v1/chat/completions`: OpenAI Chat Completions, JSON or SSE (`"stream": true`): 50
  `chat.completion.chunk` events, a finish chunk, a usage chunk (no choices), `data: [DONE]`.
- `POST /v1/messages`: Anthropic Messages, JSON or the SSE sequence `message_start`,
  `content_block_start`, `ping`, 50 `content_block_delta`, `content_block_stop`,
  `message_delta`, `message_stop`.
- `POST /api/chat`: Ollama, JSON or NDJSON.
- `GET /v1/models`: a model list (cheap health probe). `GET /_stats`: request counts (in all
  and per fault id), open / peak-open connections and connections accepted.
  `POST /_reset`: clears them.

Faults, chosen by a path prefix `/fault/<spec>/...` (so a client's `base_url` selects it) or by
an `x-loopback-fault: <spec>` header. `<spec>` is `mode[,key=value...]`:

- `429` (`retry_after=<s>`, default 1): rate limited, with `retry-after` and the provider's
  error body; `529`: Anthropic "overloaded"; `500`: internal server error;
- `drop`: the response is cut mid-way (half the stream, or half the JSON body) and the
  connection closed; `stall`: half the stream, then nothing (the connection stays open);
  `garbage`: a 200 whose JSON (or one stream event) is not JSON;
- `slow` (`delay=<s>`, default 2): the answer comes after a delay;
- `pace` (`interval=<s>`, default 0.02; `first=<s>`, default 0): not a fault: the stream's
  first event comes after `first` seconds, then one event every `interval`, like a model
  thinking and then generating (keeps many streams in flight at once);
- no fault, but a `tool_choice` naming a tool absent from `tools`: the 400 the real API gives;
- `times=<n>` applies the fault to the first n requests of that `id=<name>` only, then answers
  normally: `/fault/429,times=3,retry_after=2,id=storm1/v1` is "three 429s, then 200".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

__all__ = [
    "ANSWER_CHUNKS",
    "ANSWER_TEXT",
    "COMPLETION_TOKENS",
    "PROMPT_TOKENS",
    "FaultSpec",
    "LoopbackServer",
    "spawn_server_process",
]

# --- the fixed answer -----------------------------------------------------------------------

_PARAGRAPH = (
    "Connection pooling keeps a small set of open sockets to each host so that a new request "
    "can skip the TCP and TLS handshakes. The pool hands out an idle connection when one "
    "exists, opens a new one while under its limit, and otherwise makes the caller wait. "
    "Keep-alive timeouts close connections nobody used for a while, which frees file "
    "descriptors on both ends. Retries belong one layer above the pool: a request that failed "
    "with a rate limit or an overloaded server should wait, ideally as long as the server "
    "asked through its Retry-After header, and then try again with exponential backoff and "
    "jitter so that many clients do not retry in lockstep. Streaming responses deserve extra "
    "care, because once the first chunk has reached the caller a retry would repeat text the "
    "user has already seen; the safe rule is to retry only before any data was yielded and to "
    "report a truncated stream as an invalid response instead. Finally, every call should "
    "release its connection on every path out, including cancellation, or the pool slowly "
    "runs dry under load."
)
_WORDS = _PARAGRAPH.split(" ")
CHUNK_COUNT = 50


def _split(words: list[str], parts: int) -> list[str]:
    size, extra = divmod(len(words), parts)
    chunks: list[str] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        chunks.append(" ".join(words[start:end]) + ("" if end == len(words) else " "))
        start = end
    return chunks


ANSWER_CHUNKS: tuple[str, ...] = tuple(_split(_WORDS, CHUNK_COUNT))
ANSWER_TEXT = "".join(ANSWER_CHUNKS)
PROMPT_TOKENS = 24
COMPLETION_TOKENS = 200  # ~4 characters per token for English prose

_OPENAI_ID = "chatcmpl-loopback000000000000000001"
_ANTHROPIC_ID = "msg_01LoopbackLoopbackLoopback"
_CREATED = 1_735_689_600


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# --- OpenAI ---------------------------------------------------------------------------------


def _openai_usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }


def openai_json(model: str) -> bytes:
    return _dumps({
        "id": _OPENAI_ID,
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": ANSWER_TEXT, "refusal": None,
                        "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": _openai_usage(),
        "service_tier": "default",
        "system_fingerprint": "fp_loopback",
    })


def openai_events(model: str) -> list[bytes]:
    head = {"id": _OPENAI_ID, "object": "chat.completion.chunk", "created": _CREATED,
            "model": model, "service_tier": "default", "system_fingerprint": "fp_loopback"}

    def event(choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        return b"data: " + _dumps({**head, "choices": choices, "usage": usage}) + b"\n\n"

    events = [event([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                      "logprobs": None, "finish_reason": None}])]
    events += [
        event([{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}])
        for text in ANSWER_CHUNKS
    ]
    events.append(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    events.append(event([], _openai_usage()))
    events.append(b"data: [DONE]\n\n")
    return events


# --- Anthropic ------------------------------------------------------------------------------


def _anthropic_usage(output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": PROMPT_TOKENS, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": output_tokens,
            "service_tier": "standard"}


def anthropic_json(model: str) -> bytes:
    return _dumps({
        "id": _ANTHROPIC_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": ANSWER_TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(COMPLETION_TOKENS),
    })


def anthropic_events(model: str) -> list[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps({"type": name, **data}) + b"\n\n"

    events = [
        event("message_start", {"message": {
            "id": _ANTHROPIC_ID, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": _anthropic_usage(1),
        }}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        event("ping", {}),
    ]
    events += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
        for text in ANSWER_CHUNKS
    ]
    events += [
        event("content_block_stop", {"index": 0}),
        event("message_delta", {
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            # the current API repeats the whole (cumulative) usage here
            "usage": {k: v for k, v in _anthropic_usage(COMPLETION_TOKENS).items()
                      if k != "service_tier"},
        }),
        event("message_stop", {}),
    ]
    return events


# --- Ollama ---------------------------------------------------------------------------------


def _ollama_done(model: str, content: str) -> dict[str, Any]:
    return {"model": model, "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content}, "done": True,
            "done_reason": "stop", "total_duration": 1_000_000, "load_duration": 1000,
            "prompt_eval_count": PROMPT_TOKENS, "prompt_eval_duration": 1000,
            "eval_count": COMPLETION_TOKENS, "eval_duration": 1000}


def ollama_json(model: str) -> bytes:
    return _dumps(_ollama_done(model, ANSWER_TEXT))


def ollama_events(model: str) -> list[bytes]:
    lines = [
        _dumps({"model": model, "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": text}, "done": False}) + b"\n"
        for text in ANSWER_CHUNKS
    ]
    lines.append(_dumps(_ollama_done(model, "")) + b"\n")
    return lines


# --- faults ---------------------------------------------------------------------------------

_ERROR_BODIES: dict[tuple[str, int], bytes] = {
    ("openai", 429): _dumps({"error": {
        "message": "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3.",
        "type": "requests", "param": None, "code": "rate_limit_exceeded"}}),
    ("openai", 500): _dumps({"error": {
        "message": "The server had an error while processing your request.",
        "type": "server_error", "param": None, "code": None}}),
    ("openai", 529): _dumps({"error": {
        "message": "The engine is currently overloaded, please try again later.",
        "type": "server_error", "param": None, "code": None}}),
    ("anthropic", 429): _dumps({"type": "error", "error": {
        "type": "rate_limit_error",
        "message": "Number of requests has exceeded your rate limit."}}),
    ("anthropic", 500): _dumps({"type": "error", "error": {
        "type": "api_error", "message": "Internal server error"}}),
    ("anthropic", 529): _dumps({"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}),
}
_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 529: "Site Overloaded", 400: "Bad Request"}
_MODES = frozenset({"429", "529", "500", "drop", "stall", "garbage", "slow", "pace"})


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A parsed `mode[,key=value...]` fault specification."""

    mode: str
    times: int | None = None
    fault_id: str = ""
    retry_after: str = "1"
    delay: float = 2.0
    interval: float = 0.02
    first: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> FaultSpec:
        mode, *pairs = [p.strip() for p in unquote(spec).split(",") if p.strip()]
        if mode not in _MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        options = dict(p.partition("=")[::2] for p in pairs)
        times = options.get("times")
        return cls(
            mode=mode,
            times=int(times) if times else None,
            fault_id=options.get("id", ""),
            retry_after=options.get("retry_after", "1"),
            delay=float(options.get("delay", "2")),
            interval=float(options.get("interval", "0.02")),
            first=float(options.get("first", "0")),
        )

    def to_path(self) -> str:
        parts = [self.mode]
        if self.times is not None:
            parts.append(f"times={self.times}")
        if self.fault_id:
            parts.append(f"id={self.fault_id}")
        if self.mode == "429":
            parts.append(f"retry_after={self.retry_after}")
        if self.mode == "slow":
            parts.append(f"delay={self.delay}")
        if self.mode == "pace":
            parts.append(f"interval={self.interval},first={self.first}")
        return "/fault/" + ",".join(parts)


def _invalid_request(kind: str, request: dict[str, Any]) -> bytes | None:
    """The 400 body the real API gives a `tool_choice` naming a tool that was not sent."""
    choice = request.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    tools = request.get("tools") or []
    if kind == "anthropic":
        wanted = choice.get("name") if choice.get("type") == "tool" else None
        names = {t.get("name") for t in tools if isinstance(t, dict)}
        if wanted is None or wanted in names:
            return None
        return _dumps({"type": "error", "error": {
            "type": "invalid_request_error",
            "message": f"tool_choice.name: Tool '{wanted}' not found in provided tools"}})
    wanted = (choice.get("function") or {}).get("name")
    names = {(t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)}
    if wanted is None or wanted in names:
        return None
    return _dumps({"error": {
        "message": f"Invalid value for 'tool_choice': function '{wanted}' not found in 'tools'.",
        "type": "invalid_request_error", "param": "tool_choice", "code": None}})


# --- the HTTP side --------------------------------------------------------------------------

_Renderer = Callable[[str], bytes]
_EventRenderer = Callable[[str], list[bytes]]
_ROUTES: dict[str, tuple[str, _Renderer, _EventRenderer, bytes]] = {
    "/v1/chat/completions": ("openai", openai_json, openai_events, b"text/event-stream"),
    "/v1/messages": ("anthropic", anthropic_json, anthropic_events, b"text/event-stream"),
    "/api/chat": ("ollama", ollama_json, ollama_events, b"application/x-ndjson"),
}
_MODELS_BODY = _dumps({"object": "list", "data": [
    {"id": "gpt-4o-mini", "object": "model", "created": _CREATED, "owned_by": "loopback"},
    {"id": "claude-3-5-haiku-latest", "object": "model", "created": _CREATED,
     "owned_by": "loopback"},
]})


def _head(status: int, content_type: bytes, extra: list[tuple[bytes, bytes]],
          length: int | None, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}".encode(),
             b"content-type: " + content_type,
             b"x-request-id: req_loopback"]
    lines += [k + b": " + v for k, v in extra]
    if length is None:
        lines.append(b"transfer-encoding: chunked")
    else:
        lines.append(b"content-length: " + str(length).encode())
    if not keep_alive:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)


@dataclass(slots=True)
class _State:
    """Shared by all connections: response caches and fault counters (one event loop)."""

    cache: dict[tuple[str, str, bool], bytes] = field(default_factory=dict)
    event_cache: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    open: int = 0
    peak_open: int = 0
    accepted: int = 0
    transports: set[asyncio.Transport] = field(default_factory=set)

    def close_all(self) -> None:
        for transport in list(self.transports):
            transport.close()


class _Connection(asyncio.Protocol):
    __slots__ = ("_buffer", "_closed", "_state", "_transport")

    def __init__(self, state: _State) -> None:
        self._state = state
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        state = self._state
        state.open += 1
        state.accepted += 1
        state.peak_open = max(state.peak_open, state.open)
        state.transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._state.open -= 1
        if self._transport is not None:
            self._state.transports.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            headers: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(buffer) < end + 4 + length:
                return
            body = bytes(buffer[end + 4 : end + 4 + length])
            del buffer[: end + 4 + length]
            method, _, rest = request_line.partition(" ")
            path = rest.rpartition(" ")[0] or rest
            keep_alive = headers.get("connection", "").lower() != "close"
            self._handle(method, path.split("?", 1)[0], headers, body, keep_alive)

    # --- routing ---

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes,
                keep_alive: bool) -> None:
        state = self._state
        state.requests += 1
        spec_text = headers.get("x-loopback-fault")
        if path.startswith("/fault/"):
            spec_text, _, rest = path[len("/fault/"):].partition("/")
            path = "/" + rest
        try:
            fault = FaultSpec.parse(spec_text) if spec_text else None
        except ValueError as exc:
            self._send_simple(400, _dumps({"error": {"message": str(exc)}}), keep_alive)
            return
        if fault is not None:
            state.seen[fault.fault_id] += 1
            if fault.times is not None and state.seen[fault.fault_id] > fault.times:
                fault = None
        if method == "GET" and path == "/_stats":
            stats = {"requests": state.requests, "seen": state.seen, "open": state.open,
                     "peak_open": state.peak_open, "accepted": state.accepted}
            self._send_simple(200, _dumps(stats), keep_alive)
            return
        if method == "POST" and path == "/_reset":
            state.seen.clear()
            state.requests = 0
            state.peak_open = state.open
            state.accepted = 0
            self._send_simple(200, b"{}", keep_alive)
            return
        if method == "GET" and path == "/v1/models":
            self._send_simple(200, _MODELS_BODY, keep_alive)
            return
        route = _ROUTES.get(path)
        if method != "POST" or route is None:
            self._send_simple(404, _dumps({"error": {"message": f"no route {method} {path}"}}),
                              keep_alive)
            return
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            self._send_simple(400, _dumps({"error": {"message": "request is not JSON"}}),
                              keep_alive)
            return
        model = str(request.get("model") or "loopback")
        stream = bool(request.get("stream", route[0] == "ollama"))
        invalid = _invalid_request(route[0], request)
        if invalid is not None:
            self._send_simple(400, invalid, keep_alive)
            return
        if fault is not None and fault.mode == "slow":
            asyncio.get_running_loop().call_later(
                fault.delay, self._answer, route, model, stream, None, keep_alive
            )
            return
        self._answer(route, model, stream, fault, keep_alive)

    def _answer(self, route: tuple[str, _Renderer, _EventRenderer, bytes], model: str,
                stream: bool, fault: FaultSpec | None, keep_alive: bool) -> None:
        if self._closed or self._transport is None:
            return
        kind, render_json, render_events, stream_type = route
        mode = fault.mode if fault is not None else None
        if mode in ("429", "500", "529"):
            assert fault is not None
            status = int(mode)
            extra = [(b"retry-after", fault.retry_after.encode())] if status == 429 else []
            error_kind = "openai" if kind == "ollama" else kind
            self._send_simple(status, _ERROR_BODIES[(error_kind, status)], keep_alive, extra)
            return
        state = self._state
        if not stream:
            key = (kind, model, False)
            payload = state.cache.get(key)
            if payload is None:
                payload = state.cache[key] = render_json(model)
            if mode == "garbage":
                self._send_simple(200, payload[: len(payload) // 3] + b"<<not json>>", keep_alive)
            elif mode == "drop":
                self._transport.write(_head(200, b"application/json", [], len(payload), True)
                                      + payload[: len(payload) // 2])
                self._transport.close()
            else:
                self._send_simple(200, payload, keep_alive)
            return
        events = state.event_cache.get((kind, model))
        if events is None:
            events = state.event_cache[(kind, model)] = render_events(model)
        if mode is None:
            key = (kind, model, True)
            payload = state.cache.get(key)
            if payload is None:
                payload = state.cache[key] = _chunked(events) + b"0\r\n\r\n"
            self._transport.write(_head(200, stream_type, [], None, keep_alive) + payload)
            if not keep_alive:
                self._transport.close()
            return
        head = _head(200, stream_type, [], None, keep_alive)
        if mode == "pace":
            assert fault is not None
            self._transport.write(head)
            self._pace([_chunked([e]) for e in events] + [b"0\r\n\r\n"], fault.interval,
                       fault.first, keep_alive)
            return
        half = len(events) // 2
        if mode in ("drop", "stall"):
            self._transport.write(head + _chunked(events[:half]))
            if mode == "drop":
                self._transport.close()
            return
        # garbage: a few good events, one that is not JSON, then the rest
        bad = (b"data: {\"choices\": [{\"delta\": <<not json>>\n\n" if kind != "ollama"
               else b"{\"message\": <<not json>>\n")
        self._transport.write(
            head + _chunked([*events[:3], bad, *events[3:]]) + b"0\r\n\r\n"
        )
        if not keep_alive:
            self._transport.close()

    def _pace(self, parts: list[bytes], interval: float, first: float,
              keep_alive: bool) -> None:
        loop = asyncio.get_running_loop()

        def send(index: int) -> None:
            if self._closed or self._transport is None:
                return
            self._transport.write(parts[index])
            if index + 1 < len(parts):
                loop.call_later(interval, send, index + 1)
            elif not keep_alive:
                self._transport.close()

        if first > 0:
            loop.call_later(first, send, 0)
        else:
            send(0)

    def _send_simple(self, status: int, body: bytes, keep_alive: bool,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
        if self._transport is None or self._closed:
            return
        self._transport.write(
            _head(status, b"application/json", extra or [], len(body), keep_alive) + body
        )
        if not keep_alive:
            self._transport.close()


# --- running it -----------------------------------------------------------------------------


class _Server:
    """The listening socket plus the connections it accepted (closed together)."""

    def __init__(self, server: asyncio.Server, state: _State) -> None:
        self.server = server
        self.state = state

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        self.server.close()
        self.state.close_all()
        await self.server.wait_closed()
        await asyncio.sleep(0)  # let the transports' connection_lost callbacks run


async def serve(host: str, port: int, *, backlog: int = 4096) -> _Server:
    state = _State()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(state), host, port, backlog=backlog,
                                      reuse_address=True)
    return _Server(server, state)


class LoopbackServer:
    """The server on its own event loop in a daemon thread (tests, small runs).

    `with LoopbackServer() as server: server.url` -> `http://127.0.0.1:<port>`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LoopbackServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                server = self._server = loop.run_until_complete(serve(self.host, self.port))
                self.port = server.port
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(server.aclose())
                loop.close()

        self._thread = threading.Thread(target=run, name="loopback-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def spawn_server_process(python: str = sys.executable) -> tuple[str, Any]:
    """Start the server in a child process; returns (url, Popen). Terminate the Popen to stop."""
    import subprocess

    process = subprocess.Popen(
        [python, __file__, "--port", "0"],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("LOOPBACK_READY "):
        process.kill()
        raise RuntimeError(f"loopback server failed to start: {line!r}")
    return line.split(" ", 1)[1], process


def _raise_fd_limit() -> None:
    with contextlib.suppress(Exception):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _main(host: str, port: int) -> None:
    server = await serve(host, port)
    print(f"LOOPBACK_READY http://{host}:{server.port}", flush=True)
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, finish)
    # The parent closing our stdin (or dying) also stops us.
    if not sys.stdin.isatty():
        loop.add_reader(sys.stdin.fileno(), finish)
    await stop
    await server.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    _raise_fd_limit()
    asyncio.run(_main(args.host, args.port))


if __name__ == "__main__":
    main()
