"""`ChatModelRegistry`: provider name -> (creator, metadata), plus the process-wide default.

Reads are lock-free: the registry keeps an immutable snapshot (a dict that is never mutated
after publication) and writers replace it under a lock (copy-on-write). Creators are resolved
lazily: an entry may name its creator as an import string ("pkg.module:function") that is
imported on first use, once, even under concurrent first use.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from chatmodels_langchain.config import ConfigOption, ProviderConfig
from chatmodels_langchain.errors import ConfigError, ErrorCode, map_exception
from chatmodels_langchain.metadata import ProviderMetadata

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from chatmodels_langchain.health import HealthStatus
    from chatmodels_langchain.telemetry import ChatModelMetrics
    from chatmodels_langchain.wrapper import ChatModelWrapper

__all__ = [
    "ENTRY_POINT_GROUP",
    "ChatModelRegistry",
    "ProviderCreator",
    "default_registry",
    "list_providers",
    "new_provider",
    "register_global",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "chatmodels_langchain.providers"

ProviderCreator = Callable[[ProviderConfig], BaseChatModel]
"""Builds the underlying LangChain chat model from a validated config."""


@dataclass(slots=True)
class _Entry:
    metadata: ProviderMetadata
    target: ProviderCreator | str
    creator: ProviderCreator | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self) -> tuple[ProviderCreator, bool]:
        """The creator, importing it on first use. Returns (creator, initialized_now)."""
        creator = self.creator
        if creator is not None:
            return creator, False
        with self.lock:
            if self.creator is not None:
                return self.creator, False
            if isinstance(self.target, str):
                module_name, _, attr = self.target.partition(":")
                loaded = getattr(importlib.import_module(module_name), attr)
            else:
                loaded = self.target
            self.creator = loaded
            return loaded, True


class ChatModelRegistry:
    """Thread-safe registry of chat-model providers, optimised for reads."""

    def __init__(
        self,
        *,
        load_plugins: bool = False,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        metrics: ChatModelMetrics | None = None,
    ) -> None:
        self._entries: Mapping[str, _Entry] = {}
        self._write_lock = threading.Lock()
        self._initialized: frozenset[str] = frozenset()
        self._instances: dict[str, weakref.ref[ChatModelWrapper]] = {}
        self._plugins_pending = load_plugins
        self._plugin_lock = threading.Lock()
        self._metrics = metrics
        self._meter_provider = meter_provider
        self._tracer_provider = tracer_provider

    # --- writes (copy-on-write under a lock) ---

    def register(
        self,
        name: str,
        creator: ProviderCreator | str,
        metadata: ProviderMetadata,
        *,
        replace: bool = False,
    ) -> None:
        """Register `creator` under `name`. `creator` may be an import string "module:attr"."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("provider name must be a non-empty string", op="register")
        if not (callable(creator) or (isinstance(creator, str) and ":" in creator)):
            raise ConfigError(
                f"creator for {name!r} must be callable or a 'module:function' string",
                op="register", provider=name,
            )
        if not isinstance(metadata, ProviderMetadata):
            raise ConfigError(
                f"metadata for {name!r} must be a ProviderMetadata", op="register", provider=name
            )
        if metadata.name != name:
            raise ConfigError(
                f"metadata name {metadata.name!r} does not match provider name {name!r}",
                op="register", provider=name,
            )
        with self._write_lock:
            if name in self._entries and not replace:
                raise ConfigError(
                    f"provider {name!r} is already registered", op="register", provider=name
                )
            entries = dict(self._entries)
            entries[name] = _Entry(metadata=metadata, target=creator)
            self._entries = entries
            self._initialized = self._initialized - {name}

    def unregister(self, name: str) -> None:
        with self._write_lock:
            if name not in self._entries:
                raise ConfigError(
                    f"provider {name!r} is not registered", op="unregister", provider=name
                )
            entries = dict(self._entries)
            del entries[name]
            self._entries = entries
            self._initialized = self._initialized - {name}
            self._instances.pop(name, None)

    # --- reads (lock-free) ---

    def _snapshot(self) -> Mapping[str, _Entry]:
        if self._plugins_pending:
            self._load_plugins()
        return self._entries

    def is_registered(self, name: str) -> bool:
        return name in self._snapshot()

    def metadata(self, name: str) -> ProviderMetadata:
        return self._entry(name, op="metadata").metadata

    def list_providers(self) -> list[ProviderMetadata]:
        """Metadata of every registered provider, sorted by name."""
        entries = self._snapshot()
        return [entries[name].metadata for name in sorted(entries)]

    def initialized(self) -> frozenset[str]:
        """Names of the providers whose creator has run at least once."""
        return self._initialized

    def _entry(self, name: str, *, op: str) -> _Entry:
        entries = self._snapshot()
        entry = entries.get(name)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none"
            raise ConfigError(
                f"provider {name!r} is not registered (registered: {known})",
                op=op, provider=str(name), context={"registered": sorted(entries)},
            )
        return entry

    # --- creation ---

    def resolve_config(
        self,
        name: str | None = None,
        *args: ProviderConfig | Mapping[str, Any] | ConfigOption,
        config: ProviderConfig | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> ProviderConfig:
        """The validated config `new_provider` would create a model from."""
        options: list[ConfigOption] = []
        for arg in args:
            if isinstance(arg, ProviderConfig | Mapping):
                if config is not None:
                    raise ConfigError("config given twice", op="new_provider")
                config = arg
            else:
                options.append(arg)
        if name is not None:
            fields["provider"] = name
        built = ProviderConfig.build(*options, base=config, **fields)
        entry = self._entry(built.provider, op="new_provider")
        return built.resolved_for(entry.metadata)

    def new_provider(
        self,
        name: str | None = None,
        *args: ProviderConfig | Mapping[str, Any] | ConfigOption,
        config: ProviderConfig | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> ChatModelWrapper:
        """Create a chat model: validate the config, run the provider's creator, wrap the result.

        `args` may hold one `ProviderConfig` (or dict) and any number of functional options
        (`with_model("gpt-4o-mini")`); keyword `fields` win over both. The wrapper options
        `capture_content`, `metrics` and `underlying` are passed to the wrapper, not the config.
        """
        from chatmodels_langchain.wrapper import WRAPPER_OPTIONS, ChatModelWrapper

        extra = {k: fields.pop(k) for k in WRAPPER_OPTIONS if k in fields}
        resolved = self.resolve_config(name, *args, config=config, **fields)
        return ChatModelWrapper.from_config(resolved, registry=self, **extra)

    def create_underlying(self, config: ProviderConfig) -> BaseChatModel:
        """Run the provider's creator for an already validated `config`."""
        entry = self._entry(config.provider, op="new_provider")
        try:
            creator, first = entry.resolve()
            model = creator(config)
        except Exception as exc:
            secrets = (config.api_key.get_secret_value(),) if config.api_key else ()
            err = map_exception(
                exc, op="new_provider", provider=config.provider, model=config.model,
                secrets=secrets,
            )
            if err.code in (ErrorCode.UNKNOWN, ErrorCode.INVALID_INPUT):
                err = ConfigError(
                    f"creating provider failed: {err.message}",
                    op="new_provider", provider=config.provider, model=config.model,
                    cause=exc, secrets=secrets,
                )
            raise err from exc
        if first:
            with self._write_lock:
                self._initialized = self._initialized | {config.provider}
        if not isinstance(model, BaseChatModel):
            raise ConfigError(
                f"creator for {config.provider!r} returned {type(model).__name__}, "
                "not a LangChain BaseChatModel",
                op="new_provider", provider=config.provider, model=config.model,
            )
        return model

    def _track(self, wrapper: ChatModelWrapper) -> None:
        # dict item assignment is atomic; the latest live instance answers health checks
        self._instances[wrapper.provider] = weakref.ref(wrapper)

    # --- telemetry and health ---

    @property
    def metrics(self) -> ChatModelMetrics:
        """The metrics/tracing instance models created here use."""
        if self._metrics is None:
            from chatmodels_langchain.telemetry import ChatModelMetrics, default_metrics

            if self._meter_provider is None and self._tracer_provider is None:
                self._metrics = default_metrics()
            else:
                self._metrics = ChatModelMetrics(
                    meter_provider=self._meter_provider, tracer_provider=self._tracer_provider
                )
        return self._metrics

    def health(self) -> dict[str, HealthStatus]:
        """Health of every provider with a live model created through this registry."""
        report: dict[str, HealthStatus] = {}
        for name, ref in list(self._instances.items()):
            model = ref()
            if model is not None:
                report[name] = model.check_health()
        return report

    # --- plugins ---

    def _load_plugins(self) -> None:
        with self._plugin_lock:
            if not self._plugins_pending:
                return
            try:
                for ep in _provider_entry_points():
                    try:
                        hook = ep.load()
                        hook(self)
                    except Exception:
                        logger.warning("provider plugin %r failed to load", ep.name, exc_info=True)
            finally:
                self._plugins_pending = False

    def _repr_html_(self) -> str:
        rows = [m.as_row() for m in self.list_providers()]
        if not rows:
            return "<p>No providers registered.</p>"
        head = "".join(f"<th>{k}</th>" for k in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{_html(v)}</td>" for v in row.values()) + "</tr>"
            for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _provider_entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


# --- the process-wide default registry ---------------------------------------------------------

_default: ChatModelRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> ChatModelRegistry:
    """The process-wide registry, with the built-in providers and entry-point plugins."""
    global _default
    registry = _default
    if registry is None:
        with _default_lock:
            if _default is None:
                from chatmodels_langchain.providers import register_builtins

                created = ChatModelRegistry(load_plugins=True)
                register_builtins(created)
                _default = created
            registry = _default
    return registry


def register_global(
    name: str, creator: ProviderCreator | str, metadata: ProviderMetadata, *, replace: bool = False
) -> None:
    default_registry().register(name, creator, metadata, replace=replace)


def new_provider(
    name: str | None = None,
    *args: ProviderConfig | Mapping[str, Any] | ConfigOption,
    config: ProviderConfig | Mapping[str, Any] | None = None,
    **fields: Any,
) -> ChatModelWrapper:
    return default_registry().new_provider(name, *args, config=config, **fields)


def list_providers() -> list[ProviderMetadata]:
    return default_registry().list_providers()
