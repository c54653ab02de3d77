"""Spans and metrics for chat-model calls, following the OpenTelemetry GenAI conventions.

`ChatModelMetrics` owns the instruments and a tracer; `start_operation(...)` begins one call and
returns an `Operation` that the wrapper activates around the underlying call, feeds the result
(and retries, first chunk) and finally ends. Only `opentelemetry-api` is needed: without a
configured SDK everything is a cheap no-op.

Message content (`gen_ai.input.messages` and friends) is recorded only when content capture is
on, and every recorded string passes through `errors.redact`.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import os
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import (
    INVALID_SPAN,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    StatusCode,
    TracerProvider,
)

from chatmodels_langchain.errors import ChatModelError, ErrorCode, map_exception, redact
from chatmodels_langchain.telemetry import semconv as sc
from chatmodels_langchain.telemetry.content import input_content, output_content
from chatmodels_langchain.telemetry.context import (
    _CURRENT_OPERATION,
    ObservabilityContext,
    new_observability,
)

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = [
    "ChatModelMetrics",
    "NoOpMetrics",
    "Operation",
    "current_operation",
    "default_metrics",
]

_TRUTHY = frozenset({"true", "1", "yes"})
_CACHE_LIMIT = 1024
_END_LOCK = threading.Lock()
_Attrs = dict[str, Any]


def _capture_from_env() -> bool:
    return os.environ.get(sc.CAPTURE_CONTENT_ENV, "").strip().lower() in _TRUTHY


@functools.cache
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("chatmodels-langchain")
    except Exception:
        return "0.0.0"


class _Labels:
    """Attribute dicts for one (operation, provider, model, server) combination, built once.

    The dicts are shared between calls and must never be mutated.
    """

    __slots__ = (
        "_responses",
        "counter",
        "metric",
        "span_base",
        "span_call",
        "span_name",
        "tokens_in",
        "tokens_out",
    )

    def __init__(
        self,
        operation: str,
        provider: str,
        model: str,
        server_address: str | None,
        server_port: int | None,
        response_model: str | None = None,
    ) -> None:
        counter: _Attrs = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: provider,
            sc.GEN_AI_REQUEST_MODEL: model,
        }
        metric = dict(counter)
        if server_address:
            metric[sc.SERVER_ADDRESS] = server_address
        if server_port:
            metric[sc.SERVER_PORT] = server_port
        self.span_base: _Attrs = dict(metric)
        self.span_call: tuple[_Attrs, _Attrs] = (
            {**metric, sc.GEN_AI_REQUEST_STREAM: False},
            {**metric, sc.GEN_AI_REQUEST_STREAM: True},
        )
        self.span_name = f"{operation} {model}" if model else operation
        if response_model:
            metric[sc.GEN_AI_RESPONSE_MODEL] = response_model
        self.counter = counter
        self.metric: _Attrs = metric
        self.tokens_in: _Attrs = {**metric, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT}
        self.tokens_out: _Attrs = {**metric, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT}
        self._responses: dict[str, _Labels] = {}

    def for_response(self, response_model: str) -> _Labels:
        """The same labels plus `gen_ai.response.model` (metrics only; counters unchanged)."""
        labels = self._responses.get(response_model)
        if labels is None:
            labels = copy.copy(self)
            labels.metric = {**self.metric, sc.GEN_AI_RESPONSE_MODEL: response_model}
            labels.tokens_in = {**labels.metric, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT}
            labels.tokens_out = {**labels.metric, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT}
            labels._responses = {}
            if len(self._responses) < _CACHE_LIMIT:
                self._responses[response_model] = labels
        return labels


class ChatModelMetrics:
    """The tracer and instruments chat-model calls report to. Safe to share across threads.

    With no providers given, the global ones are used through the OpenTelemetry API proxies, so
    a provider configured later is still picked up. `capture_content=None` follows the
    `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` environment variable.
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        *,
        capture_content: bool | None = None,
    ) -> None:
        version = _version()
        # Whether each side can record: True/False when fixed, None to ask the globals per call.
        self._meter_records = _records(meter_provider, NoOpMeterProvider)
        self._tracer_records = _records(tracer_provider, NoOpTracerProvider)
        if meter_provider is None:
            meter = otel_metrics.get_meter(sc.INSTRUMENTATION_NAME, version)
        else:
            meter = meter_provider.get_meter(sc.INSTRUMENTATION_NAME, version)
        if tracer_provider is None:
            self._tracer = trace.get_tracer(sc.INSTRUMENTATION_NAME, version)
        else:
            self._tracer = tracer_provider.get_tracer(sc.INSTRUMENTATION_NAME, version)
        self._capture = _capture_from_env() if capture_content is None else capture_content
        self._duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the start of a streaming call to its first chunk.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
        )
        self._requests = meter.create_counter(
            sc.METRIC_REQUESTS, unit="{request}", description="Chat-model calls started."
        )
        self._errors = meter.create_counter(
            sc.METRIC_ERRORS, unit="{error}", description="Chat-model calls that failed."
        )
        self._active = meter.create_up_down_counter(
            sc.METRIC_ACTIVE_REQUESTS, unit="{request}", description="Chat-model calls in flight."
        )
        self._labels: dict[tuple[str, str, str, str | None, int | None], _Labels] = {}

    @property
    def capture_content(self) -> bool:
        """Whether message content is recorded on spans."""
        return self._capture

    def _recording(self) -> bool:
        """Whether anything could record a call (else calls skip all OpenTelemetry work)."""
        tracer, meter = self._tracer_records, self._meter_records
        if tracer or meter:
            return True
        if tracer is None and not isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
            return True
        return meter is None and not _is_proxy_meter_provider(otel_metrics.get_meter_provider())

    def with_capture_content(self, capture_content: bool) -> ChatModelMetrics:
        """A view sharing this instance's tracer and instruments, with another capture setting."""
        if capture_content == self._capture:
            return self
        clone = copy.copy(self)
        clone._capture = capture_content
        return clone

    def _labels_for(
        self,
        operation: str,
        provider: str,
        model: str,
        server_address: str | None,
        server_port: int | None,
    ) -> _Labels:
        key = (operation, provider, model, server_address, server_port)
        labels = self._labels.get(key)
        if labels is None:
            labels = _Labels(operation, provider, model, server_address, server_port)
            if len(self._labels) < _CACHE_LIMIT:
                self._labels[key] = labels
        return labels

    # --- one call ---

    def start_operation(
        self,
        *,
        provider: str,
        model: str,
        operation: str = "chat",
        stream: bool = False,
        server_address: str | None = None,
        server_port: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        messages: Sequence[BaseMessage] = (),
        tools: Sequence[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Start a call: its CLIENT span (child of the current context, not made current),
        the request and active-request counters, and its `ObservabilityContext`."""
        started = time.perf_counter()
        labels = self._labels_for(operation, provider, model, server_address, server_port)
        observability = new_observability(provider, model, metadata)
        if not self._recording():
            return _SilentOperation(self, INVALID_SPAN, observability, labels, stream, started)
        # One attribute dict, given at creation so samplers see it (one SDK copy, not two).
        attrs = labels.span_call[1 if stream else 0].copy()
        attrs[sc.CHATMODELS_OPERATION_ID] = observability.operation_id
        if isinstance(temperature, int | float) and not isinstance(temperature, bool):
            attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = float(temperature)
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        if observability.conversation_id:
            attrs[sc.GEN_AI_CONVERSATION_ID] = redact(observability.conversation_id)
        if observability.session_id:
            attrs[sc.SESSION_ID] = redact(observability.session_id)
        if observability.user_id:
            attrs[sc.USER_ID] = redact(observability.user_id)
        span = self._tracer.start_span(labels.span_name, kind=SpanKind.CLIENT, attributes=attrs)
        if self._capture and span.is_recording():
            span.set_attributes(input_content(messages, tools))
        self._requests.add(1, labels.counter)
        self._active.add(1, labels.counter)
        return Operation(self, span, observability, labels, bool(stream), started)

    # --- the seed's lower-level API ---

    def record_operation(
        self,
        *,
        operation: str,
        provider: str,
        model: str,
        duration_s: float,
        success: bool,
        error_code: str | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
    ) -> None:
        """Record one `gen_ai.client.operation.duration` sample (with `error.type` on failure).

        Counters are not touched: use `record_error` for the error counter.
        """
        labels = self._labels_for(operation, provider, model, server_address, server_port)
        error = None if success else (error_code or ErrorCode.UNKNOWN.value)
        self._record_duration(labels, duration_s, error)

    def _record_duration(self, labels: _Labels, duration_s: float, error_type: str | None) -> None:
        if error_type is None:
            self._duration.record(duration_s, labels.metric)
        else:
            self._duration.record(duration_s, {**labels.metric, sc.ERROR_TYPE: error_type})

    def start_span(self, operation: str, provider: str, model: str, **attributes: Any) -> Span:
        """Start (not activate) a CLIENT span named `"{operation} {model}"` with GenAI attributes.

        Extra attributes whose names contain dots can be passed as `**{"server.port": 443}`.
        """
        labels = self._labels_for(operation, provider, model, None, None)
        attrs = {**labels.span_base, **attributes} if attributes else labels.span_base
        return self._tracer.start_span(labels.span_name, kind=SpanKind.CLIENT, attributes=attrs)

    def record_error(self, *, operation: str, error_code: str, provider: str, model: str) -> None:
        """Count one failed call in `chatmodels.errors`, labelled with `error.type`."""
        labels = self._labels_for(operation, provider, model, None, None)
        self._errors.add(1, {**labels.counter, sc.ERROR_TYPE: str(error_code)})


class _Activation:
    """Makes an operation's span and observability context current for a `with` block."""

    __slots__ = ("_operation", "_operation_token", "_otel_token")

    def __init__(self, operation: Operation) -> None:
        self._operation = operation

    def __enter__(self) -> None:
        operation = self._operation
        span_context = operation._span_context
        if span_context is None:  # built once per call, not once per stream chunk
            span_context = operation._span_context = trace.set_span_in_context(operation.span)
        self._otel_token = otel_context.attach(span_context)
        self._operation_token = _CURRENT_OPERATION.set(operation)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            _CURRENT_OPERATION.reset(self._operation_token)
        except (ValueError, RuntimeError):  # exited in another context: never mask the outcome
            _CURRENT_OPERATION.set(None)
        otel_context.detach(self._otel_token)  # logs, never raises, on a mismatch


class Operation:
    """One chat-model call in flight. Created by `ChatModelMetrics.start_operation`."""

    __slots__ = (
        "_ended",
        "_first_chunk",
        "_labels",
        "_metrics",
        "_request_labels",
        "_result_recorded",
        "_span_context",
        "_started",
        "_stream",
        "observability",
        "span",
    )

    def __init__(
        self,
        metrics: ChatModelMetrics,
        span: Span,
        observability: ObservabilityContext,
        labels: _Labels,
        stream: bool,
        started: float,
    ) -> None:
        self.span = span
        self.observability = observability
        self._metrics = metrics
        self._labels = labels  # gains gen_ai.response.model once known
        self._request_labels = labels  # what the active-request counter was incremented with
        self._stream = stream
        self._started = started
        self._ended = False
        self._first_chunk = False
        self._result_recorded = False
        self._span_context: otel_context.Context | None = None

    records: ClassVar[bool] = True
    """False when nothing would record this call: callers may skip collecting results."""

    @property
    def captures_content(self) -> bool:
        """Whether message content is recorded (the wrapper keeps stream text only then)."""
        return self._metrics._capture

    @property
    def ended(self) -> bool:
        return self._ended

    def activate(self) -> AbstractContextManager[None]:
        """Context manager making this call's span and `ObservabilityContext` current.

        Cheap, nestable and re-enterable; exceptions pass through untouched (they are recorded
        by `end`, redacted, not here).
        """
        return _Activation(self)

    def record_first_chunk(self) -> None:
        """Record `gen_ai.client.operation.time_to_first_chunk` (once, streaming calls only)."""
        if self._first_chunk or not self._stream or self._ended:
            return
        self._first_chunk = True
        elapsed = time.perf_counter() - self._started
        self._metrics._first_chunk.record(elapsed, self._labels.metric)
        span = self.span
        if span.is_recording():
            span.set_attribute(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, elapsed)

    def record_retry(self, attempt: int, error: BaseException, delay_s: float) -> None:
        """Add a `gen_ai.client.retry` span event: retry number `attempt` after `error`."""
        span = self.span
        if not span.is_recording():
            return
        span.add_event(
            sc.EVENT_RETRY,
            {
                sc.CHATMODELS_RETRY_ATTEMPT: int(attempt),
                sc.ERROR_TYPE: error_type(error),
                sc.CHATMODELS_RETRY_DELAY: float(delay_s),
            },
        )
        span.set_attribute(sc.HTTP_REQUEST_RESEND_COUNT, int(attempt))

    def record_result(
        self, message: BaseMessage, response_metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Record the response: model, id, finish reasons, token usage (and output content when
        captured). Only the first call counts."""
        if self._result_recorded or self._ended:
            return
        self._result_recorded = True
        metadata = (response_metadata or {}, getattr(message, "response_metadata", None) or {})
        response_model = _lookup(metadata, "model_name", "model")
        labels = self._labels
        if isinstance(response_model, str) and response_model:
            labels = self._labels = labels.for_response(response_model)
        else:
            response_model = None
        usage = getattr(message, "usage_metadata", None) or {}
        input_tokens = usage.get("input_tokens")
        output_tokens = usage.get("output_tokens")
        tokens = self._metrics._tokens
        if isinstance(input_tokens, int):
            tokens.record(input_tokens, labels.tokens_in)
        if isinstance(output_tokens, int):
            tokens.record(output_tokens, labels.tokens_out)

        span = self.span
        if not span.is_recording():
            return
        attrs: _Attrs = {}
        if response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = response_model
        response_id = _response_id(message, metadata)
        if response_id:
            attrs[sc.GEN_AI_RESPONSE_ID] = response_id
        finish_reasons = _finish_reasons(metadata)
        if finish_reasons:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons
        if isinstance(input_tokens, int):
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        if isinstance(output_tokens, int):
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        _usage_details(usage, attrs)
        if self._metrics._capture:
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = output_content(message, finish_reasons)
        span.set_attributes(attrs)

    def end(self, error: BaseException | None = None, *, abandoned: bool = False) -> None:
        """Finish the call. Idempotent; always ends the span and decrements active requests.

        `abandoned=True` (the consumer stopped a stream early) is not an error.
        """
        with _END_LOCK:
            if self._ended:
                return
            self._ended = True
        metrics = self._metrics
        span = self.span
        try:
            duration = time.perf_counter() - self._started
            if error is None:
                metrics._record_duration(self._labels, duration, None)
                if abandoned and span.is_recording():
                    span.add_event(sc.EVENT_STREAM_ABANDONED)
            else:
                code = error_type(error)
                metrics._record_duration(self._labels, duration, code)
                metrics._errors.add(1, {**self._request_labels.counter, sc.ERROR_TYPE: code})
                if span.is_recording():
                    span.set_attribute(sc.ERROR_TYPE, code)
                    span.set_status(StatusCode.ERROR, redact(str(error)) or type(error).__name__)
                    span.add_event(sc.EVENT_EXCEPTION, _exception_attributes(error))
        finally:
            metrics._active.add(-1, self._request_labels.counter)
            span.end()


class _ContextOnly:
    """`activate()` of a silent operation: only the ObservabilityContext becomes current."""

    __slots__ = ("_operation", "_token")

    def __init__(self, operation: Operation) -> None:
        self._operation = operation

    def __enter__(self) -> None:
        self._token = _CURRENT_OPERATION.set(self._operation)

    def __exit__(self, *exc: object) -> None:
        try:
            _CURRENT_OPERATION.reset(self._token)
        except (ValueError, RuntimeError):
            _CURRENT_OPERATION.set(None)


class _SilentOperation(Operation):
    """A call that nothing would record (no SDK, or no-op providers): ids and context only.

    Skipping span creation, counters and context attachment keeps the wrapper's cost near
    zero for users who have not installed an OpenTelemetry SDK.
    """

    __slots__ = ()
    records: ClassVar[bool] = False

    def activate(self) -> AbstractContextManager[None]:
        return _ContextOnly(self)

    def record_first_chunk(self) -> None:
        return None

    def record_retry(self, attempt: int, error: BaseException, delay_s: float) -> None:
        return None

    def record_result(
        self, message: BaseMessage, response_metadata: Mapping[str, Any] | None = None
    ) -> None:
        self._result_recorded = True

    def end(self, error: BaseException | None = None, *, abandoned: bool = False) -> None:
        self._ended = True


def _records(provider: object | None, noop_type: type) -> bool | None:
    if provider is None:
        return None
    return not isinstance(provider, noop_type)


def _is_proxy_meter_provider(provider: object) -> bool:
    # The API's placeholder until an SDK is installed; its class is private, so match by name.
    return type(provider).__name__ == "_ProxyMeterProvider"


def current_operation() -> Operation | None:
    """The `Operation` whose `activate()` block is running in this thread/task, if any."""
    return _CURRENT_OPERATION.get()


def error_type(error: BaseException) -> str:
    """The `error.type` value for `error`: its `ErrorCode` string."""
    if isinstance(error, ChatModelError):
        return error.code.value
    if isinstance(error, asyncio.CancelledError):
        return ErrorCode.CANCELLED.value
    try:
        return map_exception(error, op="telemetry").code.value
    except Exception:
        return ErrorCode.UNKNOWN.value


def NoOpMetrics() -> ChatModelMetrics:
    """A `ChatModelMetrics` that records nothing (OpenTelemetry's no-op providers)."""
    return ChatModelMetrics(NoOpMeterProvider(), NoOpTracerProvider(), capture_content=False)


_default: ChatModelMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> ChatModelMetrics:
    """The process-wide instance on the global providers, created on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = ChatModelMetrics()
    return _default


# --- response helpers -------------------------------------------------------------------------

_GENERATED_ID_PREFIXES = ("run-", "lc_run-")


def _lookup(sources: tuple[Mapping[str, Any], ...], *keys: str) -> Any:
    for source in sources:
        for key in keys:
            value = source.get(key)
            if value:
                return value
    return None


def _response_id(message: BaseMessage, metadata: tuple[Mapping[str, Any], ...]) -> str | None:
    message_id = getattr(message, "id", None)
    if isinstance(message_id, str) and message_id and not message_id.startswith(
        _GENERATED_ID_PREFIXES
    ):
        return message_id
    value = _lookup(metadata, "id")
    return value if isinstance(value, str) else None


def _finish_reasons(metadata: tuple[Mapping[str, Any], ...]) -> tuple[str, ...]:
    value = _lookup(metadata, "finish_reason", "stop_reason", "done_reason")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        return tuple(str(v) for v in value)
    return (str(value),)


def _usage_details(usage: Mapping[str, Any], attrs: _Attrs) -> None:
    details = usage.get("input_token_details") or {}
    cache_read = details.get("cache_read")
    if isinstance(cache_read, int):
        attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cache_read
    cache_creation = details.get("cache_creation")
    if isinstance(cache_creation, int):
        attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = cache_creation
    reasoning = (usage.get("output_token_details") or {}).get("reasoning")
    if isinstance(reasoning, int):
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning


def _exception_attributes(error: BaseException) -> _Attrs:
    """Like `Span.record_exception`, but redacted, and without the chained causes' messages
    (they come from provider SDKs and may echo credentials); their frames are kept."""
    kind = type(error)
    lines = traceback.format_exception(error, chain=False)
    cause = error.__cause__ or error.__context__
    if cause is not None and cause.__traceback__ is not None:
        lines.append(f"Caused by {type(cause).__qualname__} (message omitted):\n")
        lines.extend(traceback.format_tb(cause.__traceback__))
    return {
        sc.EXCEPTION_TYPE: f"{kind.__module__}.{kind.__qualname__}",
        sc.EXCEPTION_MESSAGE: redact(str(error)),
        sc.EXCEPTION_STACKTRACE: redact("".join(lines)),
    }
