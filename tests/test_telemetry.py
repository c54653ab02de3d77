"""Tests for chatmodels_langchain.telemetry: spans, metrics, content capture and call context.

Every test uses its own SDK TracerProvider/MeterProvider; only `test_console_installs_globals`
touches the global providers, and it does so in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatmodels_langchain.errors import RateLimitError
from chatmodels_langchain.telemetry import (
    ChatModelMetrics,
    NoOpMetrics,
    Operation,
    TelemetrySession,
    current_observability,
    current_operation,
    new_observability,
    observability_context,
)
from chatmodels_langchain.telemetry import semconv as sc

KEY = "sk-proj-abcdefghijklmnopqrstuvwx"


@dataclass
class Otel:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def metrics(self, *, capture_content: bool | None = False) -> ChatModelMetrics:
        return ChatModelMetrics(
            meter_provider=self.meter_provider,
            tracer_provider=self.tracer_provider,
            capture_content=capture_content,
        )

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def only_span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, spans
        return spans[0]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def metric_units(self) -> dict[str, str]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            metric.name: metric.unit or ""
            for rm in data.resource_metrics
            for scm in rm.scope_metrics
            for metric in scm.metrics
        }

    def total(self, name: str) -> int:
        return sum(p.value for p in self.points(name))


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Otel(exporter, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def _attrs(item: Any) -> dict[str, Any]:
    """A span's, event's or data point's attributes as a plain dict."""
    return dict(item.attributes or {})


def _start(metrics: ChatModelMetrics, **kwargs: Any) -> Operation:
    options: dict[str, Any] = {"provider": "openai", "model": "gpt-4o-mini"}
    options.update(kwargs)
    return metrics.start_operation(**options)


