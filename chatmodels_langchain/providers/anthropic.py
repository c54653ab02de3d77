"""Anthropic Messages API wire format (`POST /v1/messages`, SSE streaming with named events).

Output follows langchain-anthropic so that LangChain's Anthropic block translator
(`message.content_blocks`, `output_version="v1"`, stream events) reads our messages:

- invoke: a single text block becomes `content: str`; anything else (tool calls, thinking,
  citations, server tools) is kept as the list of Anthropic blocks, `tool_use` included,
  with the calls also in `tool_calls`.
- stream: plain text chunks (`content: str`) when the request has no tools, thinking or
  documents; otherwise Anthropic blocks carrying the content block `index`, with
  `tool_call_chunks` for `tool_use` blocks, so chunks aggregate into the invoke shape.
- usage: Anthropic's `input_tokens` excludes cached tokens; `usage_metadata.input_tokens`
  adds `cache_read_input_tokens` and `cache_creation_input_tokens` back in.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import (
    ToolCall,
    ToolCallChunk,
    invalid_tool_call,
    tool_call,
    tool_call_chunk,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import model_validator

from chatmodels_langchain.config import ProviderConfig
from chatmodels_langchain.errors import (
    CapabilityError,
    ChatModelError,
    ErrorCode,
    InvalidInputError,
    InvalidResponseError,
    code_for_status,
    make_error,
)
from chatmodels_langchain.providers._http import ServerEvent
from chatmodels_langchain.providers._native import NativeChatModel, model_fields_from_config
from chatmodels_langchain.providers.catalog import ANTHROPIC

__all__ = ["ANTHROPIC_VERSION", "AnthropicStreamParser", "ChatAnthropicNative", "create_anthropic"]

PROVIDER = "anthropic"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
"""Sent when neither the config nor the call sets `max_tokens` (the API requires it)."""

# HTTP status each documented error `type` comes with, so an error event inside a stream is
# classified exactly like the same error returned as an HTTP response.
_STATUS_OF_ERROR_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,]*)?;base64,(?P<data>.*)$", re.S)

# LangChain blocks that describe tool calls already carried by `AIMessage.tool_calls`.
_TOOL_CALL_BLOCK_TYPES = frozenset({"tool_call", "tool_call_chunk", "invalid_tool_call"})
_BOOKKEEPING_KEYS = ("index", "partial_json")
"""Keys aggregated streamed blocks carry that the API rejects."""

# `NativeChatModel._stream` builds the body and then asks for a parser without passing the


# --- request ------------------------------------------------------------------------------


def _request_error(message: str, model: str) -> InvalidInputError:
    return InvalidInputError(message, op="build_request", provider=PROVIDER, model=model)


def _text_block(text: str, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if source is not None and "cache_control" in source:
        block["cache_control"] = source["cache_control"]
    return block


def _without_bookkeeping(block: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k not in _BOOKKEEPING_KEYS}


def _media_source(block: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The Anthropic `source` of a LangChain image/file block (v1, v0 or OpenAI style)."""
    if block.get("type") == "image_url":
        image_url = block.get("image_url")
        url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
    else:
        url = block.get("url")
    mime = block.get("mime_type") or block.get("media_type")
    data = block.get("base64") or (
        block.get("data") if block.get("source_type", "base64") == "base64" else None
    )
    if isinstance(url, str) and (match := _DATA_URL.match(url)):
        mime, data = match["mime"] or mime, match["data"]
    if isinstance(data, str) and data:
        if not mime:
            raise _request_error(f"{block.get('type')} block with base64 data needs a mime_type",
                                 model)
        return {"type": "base64", "media_type": mime, "data": data}
    if isinstance(url, str) and url:
        return {"type": "url", "url": url}
    file_id = block.get("file_id") or (block.get("id") if block.get("source_type") == "id"
                                       else None)
    if isinstance(file_id, str) and file_id:
        return {"type": "file", "file_id": file_id}
    raise _request_error(f"{block.get('type')} block needs base64 data or a url", model)


def _content_block(item: str | Mapping[str, Any], model: str) -> dict[str, Any] | None:
    """One LangChain content item as an Anthropic block (None: nothing to send)."""
    if isinstance(item, str):
        return _text_block(item) if item else None
    kind = item.get("type")
    if kind == "text":
        text = item.get("text")
        return _text_block(text, item) if isinstance(text, str) and text else None
    if kind == "image_url" or (kind == "image" and "source" not in item):
        return {"type": "image", "source": _media_source(item, model)}
    if kind == "file" and "source" not in item:
        return {"type": "document", "source": _media_source(item, model)}
    if kind == "thinking":
        return {k: item[k] for k in ("type", "thinking", "signature", "cache_control")
                if k in item}
    if kind == "reasoning":  # LangChain v1 form of a thinking block
        extras = item.get("extras")
        signature = extras.get("signature") if isinstance(extras, Mapping) else None
        if not signature:
            return None  # the API accepts thinking back only with its signature
        return {"type": "thinking", "thinking": item.get("reasoning", ""), "signature": signature}
    if kind in _TOOL_CALL_BLOCK_TYPES:
        return None  # tool calls travel as tool_use blocks built from `tool_calls`
    return _without_bookkeeping(item)


