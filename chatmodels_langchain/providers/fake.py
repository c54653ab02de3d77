"""`fake`: a deterministic in-process chat model with scripted answers.

Script items, used in order and then cycled:
- a `str`: the answer text;
- an `AIMessage`: returned as is (tool calls included);
- `{"tool_calls": [{"name": ..., "args": {...}}]}`: a tool-calling answer;
- `{"error": "<ErrorCode>", "message": "..."}` or an exception instance: raised.
With no script, it echoes the last human message, or, when tools are bound with a forced
`tool_choice`, calls the first tool with arguments filled from its JSON schema.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import Field, PrivateAttr

from chatmodels_langchain.config import ProviderConfig
from chatmodels_langchain.errors import ErrorCode, make_error
from chatmodels_langchain.metadata import Capability
from chatmodels_langchain.providers._binding import (
    StructuredMethod,
    bind_openai_tools,
    structured_output,
)

__all__ = ["FakeChatModel", "create_fake"]

_TOKEN = re.compile(r"\S+\s*|\s+")


def _count(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(
        str(b.get("text", "")) if isinstance(b, dict) else str(b) for b in content
    )


def _example(schema: dict[str, Any]) -> Any:
    """A value that satisfies a (simple) JSON schema, for scripted tool calls."""
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _example(schema[key][0])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _example(sub) for name, sub in props.items()}
    if kind == "array":
        return [_example(schema.get("items", {"type": "string"}))]
    return {"integer": 1, "number": 1.0, "boolean": True, "null": None}.get(str(kind), "fake")


class FakeChatModel(BaseChatModel):
    """Scripted, deterministic chat model. Thread-safe; answers cycle through `responses`."""

    model: str = "fake-chat"
    responses: list[Any] = Field(default_factory=list)
    declared_capabilities: frozenset[Capability] | None = None
    """When set, the wrapper uses these instead of the provider metadata."""

    _cursor: Iterator[int] = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: int = PrivateAttr(default=0)

    def model_post_init(self, context: Any) -> None:
        self._cursor = itertools.cycle(range(len(self.responses))) if self.responses else iter(())

    @property
    def _llm_type(self) -> str:
        return "fake"

    @property
    def calls(self) -> int:
        """How many answers this model has produced."""
        return self._calls

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return bind_openai_tools(self, tools, tool_choice=tool_choice, **kwargs)

    def _next(self) -> Any:
        with self._lock:
            self._calls += 1
            number = self._calls
            index = next(self._cursor, None)
        return number, (self.responses[index] if index is not None else None)

    def _answer(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage:
        number, item = self._next()
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, dict) and "error" in item:
            raise make_error(
                ErrorCode(item["error"]),
                str(item.get("message", f"scripted {item['error']}")),
                op="invoke", provider="fake", model=self.model,
                context={k: v for k, v in item.items() if k not in ("error", "message")},
            )
        prompt_tokens = sum(_count(_text(m)) for m in messages)
        if isinstance(item, AIMessage):
            message = item.model_copy(deep=True)
        elif isinstance(item, dict) and "tool_calls" in item:
            calls = [
                {"name": c["name"], "args": c.get("args", {}), "id": c.get("id") or f"call_{i}",
                 "type": "tool_call"}
                for i, c in enumerate(item["tool_calls"])
            ]
            message = AIMessage(content=str(item.get("content", "")), tool_calls=calls)
        elif item is not None:
            message = AIMessage(content=str(item))
        else:
            message = self._default_answer(messages, kwargs)
        if message.usage_metadata is None:
            out = _count(_text(message)) + 3 * len(message.tool_calls)
            message.usage_metadata = UsageMetadata(
                input_tokens=prompt_tokens, output_tokens=out, total_tokens=prompt_tokens + out
            )
        message.id = message.id or f"fake-{number}"
        message.response_metadata = {
            "model_name": self.model,
            "finish_reason": "tool_calls" if message.tool_calls else "stop",
            "model_provider": "fake",
            **message.response_metadata,
        }
        return message

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: StructuredMethod = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        return structured_output(
            self, schema, include_raw=include_raw, method=method, strict=strict
        )

    def _default_answer(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        response_format = kwargs.get("response_format")
        if isinstance(response_format, dict):
            spec = response_format.get("json_schema", {}).get("schema", {"type": "object"})
            return AIMessage(content=json.dumps(_example(spec)))
        tools = kwargs.get("tools") or []
        choice = kwargs.get("tool_choice")
        if tools and choice not in (None, "auto", "none"):
            tool = tools[0]
            if isinstance(choice, str) and choice not in ("any", "required"):
                tool = next((t for t in tools if t["function"]["name"] == choice), tool)
            function = tool["function"]
            args = _example(function.get("parameters", {}))
            return AIMessage(
                content="",
                tool_calls=[{"name": function["name"], "args": args, "id": "call_0",
                             "type": "tool_call"}],
            )
        human = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        return AIMessage(content=f"You said: {_text(human)}" if human else "Hello!")

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._answer(messages, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._answer(messages, **kwargs)
        text = _text(message)
        pieces = _TOKEN.findall(text) or [""]
        for piece in pieces:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece, id=message.id))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        for index, call in enumerate(message.tool_calls):
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="", id=message.id,
                    tool_call_chunks=[{"name": call["name"], "args": json.dumps(call["args"]),
                                       "id": call.get("id"), "index": index,
                                       "type": "tool_call_chunk"}],
                )
            )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="", id=message.id, usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata, chunk_position="last",
            )
        )


def create_fake(config: ProviderConfig) -> FakeChatModel:
    """Registry creator: `provider_specific` may hold `responses` and `capabilities`."""
    options = config.provider_specific
    caps = options.get("capabilities")
    return FakeChatModel(
        model=config.model,
        responses=list(options.get("responses", [])),
        declared_capabilities=frozenset(Capability(c) for c in caps) if caps else None,
    )