def _answer(**kwargs: Any) -> AIMessage:
    options: dict[str, Any] = {
        "content": "It is sunny.",
        "id": "chatcmpl-123",
        "usage_metadata": {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
        "response_metadata": {"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
    }
    options.update(kwargs)
    return AIMessage(**options)


# --- spans ------------------------------------------------------------------------------------


def test_span_name_kind_and_request_attributes(otel: Otel) -> None:
    op = _start(
        otel.metrics(),
        server_address="api.openai.com",
        server_port=443,
        temperature=0.2,
        max_tokens=100,
    )
    op.end()
    span = otel.only_span()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attrs = _attrs(span)
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[sc.GEN_AI_REQUEST_STREAM] is False
    assert attrs[sc.SERVER_ADDRESS] == "api.openai.com"
    assert attrs[sc.SERVER_PORT] == 443
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 100
    assert attrs[sc.CHATMODELS_OPERATION_ID] == op.observability.operation_id
    assert sc.GEN_AI_CONVERSATION_ID not in attrs


def test_operation_name_and_stream_flag_in_span(otel: Otel) -> None:
    op = _start(otel.metrics(), operation="text_completion", model="m1", stream=True)
    op.end()
    span = otel.only_span()
    assert span.name == "text_completion m1"
    assert _attrs(span)[sc.GEN_AI_REQUEST_STREAM] is True


def test_span_nests_under_user_span_and_activate_makes_it_current(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("app") as app_span:
        op = _start(otel.metrics())
        # start_operation does not attach the span
        assert trace.get_current_span() is app_span
        with op.activate():
            assert trace.get_current_span() is op.span
            with tracer.start_as_current_span("http"):
                pass
        assert trace.get_current_span() is app_span
        op.end()
    spans = {s.name: s for s in otel.spans()}
    chat, http, app = spans["chat gpt-4o-mini"], spans["http"], spans["app"]
    assert chat.parent is not None and chat.parent.span_id == app.context.span_id
    assert http.parent is not None and http.parent.span_id == chat.context.span_id
    assert chat.context.trace_id == app.context.trace_id


def test_activate_nests_and_restores(otel: Otel) -> None:
    metrics = otel.metrics()
    outer, inner = _start(metrics), _start(metrics)
    assert current_operation() is None
    with outer.activate():
        with inner.activate():
            assert current_operation() is inner
            with outer.activate():
                assert current_operation() is outer
            assert current_operation() is inner
        assert current_operation() is outer
        assert current_observability() is outer.observability
    assert current_operation() is None
    assert current_observability() is None
    inner.end()
    outer.end()


def test_activate_lets_exceptions_through_without_recording_them(otel: Otel) -> None:
    op = _start(otel.metrics())
    with pytest.raises(ValueError), op.activate():
        raise ValueError("boom")
    assert current_operation() is None
    op.end(ValueError("boom"))
    events = [e for e in otel.only_span().events if e.name == sc.EVENT_EXCEPTION]
    assert len(events) == 1


def test_result_attributes_and_token_metrics(otel: Otel) -> None:
    op = _start(otel.metrics())
    message = _answer(
        usage_metadata={
            "input_tokens": 12,
            "output_tokens": 5,
            "total_tokens": 17,
            "input_token_details": {"cache_read": 4, "cache_creation": 2},
            "output_token_details": {"reasoning": 3},
        }
    )
    op.record_result(message)
    op.record_result(message)  # only the first call counts
    op.end()
    attrs = _attrs(otel.only_span())
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-123"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 4
    assert attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 2
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    by_type = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p for p in otel.points(sc.METRIC_TOKEN_USAGE)}
    assert by_type["input"].sum == 12 and by_type["input"].count == 1
    assert by_type["output"].sum == 5 and by_type["output"].count == 1
    assert by_type["input"].attributes[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    (duration,) = otel.points(sc.METRIC_OPERATION_DURATION)
    assert duration.attributes[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert sc.ERROR_TYPE not in duration.attributes


def test_result_reads_provider_specific_metadata(otel: Otel) -> None:
    op = _start(otel.metrics(), provider="anthropic", model="claude-x")
    message = AIMessage(
        content="hi", id="lc_run--0b6f", response_metadata={"stop_reason": "end_turn"}
    )
    op.record_result(message, {"model": "claude-x-2025", "id": "msg_01"})
    op.end()
    attrs = _attrs(otel.only_span())
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "claude-x-2025"
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "msg_01"  # LangChain's generated run id is skipped
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    assert otel.points(sc.METRIC_TOKEN_USAGE) == []


# --- metrics ----------------------------------------------------------------------------------


def test_bucket_boundaries_and_units_as_exported(otel: Otel) -> None:
    op = _start(otel.metrics(), stream=True)
    op.record_first_chunk()
    op.record_result(_answer())
    op.end()
    (duration,) = otel.points(sc.METRIC_OPERATION_DURATION)
    assert tuple(duration.explicit_bounds) == sc.DURATION_BUCKETS
    assert sc.DURATION_BUCKETS[0] == 0.01 and sc.DURATION_BUCKETS[-1] == 81.92
    (first_chunk,) = otel.points(sc.METRIC_TIME_TO_FIRST_CHUNK)
    assert tuple(first_chunk.explicit_bounds) == sc.DURATION_BUCKETS
    for point in otel.points(sc.METRIC_TOKEN_USAGE):
        assert tuple(point.explicit_bounds) == sc.TOKEN_BUCKETS
    assert sc.TOKEN_BUCKETS[-1] == 67108864
    units = otel.metric_units()
    assert units[sc.METRIC_OPERATION_DURATION] == "s"
    assert units[sc.METRIC_TOKEN_USAGE] == "{token}"
    assert units[sc.METRIC_TIME_TO_FIRST_CHUNK] == "s"
    assert units[sc.METRIC_REQUESTS] == "{request}"
    assert units[sc.METRIC_ACTIVE_REQUESTS] == "{request}"


def test_first_chunk_recorded_once_and_only_for_streams(otel: Otel) -> None:
    metrics = otel.metrics()
    stream = _start(metrics, stream=True)
    stream.record_first_chunk()
    stream.record_first_chunk()
    stream.end()
    plain = _start(metrics)
    plain.record_first_chunk()
    plain.end()
    (point,) = otel.points(sc.METRIC_TIME_TO_FIRST_CHUNK)
    assert point.count == 1
    stream_span, plain_span = otel.spans()
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in _attrs(stream_span)
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in _attrs(plain_span)


def test_request_counter_labels(otel: Otel) -> None:
    metrics = otel.metrics()
    for _ in range(3):
        _start(metrics, server_address="h", server_port=1).end()
    (point,) = otel.points(sc.METRIC_REQUESTS)
    assert point.value == 3
    assert dict(point.attributes) == {
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_OPERATION_NAME: "chat",
    }


def _finish(op: Operation, outcome: str) -> None:
    if outcome == "success":
        op.end()
    elif outcome == "error":
        op.end(RateLimitError("slow down", op="invoke"))
    elif outcome == "abandoned":
        op.end(abandoned=True)
    else:
        op.end(asyncio.CancelledError())


@pytest.mark.parametrize("outcome", ["success", "error", "abandoned", "cancelled"])
def test_active_requests_returns_to_zero(otel: Otel, outcome: str) -> None:
    metrics = otel.metrics()
    op = _start(metrics)
    assert otel.total(sc.METRIC_ACTIVE_REQUESTS) == 1
    _finish(op, outcome)
    _finish(op, "error")  # a second end is a no-op
    assert otel.total(sc.METRIC_ACTIVE_REQUESTS) == 0
    assert otel.total(sc.METRIC_REQUESTS) == 1
    assert len(otel.points(sc.METRIC_OPERATION_DURATION)) == 1
    span = otel.only_span()
    expected_error = {"error": "rate_limit", "cancelled": "cancelled"}.get(outcome)
    assert _attrs(span).get(sc.ERROR_TYPE) == expected_error
    errors = otel.points(sc.METRIC_ERRORS)
    assert [p.attributes[sc.ERROR_TYPE] for p in errors] == (
        [expected_error] if expected_error else []
    )


def test_error_sets_status_attributes_and_metrics(otel: Otel) -> None:
    op = _start(otel.metrics())
    op.end(RateLimitError("HTTP 429: slow down", op="invoke", provider="openai"))
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert "slow down" in (span.status.description or "")
    assert _attrs(span)[sc.ERROR_TYPE] == "rate_limit"
    (event,) = [e for e in span.events if e.name == sc.EVENT_EXCEPTION]
    assert _attrs(event)[sc.EXCEPTION_TYPE].endswith("RateLimitError")
    (duration,) = otel.points(sc.METRIC_OPERATION_DURATION)
    assert duration.attributes[sc.ERROR_TYPE] == "rate_limit"
    (error,) = otel.points(sc.METRIC_ERRORS)
    assert error.value == 1 and error.attributes[sc.ERROR_TYPE] == "rate_limit"


@pytest.mark.parametrize(
    ("error", "code"),
    [(TimeoutError("slow"), "request_timeout"), (ValueError("bad"), "invalid_input"),
     (RuntimeError("?"), "unknown")],
)
def test_plain_exceptions_are_classified_by_map_exception(
    otel: Otel, error: BaseException, code: str
) -> None:
    op = _start(otel.metrics())
    op.end(error)
    assert _attrs(otel.only_span())[sc.ERROR_TYPE] == code


def test_abandoned_stream_is_not_an_error(otel: Otel) -> None:
    op = _start(otel.metrics(), stream=True)
    op.end(abandoned=True)
    span = otel.only_span()
    assert span.status.status_code is not StatusCode.ERROR
    assert [e.name for e in span.events] == [sc.EVENT_STREAM_ABANDONED]
    assert otel.points(sc.METRIC_ERRORS) == []


async def test_task_cancellation_is_recorded_as_cancelled(otel: Otel) -> None:
    op = _start(otel.metrics())
    started = asyncio.Event()

    async def call() -> None:
        try:
            with op.activate():
                started.set()
                await asyncio.sleep(10)
        except BaseException as exc:
            op.end(exc)
            raise

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = otel.only_span()
    assert _attrs(span)[sc.ERROR_TYPE] == "cancelled"
    assert span.status.status_code is StatusCode.ERROR
    assert otel.total(sc.METRIC_ACTIVE_REQUESTS) == 0


def test_record_retry_event(otel: Otel) -> None:
    op = _start(otel.metrics())
    op.record_retry(1, RateLimitError("429", op="invoke"), 0.5)
    op.record_retry(2, ConnectionError("reset"), 1.0)
    op.end()
    span = otel.only_span()
    retries = [e for e in span.events if e.name == sc.EVENT_RETRY]
    assert [_attrs(e) for e in retries] == [
        {sc.CHATMODELS_RETRY_ATTEMPT: 1, sc.ERROR_TYPE: "rate_limit",
         sc.CHATMODELS_RETRY_DELAY: 0.5},
        {sc.CHATMODELS_RETRY_ATTEMPT: 2, sc.ERROR_TYPE: "provider_unavailable",
         sc.CHATMODELS_RETRY_DELAY: 1.0},
    ]
    assert _attrs(span)[sc.HTTP_REQUEST_RESEND_COUNT] == 2
    assert span.status.status_code is StatusCode.UNSET


def test_current_operation_lets_the_http_layer_report_retries(otel: Otel) -> None:
    op = _start(otel.metrics())

    def http_layer() -> None:
        current = current_operation()
        assert current is not None
        current.record_retry(1, TimeoutError(), 0.1)

    with op.activate():
        http_layer()
    op.end()
    (event,) = otel.only_span().events
    assert _attrs(event)[sc.ERROR_TYPE] == "request_timeout"


def test_seed_api_record_operation_start_span_record_error(otel: Otel) -> None:
    metrics = otel.metrics()
    span = metrics.start_span("chat", "ollama", "llama3", **{sc.SERVER_PORT: 11434})
    span.end()
    metrics.record_operation(
        operation="chat", provider="ollama", model="llama3", duration_s=0.3, success=False,
        error_code="request_timeout",
    )
    metrics.record_error(operation="chat", error_code="request_timeout", provider="ollama",
                         model="llama3")
    finished = otel.only_span()
    assert finished.name == "chat llama3" and finished.kind is SpanKind.CLIENT
    assert _attrs(finished)[sc.SERVER_PORT] == 11434
    assert _attrs(finished)[sc.GEN_AI_PROVIDER_NAME] == "ollama"
    (duration,) = otel.points(sc.METRIC_OPERATION_DURATION)
    assert duration.sum == pytest.approx(0.3)
    assert duration.attributes[sc.ERROR_TYPE] == "request_timeout"
    (error,) = otel.points(sc.METRIC_ERRORS)
    assert error.attributes[sc.ERROR_TYPE] == "request_timeout"


def test_noop_metrics_record_nothing_but_still_track_context() -> None:
    metrics = NoOpMetrics()
    op = _start(metrics, messages=[HumanMessage("hi")])
    assert not op.span.is_recording()
    assert not op.captures_content
    with op.activate():
        assert current_operation() is op
    op.record_result(_answer())
    op.end(RuntimeError("x"))
    op.end()
    assert op.ended


def test_with_capture_content_shares_instruments(otel: Otel) -> None:
    metrics = otel.metrics(capture_content=False)
    capturing = metrics.with_capture_content(True)
    assert metrics.with_capture_content(False) is metrics
    assert capturing.capture_content and not metrics.capture_content
    _start(capturing, messages=[HumanMessage("hello")]).end()
    _start(metrics, messages=[HumanMessage("hello")]).end()
    assert otel.total(sc.METRIC_REQUESTS) == 2
    first, second = otel.spans()
    assert sc.GEN_AI_INPUT_MESSAGES in _attrs(first)
    assert sc.GEN_AI_INPUT_MESSAGES not in _attrs(second)


# --- content capture --------------------------------------------------------------------------

_MESSAGES = [
    SystemMessage("Be brief."),
    HumanMessage("Weather in Paris?"),
    AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"},
                                       "id": "call_1"}]),
    ToolMessage(content="sunny", tool_call_id="call_1"),
]
_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                      "parameters": {"type": "object"}}},
    {"name": "lookup", "description": "Anthropic style", "input_schema": {"type": "object"}},
]
_CONTENT_KEYS = (
    sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_DEFINITIONS,
)