def _content_blocks(content: str | Sequence[Any], model: str) -> list[dict[str, Any]]:
    items: Sequence[Any] = [content] if isinstance(content, str) else content
    blocks = []
    for item in items:
        if not isinstance(item, str | Mapping):
            raise _request_error(f"unsupported content item {type(item).__name__}", model)
        block = _content_block(item, model)
        if block is not None:
            blocks.append(block)
    return blocks


def _tool_use_block(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.get("id"), "name": call["name"],
            "input": call.get("args") or {}}


def _assistant_blocks(message: AIMessage, model: str) -> list[dict[str, Any]]:
    """Text, thinking and tool_use blocks; `tool_calls` win over `tool_use` blocks in content."""
    calls = {call.get("id"): call for call in message.tool_calls}
    sent: set[Any] = set()
    blocks: list[dict[str, Any]] = []
    items: Sequence[Any] = (
        [message.content] if isinstance(message.content, str) else message.content
    )
    for item in items:
        if isinstance(item, Mapping) and item.get("type") == "tool_use":
            call = calls.get(item.get("id"))
            tool_use = _tool_use_block(call) if call else _without_bookkeeping(item)
            if "cache_control" in item:
                tool_use["cache_control"] = item["cache_control"]
            sent.add(item.get("id"))
            blocks.append(tool_use)
        elif isinstance(item, str | Mapping):
            block = _content_block(item, model)
            if block is not None:
                blocks.append(block)
    blocks.extend(_tool_use_block(c) for c in message.tool_calls if c.get("id") not in sent)
    return blocks


def _tool_result_block(message: ToolMessage, model: str) -> dict[str, Any]:
    content: str | list[dict[str, Any]]
    if isinstance(message.content, str):
        content = message.content
    else:
        content = _content_blocks(message.content, model)
    block: dict[str, Any] = {
        "type": "tool_result", "tool_use_id": message.tool_call_id, "content": content,
    }
    if message.status == "error":
        block["is_error"] = True
    return block


def _role_of(message: BaseMessage, model: str) -> str:
    if isinstance(message, HumanMessage | ToolMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, ChatMessage):
        role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
        if role in ("user", "assistant", "system"):
            return role
    raise _request_error(f"unsupported message type {message.type!r}", model)


def _compact(content: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone plain text block is sent as a string, as the API documents it."""
    if len(content) == 1 and content[0].keys() == {"type", "text"} and (
        content[0]["type"] == "text"
    ):
        return str(content[0]["text"])
    return content


def convert_messages(
    messages: Sequence[BaseMessage], model: str
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """`(system, messages)` for the Messages API.

    System messages (wherever they are) become the top-level `system`: a string, or a list
    of text blocks when there are several or one has `cache_control`. Consecutive messages
    of one role are merged into one turn, so tool results of parallel calls share a user turn.
    """
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = _role_of(message, model)
        if role == "system":
            system.extend(_content_blocks(message.content, model))
            continue
        if isinstance(message, AIMessage):
            blocks = _assistant_blocks(message, model)
        elif isinstance(message, ToolMessage):
            blocks = [_tool_result_block(message, model)]
        else:
            blocks = _content_blocks(message.content, model)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        turn["content"] = _compact(turn["content"])
    if not system:
        return None, turns
    return _compact(system), turns


def convert_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI-format function tool as an Anthropic tool; Anthropic tools pass unchanged."""
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, Mapping):
        return dict(tool)
    converted: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return converted


def convert_tool_choice(
    choice: str | Mapping[str, Any] | None, parallel_tool_calls: bool | None
) -> dict[str, Any] | None:
    """LangChain `tool_choice` / `parallel_tool_calls` as Anthropic's `tool_choice` object."""
    result: dict[str, Any] | None
    if choice is None:
        result = None
    elif isinstance(choice, Mapping):
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, Mapping):
            result = {"type": "tool", "name": function["name"]}
        else:
            result = dict(choice)
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice in ("any", "required"):
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    else:
        result = {"type": "tool", "name": choice}
    if parallel_tool_calls is False:
        result = result or {"type": "auto"}
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result


