"""`NativeChatModel`: the LangChain side shared by the httpx providers.

A wire-format module subclasses it and supplies four things: the request path and headers,
`build_body` (LangChain messages and kwargs -> provider JSON), `parse_response`
(provider JSON -> `ChatResult`) and `new_stream_parser(body)` (provider events -> chunks).
Tools are bound in OpenAI function format and converted by the wire format when the body
is built; structured output is built on `bind_tools` or on a `response_format` kwarg.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from chatmodels_langchain.config import ProviderConfig
from chatmodels_langchain.providers._binding import (
    StructuredMethod,
    bind_openai_tools,
    structured_output,
)
from chatmodels_langchain.providers._http import HTTPTransport, ServerEvent, StreamFormat

__all__ = ["NativeChatModel", "StreamParser", "model_fields_from_config"]


class StreamParser(Protocol):
    """Turns a provider's stream events into chunks; one instance per stream."""

    def feed(self, event: ServerEvent) -> Iterator[ChatGenerationChunk]: ...

    def finish(self) -> Iterator[ChatGenerationChunk]:
        """Called when the stream ends; raises `InvalidResponseError` if it ended too early."""
        ...


def model_fields_from_config(config: ProviderConfig) -> dict[str, Any]:
    """The `NativeChatModel` keyword arguments for a validated config."""
    fields: dict[str, Any] = {
        "model": config.model,
        "api_key": config.api_key,
        "timeout": config.timeout,
        "max_retries": config.max_retries,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "provider_specific": dict(config.provider_specific),
        "http_client": config.http_client,
        "http_async_client": config.http_async_client,
    }
    if config.base_url:
        fields["base_url"] = config.base_url
    return fields


class NativeChatModel(BaseChatModel):
    """Base of the native providers. Subclasses define the wire format only."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    provider_name: ClassVar[str] = ""
    stream_format: ClassVar[StreamFormat] = "sse"
    default_base_url: ClassVar[str] = ""

    model: str
    api_key: SecretStr | None = None
    base_url: str = ""
    timeout: float = 60.0
    max_retries: int = 2
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    provider_specific: dict[str, Any] = Field(default_factory=dict)
    """Extra body fields sent as they are (e.g. `top_p`, `seed`, `metadata`)."""
    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    """Inject a client (proxies, custom CA, tests). It is not closed by the model."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)

    _transport: HTTPTransport = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        if not self.base_url:
            self.base_url = self.default_base_url
        secrets = (self.api_key.get_secret_value(),) if self.api_key else ()
        self._transport = HTTPTransport(
            base_url=self.base_url,
            headers=self.auth_headers(),
            timeout=self.timeout,
            max_retries=self.max_retries,
            provider=self.provider_name,
            model=self.model,
            secrets=secrets,
            client=self.http_client,
            async_client=self.http_async_client,
        )

    # --- the wire-format contract ---

    def auth_headers(self) -> dict[str, str]:
        """`Authorization: Bearer` when a key is set (override for other schemes)."""
        if self.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"}

    def request_path(self) -> str:
        raise NotImplementedError

    def build_body(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, **kwargs: Any
    ) -> dict[str, Any]:
        raise NotImplementedError

    def parse_response(self, data: Any) -> ChatResult:
        raise NotImplementedError

    def new_stream_parser(self, body: Mapping[str, Any]) -> StreamParser:
        """A parser for one stream; `body` is the request it answers (its shape may matter)."""
        raise NotImplementedError

    def health_path(self) -> str | None:
        """A cheap GET that proves the service and credentials work (None: use an invoke)."""
        return None

    # --- LangChain ---

    @property
    def _llm_type(self) -> str:
        return f"chatmodels-native-{self.provider_name}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url,
                "temperature": self.temperature, "max_tokens": self.max_tokens}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider_name
        params["ls_model_name"] = str(kwargs.get("model") or self.model)
        return params

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else self.stop

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body = self.build_body(messages, self._stop(stop), False, **kwargs)
        data = self._transport.request_json("POST", self.request_path(), body, op="invoke")
        return self.parse_response(data)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body = self.build_body(messages, self._stop(stop), False, **kwargs)
        data = await self._transport.arequest_json(
            "POST", self.request_path(), body, op="ainvoke"
        )
        return self.parse_response(data)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        body = self.build_body(messages, self._stop(stop), True, **kwargs)
        parser = self.new_stream_parser(body)
        events = self._transport.stream(
            self.request_path(), body, fmt=self.stream_format, op="stream"
        )
        try:
            for event in events:
                for chunk in parser.feed(event):
                    if run_manager is not None:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            yield from parser.finish()
        finally:
            events.close()  # type: ignore[attr-defined]

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        body = self.build_body(messages, self._stop(stop), True, **kwargs)
        parser = self.new_stream_parser(body)
        events = self._transport.astream(
            self.request_path(), body, fmt=self.stream_format, op="astream"
        )
        try:
            async for event in events:
                for chunk in parser.feed(event):
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            for chunk in parser.finish():
                yield chunk
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    # --- tools and structured output ---

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return bind_openai_tools(
            self, tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls,
            strict=strict, **kwargs,
        )

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: StructuredMethod = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        if kwargs:
            raise ValueError(f"unsupported arguments: {sorted(kwargs)}")
        return structured_output(
            self, schema, include_raw=include_raw, method=method, strict=strict
        )

    # --- health and lifecycle ---

    def health_probe(self) -> None:
        path = self.health_path()
        if path is None:
            self.invoke("ping", max_tokens=1)
        else:
            self._transport.request_json("GET", path, op="check_health")

    async def ahealth_probe(self) -> None:
        path = self.health_path()
        if path is None:
            await self.ainvoke("ping", max_tokens=1)
        else:
            await self._transport.arequest_json("GET", path, op="check_health")

    def close(self) -> None:
        self._transport.close()

    async def aclose(self) -> None:
        await self._transport.aclose()