def _run_with_content(metrics: ChatModelMetrics) -> None:
    op = _start(metrics, messages=_MESSAGES, tools=_TOOLS)
    op.record_result(_answer())
    op.end()


def test_content_absent_by_default(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sc.CAPTURE_CONTENT_ENV, raising=False)
    _run_with_content(otel.metrics(capture_content=None))
    attrs = _attrs(otel.only_span())
    assert not any(key in attrs for key in _CONTENT_KEYS)
    assert "Paris" not in repr(dict(attrs))


def test_content_captured_in_genai_format(otel: Otel) -> None:
    _run_with_content(otel.metrics(capture_content=True))
    attrs = _attrs(otel.only_span())
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1",
                                         "name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                    "response": "sunny"}]},
    ]
    assert json.loads(attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json.loads(attrs[sc.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "get_weather", "description": "Weather",
         "parameters": {"type": "object"}},
        {"type": "function", "name": "lookup", "description": "Anthropic style",
         "parameters": {"type": "object"}},
    ]
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It is sunny."}],
         "finish_reason": "stop"}
    ]


@pytest.mark.parametrize(("value", "captured"), [("TRUE", True), ("1", True), ("yes", True),
                                                 ("false", False), ("0", False)])
def test_content_capture_from_env(
    otel: Otel, monkeypatch: pytest.MonkeyPatch, value: str, captured: bool
) -> None:
    monkeypatch.setenv(sc.CAPTURE_CONTENT_ENV, value)
    metrics = otel.metrics(capture_content=None)
    assert metrics.capture_content is captured
    _run_with_content(metrics)
    assert (sc.GEN_AI_INPUT_MESSAGES in _attrs(otel.only_span())) is captured


