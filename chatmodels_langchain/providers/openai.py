"""`openai` and `openai_compatible`: the OpenAI Chat Completions wire format.

`POST {base_url}/chat/completions` with `Authorization: Bearer <key>` (no header without a
key, for local OpenAI-compatible servers). Streams are SSE `chat.completion.chunk` events
ended by `data: [DONE]`; usage arrives in a last chunk with no choices because the request
asks for `stream_options.include_usage`.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    convert_to_openai_data_block,
    is_data_content_block,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_function
from pydantic import model_validator

from chatmodels_langchain.config import ProviderConfig
from chatmodels_langchain.errors import (
    ChatModelError,
    InvalidInputError,
    InvalidResponseError,
    code_for_status,
    make_error,
)
from chatmodels_langchain.providers._http import DONE, ServerEvent
from chatmodels_langchain.providers._native import (
    NativeChatModel,
    StreamParser,
    model_fields_from_config,
)

__all__ = [
    "ChatOpenAICompatibleNative",
    "ChatOpenAINative",
    "create_openai",
    "create_openai_compatible",
]

_REASONING_MODEL = re.compile(r"^o\d")
"""o1/o3/o4...: system prompts go in the "developer" role (as langchain-openai does)."""

_TOOL_CHOICE_KEYWORDS = frozenset({"auto", "none", "required"})

# In-stream `error.type` -> the HTTP status the same failure gets outside a stream.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "overloaded_error": 503,
    "validation": 400,  # text-generation-inference
    "overloaded": 503,
}


# --- request ------------------------------------------------------------------------------


def _image_url_part(block: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI `image_url` part from an OpenAI-style or Anthropic-style image block."""
    if block.get("type") == "image_url":
        image_url = block["image_url"]
        return {"type": "image_url",
                "image_url": {"url": image_url} if isinstance(image_url, str) else image_url}
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif source.get("type") == "url":
        url = source["url"]
    else:
        raise InvalidInputError(f"unsupported image source: {source!r}", op="build_request")
    return {"type": "image_url", "image_url": {"url": url}}


def _content_part(block: str | dict[str, Any]) -> dict[str, Any] | None:
    """One user-content part in Chat Completions form (None: the block is dropped)."""
    if isinstance(block, str):
        return {"type": "text", "text": block}
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block["text"]}
    if kind in ("tool_use", "tool_call", "thinking", "reasoning", "reasoning_content"):
        return None  # model output replayed in the input; Chat Completions has no place for it
    if is_data_content_block(block):
        return convert_to_openai_data_block(block, api="chat/completions")
    if kind == "image_url" or (kind == "image" and "source" in block):
        return _image_url_part(block)
    if kind in ("input_audio", "file", "refusal"):
        return dict(block)
    raise InvalidInputError(f"unsupported content block type {kind!r}", op="build_request")


def _user_content(content: str | list[str | dict[str, Any]]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [part for part in map(_content_part, content) if part is not None]


def _text_only(content: str | list[str | dict[str, Any]]) -> str:
    """The text of a message whose role only takes text (assistant, tool, system)."""
    if isinstance(content, str):
        return content
    texts = [
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str) or b.get("type") == "text"
    ]
    return "".join(texts)


def _arguments_json(args: Any) -> str:
    return args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)


def _assistant_message(message: AIMessage) -> dict[str, Any]:
    calls = [
        {"id": call["id"], "type": "function",
         "function": {"name": call["name"], "arguments": _arguments_json(call["args"])}}
        for call in message.tool_calls
    ] + [
        {"id": call["id"], "type": "function",
         "function": {"name": call["name"], "arguments": call["args"] or ""}}
        for call in message.invalid_tool_calls
    ]
    text = _text_only(message.content)
    out: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        out["tool_calls"] = calls
    return out


def _message_dict(message: BaseMessage, system_role: str) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(message, SystemMessage):
        role = message.additional_kwargs.get("__openai_role__") or system_role
        out = {"role": role, "content": _text_only(message.content)}
    elif isinstance(message, HumanMessage):
        out = {"role": "user", "content": _user_content(message.content)}
    elif isinstance(message, AIMessage):
        out = _assistant_message(message)
    elif isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id,
                "content": _text_only(message.content)}
    elif isinstance(message, FunctionMessage):
        return {"role": "function", "name": message.name,
                "content": _text_only(message.content)}
    elif isinstance(message, ChatMessage):
        out = {"role": message.role, "content": _user_content(message.content)}
    else:
        raise InvalidInputError(f"unsupported message type {message.type!r}", op="build_request")
    if message.name:
        out["name"] = message.name
    return out


