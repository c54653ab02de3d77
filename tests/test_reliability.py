"""Reliability against a real (loopback) HTTP server: retries, broken streams, cancellation, load.

The server is `benchmarks/loopback_server.py`, started once per module on 127.0.0.1:0; a fault
is chosen by the model's `base_url` (`<url>/fault/<spec>/v1`), with a unique `id` per test so
the server's per-fault request counter tells how many attempts the client made. Backoff
sleeps are recorded instead of slept (`_http.sleep` / `_http.async_sleep` are replaced), so
the module runs in about a second and asserts behaviour only, never timing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import sys
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from chatmodels_langchain.errors import ChatModelError, ErrorCode
from chatmodels_langchain.providers import _http, register_builtins
from chatmodels_langchain.registry import ChatModelRegistry
from chatmodels_langchain.telemetry import semconv as sc
from chatmodels_langchain.wrapper import ChatModelWrapper

OPENAI_KEY = "sk-proj-test0000000000000000000000000000"
ANTHROPIC_KEY = "sk-ant-api03-test00000000000000000000000000"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}
PROVIDERS = ("openai", "anthropic")


def _load_loopback() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "loopback_server.py"
    spec = importlib.util.spec_from_file_location("_chatmodels_loopback_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


loopback = _load_loopback()
ANSWER = loopback.ANSWER_TEXT
_ids = itertools.count()


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with loopback.LoopbackServer() as running:
        yield running


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def sums(self, name: str) -> dict[tuple[tuple[str, Any], ...], int | float]:
        """Current value of a counter / up-down counter per attribute set."""
        out: dict[tuple[tuple[str, Any], ...], int | float] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return out
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:  # type: ignore[union-attr]
                            key = tuple(sorted((point.attributes or {}).items()))
                            out[key] = point.value  # type: ignore[union-attr]
        return out

    def total(self, name: str) -> int | float:
        return sum(self.sums(name).values())

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()


@pytest.fixture
def telemetry() -> Telemetry:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(spans, reader)
    telemetry.tracer_provider = tracer_provider  # type: ignore[attr-defined]
    telemetry.meter_provider = MeterProvider(metric_readers=[reader])  # type: ignore[attr-defined]
    return telemetry


@pytest.fixture
def registry(telemetry: Telemetry) -> ChatModelRegistry:
    registry = ChatModelRegistry(
        meter_provider=telemetry.meter_provider,  # type: ignore[attr-defined]
        tracer_provider=telemetry.tracer_provider,  # type: ignore[attr-defined]
    )
    register_builtins(registry)
    return registry


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff delays the transport asked for, recorded instead of slept."""
    recorded: list[float] = []

    async def record_async(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(_http, "sleep", recorded.append)
    monkeypatch.setattr(_http, "async_sleep", record_async)
    return recorded


def _base_url(server: Any, provider: str, fault: str | None) -> str:
    root = str(server.url) + (f"/fault/{fault}" if fault else "")
    return root + "/v1" if provider == "openai" else root


def _model_fields(server: Any, provider: str, fault: str | None,
                  max_retries: int) -> dict[str, Any]:
    return {
        "model": MODELS[provider],
        "api_key": OPENAI_KEY if provider == "openai" else ANTHROPIC_KEY,
        "base_url": _base_url(server, provider, fault),
        "max_retries": max_retries,
    }


MakeModel = Callable[..., ChatModelWrapper]


@pytest.fixture
async def make_model(registry: ChatModelRegistry, server: Any) -> AsyncIterator[MakeModel]:
    """Models from the registry; their pooled clients are closed in the test's event loop."""
    created: list[ChatModelWrapper] = []

    def make(provider: str = "openai", *, fault: str | None = None,
             max_retries: int = 0) -> ChatModelWrapper:
        model = registry.new_provider(
            provider, **_model_fields(server, provider, fault, max_retries)
        )
        created.append(model)
        return model

    yield make
    for model in created:
        model.close()
        await model.aclose()


def fault_id() -> str:
    return f"t{next(_ids)}"


def attempts(server: Any, fid: str) -> int:
    """How many requests carrying fault id `fid` the server has seen."""
    return int(httpx.get(server.url + "/_stats").json()["seen"].get(fid, 0))


def prompt() -> list[BaseMessage]:
    return [HumanMessage("Explain connection pooling in one paragraph.")]


async def _collect(stream: AsyncIterator[Any], into: list[Any]) -> None:
    async for chunk in stream:
        into.append(chunk)


# --- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_storm_is_survived_honouring_retry_after(
    provider: str, make_model: MakeModel, delays: list[float], server: Any,
    telemetry: Telemetry,
) -> None:
    fid = fault_id()
    model = make_model(provider, fault=f"429,times=3,retry_after=2,id={fid}", max_retries=3)

    answer = model.invoke(prompt())

    assert answer.content == ANSWER
    assert delays == [2.0, 2.0, 2.0]  # Retry-After, not the (shorter) jittered backoff
    assert attempts(server, fid) == 4
    (span,) = telemetry.finished()
    retries = [e for e in span.events if e.name == sc.EVENT_RETRY]
    assert len(retries) == 3
    assert all(e.attributes and e.attributes[sc.ERROR_TYPE] == "rate_limit" for e in retries)
    assert sc.ERROR_TYPE not in (span.attributes or {})


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_storm_async_and_streaming(
    provider: str, make_model: MakeModel, delays: list[float], server: Any
) -> None:
    fid = fault_id()
    model = make_model(provider, fault=f"429,times=2,retry_after=1.5,id={fid}", max_retries=2)
    answer = await model.ainvoke(prompt())
    assert answer.content == ANSWER
    assert delays == [1.5, 1.5]

    # a stream is retried too while nothing has been yielded yet
    fid = fault_id()
    model = make_model(provider, fault=f"429,times=2,retry_after=1,id={fid}", max_retries=2)
    chunks: list[Any] = []
    await _collect(model.astream(prompt()), chunks)
    assert "".join(str(c.content) for c in chunks) == ANSWER
    assert delays == [1.5, 1.5, 1.0, 1.0]
    assert attempts(server, fid) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limit_beyond_max_retries_surfaces_retry_after(
    provider: str, make_model: MakeModel, delays: list[float], server: Any
) -> None:
    fid = fault_id()
    model = make_model(provider, fault=f"429,retry_after=7,id={fid}", max_retries=1)
    with pytest.raises(ChatModelError) as caught:
        model.invoke(prompt())
    assert caught.value.code is ErrorCode.RATE_LIMIT
    assert caught.value.retry_after == 7.0
    assert caught.value.retryable
    assert delays == [7.0]
    assert attempts(server, fid) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", ["529", "500"])