def _all_recorded_strings(otel: Otel) -> list[str]:
    strings: list[str] = []
    for span in otel.spans():
        strings.append(span.name)
        strings.append(span.status.description or "")
        strings.extend(repr(v) for v in _attrs(span).values())
        for event in span.events:
            strings.extend(repr(v) for v in _attrs(event).values())
    data = otel.reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for scm in rm.scope_metrics:
            for metric in scm.metrics:
                for point in metric.data.data_points:
                    strings.extend(repr(v) for v in _attrs(point).values())
    return strings


def test_no_key_shaped_string_anywhere(otel: Otel) -> None:
    metrics = otel.metrics(capture_content=True)
    messages = [
        SystemMessage(f"the key is {KEY}"),
        HumanMessage(f"use {KEY} please"),
        AIMessage(content="", tool_calls=[{"name": "t", "args": {"key": KEY}, "id": "c"}]),
        ToolMessage(content=f"Authorization: Bearer {KEY}", tool_call_id="c"),
    ]
    tools = [{"name": "t", "description": f"takes {KEY}", "input_schema": {}}]
    op = _start(metrics, messages=messages, tools=tools,
                metadata={"session_id": KEY, "user_id": f"u-{KEY}"})
    op.record_retry(1, RuntimeError(f"failed with {KEY}"), 0.1)
    op.record_result(_answer(content=f"echo {KEY}"))
    try:
        raise RuntimeError(f"provider said: bad key {KEY}") from ValueError(KEY)
    except RuntimeError as exc:
        op.end(exc)
    strings = _all_recorded_strings(otel)
    attrs = _attrs(otel.only_span())
    assert sc.GEN_AI_INPUT_MESSAGES in attrs and "please" in attrs[sc.GEN_AI_INPUT_MESSAGES]
    assert "provider said" in (otel.only_span().status.description or "")
    leaked = [s for s in strings if "abcdefghijklmnopqrstuvwx" in s]
    assert leaked == []


