"""`ChatModelWrapper`: the LangChain chat model every registry-created model is.

It delegates `_generate`/`_agenerate`/`_stream`/`_astream` to the underlying model (one of
ours or any LangChain chat model) and adds three things only: capability gating, error
mapping (every exception leaves as `ChatModelError`) and telemetry (one `Operation` per call).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from urllib.parse import urlsplit

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableBinding, RunnableParallel, RunnableSequence
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, SecretStr, model_validator

from chatmodels_langchain.config import ProviderConfig
from chatmodels_langchain.errors import (
    CapabilityError,
    ChatModelError,
    InvalidInputError,
    map_exception,
)
from chatmodels_langchain.health import HealthStatus, ModelInfo, probe_health
from chatmodels_langchain.metadata import Capability, ProviderMetadata

if TYPE_CHECKING:
    from chatmodels_langchain.registry import ChatModelRegistry
    from chatmodels_langchain.telemetry import ChatModelMetrics, Operation

__all__ = ["WRAPPER_OPTIONS", "ChatModelWrapper"]

_CONFIG_FIELDS = (
    "model", "api_key", "base_url", "timeout", "max_retries", "temperature", "max_tokens",
    "provider_specific", "http_client", "http_async_client",
)
WRAPPER_OPTIONS = ("capture_content", "metrics", "underlying")
"""Keyword arguments of `new_provider` that configure the wrapper rather than the provider."""
_END = object()
# Exceptions that must keep their identity: the caller's control flow depends on them.
_PASSTHROUGH = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


@dataclass(slots=True)
class _StreamSummary:
    """What telemetry needs from a stream, kept without merging every chunk."""

    chunk: AIMessageChunk | None = None
    usage: UsageMetadata | None = None
    metadata: dict[str, Any] | None = None
    text: list[str] | None = None

    def add(self, message: BaseMessage) -> None:
        if self.chunk is None and isinstance(message, AIMessageChunk):
            self.chunk = message
        usage = getattr(message, "usage_metadata", None)
        if usage:
            self.usage = usage if self.usage is None else add_usage(self.usage, usage)
        if message.response_metadata:
            if self.metadata is None:
                self.metadata = {}
            self.metadata.update(message.response_metadata)
        if message.id and self.chunk is not None and not self.chunk.id:
            self.chunk = self.chunk.model_copy(update={"id": message.id})
        if self.text is not None and isinstance(message.content, str):
            self.text.append(message.content)

    def message(self) -> AIMessage:
        return AIMessage(
            content="".join(self.text or ()),
            id=self.chunk.id if self.chunk else None,
            usage_metadata=self.usage,
            response_metadata=self.metadata or {},
        )


@dataclass(frozen=True, slots=True)
class _Bound:
    """What a wrapper resolved at construction: config, metadata and the hot per-call state."""

    config: ProviderConfig
    metadata: ProviderMetadata
    capabilities: frozenset[Capability]
    metrics: ChatModelMetrics
    server_address: str | None
    server_port: int | None
    secrets: tuple[str, ...]


class ChatModelWrapper(BaseChatModel):
    """A registry-created chat model. Build it like `new_provider`:

    `ChatModelWrapper(provider="openai", model="gpt-4o-mini", api_key="...")`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    provider: str
    """Registered provider name."""
    model: str = ""
    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    provider_specific: dict[str, Any] = Field(default_factory=dict)
    http_client: Any = Field(default=None, exclude=True, repr=False)
    """An `httpx.Client` of your own for HTTP providers (proxy, custom CA); never closed here."""
    http_async_client: Any = Field(default=None, exclude=True, repr=False)
    capture_content: bool | None = Field(default=None, exclude=True)
    """Record message content on spans (None: the OTel content-capture env var decides)."""
    underlying: BaseChatModel | None = Field(default=None, exclude=True)
    """The delegate; created from the registry when not given."""
    registry: Any = Field(default=None, exclude=True)
    """The `ChatModelRegistry` to create from; the default registry when None."""
    metrics: Any = Field(default=None, exclude=True)
    """A `ChatModelMetrics`; the registry's when None."""

    if TYPE_CHECKING:
        # Set in the instance __dict__ (not a pydantic private attribute): it is read on every
        # call, and a plain attribute lookup is several times cheaper than pydantic's.
        _bound: _Bound

    @model_validator(mode="after")
    def _create(self) -> ChatModelWrapper:
        from chatmodels_langchain.registry import default_registry

        registry: ChatModelRegistry = self.registry or default_registry()
        fields = {k: getattr(self, k) for k in _CONFIG_FIELDS if k in self.model_fields_set}
        config = registry.resolve_config(self.provider, **fields)
        self._bind_config(config, registry)
        return self

    def _bind_config(self, config: ProviderConfig, registry: ChatModelRegistry) -> None:
        metadata = registry.metadata(config.provider)
        if self.underlying is None:
            self.__dict__["underlying"] = registry.create_underlying(config)
        for name in _CONFIG_FIELDS:
            self.__dict__[name] = getattr(config, name)
        self.__dict__["registry"] = registry
        declared = getattr(self.underlying, "declared_capabilities", None)
        metrics = self.metrics or registry.metrics
        if self.capture_content is not None:
            metrics = metrics.with_capture_content(self.capture_content)
        address: str | None = None
        port: int | None = None
        if config.base_url:
            parts = urlsplit(config.base_url)
            address, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        self.__dict__["_bound"] = _Bound(
            config=config,
            metadata=metadata,
            capabilities=(
                frozenset(declared) if declared else metadata.capabilities_for(config.model)
            ),
            metrics=metrics,
            server_address=address,
            server_port=port,
            secrets=(config.api_key.get_secret_value(),) if config.api_key else (),
        )
        registry._track(self)

    @classmethod
    def from_config(
        cls, config: ProviderConfig, *, registry: ChatModelRegistry | None = None, **extra: Any
    ) -> ChatModelWrapper:
        """Create from a validated config (what `ChatModelRegistry.new_provider` does)."""
        fields = {k: getattr(config, k) for k in _CONFIG_FIELDS}
        return cls(provider=config.provider, registry=registry, **fields, **extra)

    # --- what LangChain asks of a chat model ---

    @property
    def _llm_type(self) -> str:
        return f"chatmodels-{self.provider}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=self.provider,
            ls_model_name=str(kwargs.get("model") or self.model),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stop:
            params["ls_stop"] = stop
        return params

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["chatmodels_langchain", "wrapper"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        bound = self.__dict__.get("_bound")
        env = bound.metadata.api_key_env if bound is not None else None
        return {"api_key": env or "CHATMODELS_API_KEY"}

    def _resolve_model_profile(self) -> ModelProfile | None:
        bound = self.__dict__.get("_bound")
        if bound is None:
            return None
        caps = bound.capabilities
        profile = ModelProfile(
            tool_calling=Capability.TOOL_CALLING in caps,
            tool_choice=Capability.TOOL_CHOICE in caps,
            structured_output=Capability.STRUCTURED_OUTPUT in caps,
            image_inputs=Capability.IMAGE_INPUT in caps,
            text_inputs=True,
            text_outputs=True,
        )
        if Capability.STREAMING in caps and Capability.TOOL_CALLING in caps:
            profile["tool_call_streaming"] = True
        max_in, max_out = self._bound.metadata.limits_for(self.model)
        if max_in:
            profile["max_input_tokens"] = max_in
        if max_out:
            profile["max_output_tokens"] = max_out
        return profile

    @model_validator(mode="after")
    def _fill_profile(self) -> ChatModelWrapper:
        if self.profile is None:
            self.__dict__["profile"] = self._resolve_model_profile()
        return self

    def _convert_input(self, model_input: LanguageModelInput) -> PromptValue:
        """LangChain's input conversion, with its ValueError/TypeError mapped to invalid_input."""
        try:
            return super()._convert_input(model_input)
        except Exception as exc:
            raise InvalidInputError(
                f"cannot use this input: {exc}", op="convert_input", provider=self.provider,
                model=self.model, cause=exc, secrets=self._bound.secrets,
            ) from exc

    # --- capabilities ---

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this provider and model offer; decides bind_tools/structured output/streaming."""
        return self._bound.capabilities

    def supports(self, capability: Capability | str) -> bool:
        return Capability(capability) in self._bound.capabilities

    def _require(self, capability: Capability, op: str, detail: str = "") -> None:
        if capability not in self._bound.capabilities:
            raise CapabilityError(
                f"{self.provider} model {self.model!r} does not support {capability.value}"
                + (f" ({detail})" if detail else ""),
                op=op, provider=self.provider, model=self.model,
                context={"capability": capability.value},
            )

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools via the underlying model's own formatting, keeping this wrapper in front."""
        self._require(Capability.TOOL_CALLING, "bind_tools")
        if tool_choice not in (None, "auto", False):
            self._require(Capability.TOOL_CHOICE, "bind_tools", f"tool_choice={tool_choice!r}")
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        underlying = self._delegate
        try:
            bound = underlying.bind_tools(tools, **kwargs)
        except NotImplementedError as exc:
            raise CapabilityError(
                f"{type(underlying).__name__} does not implement bind_tools",
                op="bind_tools", provider=self.provider, model=self.model, cause=exc,
            ) from exc
        except ChatModelError:
            raise
        except Exception as exc:
            raise self._mapped(exc, "bind_tools") from exc
        return self._rebind(bound)  # type: ignore[return-value]

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Structured output with a method the model supports (function_calling preferred)."""
        caps = self._bound.capabilities
        if method is None:
            # Forcing the schema's tool needs tool_choice; without it a server-enforced
            # JSON schema is the more reliable choice.
            if Capability.TOOL_CALLING in caps and Capability.TOOL_CHOICE in caps:
                method = "function_calling"
            elif Capability.JSON_SCHEMA in caps:
                method = "json_schema"
            elif Capability.TOOL_CALLING in caps:
                method = "function_calling"
            elif Capability.JSON_SCHEMA in caps:
                method = "json_schema"
            elif Capability.JSON_MODE in caps:
                method = "json_mode"
            else:
                self._require(Capability.STRUCTURED_OUTPUT, "with_structured_output")
                method = "function_calling"
        needed = {
            "function_calling": Capability.TOOL_CALLING,
            "json_schema": Capability.JSON_SCHEMA,
            "json_mode": Capability.JSON_MODE,
        }.get(method)
        if needed is None:
            raise CapabilityError(
                f"unknown structured-output method {method!r}",
                op="with_structured_output", provider=self.provider, model=self.model,
            )
        self._require(needed, "with_structured_output", f"method={method!r}")
        underlying = self._delegate
        if type(underlying).with_structured_output is BaseChatModel.with_structured_output:
            # The base implementation goes through bind_tools: run it on the wrapper.
            if method != "function_calling":
                raise CapabilityError(
                    f"{type(underlying).__name__} implements only function_calling",
                    op="with_structured_output", provider=self.provider, model=self.model,
                )
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        try:
            structured = underlying.with_structured_output(
                schema, include_raw=include_raw, method=method, **kwargs
            )
        except ChatModelError:
            raise
        except Exception as exc:
            raise self._mapped(exc, "with_structured_output") from exc
        return self._rebind(structured)

    def _rebind(self, runnable: Runnable[Any, Any]) -> Runnable[Any, Any]:
        """Replace the underlying model inside `runnable` with this wrapper (kwargs kept)."""
        underlying = self.underlying
        if runnable is underlying:
            return self
        if isinstance(runnable, RunnableBinding):
            if runnable.bound is underlying:
                return RunnableBinding(
                    bound=self,
                    kwargs=runnable.kwargs,
                    config=runnable.config,
                    config_factories=runnable.config_factories,
                    custom_input_type=runnable.custom_input_type,
                    custom_output_type=runnable.custom_output_type,
                )
            inner = self._rebind(runnable.bound)
            if inner is not runnable.bound:
                fields = {k: getattr(runnable, k) for k in type(runnable).model_fields}
                return runnable.__class__(**{**fields, "bound": inner})
            return runnable
        if isinstance(runnable, RunnableSequence):
            steps = [self._rebind(step) for step in runnable.steps]
            if any(a is not b for a, b in zip(steps, runnable.steps, strict=True)):
                return RunnableSequence(*steps, name=runnable.name)
            return runnable
        if isinstance(runnable, RunnableParallel):
            branches = {k: self._rebind(v) for k, v in runnable.steps__.items()}
            if any(branches[k] is not v for k, v in runnable.steps__.items()):
                return RunnableParallel(branches)
            return runnable
        return runnable

    # --- info and health ---

    def get_model_info(self) -> ModelInfo:
        max_in, max_out = self._bound.metadata.limits_for(self.model)
        return ModelInfo(
            provider=self.provider,
            model=self.model,
            capabilities=tuple(sorted(c.value for c in self._bound.capabilities)),
            max_input_tokens=max_in,
            max_output_tokens=max_out,
            base_url=self.base_url,
        )

    def check_health(self) -> HealthStatus:
        """Probe the provider; never raises. See `chatmodels_langchain.health`."""
        return probe_health(self)

    async def acheck_health(self) -> HealthStatus:
        from chatmodels_langchain.health import aprobe_health

        return await aprobe_health(self)

    # --- delegation with telemetry and error mapping ---

    @property
    def _delegate(self) -> BaseChatModel:
        underlying = self.underlying
        assert underlying is not None  # set by the validator
        return underlying

    def _mapped(self, exc: BaseException, op: str) -> ChatModelError:
        """The error users see: classified once, located at the wrapper's operation."""
        return map_exception(
            exc, op=op, provider=self.provider, model=self.model, secrets=self._bound.secrets
        ).with_location(op=op)

    def _start(
        self,
        messages: list[BaseMessage],
        kwargs: Mapping[str, Any],
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
        *,
        stream: bool,
    ) -> Operation:
        bound = self._bound
        address, port = bound.server_address, bound.server_port
        return bound.metrics.start_operation(
            provider=self.provider,
            model=str(kwargs.get("model") or self.model),
            stream=stream,
            server_address=address,
            server_port=port,
            temperature=kwargs.get("temperature", self.temperature),
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            messages=messages,
            tools=kwargs.get("tools"),
            metadata=run_manager.metadata if run_manager is not None else None,
        )

    def _fail(self, operation: Operation, exc: BaseException, op: str) -> NoReturn:
        if isinstance(exc, _PASSTHROUGH):
            operation.end(exc)
            raise exc
        err = self._mapped(exc, op)
        operation.end(err)
        if err is exc:
            raise err
        # Chain the original failure, not an intermediate ChatModelError re-located here.
        original = exc.__cause__ if isinstance(exc, ChatModelError) else None
        raise err from (original or exc)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        operation = self._start(messages, kwargs, run_manager, stream=False)
        try:
            with operation.activate():
                result = self._delegate._generate(
                    messages, stop=stop, run_manager=run_manager, **kwargs
                )
        except BaseException as exc:
            self._fail(operation, exc, "invoke")
        self._finish(operation, result)
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        operation = self._start(messages, kwargs, run_manager, stream=False)
        try:
            with operation.activate():
                result = await self._delegate._agenerate(
                    messages, stop=stop, run_manager=run_manager, **kwargs
                )
        except BaseException as exc:
            self._fail(operation, exc, "ainvoke")
        self._finish(operation, result)
        return result

    @staticmethod
    def _finish(operation: Operation, result: ChatResult) -> None:
        if result.generations:
            generation = result.generations[0]
            if isinstance(generation, ChatGeneration):
                operation.record_result(generation.message, result.llm_output)
        operation.end()

    def _streams_natively(self, async_api: bool) -> bool:
        if Capability.STREAMING not in self._bound.capabilities:
            return False
        kind = type(self._delegate)
        has_sync = kind._stream is not BaseChatModel._stream
        has_async = kind._astream is not BaseChatModel._astream
        return has_async or has_sync if async_api else has_sync

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if not self._streams_natively(async_api=False):
            result = self._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
            yield _as_chunk(result)
            return
        operation = self._start(messages, kwargs, run_manager, stream=True)
        summary = _summary_for(operation)
        iterator: Iterator[ChatGenerationChunk] | None = None
        first = True
        # The delegate runs in a context of its own where the operation stays active, so the
        # span and ObservabilityContext are current inside it without re-activating per chunk.
        inner = contextvars.copy_context()
        inner.run(operation.activate().__enter__)
        try:
            iterator = self._delegate._stream(
                messages, stop=stop, run_manager=run_manager, **kwargs
            )
            while True:
                chunk = inner.run(next, iterator, _END)
                if chunk is _END:
                    break
                assert isinstance(chunk, ChatGenerationChunk)
                if first:
                    operation.record_first_chunk()
                    first = False
                if summary is not None:
                    summary.add(chunk.message)
                yield chunk
        except GeneratorExit:
            operation.end(abandoned=True)
            raise
        except BaseException as exc:
            self._fail(operation, exc, "stream")
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                inner.run(close)
        if summary is not None:
            operation.record_result(summary.message(), summary.metadata)
        operation.end()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if not self._streams_natively(async_api=True):
            result = await self._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
            yield _as_chunk(result)
            return
        operation = self._start(messages, kwargs, run_manager, stream=True)
        summary = _summary_for(operation)
        iterator: AsyncIterator[ChatGenerationChunk] | None = None
        first = True
        try:
            with operation.activate():
                iterator = self._delegate._astream(
                    messages, stop=stop, run_manager=run_manager, **kwargs
                )
            while True:
                with operation.activate():
                    try:
                        chunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                if first:
                    operation.record_first_chunk()
                    first = False
                if summary is not None:
                    summary.add(chunk.message)
                yield chunk
        except GeneratorExit:
            operation.end(abandoned=True)
            raise
        except BaseException as exc:
            self._fail(operation, exc, "astream")
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                # closing must not mask the outcome
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await aclose()
        if summary is not None:
            operation.record_result(summary.message(), summary.metadata)
        operation.end()

    def close(self) -> None:
        """Release the underlying model's connections, when it holds any."""
        close = getattr(self.underlying, "close", None)
        if callable(close):
            close()

    async def aclose(self) -> None:
        aclose = getattr(self.underlying, "aclose", None)
        if callable(aclose):
            await aclose()


def _summary_for(operation: Operation) -> _StreamSummary | None:
    """What a stream keeps for telemetry: nothing when nothing records the call."""
    if not operation.records:
        return None
    return _StreamSummary(text=[] if operation.captures_content else None)


def _as_chunk(result: ChatResult) -> ChatGenerationChunk:
    """The whole answer as one chunk, for models that cannot stream."""
    message = result.generations[0].message
    tool_call_chunks = [
        {"name": tc["name"], "args": _json(tc["args"]), "id": tc.get("id"), "index": i,
         "type": "tool_call_chunk"}
        for i, tc in enumerate(getattr(message, "tool_calls", []) or [])
    ]
    chunk = AIMessageChunk(
        content=message.content,
        id=message.id,
        tool_call_chunks=tool_call_chunks,  # type: ignore[arg-type]
        usage_metadata=getattr(message, "usage_metadata", None),
        response_metadata=message.response_metadata,
        additional_kwargs=message.additional_kwargs,
        chunk_position="last",
    )
    return ChatGenerationChunk(message=chunk, generation_info=result.generations[0].generation_info)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)