def test_overloaded_becomes_provider_unavailable_after_retries(
    provider: str, status: str, make_model: MakeModel, delays: list[float], server: Any,
    telemetry: Telemetry,
) -> None:
    fid = fault_id()
    model = make_model(provider, fault=f"{status},id={fid}", max_retries=2)

    with pytest.raises(ChatModelError) as caught:
        model.invoke(prompt())

    error = caught.value
    assert error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert error.context["status_code"] == int(status)
    assert attempts(server, fid) == 3  # the first try and two retries
    assert len(delays) == 2
    assert all(0 < d <= _http.BACKOFF_MAX_S for d in delays)  # jittered backoff, no header
    (span,) = telemetry.finished()
    assert (span.attributes or {})[sc.ERROR_TYPE] == "provider_unavailable"
    assert telemetry.total(sc.METRIC_ACTIVE_REQUESTS) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_overloaded_async_stream_exhausts_retries(
    provider: str, make_model: MakeModel, delays: list[float], server: Any
) -> None:
    fid = fault_id()
    model = make_model(provider, fault=f"529,id={fid}", max_retries=1)
    with pytest.raises(ChatModelError) as caught:
        await _collect(model.astream(prompt()), [])
    assert caught.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert attempts(server, fid) == 2
    assert len(delays) == 1


# --- broken responses -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_dropped_stream_is_invalid_response_and_not_retried(
    provider: str, make_model: MakeModel, delays: list[float], server: Any,
    telemetry: Telemetry,
) -> None:
    fid = fault_id()
    model = make_model(provider, fault=f"drop,id={fid}", max_retries=3)
    chunks: list[Any] = []

    with pytest.raises(ChatModelError) as caught:
        for chunk in model.stream(prompt()):
            chunks.append(chunk)

    assert caught.value.code is ErrorCode.INVALID_RESPONSE
    assert chunks  # text had reached the caller, so a retry would repeat it
    assert "".join(str(c.content) for c in chunks) != ANSWER
    assert attempts(server, fid) == 1
    assert delays == []
    assert telemetry.total(sc.METRIC_ACTIVE_REQUESTS) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_dropped_async_stream_is_invalid_response_and_not_retried(
    provider: str, make_model: MakeModel, delays: list[float], server: Any
) -> None:
    fid = fault_id()
    model = make_model(provider, fault=f"drop,id={fid}", max_retries=3)
    chunks: list[Any] = []
    with pytest.raises(ChatModelError) as caught:
        await _collect(model.astream(prompt()), chunks)
    assert caught.value.code is ErrorCode.INVALID_RESPONSE
    assert chunks
    assert attempts(server, fid) == 1
    assert delays == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_truncated_json_body_is_invalid_response(
    provider: str, make_model: MakeModel, delays: list[float]
) -> None:
    model = make_model(provider, fault=f"drop,id={fault_id()}", max_retries=2)
    with pytest.raises(ChatModelError) as caught:
        await model.ainvoke(prompt())
    assert caught.value.code is ErrorCode.INVALID_RESPONSE