# --- call context -----------------------------------------------------------------------------


def test_observability_context_and_metadata_precedence(otel: Otel) -> None:
    assert new_observability("p", "m", None).session_id is None
    with observability_context(session_id="s-outer", user_id="u-outer", conversation_id="c1"):
        with observability_context(user_id="u-inner"):
            ctx = new_observability("p", "m", None)
            assert (ctx.session_id, ctx.user_id, ctx.conversation_id) == (
                "s-outer", "u-inner", "c1"
            )
            ctx = new_observability("p", "m", {"session_id": "s-meta", "user_id": 7})
            assert (ctx.session_id, ctx.user_id, ctx.conversation_id) == ("s-meta", "7", "c1")
            op = _start(otel.metrics(), metadata={"conversation_id": "c-meta"})
            op.end()
        assert new_observability("p", "m", None).user_id == "u-outer"
    assert new_observability("p", "m", None).user_id is None
    # LangGraph's thread_id is the conversation when nothing else names one
    assert new_observability("p", "m", {"thread_id": "t-9"}).conversation_id == "t-9"
    attrs = _attrs(otel.only_span())
    assert attrs[sc.SESSION_ID] == "s-outer"
    assert attrs[sc.USER_ID] == "u-inner"
    assert attrs[sc.GEN_AI_CONVERSATION_ID] == "c-meta"


