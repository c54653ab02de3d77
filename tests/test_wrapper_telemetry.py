"""Telemetry through ChatModelWrapper: every call path gets one span and balanced metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatmodels_langchain import (
    Capability,
    ChatModelError,
    ChatModelRegistry,
    ChatModelWrapper,
    ProviderMetadata,
)
from chatmodels_langchain.providers import register_builtins
from chatmodels_langchain.telemetry import observability_context

KEY = "sk-proj-Zq8xY3vB7nM2kL5pR9tW1uE4iO6aS0dF"


@dataclass
class Otel:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    registry: ChatModelRegistry

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def active(self) -> int:
        return sum(p.value for p in self.points("chatmodels.active_requests"))

    def model(self, *responses: Any, **fields: Any) -> ChatModelWrapper:
        return self.registry.new_provider(
            "fake", provider_specific={"responses": list(responses)}, **fields
        )


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    registry = ChatModelRegistry(meter_provider=meter_provider, tracer_provider=tracer_provider)
    register_builtins(registry)
    yield Otel(exporter, reader, tracer_provider, registry)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_invoke_span_attributes(otel: Otel) -> None:
    otel.model("hello there", temperature=0.2, max_tokens=50).invoke("hi")
    (span,) = otel.finished()
    assert span.name == "chat fake-chat" and span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "fake"
    assert attrs["gen_ai.request.model"] == "fake-chat"
    assert attrs["gen_ai.response.model"] == "fake-chat"
    assert attrs["gen_ai.response.id"] == "fake-1"
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 1
    assert attrs["gen_ai.usage.output_tokens"] == 2
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert otel.active() == 0


def test_server_address_from_base_url(otel: Otel) -> None:
    model = otel.registry.new_provider(
        "fake", base_url="https://llm.internal.example:8443/v1",
        provider_specific={"responses": ["x"]},
    )
    model.invoke("x")
    attrs = dict(otel.finished()[0].attributes or {})
    assert attrs["server.address"] == "llm.internal.example"
    assert attrs["server.port"] == 8443


def test_every_call_path_gets_one_span(otel: Otel) -> None:
    model = otel.model("a b c")
    model.invoke("1")
    model.batch(["2", "3"])
    list(model.stream("4"))

    async def run() -> None:
        await model.ainvoke("5")
        await model.abatch(["6"])
        async for _ in model.astream("7"):
            pass

    asyncio.run(run())
    spans = otel.finished()
    assert len(spans) == 7
    streamed = [s for s in spans if (s.attributes or {}).get("gen_ai.request.stream")]
    assert len(streamed) == 2
    assert otel.active() == 0
    ttfc = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert sum(p.count for p in ttfc) == 2


def test_nests_under_user_span_and_chain(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | otel.model("ok") | StrOutputParser()
    with tracer.start_as_current_span("user-request") as parent:
        assert chain.invoke({"q": "hi"}) == "ok"

        async def inner() -> None:
            await chain.ainvoke({"q": "again"})

        asyncio.run(inner())
    spans = {s.name: s for s in otel.finished()}
    chats = [s for s in otel.finished() if s.name == "chat fake-chat"]
    assert len(chats) == 2
    for chat in chats:
        assert chat.parent is not None
        assert chat.parent.span_id == parent.get_span_context().span_id
    assert spans["user-request"].parent is None


def test_error_marks_span_and_duration_metric(otel: Otel) -> None:
    model = otel.model({"error": "rate_limit", "message": "slow down"})
    with pytest.raises(ChatModelError):
        model.invoke("x")
    (span,) = otel.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert "slow down" in (span.status.description or "")
    assert (span.attributes or {})["error.type"] == "rate_limit"
    durations = otel.points("gen_ai.client.operation.duration")
    assert [dict(p.attributes)["error.type"] for p in durations] == ["rate_limit"]
    errors = otel.points("chatmodels.errors")
    assert [(dict(p.attributes)["error.type"], p.value) for p in errors] == [("rate_limit", 1)]
    assert otel.active() == 0


def test_gauge_zero_after_abandoned_stream(otel: Otel) -> None:
    stream = otel.model("one two three four").stream("x")
    next(stream)
    assert otel.active() == 1
    stream.close()
    assert otel.active() == 0
    (span,) = otel.finished()
    assert span.status.status_code is not StatusCode.ERROR
    assert any(e.name == "gen_ai.stream.abandoned" for e in span.events)


class SlowStream(BaseChatModel):
    """Yields one chunk, then waits forever inside the stream (until cancelled)."""

    @property
    def _llm_type(self) -> str:
        return "slow"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    async def _astream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="first"))
        await asyncio.Event().wait()
        yield ChatGenerationChunk(message=AIMessageChunk(content="never"))


def test_gauge_zero_after_task_cancelled_inside_the_stream(otel: Otel) -> None:
    otel.registry.register(
        "slow", lambda cfg: SlowStream(),
        ProviderMetadata(name="slow", description="", capabilities={Capability.STREAMING},
                         supported_models=("*",), default_model="slow-1"),
    )
    model = otel.registry.new_provider("slow")
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in model.astream("x"):
            started.set()

    async def run() -> None:
        task = asyncio.create_task(consume())
        await started.wait()
        await asyncio.sleep(0)  # let the consumer go back into the stream
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert otel.active() == 0
    (span,) = otel.finished()
    assert (span.attributes or {}).get("error.type") == "cancelled"


def test_gauge_zero_when_consumer_task_cancelled_between_chunks(otel: Otel) -> None:
    model = otel.model("one two three four five six")
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in model.astream("x"):
            started.set()
            await asyncio.Event().wait()  # the consumer parks outside the stream

    async def run() -> None:
        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert otel.active() == 0  # the abandoned stream was finalised and balanced
    assert len(otel.finished()) == 1


def test_session_from_context_and_runnable_metadata(otel: Otel) -> None:
    model = otel.model("x")
    with observability_context(session_id="s-1", user_id="u-1"):
        model.invoke("a")
    model.invoke("b", config={"metadata": {"session_id": "s-2", "conversation_id": "c-9"}})
    first, second = otel.finished()
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["session.id"] == "s-1" and first.attributes["user.id"] == "u-1"
    assert second.attributes["session.id"] == "s-2"
    assert second.attributes["gen_ai.conversation.id"] == "c-9"
    assert first.attributes["chatmodels.operation_id"] != second.attributes["chatmodels.operation_id"]


def test_content_only_on_opt_in(otel: Otel) -> None:
    otel.model("secret answer").invoke(f"my key is {KEY}")
    attrs = dict(otel.finished()[0].attributes or {})
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
    otel.spans.clear()
    otel.model("secret answer", capture_content=True).invoke(f"my key is {KEY}")
    attrs = dict(otel.finished()[0].attributes or {})
    assert "secret answer" in str(attrs["gen_ai.output.messages"])
    assert "my key is" in str(attrs["gen_ai.input.messages"])
    assert KEY not in str(attrs)


def test_stream_content_and_usage_recorded(otel: Otel) -> None:
    list(otel.model("streamed words here", capture_content=True).stream("x"))
    attrs = dict(otel.finished()[0].attributes or {})
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert "streamed words here" in str(attrs["gen_ai.output.messages"])


def test_context_follows_langchain_batch_threads_and_async_tasks(otel: Otel) -> None:
    model = otel.model("x")
    with observability_context(session_id="batch-session"):
        model.batch(["a", "b", "c"])  # LangChain runs these in a thread pool

        async def run() -> None:
            await model.abatch(["d", "e"])

        asyncio.run(run())
    spans = otel.finished()
    assert len(spans) == 5
    assert {(s.attributes or {}).get("session.id") for s in spans} == {"batch-session"}
    assert len({(s.attributes or {})["chatmodels.operation_id"] for s in spans}) == 5