@pytest.mark.parametrize("provider", PROVIDERS)
def test_garbage_json_is_invalid_response(
    provider: str, make_model: MakeModel, delays: list[float], server: Any
) -> None:
    fid = fault_id()
    model = make_model(provider, fault=f"garbage,id={fid}", max_retries=2)
    with pytest.raises(ChatModelError) as caught:
        model.invoke(prompt())
    assert caught.value.code is ErrorCode.INVALID_RESPONSE
    assert attempts(server, fid) == 1  # a malformed answer is not retried
    assert delays == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_garbage_stream_event_is_invalid_response(
    provider: str, make_model: MakeModel, delays: list[float]
) -> None:
    model = make_model(provider, fault=f"garbage,id={fault_id()}", max_retries=2)
    with pytest.raises(ChatModelError) as caught:
        await _collect(model.astream(prompt()), [])
    assert caught.value.code is ErrorCode.INVALID_RESPONSE
    assert delays == []


def test_timeout_is_request_timeout(registry: ChatModelRegistry, server: Any,
                                    delays: list[float]) -> None:
    fields = _model_fields(server, "openai", f"slow,delay=30,id={fault_id()}", 0)
    model = registry.new_provider("openai", timeout=0.2, **fields)
    with pytest.raises(ChatModelError) as caught:
        model.invoke(prompt())
    model.close()
    assert caught.value.code is ErrorCode.REQUEST_TIMEOUT
    assert caught.value.retryable


# --- load and cancellation ------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_200_concurrent_ainvoke_all_succeed_and_gauge_returns_to_zero(
    provider: str, make_model: MakeModel, telemetry: Telemetry
) -> None:
    model = make_model(provider)
    answers = await asyncio.gather(*(model.ainvoke(prompt()) for _ in range(200)))

    assert all(isinstance(a, AIMessage) and a.content == ANSWER for a in answers)
    assert telemetry.total(sc.METRIC_REQUESTS) == 200
    assert telemetry.total(sc.METRIC_ERRORS) == 0
    active = telemetry.sums(sc.METRIC_ACTIVE_REQUESTS)
    assert active and all(value == 0 for value in active.values())
    assert len(telemetry.finished()) == 200


class _TrackedStream(httpx.AsyncByteStream, httpx.SyncByteStream):
    def __init__(self, inner: Any, owner: _Tracking) -> None:
        self._inner = inner
        self._owner = owner

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            yield part

    def close(self) -> None:
        self._owner.closed += 1
        self._inner.close()

    async def aclose(self) -> None:
        self._owner.closed += 1
        await self._inner.aclose()