def _tool_choice(choice: Any) -> Any:
    """LangChain `tool_choice` -> Chat Completions `tool_choice`."""
    if choice == "any":
        return "required"
    if isinstance(choice, str) and choice not in _TOOL_CHOICE_KEYWORDS:
        return {"type": "function", "function": {"name": choice}}
    return choice


def _strict_response_format(response_format: Any) -> Any:
    """Make a strict `json_schema` response format acceptable to OpenAI's strict mode.

    Strict mode rejects objects without `additionalProperties: false` or with optional
    properties; langchain-core's strict function conversion applies exactly those rules.
    """
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return response_format
    spec = response_format.get("json_schema") or {}
    if not spec.get("strict") or not isinstance(spec.get("schema"), Mapping):
        return response_format
    function = convert_to_openai_function(
        {"name": spec.get("name", "response"), "parameters": copy.deepcopy(dict(spec["schema"]))},
        strict=True,
    )
    return {**response_format, "json_schema": {**spec, "schema": function["parameters"]}}


# --- response -----------------------------------------------------------------------------


def _usage(usage: Mapping[str, Any]) -> UsageMetadata:
    """`usage` -> LangChain usage; cached prompt tokens are `cache_read`, reasoning is output."""
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    total = usage.get("total_tokens")
    metadata = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=int(total) if total is not None else input_tokens + output_tokens,
    )
    prompt_details = usage.get("prompt_tokens_details") or {}
    input_details = InputTokenDetails()
    if prompt_details.get("cached_tokens") is not None:
        input_details["cache_read"] = int(prompt_details["cached_tokens"])
    if prompt_details.get("audio_tokens") is not None:
        input_details["audio"] = int(prompt_details["audio_tokens"])
    completion_details = usage.get("completion_tokens_details") or {}
    output_details = OutputTokenDetails()
    if completion_details.get("reasoning_tokens") is not None:
        output_details["reasoning"] = int(completion_details["reasoning_tokens"])
    if completion_details.get("audio_tokens") is not None:
        output_details["audio"] = int(completion_details["audio_tokens"])
    if input_details:
        metadata["input_token_details"] = input_details
    if output_details:
        metadata["output_token_details"] = output_details
    return metadata


