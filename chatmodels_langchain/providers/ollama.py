"""`ollama`: the native Ollama chat API (`POST {base_url}/api/chat`, NDJSON streaming).

Request mapping (LangChain -> Ollama):

- messages: system/user/assistant/tool roles with plain-text `content`. Images in human (or
  tool) messages go to the message's `images` list as raw base64 (standard `image` blocks with
  `base64`, v0 `source_type: base64` blocks, or `image_url`/`url` values that are `data:` URLs);
  Ollama cannot fetch remote image URLs, so an `http(s)` image URL raises `InvalidInputError`.
  Assistant tool calls are sent with `arguments` as a JSON object; tool results carry
  `tool_name` (looked up from the assistant's tool call with the same id) and `tool_call_id`.
- `temperature` -> `options.temperature`, `max_tokens` -> `options.num_predict`, `stop` ->
  `options.stop`; `response_format` json_object -> `"format": "json"`, json_schema ->
  `"format": <the schema>`.
- `provider_specific` (config) and any extra call kwargs follow ONE rule: keys Ollama reads at
  the top level of the request (`keep_alive`, `think`, `format`, `logprobs`, `top_logprobs`,
  `model`) stay at the top level; an `options` mapping is merged into `options`; every other key
  is a model option (`num_ctx`, `top_k`, `seed`, `repeat_penalty`, ...) and goes into
  `options`. Precedence: `provider_specific` < model fields < call kwargs.
- Tool choice: Ollama cannot force a tool call. `None`/`"auto"` send the tools as they are;
  `"none"` sends no tools; naming a bound tool (or `"any"`/`"required"` with exactly one tool,
  which is what `with_structured_output(method="function_calling")` binds) sends only that
  tool, so the model can call nothing else (best effort: it may still answer in text).
  `"any"`/`"required"` with several tools, and `parallel_tool_calls=False`, raise
  `CapabilityError`. Prefer `method="json_schema"` for structured output with Ollama: it is
  enforced by the server's grammar.

Response mapping: `message.content` -> content, `message.thinking` ->
`additional_kwargs["reasoning_content"]`, `prompt_eval_count`/`eval_count` -> usage,
`done_reason` and the timings -> `response_metadata`. Ollama has no response id, so
`message.id` is left to LangChain. Tool calls use the id Ollama sends when it sends one;
otherwise a deterministic id is derived from the response timestamp, the call's position, name
and arguments (unique per response, stable across replays), which is what `ToolMessage`s must
echo back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import (
    ToolCall,
    ToolCallChunk,
    invalid_tool_call,
    tool_call,
    tool_call_chunk,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

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
from chatmodels_langchain.providers._http import ServerEvent, StreamFormat
from chatmodels_langchain.providers._native import (
    NativeChatModel,
    StreamParser,
    model_fields_from_config,
)

__all__ = ["TOP_LEVEL_KEYS", "ChatOllamaNative", "create_ollama"]

TOP_LEVEL_KEYS: frozenset[str] = frozenset(
    {"keep_alive", "think", "format", "logprobs", "top_logprobs", "model"}
)
"""Request keys Ollama reads at the top level; every other extra key is a model option."""

_HANDLED_KWARGS = frozenset(
    {"tools", "tool_choice", "parallel_tool_calls", "response_format", "temperature",
     "max_tokens"}
)
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_IGNORED_BLOCKS = frozenset(
    {"tool_use", "tool_call", "tool_call_chunk", "thinking", "redacted_thinking", "reasoning",
     "server_tool_call", "server_tool_result"}
)
_TIMINGS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


class ChatOllamaNative(NativeChatModel):
    """Chat model for a local (or proxied) Ollama server, spoken to over its native API.

    No key is needed; when `api_key` is set it is sent as `Authorization: Bearer` (for
    authenticating proxies and hosted Ollama).
    """

    provider_name: ClassVar[str] = "ollama"
    stream_format: ClassVar[StreamFormat] = "ndjson"
    default_base_url: ClassVar[str] = "http://localhost:11434"

    # --- transport ---

    def request_path(self) -> str:
        return "/api/chat"

    def health_path(self) -> str | None:
        return "/api/tags"

    # --- request ---

    def build_body(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, **kwargs: Any
    ) -> dict[str, Any]:
        op = "stream" if stream else "invoke"
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self._ollama_messages(messages, op),
            "stream": stream,
        }
        options: dict[str, Any] = {}
        _place_extras(body, options, self.provider_specific)

        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            options["temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        if stop:
            options["stop"] = list(stop)

        tools = self._tools_for_request(
            kwargs.get("tools"), kwargs.get("tool_choice"), kwargs.get("parallel_tool_calls"), op
        )
        if tools:
            body["tools"] = tools
        response_format = kwargs.get("response_format")
        if response_format is not None:
            fmt = self._format_for(response_format, op)
            if fmt is not None:
                body["format"] = fmt

        _place_extras(body, options, {k: v for k, v in kwargs.items() if k not in _HANDLED_KWARGS})
        if options:
            body["options"] = options
        return body

    def _ollama_messages(self, messages: list[BaseMessage], op: str) -> list[dict[str, Any]]:
        tool_names: dict[str, str] = {}
        converted: list[dict[str, Any]] = []
        for message in messages:
            if isinstance(message, AIMessage):
                for call in message.tool_calls:
                    if call.get("id"):
                        tool_names[str(call["id"])] = call["name"]
            converted.append(self._ollama_message(message, tool_names, op))
        return converted

    def _ollama_message(
        self, message: BaseMessage, tool_names: Mapping[str, str], op: str
    ) -> dict[str, Any]:
        role = self._role_of(message, op)
        text, images = self._text_and_images(message.content, op)
        out: dict[str, Any] = {"role": role, "content": text}
        if images:
            out["images"] = images
        if isinstance(message, AIMessage):
            if message.tool_calls:
                out["tool_calls"] = [_ollama_tool_call(call) for call in message.tool_calls]
            thinking = message.additional_kwargs.get("reasoning_content")
            if isinstance(thinking, str) and thinking:
                out["thinking"] = thinking
        elif isinstance(message, ToolMessage):
            name = tool_names.get(message.tool_call_id) or message.name
            if name:
                out["tool_name"] = name
            out["tool_call_id"] = message.tool_call_id
        return out

    def _role_of(self, message: BaseMessage, op: str) -> str:
        if isinstance(message, HumanMessage):
            return "user"
        if isinstance(message, AIMessage):
            return "assistant"
        if isinstance(message, SystemMessage):
            return "system"
        if isinstance(message, ToolMessage):
            return "tool"
        if isinstance(message, ChatMessage) and message.role in _ROLES:
            return message.role
        raise self._input_error(
            f"Ollama cannot take a {type(message).__name__}"
            + (f" with role {message.role!r}" if isinstance(message, ChatMessage) else "")
            + f"; use one of the roles {sorted(_ROLES)}",
            op,
        )

    def _text_and_images(self, content: str | list[Any], op: str) -> tuple[str, list[str]]:
        if isinstance(content, str):
            return content, []
        texts: list[str] = []
        images: list[str] = []
        for block in content:
            if isinstance(block, str):
                texts.append(block)
                continue
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind == "image":
                images.append(self._image_from_block(block, op))
            elif kind == "image_url":
                image_url = block.get("image_url")
                url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
                images.append(self._image_from_url(url, op))
            elif kind in _IGNORED_BLOCKS:
                continue  # tool calls travel in `tool_calls`; reasoning is not re-sent as text
            else:
                raise self._input_error(
                    f"Ollama does not accept {kind!r} content blocks (only text and images)", op
                )
        return "\n".join(texts), images

    def _image_from_block(self, block: Mapping[str, Any], op: str) -> str:
        if block.get("base64"):
            return str(block["base64"])
        if block.get("source_type") == "base64" and block.get("data"):
            return str(block["data"])
        if block.get("url"):
            return self._image_from_url(block["url"], op)
        raise self._input_error(
            "Ollama needs images inline as base64 (an image block with 'base64' or a data: URL)",
            op,
        )

    def _image_from_url(self, url: Any, op: str) -> str:
        if not isinstance(url, str) or not url:
            raise self._input_error("image_url must hold a URL string", op)
        if url.startswith("data:"):
            _, _, data = url.partition(",")
            if data:
                return data
            raise self._input_error("the image data: URL holds no data", op)
        if url.startswith(("http://", "https://")):
            raise self._input_error(
                "Ollama cannot fetch image URLs; pass the image inline as base64 "
                "(an image block with 'base64' or a data: URL)",
                op,
            )
        return url  # already bare base64

    def _tools_for_request(
        self, tools: Any, tool_choice: Any, parallel_tool_calls: Any, op: str
    ) -> list[dict[str, Any]]:
        formatted = [_ollama_tool(t) for t in tools or []]
        if parallel_tool_calls is False:
            raise self._capability_error(
                "Ollama cannot turn off parallel tool calls (parallel_tool_calls=False)", op
            )
        if tool_choice in (None, "auto") or not formatted:
            return formatted
        if tool_choice == "none":
            return []
        if tool_choice in ("any", "required"):
            if len(formatted) == 1:
                return formatted
            raise self._capability_error(
                f"Ollama cannot force a tool call (tool_choice={tool_choice!r}) among "
                f"{len(formatted)} tools; bind a single tool or use tool_choice='auto'",
                op,
            )
        name = _tool_choice_name(tool_choice)
        chosen = [t for t in formatted if t["function"].get("name") == name]
        if name is None or not chosen:
            raise self._input_error(
                f"tool_choice={tool_choice!r} names no bound tool "
                f"(bound: {[t['function'].get('name') for t in formatted]})",
                op,
            )
        return chosen

    def _format_for(self, response_format: Any, op: str) -> Any:
        kind = response_format.get("type") if isinstance(response_format, Mapping) else None
        if kind == "json_object":
            return "json"
        if kind == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            if isinstance(schema, Mapping):
                return dict(schema)
        if kind == "text":
            return None
        raise self._input_error(
            f"unsupported response_format {response_format!r}: use "
            "{'type': 'json_object'} or {'type': 'json_schema', 'json_schema': {'schema': ...}}",
            op,
        )

    # --- response ---

    def parse_response(self, data: Any) -> ChatResult:
        body = self._response_object(data, "invoke")
        message = body["message"]
        created_at = str(body.get("created_at", ""))
        tool_calls: list[ToolCall] = []
        invalid: list[InvalidToolCall] = []
        for position, raw in enumerate(message.get("tool_calls") or []):
            _collect_tool_call(raw, created_at, position, tool_calls, invalid)
        ai = AIMessage(
            content=str(message.get("content") or ""),
            tool_calls=tool_calls,
            invalid_tool_calls=invalid,
            additional_kwargs=_reasoning(message),
            usage_metadata=_usage(body),
            response_metadata=self._response_metadata(body),
        )
        return ChatResult(
            generations=[ChatGeneration(message=ai)],
            llm_output={"model_name": ai.response_metadata["model_name"]},
        )

    def new_stream_parser(self, body: Mapping[str, Any]) -> StreamParser:
        return _OllamaStreamParser(self)

    def _response_object(self, data: Any, op: str) -> dict[str, Any]:
        """`data` checked to be an Ollama chat object, with `message` filled in when missing.

        Older servers end a stream with a `done: true` object that has no `message`; an
        `{"error": ...}` object is raised as the error it reports.
        """
        if isinstance(data, dict) and data.get("error"):
            raise self._error_event(data, op)
        if isinstance(data, dict) and "message" not in data and data.get("done") is True:
            return {**data, "message": {"role": "assistant", "content": ""}}
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise InvalidResponseError(
                f"unexpected Ollama chat response: {json.dumps(data)[:200]}",
                op=op, provider=self.provider_name, model=self.model,
            )
        return data

    def _response_metadata(self, body: Mapping[str, Any]) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "model_name": body.get("model") or self.model,
            "model_provider": self.provider_name,
            "done_reason": body.get("done_reason"),
            "created_at": body.get("created_at"),
        }
        metadata.update({k: body[k] for k in _TIMINGS if k in body})
        if body.get("logprobs") is not None:
            metadata["logprobs"] = body["logprobs"]
        return metadata

    def _error_event(self, data: Mapping[str, Any], op: str) -> ChatModelError:
        """The error for an `{"error": "..."}` object (what Ollama sends mid-stream after a 200).

        No status travels with it: a context-length complaint is the caller's input, anything
        else is the server failing while it generated.
        """
        message = str(data.get("error"))
        code = (
            ErrorCode.CONTEXT_LENGTH_EXCEEDED
            if code_for_status(400, message) is ErrorCode.CONTEXT_LENGTH_EXCEEDED
            else ErrorCode.PROVIDER_UNAVAILABLE
        )
        return make_error(
            code, message, op=op, provider=self.provider_name, model=self.model,
            context={"in_stream": True}, secrets=self._secrets(),
        )

    # --- errors raised while building a request ---

    def _secrets(self) -> tuple[str, ...]:
        return (self.api_key.get_secret_value(),) if self.api_key else ()

    def _input_error(self, message: str, op: str) -> InvalidInputError:
        return InvalidInputError(
            message, op=op, provider=self.provider_name, model=self.model, secrets=self._secrets()
        )

    def _capability_error(self, message: str, op: str) -> CapabilityError:
        return CapabilityError(
            message, op=op, provider=self.provider_name, model=self.model,
            secrets=self._secrets(),
        )


class _OllamaStreamParser:
    """NDJSON chat objects -> chunks. Text and thinking as they arrive; tool calls whole."""

    def __init__(self, model: ChatOllamaNative) -> None:
        self._model = model
        self._done = False
        self._tool_calls_seen = 0

    def feed(self, event: ServerEvent) -> Iterator[ChatGenerationChunk]:
        if self._done:
            return
        body = self._model._response_object(event.data, "stream")
        message = body["message"]
        content = str(message.get("content") or "")
        chunks: list[ToolCallChunk] = []
        created_at = str(body.get("created_at", ""))
        for raw in message.get("tool_calls") or []:
            chunks.append(_tool_call_chunk(raw, created_at, self._tool_calls_seen))
            self._tool_calls_seen += 1
        reasoning = _reasoning(message)
        logprobs = body.get("logprobs")
        if body.get("done"):
            self._done = True
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=content,
                    additional_kwargs=reasoning,
                    tool_call_chunks=chunks,
                    usage_metadata=_usage(body),
                    response_metadata=self._model._response_metadata(body),
                    chunk_position="last",
                )
            )
        elif content or chunks or reasoning or logprobs is not None:
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=content,
                    additional_kwargs=reasoning,
                    tool_call_chunks=chunks,
                    response_metadata={"logprobs": logprobs} if logprobs is not None else {},
                )
            )

    def finish(self) -> Iterator[ChatGenerationChunk]:
        if not self._done:
            raise InvalidResponseError(
                "the Ollama stream ended before its final object (done: true)",
                op="stream", provider=self._model.provider_name, model=self._model.model,
            )
        return iter(())


# --- wire helpers ---------------------------------------------------------------------------


def _place_extras(body: dict[str, Any], options: dict[str, Any], extras: Mapping[str, Any]) -> None:
    """Apply the module's rule: top-level keys at the top, `options` merged, the rest options."""
    for key, value in extras.items():
        if key == "options" and isinstance(value, Mapping):
            options.update(value)
        elif key in TOP_LEVEL_KEYS:
            body[key] = value
        elif key not in ("messages", "stream", "tools"):  # those are the model's to set
            options[key] = value


