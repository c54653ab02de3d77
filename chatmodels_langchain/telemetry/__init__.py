"""OpenTelemetry for chat-model calls: GenAI-convention spans and metrics, and call context."""

from chatmodels_langchain.telemetry.console import TelemetrySession, console
from chatmodels_langchain.telemetry.context import (
    ObservabilityContext,
    current_observability,
    new_observability,
    observability_context,
)
from chatmodels_langchain.telemetry.metrics import (
    ChatModelMetrics,
    NoOpMetrics,
    Operation,
    current_operation,
    default_metrics,
    error_type,
)

__all__ = [
    "ChatModelMetrics",
    "NoOpMetrics",
    "ObservabilityContext",
    "Operation",
    "TelemetrySession",
    "console",
    "current_observability",
    "current_operation",
    "default_metrics",
    "error_type",
    "new_observability",
    "observability_context",
]
