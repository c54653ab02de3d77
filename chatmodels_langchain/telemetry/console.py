"""`console()`: see this package's spans and metrics locally, in a notebook or a script.

It needs `opentelemetry-sdk` (`pip install opentelemetry-sdk`), imported only here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from chatmodels_langchain.telemetry import semconv as sc
from chatmodels_langchain.telemetry.metrics import ChatModelMetrics

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["TelemetrySession", "console"]

_lock = threading.Lock()
_installed: TelemetrySession | None = None


class TelemetrySession:
    """SDK providers recording into memory, with readable views of what they recorded.

    `installed` is True when these providers are the global ones (so every model using the
    default telemetry reports here); otherwise pass them on explicitly:
    `ChatModelMetrics(meter_provider=s.meter_provider, tracer_provider=s.tracer_provider)`,
    or `s.chat_model_metrics()`.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        span_exporter: InMemorySpanExporter,
        metric_reader: InMemoryMetricReader,
        *,
        installed: bool,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.installed = installed
        self._span_exporter = span_exporter
        self._metric_reader = metric_reader

    def chat_model_metrics(self, *, capture_content: bool | None = None) -> ChatModelMetrics:
        """A `ChatModelMetrics` reporting to this session."""
        return ChatModelMetrics(
            meter_provider=self.meter_provider,
            tracer_provider=self.tracer_provider,
            capture_content=capture_content,
        )

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every finished span, oldest first."""
        return self._span_exporter.get_finished_spans()

    def clear(self) -> None:
        """Forget the finished spans (metrics are cumulative and keep counting)."""
        self._span_exporter.clear()

    def metrics(self) -> dict[str, Any]:
        """Totals of this package's metrics so far.

        Keys: requests, active_requests, errors ({error.type: count}), tokens
        ({"input": n, "output": n}), duration ({"count", "sum_s"}), time_to_first_chunk
        ({"count", "sum_s"}), by_model ({"provider/model": requests}).
        """
        summary: dict[str, Any] = {
            "requests": 0,
            "active_requests": 0,
            "errors": {},
            "tokens": {sc.TOKEN_TYPE_INPUT: 0, sc.TOKEN_TYPE_OUTPUT: 0},
            "duration": {"count": 0, "sum_s": 0.0},
            "time_to_first_chunk": {"count": 0, "sum_s": 0.0},
            "by_model": {},
        }
        for name, attributes, point in self._points():
            value = getattr(point, "value", None)
            if name == sc.METRIC_REQUESTS:
                summary["requests"] += value
                key = (
                    f"{attributes.get(sc.GEN_AI_PROVIDER_NAME)}/"
                    f"{attributes.get(sc.GEN_AI_REQUEST_MODEL)}"
                )
                summary["by_model"][key] = summary["by_model"].get(key, 0) + value
            elif name == sc.METRIC_ACTIVE_REQUESTS:
                summary["active_requests"] += value
            elif name == sc.METRIC_ERRORS:
                code = str(attributes.get(sc.ERROR_TYPE, "unknown"))
                summary["errors"][code] = summary["errors"].get(code, 0) + value
            elif name == sc.METRIC_TOKEN_USAGE:
                token_type = str(attributes.get(sc.GEN_AI_TOKEN_TYPE))
                tokens = summary["tokens"]
                tokens[token_type] = tokens.get(token_type, 0) + int(point.sum)
            elif name in (sc.METRIC_OPERATION_DURATION, sc.METRIC_TIME_TO_FIRST_CHUNK):
                key = "duration" if name == sc.METRIC_OPERATION_DURATION else "time_to_first_chunk"
                summary[key]["count"] += point.count
                summary[key]["sum_s"] += point.sum
        return summary

    def _points(self) -> list[tuple[str, Mapping[str, Any], Any]]:
        data = self._metric_reader.get_metrics_data()
        points: list[tuple[str, Mapping[str, Any], Any]] = []
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                if scope_metrics.scope.name != sc.INSTRUMENTATION_NAME:
                    continue
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        points.append((metric.name, point.attributes or {}, point))
        return points

    def summary(self) -> str:
        """A text table: one row per chat-model span, then the metric totals."""
        header = ("span", "ms", "status", "error.type", "in", "out")
        rows: list[tuple[str, ...]] = []
        for span in self.spans():
            attributes = span.attributes or {}
            if sc.GEN_AI_OPERATION_NAME not in attributes:
                continue
            duration_ms = (
                (span.end_time - span.start_time) / 1e6
                if span.end_time is not None and span.start_time is not None
                else 0.0
            )
            rows.append((
                span.name,
                f"{duration_ms:.1f}",
                span.status.status_code.name,
                str(attributes.get(sc.ERROR_TYPE, "")),
                str(attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS, "")),
                str(attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, "")),
            ))
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        totals = self.metrics()
        errors = totals["errors"]
        error_text = ", ".join(f"{code}={n}" for code, n in sorted(errors.items())) or "none"
        lines.append("")
        lines.append(f"requests: {totals['requests']}  active: {totals['active_requests']}")
        lines.append(f"errors: {sum(errors.values())} ({error_text})")
        lines.append(
            f"tokens: in {totals['tokens'][sc.TOKEN_TYPE_INPUT]}"
            f"  out {totals['tokens'][sc.TOKEN_TYPE_OUTPUT]}"
        )
        return "\n".join(lines)

    def shutdown(self) -> None:
        """Flush and stop both providers."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"TelemetrySession(installed={self.installed}, spans={len(self.spans())})"


def console(*, exporter: Literal["memory", "console"] | str = "memory") -> TelemetrySession:
    """Record spans and metrics in memory (and, with `exporter="console"`, print each span).

    When no global OpenTelemetry providers are set yet, the new SDK providers become the
    global ones (`session.installed` is True) and every model on the default telemetry reports
    to them; calling `console()` again returns that same session. When global providers were
    already configured elsewhere they are left alone: a fresh, non-global pair is returned
    (`installed` False) to pass to `ChatModelMetrics` or a registry explicitly.
    """
    global _installed
    if exporter not in ("memory", "console"):
        raise ValueError(f"exporter must be 'memory' or 'console', not {exporter!r}")
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "chatmodels_langchain.telemetry.console() needs the OpenTelemetry SDK: "
            "pip install opentelemetry-sdk"
        ) from exc
    from opentelemetry import metrics, trace

    with _lock:
        if (
            _installed is not None
            and trace.get_tracer_provider() is _installed.tracer_provider
            and metrics.get_meter_provider() is _installed.meter_provider
        ):
            return _installed
        span_exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        if exporter == "console":
            tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        installed = _globals_unset()
        if installed:
            trace.set_tracer_provider(tracer_provider)
            metrics.set_meter_provider(meter_provider)
        session = TelemetrySession(
            tracer_provider, meter_provider, span_exporter, reader, installed=installed
        )
        if installed:
            _installed = session
        return session


def _globals_unset() -> bool:
    from opentelemetry import metrics, trace

    tracer_unset = isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    meter_unset = type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
    return tracer_unset and meter_unset