def _ollama_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI-format tool as Ollama takes it (the `strict` flag means nothing there)."""
    function = {k: v for k, v in dict(tool.get("function") or {}).items() if k != "strict"}
    return {"type": "function", "function": function}


def _tool_choice_name(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, str):
        return tool_choice
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
        return name if isinstance(name, str) else None
    return None


def _ollama_tool_call(call: ToolCall) -> dict[str, Any]:
    out: dict[str, Any] = {"function": {"name": call["name"], "arguments": call["args"]}}
    if call.get("id"):
        out["id"] = call["id"]
    return out


def _tool_call_id(raw: Mapping[str, Any], created_at: str, position: int) -> str:
    """Ollama's id for the call when it sends one, else one derived from the call itself."""
    given = raw.get("id")
    if isinstance(given, str) and given:
        return given
    function = raw.get("function") or {}
    seed = json.dumps(
        [created_at, position, function.get("name"), function.get("arguments")],
        sort_keys=True, default=str,
    )
    return "call_" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps({} if arguments is None else arguments)


def _collect_tool_call(
    raw: Any,
    created_at: str,
    position: int,
    valid: list[ToolCall],
    invalid: list[InvalidToolCall],
) -> None:
    """Append `raw` to `valid`, or to `invalid` when its arguments are not a JSON object."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("function"), Mapping):
        invalid.append(invalid_tool_call(
            name=None, args=json.dumps(raw, default=str), id=None,
            error="tool call without a 'function' object",
        ))
        return
    function = raw["function"]
    name = str(function.get("name") or "")
    call_id = _tool_call_id(raw, created_at, position)
    arguments = function.get("arguments")
    if isinstance(arguments, str):  # some models/versions send the object JSON-encoded
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            invalid.append(invalid_tool_call(
                name=name, args=function["arguments"], id=call_id,
                error=f"arguments are not valid JSON: {exc}",
            ))
            return
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        invalid.append(invalid_tool_call(
            name=name, args=_arguments_text(arguments), id=call_id,
            error="arguments are not a JSON object",
        ))
        return
    valid.append(tool_call(name=name, args=arguments, id=call_id))


def _tool_call_chunk(raw: Any, created_at: str, index: int) -> ToolCallChunk:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("function"), Mapping):
        return tool_call_chunk(name=None, args=json.dumps(raw, default=str), id=None, index=index)
    function = raw["function"]
    return tool_call_chunk(
        name=function.get("name"),
        args=_arguments_text(function.get("arguments")),
        id=_tool_call_id(raw, created_at, index),
        index=index,
    )


def _reasoning(message: Mapping[str, Any]) -> dict[str, Any]:
    thinking = message.get("thinking")
    return {"reasoning_content": thinking} if isinstance(thinking, str) and thinking else {}


def _usage(body: Mapping[str, Any]) -> UsageMetadata | None:
    if not body.get("done"):
        return None
    input_tokens = int(body.get("prompt_eval_count") or 0)
    output_tokens = int(body.get("eval_count") or 0)
    return UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def create_ollama(config: ProviderConfig) -> ChatOllamaNative:
    """Registry creator for the `ollama` provider."""
    return ChatOllamaNative(**model_fields_from_config(config))
