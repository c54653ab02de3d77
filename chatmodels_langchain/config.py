"""`ProviderConfig`: the validated, immutable configuration a provider is created from.

Also the functional options (`with_model(...)`, ...) accepted by `new_provider`, and loading
from the environment, a TOML/JSON file or a plain dict.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from chatmodels_langchain.errors import ConfigError, ErrorCode, ModelUnsupportedError

if TYPE_CHECKING:
    from chatmodels_langchain.metadata import ProviderMetadata

__all__ = [
    "ConfigOption",
    "ProviderConfig",
    "with_api_key",
    "with_base_url",
    "with_max_retries",
    "with_max_tokens",
    "with_model",
    "with_provider",
    "with_temperature",
    "with_timeout",
]

_NOT_FROM_TEXT = frozenset({"http_client", "http_async_client"})
"""Fields that hold live objects and cannot come from the environment or a file."""

ConfigOption = Callable[[dict[str, Any]], None]
"""A functional option: mutates the field dict `new_provider` builds a config from."""


class ProviderConfig(BaseModel):
    """Configuration shared by every provider. Immutable; copy with `model_copy(update=...)`."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, arbitrary_types_allowed=True
    )

    provider: str = Field(min_length=1)
    model: str = ""
    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout: float = Field(default=60.0, gt=0, description="seconds")
    max_retries: int = Field(default=2, ge=0)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    provider_specific: dict[str, Any] = Field(default_factory=dict)
    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    """A client of your own (proxy, custom CA, tests) for providers that speak HTTP; shared,
    never copied and never closed by the model."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)

    @field_validator("provider_specific", mode="before")
    @classmethod
    def _copy_provider_specific(cls, value: Any) -> Any:
        # Deep-copied so that the caller mutating their dict later changes nothing here.
        return copy.deepcopy(dict(value)) if isinstance(value, Mapping) else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value if value.get_secret_value() else None
        return value or None

    def __repr__(self) -> str:  # keeps the key masked even in rich/pretty printers
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__repr_args__())
        return f"ProviderConfig({fields})"

    # --- validation against a provider's metadata ---

    def resolved_for(self, metadata: ProviderMetadata) -> ProviderConfig:
        """This config completed from the provider's defaults and environment, then checked.

        Fills `model`/`base_url` defaults and the API key from `metadata.api_key_env`; raises
        `ConfigError` (or `ModelUnsupportedError`) naming the field or env var at fault.
        """
        update: dict[str, Any] = {}
        if not self.model and metadata.default_model:
            update["model"] = metadata.default_model
        if self.base_url is None and metadata.default_base_url:
            update["base_url"] = metadata.default_base_url
        if self.api_key is None and metadata.api_key_env:
            env_value = os.environ.get(metadata.api_key_env)
            if env_value:
                update["api_key"] = SecretStr(env_value)
        resolved = self.model_copy(update=update) if update else self
        resolved._check(metadata)
        return resolved

    def _check(self, metadata: ProviderMetadata) -> None:
        for key in metadata.required_config:
            if key == "api_key":
                if self.api_key is None:
                    hint = (
                        f"; set {metadata.api_key_env} or pass api_key="
                        if metadata.api_key_env
                        else "; pass api_key="
                    )
                    raise ConfigError(
                        f"provider {self.provider!r} requires an API key{hint}",
                        context={"field": "api_key", "env_var": metadata.api_key_env},
                        op="new_provider", provider=self.provider, model=self.model,
                    )
            elif getattr(self, key, None) in (None, "") and key not in self.provider_specific:
                raise ConfigError(
                    f"provider {self.provider!r} requires {key!r}",
                    context={"field": key},
                    op="new_provider", provider=self.provider, model=self.model,
                )
        if not self.model:
            raise ConfigError(
                "model must be set", context={"field": "model"},
                op="new_provider", provider=self.provider, model=self.model,
            )
        if not metadata.supports_model(self.model):
            raise ModelUnsupportedError(
                f"model {self.model!r} is not supported by {self.provider!r} "
                f"(supported: {', '.join(metadata.supported_models)})",
                context={"field": "model", "supported_models": list(metadata.supported_models)},
                op="new_provider", provider=self.provider, model=self.model,
            )

    # --- construction helpers ---

    @classmethod
    def build(
        cls,
        *options: ConfigOption,
        base: ProviderConfig | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> ProviderConfig:
        """Build a validated config from a base, functional options and keyword fields.

        Invalid values raise `ConfigError` (code config_invalid) listing every bad field.
        """
        data: dict[str, Any]
        if isinstance(base, ProviderConfig):
            data = {name: getattr(base, name) for name in type(base).model_fields}
        else:
            data = dict(base or {})
        for option in options:
            if not callable(option):
                raise ConfigError(
                    f"positional arguments must be options such as with_model(...), got {option!r}",
                    op="new_provider",
                )
            option(data)
        data.update(fields)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(
                f"invalid configuration: {problems}",
                op="new_provider",
                code=ErrorCode.CONFIG_INVALID,
                provider=str(data.get("provider") or ""),
                model=str(data.get("model") or ""),
                context={"fields": [".".join(str(p) for p in e["loc"]) for e in exc.errors()]},
            ) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderConfig:
        """Validate a plain mapping (e.g. parsed from a file)."""
        return cls.build(base=data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ProviderConfig:
        """Load from a TOML or JSON file; a `[chatmodel]` TOML table is accepted too."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
            data = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read config file {str(file)!r}: {exc}", op="load_config"
            ) from exc
        if isinstance(data, dict) and isinstance(data.get("chatmodel"), dict):
            data = data["chatmodel"]
        if not isinstance(data, dict):
            raise ConfigError(f"config file {str(file)!r} must hold a table", op="load_config")
        return cls.from_dict(data)

    @classmethod
    def from_env(
        cls, prefix: str = "CHATMODEL_", environ: Mapping[str, str] | None = None
    ) -> ProviderConfig:
        """Read `{prefix}PROVIDER`, `{prefix}MODEL`, `{prefix}API_KEY`, ... from the environment."""
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        for name in cls.model_fields:
            if name in _NOT_FROM_TEXT:
                continue
            if name == "provider_specific":
                raw = env.get(f"{prefix}PROVIDER_SPECIFIC")
                if raw:
                    try:
                        data[name] = json.loads(raw)
                    except ValueError as exc:
                        raise ConfigError(
                            f"{prefix}PROVIDER_SPECIFIC must be a JSON object: {exc}",
                            op="load_config",
                        ) from exc
                continue
            value = env.get(f"{prefix}{name.upper()}")
            if value is not None and value != "":
                data[name] = value
        return cls.from_dict(data)


# --- functional options ----------------------------------------------------------------------


def _setter(field: str, value: Any) -> ConfigOption:
    def apply(data: dict[str, Any]) -> None:
        data[field] = value

    apply.__name__ = f"with_{field}"
    apply.__qualname__ = f"with_{field}"
    return apply


def with_provider(name: str) -> ConfigOption:
    return _setter("provider", name)


def with_model(model: str) -> ConfigOption:
    return _setter("model", model)


def with_api_key(api_key: str | SecretStr) -> ConfigOption:
    return _setter("api_key", api_key)


def with_base_url(base_url: str) -> ConfigOption:
    return _setter("base_url", base_url)


def with_timeout(seconds: float) -> ConfigOption:
    return _setter("timeout", seconds)


def with_temperature(temperature: float) -> ConfigOption:
    return _setter("temperature", temperature)


def with_max_tokens(max_tokens: int) -> ConfigOption:
    return _setter("max_tokens", max_tokens)


def with_max_retries(max_retries: int) -> ConfigOption:
    return _setter("max_retries", max_retries)