def _streams_blocks(body: Mapping[str, Any]) -> bool:
    """Whether a streamed answer is given as Anthropic blocks rather than plain text."""
    thinking = body.get("thinking")
    if body.get("tools") or (
        isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")
    ):
        return True
    return any(
        isinstance(block, Mapping) and block.get("type") == "document"
        for turn in body.get("messages", ())
        if isinstance(turn.get("content"), list)
        for block in turn["content"]
    )


# --- response -----------------------------------------------------------------------------


def usage_metadata(usage: Mapping[str, Any]) -> UsageMetadata:
    """LangChain usage from an Anthropic `usage` object (cached input tokens included)."""
    base = usage.get("input_tokens") or 0
    cache_read = usage.get("cache_read_input_tokens")
    cache_creation = usage.get("cache_creation_input_tokens")
    input_details: dict[str, int] = {}
    if cache_read is not None:
        input_details["cache_read"] = cache_read
    if cache_creation is not None:
        input_details["cache_creation"] = cache_creation
    by_ttl = usage.get("cache_creation")
    if isinstance(by_ttl, Mapping):
        for key in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
            if isinstance(by_ttl.get(key), int):
                input_details[key] = by_ttl[key]
    input_tokens = base + (cache_read or 0) + (cache_creation or 0)
    output_tokens = usage.get("output_tokens") or 0
    result = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    if input_details:
        result["input_token_details"] = InputTokenDetails(**input_details)  # type: ignore[typeddict-item]
    output_details = usage.get("output_tokens_details")
    if isinstance(output_details, Mapping) and isinstance(
        output_details.get("thinking_tokens"), int
    ):
        result["output_token_details"] = OutputTokenDetails(
            reasoning=output_details["thinking_tokens"]
        )
    return result


def _tool_call_of(block: Mapping[str, Any]) -> ToolCall | None:
    arguments = block.get("input")
    if not isinstance(arguments, dict):
        return None
    return tool_call(name=str(block.get("name", "")), args=arguments, id=block.get("id"))