def test_observability_fields(otel: Otel) -> None:
    op = _start(otel.metrics(), provider="groq", model="llama")
    ctx = op.observability
    assert (ctx.provider, ctx.model) == ("groq", "llama")
    assert len(ctx.operation_id) == 32 and ctx.start_time > 0
    assert len(ctx.request_id) == 36
    with pytest.raises(AttributeError):
        ctx.user_id = "x"  # type: ignore[misc]
    op.end()


def test_operation_id_unique_per_call(otel: Otel) -> None:
    metrics = otel.metrics()
    ops = [_start(metrics) for _ in range(200)]
    for op in ops:
        op.end()
    ids = {op.observability.operation_id for op in ops}
    assert len(ids) == 200
    span_ids = {_attrs(s)[sc.CHATMODELS_OPERATION_ID] for s in otel.spans()}
    assert span_ids == ids
    assert len({op.observability.request_id for op in ops}) == 200


def test_threads_see_their_own_context(otel: Otel) -> None:
    metrics = otel.metrics()
    barrier = threading.Barrier(4)
    seen: dict[str, dict[str, Any]] = {}

    def worker(name: str) -> None:
        report: dict[str, Any] = {"inherited": new_observability("p", "m", None).user_id}
        with observability_context(user_id=name):
            op = _start(metrics)
            with op.activate():
                barrier.wait(timeout=5)  # all four operations are active at once
                current = current_observability()
                report["current"] = current.user_id if current else None
                report["span"] = trace.get_current_span() is op.span
                barrier.wait(timeout=5)
            report["after"] = current_operation()
            op.end()
        seen[name] = report

    with observability_context(user_id="main"):
        threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert seen == {
        f"t{i}": {"inherited": None, "current": f"t{i}", "span": True, "after": None}
        for i in range(4)
    }
    users = sorted(_attrs(s)[sc.USER_ID] for s in otel.spans())
    assert users == ["t0", "t1", "t2", "t3"]


async def test_asyncio_tasks_see_their_own_context(otel: Otel) -> None:
    metrics = otel.metrics()

    async def call(name: str) -> tuple[str | None, bool]:
        with observability_context(session_id=name):
            op = _start(metrics)
            with op.activate():
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                current = current_observability()
                same = current_operation() is op and trace.get_current_span() is op.span
            op.end()
        return (current.session_id if current else None), same

    results = await asyncio.gather(*(call(f"s{i}") for i in range(5)))
    assert results == [(f"s{i}", True) for i in range(5)]
    assert current_observability() is None
    assert len(otel.spans()) == 5


# --- console session --------------------------------------------------------------------------


