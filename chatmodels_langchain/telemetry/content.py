"""Message content in the GenAI conventions' JSON format, recorded only on opt-in.

`gen_ai.input.messages`, `gen_ai.system_instructions`, `gen_ai.tool.definitions` and
`gen_ai.output.messages`: role + parts ({"type": "text", "content"}, tool_call,
tool_call_response, reasoning). Media payloads are never recorded, only their type; every
string passes through `errors.redact`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chatmodels_langchain.errors import redact
from chatmodels_langchain.telemetry import semconv as sc

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = ["input_content", "output_content"]

_Attrs = dict[str, Any]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "developer": "system",
          "tool": "tool", "function": "tool"}
_TOOL_CALL_BLOCKS = frozenset({"tool_use", "tool_call", "tool_call_chunk", "function_call"})


def _role(message: BaseMessage) -> str:
    kind = str(message.type)
    if kind.endswith("MessageChunk"):
        kind = kind[: -len("MessageChunk")].lower()
    if kind == "chat":
        return _ROLES.get(str(getattr(message, "role", "user")), str(getattr(message, "role", "")))
    return _ROLES.get(kind, kind)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", ""))
            for b in content
            if isinstance(b, str) or (isinstance(b, Mapping) and b.get("type") == "text")
        )
    return str(content)


def _parts(message: BaseMessage, role: str) -> list[_Attrs]:
    if role == "tool":
        return [{
            "type": "tool_call_response",
            "id": getattr(message, "tool_call_id", None),
            "response": _text(message.content),
        }]
    parts: list[_Attrs] = []
    content = message.content
    if isinstance(content, str):
        if content:
            parts.append({"type": "text", "content": content})
    else:
        for block in content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": block})
                continue
            kind = str(block.get("type", "unknown"))
            if kind == "text":
                parts.append({"type": "text", "content": str(block.get("text", ""))})
            elif kind in ("reasoning", "thinking"):
                text = block.get("reasoning") or block.get("thinking") or ""
                parts.append({"type": "reasoning", "content": str(text)})
            elif kind not in _TOOL_CALL_BLOCKS:
                parts.append({"type": kind})  # media payloads are not recorded
    for call in getattr(message, "tool_calls", None) or ():
        parts.append({
            "type": "tool_call",
            "id": call.get("id"),
            "name": call.get("name"),
            "arguments": call.get("args"),
        })
    return parts


def _tool_definition(tool: Any) -> _Attrs:
    if not isinstance(tool, Mapping):
        return {"type": "function", "name": str(getattr(tool, "name", type(tool).__name__))}
    function = tool.get("function")
    source: Mapping[str, Any] = function if isinstance(function, Mapping) else tool
    kind = str(tool.get("type") or "function")
    definition: _Attrs = {"type": kind, "name": source.get("name") or kind}
    if source.get("description"):
        definition["description"] = source["description"]
    parameters = source.get("parameters") or source.get("input_schema")
    if parameters:
        definition["parameters"] = parameters
    return definition


def _dump(value: Any) -> str:
    return redact(json.dumps(value, ensure_ascii=False, default=str))


def input_content(
    messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]] | None
) -> _Attrs:
    """`gen_ai.input.messages`, `gen_ai.system_instructions` (system messages) and
    `gen_ai.tool.definitions` as JSON strings in the GenAI conventions' format."""
    system: list[_Attrs] = []
    history: list[_Attrs] = []
    for message in messages:
        role = _role(message)
        if role == "system":
            system.extend(_parts(message, role))
        else:
            history.append({"role": role, "parts": _parts(message, role)})
    attrs: _Attrs = {}
    if history:
        attrs[sc.GEN_AI_INPUT_MESSAGES] = _dump(history)
    if system:
        attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = _dump(system)
    if tools:
        attrs[sc.GEN_AI_TOOL_DEFINITIONS] = _dump([_tool_definition(t) for t in tools])
    return attrs


def output_content(message: BaseMessage, finish_reasons: tuple[str, ...]) -> str:
    if finish_reasons:
        reason = finish_reasons[0]
    else:
        reason = "tool_call" if getattr(message, "tool_calls", None) else "stop"
    return _dump([{"role": "assistant", "parts": _parts(message, "assistant"),
                   "finish_reason": reason}])