def error_from_body(
    data: Any, model: str, *, op: str, secrets: Sequence[str] = ()
) -> ChatModelError:
    """The error an `error` stream event (or a 200 error body) reports: classified like the
    HTTP response with the status that error `type` comes with."""
    error = data.get("error") if isinstance(data, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    kind = str(error.get("type") or "")
    message = str(error.get("message") or kind or "stream error")
    status = _STATUS_OF_ERROR_TYPE.get(kind)
    context: dict[str, Any] = {"provider_error_type": kind} if kind else {}
    if isinstance(data, Mapping) and data.get("request_id"):
        context["request_id"] = data["request_id"]
    return make_error(
        code_for_status(status, message) if status else ErrorCode.UNKNOWN,
        f"error event: {message}", op=op, provider=PROVIDER, model=model,
        context=context, secrets=secrets,
    )


def _invalid_response(message: str, model: str, op: str = "invoke") -> InvalidResponseError:
    return InvalidResponseError(message, op=op, provider=PROVIDER, model=model)


def parse_message(data: Any, model: str, secrets: Sequence[str] = ()) -> AIMessage:
    """An `AIMessage` from a Messages API response body."""
    if isinstance(data, Mapping) and data.get("type") == "error":
        raise error_from_body(data, model, op="invoke", secrets=secrets)
    if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
        raise _invalid_response(f"not a Messages API response: {str(data)[:200]!r}", model)
    blocks: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    invalid = []
    for raw in data["content"]:
        if not isinstance(raw, Mapping):
            raise _invalid_response(f"content block is not an object: {raw!r:.200}", model)
        block = {k: v for k, v in raw.items() if v is not None}
        if block.get("type") == "tool_use":
            call = _tool_call_of(block)
            if call is None:
                invalid.append(invalid_tool_call(
                    name=block.get("name"), args=json.dumps(block.get("input")),
                    id=block.get("id"), error="tool_use input is not a JSON object",
                ))
            else:
                calls.append(call)
        blocks.append(block)
    content: str | list[str | dict[str, Any]]
    if len(blocks) == 1 and blocks[0].get("type") == "text" and not blocks[0].get("citations"):
        content = str(blocks[0].get("text", ""))
    else:
        content = list(blocks)
    usage = data.get("usage")
    return AIMessage(
        content=content,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        id=data.get("id"),
        usage_metadata=usage_metadata(usage) if isinstance(usage, Mapping) else None,
        response_metadata={
            "id": data.get("id"),
            "model_name": data.get("model") or model,
            "stop_reason": data.get("stop_reason"),
            "stop_sequence": data.get("stop_sequence"),
            "model_provider": PROVIDER,
        },
    )


class AnthropicStreamParser:
    """Messages API stream events -> `ChatGenerationChunk`s (see the module doc for shapes)."""

    def __init__(self, model: str, *, blocks: bool, secrets: Sequence[str] = ()) -> None:
        self._model = model
        self._blocks = blocks
        self._secrets = tuple(secrets)
        self._id: str | None = None
        self._usage: dict[str, Any] = {}
        self._stop: dict[str, Any] = {}
        self._block_types: dict[int, str] = {}
        self._done = False

    def _chunk(
        self,
        content: str | list[str | dict[str, Any]],
        *,
        tool_call_chunks: Sequence[ToolCallChunk] = (),
        response_metadata: dict[str, Any] | None = None,
        usage: UsageMetadata | None = None,
        last: bool = False,
    ) -> ChatGenerationChunk:
        message = AIMessageChunk(
            content=content,
            id=self._id,
            tool_call_chunks=list(tool_call_chunks),
            response_metadata={**(response_metadata or {}), "model_provider": PROVIDER},
            usage_metadata=usage,
            chunk_position="last" if last else None,
        )
        return ChatGenerationChunk(message=message)

    def _empty(self) -> str | list[str | dict[str, Any]]:
        return [] if self._blocks else ""

    def feed(self, event: ServerEvent) -> Iterator[ChatGenerationChunk]:
        data = event.data if isinstance(event.data, Mapping) else {}
        kind = event.event or data.get("type")
        if kind == "error":
            raise error_from_body(data, self._model, op="stream", secrets=self._secrets)
        if self._done:
            return
        if kind == "message_start":
            yield from self._on_message_start(data.get("message") or {})
        elif kind == "content_block_start":
            yield from self._on_block_start(data.get("index", 0), data.get("content_block") or {})
        elif kind == "content_block_delta":
            yield from self._on_block_delta(data.get("index", 0), data.get("delta") or {})
        elif kind == "message_delta":
            self._stop.update({k: v for k, v in (data.get("delta") or {}).items()
                               if k in ("stop_reason", "stop_sequence")})
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items()
                                if v is not None})
        elif kind == "message_stop":
            self._done = True
            yield self._chunk(
                self._empty(),
                response_metadata={"stop_reason": self._stop.get("stop_reason"),
                                   "stop_sequence": self._stop.get("stop_sequence")},
                usage=usage_metadata(self._usage),
                last=True,
            )
        # ping, content_block_stop and unknown (future) events carry nothing to emit

    def finish(self) -> Iterator[ChatGenerationChunk]:
        if not self._done:
            raise _invalid_response(
                "stream ended before message_stop (truncated response)", self._model, "stream"
            )
        return iter(())

    def _on_message_start(self, message: Mapping[str, Any]) -> Iterator[ChatGenerationChunk]:
        self._id = message.get("id")
        self._usage = {k: v for k, v in (message.get("usage") or {}).items() if v is not None}
        yield self._chunk(
            self._empty(),
            response_metadata={"id": self._id, "model_name": message.get("model") or self._model},
        )

    def _switch_to_blocks(self) -> None:
        # Text already sent as plain strings stays so; Anthropic sends thinking (the usual
        # reason for an unannounced block) before any text, so this is rarely visible.
        self._blocks = True

    def _on_block_start(
        self, index: int, block: Mapping[str, Any]
    ) -> Iterator[ChatGenerationChunk]:
        kind = str(block.get("type", ""))
        self._block_types[index] = kind
        if kind == "text":
            text = block.get("text") or ""
            if text:
                yield self._chunk([{"type": "text", "text": text, "index": index}]
                                  if self._blocks else text)
            return
        self._switch_to_blocks()
        if kind == "thinking" and not (block.get("thinking") or block.get("signature")):
            return  # its content arrives in deltas
        content = {k: v for k, v in block.items() if v is not None}
        content["index"] = index
        chunks: list[ToolCallChunk] = []
        if kind == "tool_use":
            arguments = block.get("input")
            chunks.append(tool_call_chunk(
                name=block.get("name"), id=block.get("id"), index=index,
                args=json.dumps(arguments) if arguments else "",
            ))
        yield self._chunk([content], tool_call_chunks=chunks)

    def _on_block_delta(
        self, index: int, delta: Mapping[str, Any]
    ) -> Iterator[ChatGenerationChunk]:
        kind = delta.get("type")
        if kind == "text_delta":
            text = str(delta.get("text", ""))
            yield self._chunk([{"type": "text", "text": text, "index": index}]
                              if self._blocks else text)
        elif kind == "input_json_delta":
            partial = str(delta.get("partial_json", ""))
            chunks = []
            if self._block_types.get(index) == "tool_use":
                chunks.append(tool_call_chunk(args=partial, index=index, name=None, id=None))
            yield self._chunk(
                [{"type": "input_json_delta", "partial_json": partial, "index": index}],
                tool_call_chunks=chunks,
            )
        elif kind == "thinking_delta":
            yield self._chunk([{"type": "thinking", "thinking": str(delta.get("thinking", "")),
                                "index": index}])
        elif kind == "signature_delta":
            yield self._chunk([{"type": "thinking", "thinking": "",
                                "signature": str(delta.get("signature", "")), "index": index}])
        elif kind == "citations_delta":
            yield self._chunk([{"type": "text", "citations": [delta.get("citation")],
                                "index": index}])


