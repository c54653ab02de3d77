"""Capabilities and provider metadata: what a provider offers, per provider and per model."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from chatmodels_langchain.errors import ConfigError

__all__ = ["Capability", "ModelOverride", "ProviderMetadata"]


class Capability(StrEnum):
    """Standard capability identifiers. Values are stable strings."""

    STREAMING = "streaming"
    TOOL_CALLING = "tool_calling"
    TOOL_CHOICE = "tool_choice"
    PARALLEL_TOOL_CALLS = "parallel_tool_calls"
    STRUCTURED_OUTPUT = "structured_output"
    JSON_MODE = "json_mode"
    JSON_SCHEMA = "json_schema"
    IMAGE_INPUT = "image_input"
    USAGE_METADATA = "usage_metadata"
    SYSTEM_MESSAGES = "system_messages"


def _caps(values: Iterable[Capability | str]) -> frozenset[Capability]:
    try:
        return frozenset(Capability(v) for v in values)
    except ValueError as exc:
        raise ConfigError(str(exc), op="register") from exc


@dataclass(frozen=True, slots=True)
class ModelOverride:
    """Capability changes and limits for the models matching a glob `pattern`.

    Overrides apply in order; a later matching override wins for limits.
    """

    pattern: str
    add: frozenset[Capability] = frozenset()
    remove: frozenset[Capability] = frozenset()
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "add", _caps(self.add))
        object.__setattr__(self, "remove", _caps(self.remove))

    def matches(self, model: str) -> bool:
        return fnmatch.fnmatchcase(model, self.pattern)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """Describes a provider: capabilities, configuration keys and supported models.

    `required_config` names the `ProviderConfig` fields that must be set ("model", "api_key",
    ...); `optional_config` maps optional field names to their defaults. `supported_models`
    are glob patterns (`gpt-*`); `model_overrides` refine capabilities per model family.
    """

    name: str
    description: str
    capabilities: frozenset[Capability]
    supported_models: tuple[str, ...]
    required_config: tuple[str, ...] = ("model",)
    optional_config: Mapping[str, Any] = field(default_factory=dict)
    model_overrides: tuple[ModelOverride, ...] = ()
    api_key_env: str | None = None
    default_base_url: str | None = None
    default_model: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("provider name must be a non-empty string", op="register")
        object.__setattr__(self, "capabilities", _caps(self.capabilities))
        object.__setattr__(self, "supported_models", tuple(self.supported_models))
        object.__setattr__(self, "required_config", tuple(self.required_config))
        object.__setattr__(self, "model_overrides", tuple(self.model_overrides))
        object.__setattr__(self, "optional_config", MappingProxyType(dict(self.optional_config)))
        if not self.capabilities:
            raise ConfigError(
                f"metadata for {self.name!r} must name at least one capability",
                op="register", provider=self.name,
            )
        if not self.supported_models or not all(
            isinstance(p, str) and p for p in self.supported_models
        ):
            raise ConfigError(
                f"metadata for {self.name!r} must list at least one supported-model pattern",
                op="register", provider=self.name,
            )

    @property
    def requires_api_key(self) -> bool:
        return "api_key" in self.required_config

    def supports_model(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, p) for p in self.supported_models)

    def capabilities_for(self, model: str) -> frozenset[Capability]:
        """Provider capabilities refined by every override whose pattern matches `model`."""
        caps = set(self.capabilities)
        for override in self.model_overrides:
            if override.matches(model):
                caps |= override.add
                caps -= override.remove
        return frozenset(caps)

    def limits_for(self, model: str) -> tuple[int | None, int | None]:
        """(max_input_tokens, max_output_tokens) for `model`, where documented."""
        max_in: int | None = None
        max_out: int | None = None
        for override in self.model_overrides:
            if override.matches(model):
                max_in = override.max_input_tokens or max_in
                max_out = override.max_output_tokens or max_out
        return max_in, max_out

    def as_row(self) -> dict[str, str]:
        """A flat, printable summary (used by the CLI and notebook display)."""
        return {
            "provider": self.name,
            "capabilities": ", ".join(sorted(c.value for c in self.capabilities)),
            "required": ", ".join(self.required_config),
            "key env": self.api_key_env or "-",
            "models": ", ".join(self.supported_models),
            "description": self.description,
        }

    def _repr_markdown_(self) -> str:
        row = self.as_row()
        lines = ["| field | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in row.items()]
        return "\n".join(lines)
