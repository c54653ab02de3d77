"""Per-call latency of invoke / ainvoke / stream / 100 concurrent ainvoke, interleaved.

For each wire format (OpenAI, Anthropic) five clients answer the same prompt from the same
loopback server, in the same process:

- `raw`: a bare `httpx` POST of the same body (the floor: socket + HTTP + server + JSON);
- `unwrapped`: our `NativeChatModel` used directly;
- `wrapped_off`: the registry's `ChatModelWrapper` with `NoOpMetrics` (telemetry off);
- `wrapped_on`: the wrapper with an SDK `TracerProvider` + `MeterProvider` (in-memory);
- `peer`: langchain-openai's `ChatOpenAI` / langchain-anthropic's `ChatAnthropic`.

A round runs one batch of every client back to back (the order rotates each round), so slow
drift (CPU frequency, a noisy neighbour) hits every client alike; the figure is the median of
the rounds' per-call means, and ratios are medians of per-round paired ratios.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from _common import (
    ANTHROPIC_KEY,
    ANTHROPIC_MODEL,
    MAX_TOKENS,
    OPENAI_KEY,
    OPENAI_MODEL,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from chatmodels_langchain.providers import register_builtins
from chatmodels_langchain.registry import ChatModelRegistry
from chatmodels_langchain.telemetry import NoOpMetrics

SCENARIOS = ("invoke", "ainvoke", "stream", "concurrent")
VARIANTS = ("raw", "unwrapped", "wrapped_off", "wrapped_on", "peer")
LABELS = {
    "raw": "raw httpx (floor)",
    "unwrapped": "ours, unwrapped",
    "wrapped_off": "ours, wrapped, telemetry off",
    "wrapped_on": "ours, wrapped, telemetry on",
    "peer": "peer (ChatOpenAI / ChatAnthropic)",
}
CONCURRENCY = 100


def prompt() -> list[BaseMessage]:
    return [
        SystemMessage("You are a concise senior engineer."),
        HumanMessage("Explain HTTP connection pooling, retries and streaming in one paragraph."),
    ]


@dataclass
class Telemetry:
    """An SDK tracer and meter provider with in-memory exporters (telemetry ON)."""

    tracer_provider: Any
    meter_provider: Any
    spans: Any
    reader: Any

    @classmethod
    def create(cls) -> Telemetry:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        reader = InMemoryMetricReader()
        return cls(tracer_provider, MeterProvider(metric_readers=[reader]), spans, reader)

    def clear(self) -> None:
        self.spans.clear()


@dataclass
class Client:
    """One way of calling the server: the four operations as zero-argument callables."""

    family: str
    variant: str
    invoke: Callable[[], Any]
    ainvoke: Callable[[], Awaitable[Any]]
    stream: Callable[[], int]
    astream: Callable[[], Awaitable[int]]
    after_batch: Callable[[], None] = field(default=lambda: None)
    model: BaseChatModel | None = None


def _model_client(family: str, variant: str, model: BaseChatModel,
                  after_batch: Callable[[], None] | None = None) -> Client:
    messages = prompt()

    def stream() -> int:
        n = 0
        for _ in model.stream(messages):
            n += 1
        return n

    async def astream() -> int:
        n = 0
        async for _ in model.astream(messages):
            n += 1
        return n

    return Client(
        family, variant,
        invoke=lambda: model.invoke(messages),
        ainvoke=lambda: model.ainvoke(messages),
        stream=stream,
        astream=astream,
        after_batch=after_batch or (lambda: None),
        model=model,
    )


def _raw_client(family: str, url: str, path: str, headers: dict[str, str],
                body: dict[str, Any]) -> Client:
    """The floor: the same request through a bare pooled httpx client, JSON decoded."""
    sync = httpx.Client(timeout=60)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    holder: dict[str, httpx.AsyncClient] = {}

    def aclient() -> httpx.AsyncClient:
        if "client" not in holder:
            holder["client"] = httpx.AsyncClient(timeout=60, limits=limits)
        return holder["client"]

    stream_body = {**body, "stream": True}
    if family == "openai":
        stream_body["stream_options"] = {"include_usage": True}

    def invoke() -> Any:
        return sync.post(url + path, json=body, headers=headers).json()

    async def ainvoke() -> Any:
        response = await aclient().post(url + path, json=body, headers=headers)
        return response.json()

    def stream() -> int:
        n = 0
        with sync.stream("POST", url + path, json=stream_body, headers=headers) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    json.loads(line[6:])
                    n += 1
        return n

    async def astream() -> int:
        n = 0
        async with aclient().stream("POST", url + path, json=stream_body,
                                    headers=headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    json.loads(line[6:])
                    n += 1
        return n

    return Client(family, "raw", invoke, ainvoke, stream, astream)


def _registry(telemetry: Telemetry | None) -> ChatModelRegistry:
    if telemetry is None:
        registry = ChatModelRegistry(metrics=NoOpMetrics())
    else:
        registry = ChatModelRegistry(
            meter_provider=telemetry.meter_provider, tracer_provider=telemetry.tracer_provider
        )
    register_builtins(registry)
    return registry


def ours(registry: ChatModelRegistry, family: str, url: str) -> BaseChatModel:
    if family == "openai":
        return registry.new_provider(
            "openai", model=OPENAI_MODEL, api_key=OPENAI_KEY, base_url=url + "/v1",
            max_retries=0,
        )
    return registry.new_provider(
        "anthropic", model=ANTHROPIC_MODEL, api_key=ANTHROPIC_KEY, base_url=url,
        max_retries=0, max_tokens=MAX_TOKENS,
    )


def peer(family: str, url: str) -> BaseChatModel:
    if family == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=OPENAI_MODEL, api_key=OPENAI_KEY,  # type: ignore[arg-type]
                          base_url=url + "/v1", max_retries=0, stream_usage=True)
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(model=ANTHROPIC_MODEL, api_key=ANTHROPIC_KEY,  # type: ignore[arg-type,call-arg]
                         base_url=url, max_retries=0, max_tokens=MAX_TOKENS)


def build_clients(url: str, family: str, telemetry: Telemetry) -> dict[str, Client]:
    """The clients of one family; the peer is left out when its package is not installed."""
    off = ours(_registry(None), family, url)
    on = ours(_registry(telemetry), family, url)
    native = off.underlying  # type: ignore[attr-defined]
    body = native.build_body(prompt(), None, False)
    path = native.request_path()
    base = native.base_url.rstrip("/")
    clients = {
        "raw": _raw_client(family, base, path, native.auth_headers(), body),
        "unwrapped": _model_client(family, "unwrapped", native),
        "wrapped_off": _model_client(family, "wrapped_off", off),
        "wrapped_on": _model_client(family, "wrapped_on", on, after_batch=telemetry.clear),
    }
    try:
        clients["peer"] = _model_client(family, "peer", peer(family, url))
    except ImportError as exc:
        print(f"  {family}: peer not measured ({exc}); "
              "pip install langchain-openai langchain-anthropic", file=sys.stderr)
    return clients


# --- running ------------------------------------------------------------------------------


@dataclass
class Plan:
    rounds: dict[str, int]
    batch: dict[str, int]


FULL = Plan(rounds={"invoke": 15, "ainvoke": 15, "stream": 15, "concurrent": 9},
            batch={"invoke": 60, "ainvoke": 40, "stream": 12, "concurrent": 1})
QUICK = Plan(rounds={"invoke": 5, "ainvoke": 5, "stream": 5, "concurrent": 3},
             batch={"invoke": 10, "ainvoke": 10, "stream": 3, "concurrent": 1})


def _run_batch(client: Client, scenario: str, n: int, loop: asyncio.AbstractEventLoop) -> float:
    """Seconds per call for a batch of `n` (for `concurrent`: n batches of 100 at once)."""
    if scenario == "invoke":
        started = time.perf_counter()
        for _ in range(n):
            client.invoke()
        return (time.perf_counter() - started) / n
    if scenario == "stream":
        started = time.perf_counter()
        for _ in range(n):
            client.stream()
        return (time.perf_counter() - started) / n
    if scenario == "ainvoke":
        async def sequential() -> float:
            started = time.perf_counter()
            for _ in range(n):
                await client.ainvoke()
            return (time.perf_counter() - started) / n

        return loop.run_until_complete(sequential())

    async def concurrent() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await asyncio.gather(*(client.ainvoke() for _ in range(CONCURRENCY)))
        return (time.perf_counter() - started) / (n * CONCURRENCY)

    return loop.run_until_complete(concurrent())


Samples = dict[str, dict[str, dict[str, list[float]]]]
"""family -> scenario -> variant -> per-round seconds per call."""


def run(url: str, plan: Plan, *, log: Callable[[str], None] = print) -> Samples:
    telemetry = Telemetry.create()
    families = ("openai", "anthropic")
    clients = {family: build_clients(url, family, telemetry) for family in families}
    loop = asyncio.new_event_loop()
    samples: Samples = {f: {s: {v: [] for v in VARIANTS} for s in SCENARIOS} for f in families}
    try:
        # warm up: imports, pools, caches, one concurrent burst each (opens the connections)
        for family in families:
            for client in clients[family].values():
                for scenario in SCENARIOS:
                    _run_batch(client, scenario, 1 if scenario == "concurrent" else 3, loop)
                client.after_batch()
        gc.collect()
        gc.freeze()  # setup objects leave the collector's view: cheap collections below
        for scenario in SCENARIOS:
            started = time.perf_counter()
            # families alternate inside a round too: every client of both runs per round
            order = [(f, v) for v in VARIANTS for f in families if v in clients[f]]
            for r in range(plan.rounds[scenario]):
                shift = (r * 3) % len(order)
                rotated = order[shift:] + order[:shift]
                if r % 2:
                    rotated.reverse()
                for family, variant in rotated:
                    client = clients[family][variant]
                    gc.collect()
                    per_call = _run_batch(client, scenario, plan.batch[scenario], loop)
                    client.after_batch()
                    samples[family][scenario][variant].append(per_call)
            log(f"  latency/{scenario}: {time.perf_counter() - started:.1f}s")
    finally:
        gc.unfreeze()
        for family in families:
            for client in clients[family].values():
                model = client.model
                if model is not None:
                    _close(model, loop)
        loop.close()
    return samples


def _close(model: BaseChatModel, loop: asyncio.AbstractEventLoop) -> None:
    target = getattr(model, "underlying", None) or model
    aclose = getattr(target, "aclose", None)
    if callable(aclose):
        with contextlib.suppress(Exception):
            loop.run_until_complete(aclose())
    close = getattr(target, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()