# --- the model ----------------------------------------------------------------------------


class ChatAnthropicNative(NativeChatModel):
    """Claude through the Anthropic Messages API, over httpx (no SDK).

    `max_tokens` is required by the API: when unset it defaults to 4096 (or the model's
    documented output limit when lower). `provider_specific` entries (`top_p`, `top_k`,
    `metadata`, `thinking`, ...) are sent in the body as they are. Without `api_key`, the
    key is read from `ANTHROPIC_API_KEY`.
    """

    provider_name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://api.anthropic.com"

    @model_validator(mode="before")
    @classmethod
    def _api_key_from_env(cls, values: Any) -> Any:
        if isinstance(values, dict) and not values.get("api_key") and ANTHROPIC.api_key_env:
            key = os.environ.get(ANTHROPIC.api_key_env)
            if key:
                return {**values, "api_key": key}
        return values

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.api_key is not None:
            headers["x-api-key"] = self.api_key.get_secret_value()
        return headers

    def _api_path(self, resource: str) -> str:
        # Accept base URLs given with or without the version segment.
        prefix = "" if self.base_url.rstrip("/").endswith("/v1") else "/v1"
        return f"{prefix}/{resource}"

    def request_path(self) -> str:
        return self._api_path("messages")

    def health_path(self) -> str | None:
        return self._api_path("models")

    def _secrets(self) -> tuple[str, ...]:
        return (self.api_key.get_secret_value(),) if self.api_key else ()

    def _default_max_tokens(self, model: str) -> int:
        _, documented = ANTHROPIC.limits_for(model)
        return min(DEFAULT_MAX_TOKENS, documented) if documented else DEFAULT_MAX_TOKENS

    def build_body(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, **kwargs: Any
    ) -> dict[str, Any]:
        options = dict(kwargs)
        model = str(options.pop("model", None) or self.model)
        response_format = options.pop("response_format", None)
        if response_format is not None:
            kind = response_format.get("type") if isinstance(response_format, Mapping) else None
            raise CapabilityError(
                f"response_format {kind or response_format!r} is not supported by the "
                "Anthropic provider; use with_structured_output(..., "
                "method='function_calling') (the default)",
                op="build_request", provider=PROVIDER, model=model,
                context={"response_format": str(kind)},
            )
        system, turns = convert_messages(messages, model)
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": options.pop("max_tokens", None)
            or self.max_tokens or self._default_max_tokens(model),
            "messages": turns,
        }
        if system is not None:
            body["system"] = system
        temperature = options.pop("temperature", None)
        temperature = self.temperature if temperature is None else temperature
        if temperature is not None:
            body["temperature"] = temperature
        if stop:
            body["stop_sequences"] = list(stop)
        tools = options.pop("tools", None)
        parallel = options.pop("parallel_tool_calls", None)
        choice = convert_tool_choice(options.pop("tool_choice", None),
                                     parallel if tools else None)
        if tools:
            body["tools"] = [convert_tool(tool) for tool in tools]
        if choice is not None:
            body["tool_choice"] = choice
        body.update(self.provider_specific)
        body.update(options)
        if stream:
            body["stream"] = True
        return body

    def parse_response(self, data: Any) -> ChatResult:
        message = parse_message(data, self.model, self._secrets())
        return ChatResult(generations=[ChatGeneration(message=message)])

    def new_stream_parser(self, body: Mapping[str, Any]) -> AnthropicStreamParser:
        return AnthropicStreamParser(
            self.model, blocks=_streams_blocks(body), secrets=self._secrets()
        )


def create_anthropic(config: ProviderConfig) -> ChatAnthropicNative:
    """Registry creator for the `anthropic` provider."""
    return ChatAnthropicNative(**model_fields_from_config(config))