def test_telemetry_session_summary_and_metrics(otel: Otel) -> None:
    session = TelemetrySession(
        otel.tracer_provider, otel.meter_provider, otel.exporter, otel.reader, installed=False
    )
    metrics = session.chat_model_metrics(capture_content=False)
    ok = _start(metrics)
    ok.record_result(_answer())
    ok.end()
    _start(metrics).end(RateLimitError("429", op="invoke"))
    summary = session.metrics()
    assert summary["requests"] == 2
    assert summary["active_requests"] == 0
    assert summary["errors"] == {"rate_limit": 1}
    assert summary["tokens"] == {"input": 12, "output": 5}
    assert summary["duration"]["count"] == 2
    assert summary["by_model"] == {"openai/gpt-4o-mini": 2}
    text = session.summary()
    lines = text.splitlines()
    assert lines[0].split() == ["span", "ms", "status", "error.type", "in", "out"]
    assert "chat gpt-4o-mini" in lines[2] and lines[2].split()[-2:] == ["12", "5"]
    assert "ERROR" in lines[3] and "rate_limit" in lines[3]
    assert "requests: 2" in text and "errors: 1 (rate_limit=1)" in text
    assert "tokens: in 12  out 5" in text
    assert len(session.spans()) == 2
    session.clear()
    assert session.spans() == ()


_CONSOLE_SCRIPT = textwrap.dedent(
    """
    import json
    from opentelemetry import metrics, trace
    from chatmodels_langchain.telemetry import ChatModelMetrics, console

    chat_metrics = ChatModelMetrics()  # created before console(): the API proxies catch up
    session = console()
    assert console() is session
    assert trace.get_tracer_provider() is session.tracer_provider
    assert metrics.get_meter_provider() is session.meter_provider
    chat_metrics.start_operation(provider="openai", model="gpt-4o-mini").end()
    print(json.dumps({"installed": session.installed, "metrics": session.metrics(),
                      "spans": [s.name for s in session.spans()]}))
    """
)

_PRESET_SCRIPT = textwrap.dedent(
    """
    import json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from chatmodels_langchain.telemetry import console

    preset = TracerProvider()
    trace.set_tracer_provider(preset)
    session = console(exporter="console")
    assert trace.get_tracer_provider() is preset
    session.chat_model_metrics().start_operation(provider="x", model="y").end()
    print(json.dumps({"installed": session.installed, "requests": session.metrics()["requests"]}))
    """
)


def _run(script: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_console_installs_globals() -> None:
    report = _run(_CONSOLE_SCRIPT)
    assert report["installed"] is True
    assert report["spans"] == ["chat gpt-4o-mini"]
    assert report["metrics"]["requests"] == 1
    assert report["metrics"]["active_requests"] == 0


def test_console_leaves_existing_globals_alone() -> None:
    report = _run(_PRESET_SCRIPT)
    assert report == {"installed": False, "requests": 1}


def test_console_rejects_unknown_exporter() -> None:
    from chatmodels_langchain.telemetry import console

    with pytest.raises(ValueError, match="exporter"):
        console(exporter="otlp")



_LATE_SDK_SCRIPT = textwrap.dedent(
    """
    import json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from chatmodels_langchain.telemetry import ChatModelMetrics, current_observability

    metrics = ChatModelMetrics()  # on the globals, before any SDK exists
    before = metrics.start_operation(provider="p", model="m")
    with before.activate():
        tracked = current_observability() is before.observability
    before_recording = before.span.is_recording()
    before.end()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # installed later: the same instance must pick it up
    after = metrics.start_operation(provider="p", model="m")
    after_recording = after.span.is_recording()
    after.end()
    print(json.dumps({
        "before_recording": before_recording,
        "tracked": tracked,
        "after_recording": after_recording,
        "spans": [s.name for s in exporter.get_finished_spans()],
    }))
    """
)


def test_no_sdk_is_silent_until_one_is_installed() -> None:
    report = _run(_LATE_SDK_SCRIPT)
    assert report == {"before_recording": False, "tracked": True,
                      "after_recording": True, "spans": ["chat m"]}
