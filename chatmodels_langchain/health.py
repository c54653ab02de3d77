"""Model information and health checks (`ChatModelWrapper.get_model_info` / `check_health`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from chatmodels_langchain.errors import ChatModelError, ErrorCode, map_exception

if TYPE_CHECKING:
    from chatmodels_langchain.wrapper import ChatModelWrapper

__all__ = ["HealthState", "HealthStatus", "ModelInfo", "aprobe_health", "probe_health"]

DEGRADED_LATENCY_S = 5.0
"""A probe slower than this reports `degraded`."""

# Codes that say "up, but not serving us well right now".
_DEGRADED_CODES = frozenset({ErrorCode.RATE_LIMIT})


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    provider: str
    model: str
    capabilities: tuple[str, ...]
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class HealthStatus:
    provider: str
    model: str
    state: HealthState
    latency_s: float
    error_code: ErrorCode | None = None
    message: str = ""

    @property
    def healthy(self) -> bool:
        return self.state is HealthState.HEALTHY


def _status(model: ChatModelWrapper, started: float, error: ChatModelError | None) -> HealthStatus:
    latency = time.perf_counter() - started
    if error is None:
        state = HealthState.DEGRADED if latency > DEGRADED_LATENCY_S else HealthState.HEALTHY
        return HealthStatus(model.provider, model.model, state, latency)
    state = HealthState.DEGRADED if error.code in _DEGRADED_CODES else HealthState.UNHEALTHY
    return HealthStatus(model.provider, model.model, state, latency, error.code, error.message)


def _as_error(model: ChatModelWrapper, exc: Exception) -> ChatModelError:
    return map_exception(exc, op="check_health", provider=model.provider, model=model.model,
                         secrets=model._bound.secrets)


def probe_health(model: ChatModelWrapper) -> HealthStatus:
    """Run the underlying model's `health_probe()` if it has one, else a 1-token invoke."""
    started = time.perf_counter()
    probe: Any = getattr(model.underlying, "health_probe", None)
    try:
        if callable(probe):
            probe()
        else:
            model.invoke("ping", max_tokens=1)
    except Exception as exc:
        return _status(model, started, _as_error(model, exc))
    return _status(model, started, None)


async def aprobe_health(model: ChatModelWrapper) -> HealthStatus:
    started = time.perf_counter()
    probe: Any = getattr(model.underlying, "ahealth_probe", None)
    try:
        if callable(probe):
            await probe()
        else:
            await model.ainvoke("ping", max_tokens=1)
    except Exception as exc:
        return _status(model, started, _as_error(model, exc))
    return _status(model, started, None)