def _parse_tool_calls(
    raw_calls: list[Mapping[str, Any]],
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Complete tool calls; arguments that are not a JSON object become invalid tool calls."""
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls:
        function = raw.get("function") or {}
        name = function.get("name") or ""
        arguments = function.get("arguments") or ""
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            invalid.append(invalid_tool_call(name=name, args=arguments, id=raw.get("id"),
                                             error=f"arguments are not valid JSON: {exc}"))
            continue
        if not isinstance(args, dict):
            invalid.append(invalid_tool_call(name=name, args=arguments, id=raw.get("id"),
                                             error="arguments are not a JSON object"))
            continue
        calls.append(tool_call(name=name, args=args, id=raw.get("id")))
    return calls, invalid


def _tool_call_chunks(raw_calls: list[Mapping[str, Any]]) -> list[ToolCallChunk]:
    chunks: list[ToolCallChunk] = []
    for position, raw in enumerate(raw_calls):
        function = raw.get("function") or {}
        chunks.append(tool_call_chunk(
            name=function.get("name"),
            args=function.get("arguments"),
            id=raw.get("id"),
            index=raw.get("index", position),
        ))
    return chunks


# --- the models ---------------------------------------------------------------------------


class ChatOpenAINative(NativeChatModel):
    """OpenAI Chat Completions over httpx. The key falls back to `OPENAI_API_KEY`.

    `max_tokens` is sent as `max_completion_tokens` (what langchain-openai's `ChatOpenAI`
    sends: `max_tokens` is deprecated by OpenAI and refused by reasoning models).
    """

    provider_name: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    api_key_env: ClassVar[str] = "OPENAI_API_KEY"
    max_tokens_field: ClassVar[str] = "max_completion_tokens"

    @model_validator(mode="before")
    @classmethod
    def _api_key_from_env(cls, values: Any) -> Any:
        if isinstance(values, dict) and not values.get("api_key"):
            key = os.environ.get(cls.api_key_env)
            if key:
                return {**values, "api_key": key}
        return values

    # --- wire-format contract ---

    def request_path(self) -> str:
        return "/chat/completions"

    def health_path(self) -> str | None:
        return "/models"

    def build_body(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, **kwargs: Any
    ) -> dict[str, Any]:
        model = str(kwargs.pop("model", None) or self.model)
        system_role = "developer" if _REASONING_MODEL.match(model) else "system"
        body: dict[str, Any] = {
            "model": model,
            "messages": [_message_dict(m, system_role) for m in messages],
            "temperature": self.temperature,
            self.max_tokens_field: self.max_tokens,
        }
        if stop:
            body["stop"] = stop
        if stream:
            body["stream_options"] = {"include_usage": True}
        body.update(self.provider_specific)
        if "max_tokens" in kwargs:
            kwargs[self.max_tokens_field] = kwargs.pop("max_tokens")
        if "tool_choice" in kwargs:
            kwargs["tool_choice"] = _tool_choice(kwargs["tool_choice"])
        if "response_format" in kwargs:
            kwargs["response_format"] = _strict_response_format(kwargs["response_format"])
        if not kwargs.get("tools"):
            kwargs.pop("tools", None)
            kwargs.pop("tool_choice", None)
            kwargs.pop("parallel_tool_calls", None)
        body.update(kwargs)
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return {k: v for k, v in body.items() if v is not None}

    def parse_response(self, data: Any) -> ChatResult:
        choices = data.get("choices") if isinstance(data, Mapping) else None
        if not isinstance(choices, list) or not choices:
            if isinstance(data, Mapping) and data.get("error"):
                raise self._error_from_event(data, op="invoke")
            raise self._invalid(f"no choices in the response: {str(data)[:200]!r}", op="invoke")
        usage = data.get("usage")
        usage_metadata = _usage(usage) if isinstance(usage, Mapping) else None
        generations = [
            ChatGeneration(
                message=self._message_from_choice(data, choice, usage_metadata),
                generation_info={"finish_reason": choice.get("finish_reason")},
            )
            for choice in choices
        ]
        llm_output = {"token_usage": usage, "model_name": data.get("model"),
                      "system_fingerprint": data.get("system_fingerprint")}
        return ChatResult(
            generations=generations,
            llm_output={k: v for k, v in llm_output.items() if v is not None},
        )

    def new_stream_parser(self, body: Mapping[str, Any]) -> StreamParser:
        return _ChunkStreamParser(self)

    # --- helpers ---

    def _secrets(self) -> tuple[str, ...]:
        return (self.api_key.get_secret_value(),) if self.api_key else ()

    def _invalid(self, message: str, *, op: str) -> InvalidResponseError:
        return InvalidResponseError(message, op=op, provider=self.provider_name,
                                    model=self.model, secrets=self._secrets())

    def _error_from_event(self, data: Mapping[str, Any], *, op: str) -> ChatModelError:
        """The error for an `error` payload delivered with HTTP 200 (in a stream or a body).

        OpenAI sends `{"error": {"message", "type", "code", "param"}}`; some compatible
        servers send `{"error": "<message>", "error_type": "..."}` (TGI) or an HTTP status
        as `error.code` (OpenRouter).
        """
        raw = data["error"]
        error: Mapping[str, Any] = (
            raw if isinstance(raw, Mapping) else {"message": raw, "type": data.get("error_type")}
        )
        message = str(error.get("message") or json.dumps(dict(error)))[:500]
        raw_code = error.get("code")
        status = raw_code if isinstance(raw_code, int) else _STREAM_ERROR_STATUS.get(
            str(error.get("type") or raw_code or ""), 500
        )
        context = {f"provider_error_{key}": error[key]
                   for key in ("type", "code", "param") if error.get(key) is not None}
        return make_error(code_for_status(status, message), message, op=op,
                          provider=self.provider_name, model=self.model,
                          context=context, secrets=self._secrets())

    def _response_metadata(self, data: Mapping[str, Any], finish_reason: Any) -> dict[str, Any]:
        metadata = {
            "model_name": data.get("model") or self.model,
            "finish_reason": finish_reason,
            "id": data.get("id"),
            "system_fingerprint": data.get("system_fingerprint"),
            "service_tier": data.get("service_tier"),
            "model_provider": self.provider_name,
        }
        return {k: v for k, v in metadata.items() if v is not None}

    def _message_from_choice(
        self, data: Mapping[str, Any], choice: Mapping[str, Any],
        usage_metadata: UsageMetadata | None,
    ) -> AIMessage:
        message = choice.get("message")
        if not isinstance(message, Mapping):
            raise self._invalid("a choice has no message", op="invoke")
        calls, invalid = _parse_tool_calls(message.get("tool_calls") or [])
        additional: dict[str, Any] = {}
        if message.get("refusal"):
            additional["refusal"] = message["refusal"]
        metadata = self._response_metadata(data, choice.get("finish_reason"))
        if choice.get("logprobs"):
            metadata["logprobs"] = choice["logprobs"]
        return AIMessage(
            content=message.get("content") or "",
            tool_calls=calls,
            invalid_tool_calls=invalid,
            additional_kwargs=additional,
            id=data.get("id"),
            usage_metadata=usage_metadata,
            response_metadata=metadata,
        )


class ChatOpenAICompatibleNative(ChatOpenAINative):
    """Any server speaking Chat Completions (vLLM, llama.cpp, LM Studio, OpenRouter, Groq...).

    `base_url` is required and the key optional. `max_tokens` keeps its original name,
    which every compatible server understands.
    """

    provider_name: ClassVar[str] = "openai_compatible"
    default_base_url: ClassVar[str] = ""
    api_key_env: ClassVar[str] = "OPENAI_COMPATIBLE_API_KEY"
    max_tokens_field: ClassVar[str] = "max_tokens"

    @model_validator(mode="after")
    def _require_base_url(self) -> ChatOpenAICompatibleNative:
        if not self.base_url:
            raise ValueError("openai_compatible needs base_url (e.g. http://localhost:8000/v1)")
        return self


class _ChunkStreamParser:
    """`chat.completion.chunk` events -> chunks. Usage and metadata go on the last chunk."""

    def __init__(self, model: ChatOpenAINative) -> None:
        self._model = model
        self._head: dict[str, Any] = {}
        self._finish_reason: str | None = None
        self._usage: UsageMetadata | None = None
        self._done = False

    def feed(self, event: ServerEvent) -> Iterator[ChatGenerationChunk]:
        if event == DONE:
            self._done = True
            return
        data = event.data
        if not isinstance(data, Mapping):
            raise self._model._invalid(f"unexpected stream event: {str(data)[:200]!r}",
                                       op="stream")
        if data.get("error"):
            raise self._model._error_from_event(data, op="stream")
        for key in ("id", "model", "system_fingerprint", "service_tier"):
            if data.get(key):
                self._head[key] = data[key]
        if isinstance(data.get("usage"), Mapping):
            self._usage = _usage(data["usage"])  # cumulative when a server repeats it
        for choice in data.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # n > 1 is not streamed; the first choice is the answer
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
            chunk = self._delta_chunk(choice.get("delta") or {})
            if chunk is not None:
                yield chunk

    def _delta_chunk(self, delta: Mapping[str, Any]) -> ChatGenerationChunk | None:
        content = delta.get("content") or ""
        calls = _tool_call_chunks(delta.get("tool_calls") or [])
        additional = {"refusal": delta["refusal"]} if delta.get("refusal") else {}
        if not (content or calls or additional):
            return None
        return ChatGenerationChunk(message=AIMessageChunk(
            content=content, tool_call_chunks=calls, additional_kwargs=additional,
            id=self._head.get("id"),
        ))

    def finish(self) -> Iterator[ChatGenerationChunk]:
        if self._finish_reason is None and not self._done:
            raise self._model._invalid(
                "stream ended before a finish_reason or [DONE] (truncated response)",
                op="stream",
            )
        metadata = self._model._response_metadata(self._head, self._finish_reason)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="", id=self._head.get("id"), usage_metadata=self._usage,
                response_metadata=metadata, chunk_position="last",
            ),
            generation_info={"finish_reason": self._finish_reason},
        )


# --- registry creators --------------------------------------------------------------------


def create_openai(config: ProviderConfig) -> ChatOpenAINative:
    """Registry creator of the `openai` provider."""
    return ChatOpenAINative(**model_fields_from_config(config))


def create_openai_compatible(config: ProviderConfig) -> ChatOpenAICompatibleNative:
    """Registry creator of the `openai_compatible` provider."""
    return ChatOpenAICompatibleNative(**model_fields_from_config(config))