class _Tracking(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """A real transport that counts responses opened and closed."""

    def __init__(self) -> None:
        self._sync = httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport()
        self.opened = 0
        self.closed = 0

    def _track(self, response: httpx.Response) -> httpx.Response:
        self.opened += 1
        return httpx.Response(
            response.status_code, headers=response.headers,
            stream=_TrackedStream(response.stream, self), extensions=response.extensions,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._track(self._sync.handle_request(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._track(await self._async.handle_async_request(request))


def _tracked_model(registry: ChatModelRegistry, server: Any, provider: str, fault: str,
                   tracking: _Tracking) -> ChatModelWrapper:
    """A registry wrapper around a native model whose httpx clients count responses."""
    fields = _model_fields(server, provider, fault, 0)
    native_cls: Any
    if provider == "openai":
        from chatmodels_langchain.providers.openai import ChatOpenAINative as native_cls
    else:
        from chatmodels_langchain.providers.anthropic import ChatAnthropicNative as native_cls
    native = native_cls(
        **fields, http_client=httpx.Client(transport=tracking),
        http_async_client=httpx.AsyncClient(transport=tracking),
    )
    return ChatModelWrapper(provider=provider, registry=registry, underlying=native, **fields)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_cancelled_task_mid_stream_closes_response_and_gauge_returns_to_zero(
    provider: str, registry: ChatModelRegistry, server: Any, telemetry: Telemetry
) -> None:
    tracking = _Tracking()
    # `stall`: half the stream arrives, then the server goes quiet with the connection open
    model = _tracked_model(registry, server, provider, f"stall,id={fault_id()}", tracking)
    first = asyncio.Event()
    chunks: list[Any] = []

    async def consume() -> None:
        async for chunk in model.astream(prompt()):
            chunks.append(chunk)
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await model.underlying.http_async_client.aclose()  # type: ignore[union-attr]

    assert chunks
    assert tracking.opened == 1
    assert tracking.closed == 1
    assert telemetry.total(sc.METRIC_ACTIVE_REQUESTS) == 0
    (span,) = telemetry.finished()  # ended, not leaked
    assert span.end_time is not None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_abandoned_sync_stream_closes_response_and_gauge_returns_to_zero(
    provider: str, registry: ChatModelRegistry, server: Any, telemetry: Telemetry
) -> None:
    tracking = _Tracking()
    model = _tracked_model(registry, server, provider, f"stall,id={fault_id()}", tracking)
    stream = cast(Generator[Any, None, None], model.stream(prompt()))
    assert next(stream).content is not None
    stream.close()
    model.underlying.http_client.close()  # type: ignore[union-attr]

    assert tracking.opened == 1
    assert tracking.closed == 1
    assert telemetry.total(sc.METRIC_ACTIVE_REQUESTS) == 0
    (span,) = telemetry.finished()
    assert sc.ERROR_TYPE not in (span.attributes or {})  # stopping early is not an error


# --- bad inputs -----------------------------------------------------------------------------


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str


BAD_INPUTS: dict[str, Any] = {
    "message of a type no provider sends": [RemoveMessage(id="m1")],
    "dict message with an unknown role": [{"role": "wizard", "content": "abracadabra"}],
    "input that is not a prompt": 12345,
    "image_url block without a url": [HumanMessage(content=[{"type": "image_url"}])],
    # Anthropic passes unknown/partial blocks through for the API to judge; OpenAI converts
    # them, which must not leak the KeyError of a missing field.
    "image block without its media type (openai)": [HumanMessage(content=[
        {"type": "image", "source": {"type": "base64", "data": "aGVsbG8="}},
    ])],
    "text block without its text (openai)": [HumanMessage(content=[{"type": "text"}])],
}
BAD_INPUT_CASES = [
    (provider, case) for case in sorted(BAD_INPUTS) for provider in PROVIDERS
    if not case.endswith(")") or case.endswith(f"({provider})")
]


@pytest.mark.parametrize(("provider", "case"), BAD_INPUT_CASES)
def test_bad_input_is_invalid_input_never_a_bare_error(
    provider: str, case: str, make_model: MakeModel, telemetry: Telemetry
) -> None:
    model = make_model(provider)
    with pytest.raises(ChatModelError) as caught:
        model.invoke(BAD_INPUTS[case])
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert not isinstance(caught.value, KeyError | TypeError)
    assert telemetry.total(sc.METRIC_ACTIVE_REQUESTS) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_bad_input_async_stream_is_invalid_input(
    provider: str, make_model: MakeModel
) -> None:
    model = make_model(provider)
    with pytest.raises(ChatModelError) as caught:
        await _collect(model.astream([RemoveMessage(id="m1")]), [])
    assert caught.value.code is ErrorCode.INVALID_INPUT


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_choice_for_a_missing_tool_is_invalid_input(
    provider: str, make_model: MakeModel, delays: list[float]
) -> None:
    model = make_model(provider, max_retries=2)
    # Refused when binding or when the request is built/sent; either way a ChatModelError.
    with pytest.raises(ChatModelError) as caught:
        model.bind_tools([GetWeather], tool_choice="get_stock_price").invoke(prompt())
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert delays == []  # a bad request is not retried


def test_bad_input_to_a_model_without_the_capability_is_capability_error(
    make_model: MakeModel,
) -> None:
    model = make_model("anthropic")
    with pytest.raises(ChatModelError) as caught:
        model.with_structured_output(GetWeather, method="json_mode")
    assert caught.value.code is ErrorCode.CAPABILITY_UNSUPPORTED
