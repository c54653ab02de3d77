"""Per-call observability identifiers and the ambient session/user/conversation block.

`observability_context(...)` sets ids for a block of code (a `contextvars.ContextVar`, so each
thread and asyncio task sees its own); `new_observability(...)` builds the immutable
`ObservabilityContext` of one call from that block and LangChain `RunnableConfig` metadata;
`current_observability()` returns the context of the call running right now (set by
`Operation.activate()`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatmodels_langchain.telemetry.metrics import Operation

__all__ = [
    "ObservabilityContext",
    "current_observability",
    "new_observability",
    "observability_context",
]


@dataclass(frozen=True, slots=True)
class ObservabilityContext:
    """The identifiers of one chat-model call.

    `operation_id` is unique per call (uuid4 hex) and is also the span attribute
    `chatmodels.operation_id`; `request_id` (a uuid4 string) is suitable as an outgoing request
    header. `start_time` is wall-clock seconds (`time.time()`).
    """

    operation_id: str
    request_id: str
    provider: str
    model: str
    session_id: str | None
    user_id: str | None
    conversation_id: str | None
    start_time: float


@dataclass(frozen=True, slots=True)
class _Ambient:
    session_id: str | None
    user_id: str | None
    conversation_id: str | None


_NO_AMBIENT = _Ambient(None, None, None)
_AMBIENT: ContextVar[_Ambient | None] = ContextVar("chatmodels_observability", default=None)
# The Operation whose `activate()` block is running; its `.observability` is the current one.
_CURRENT_OPERATION: ContextVar[Operation | None] = ContextVar(
    "chatmodels_operation", default=None
)


@contextmanager
def observability_context(
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    conversation_id: str | None = None,
) -> Iterator[None]:
    """Attach session/user/conversation ids to every chat-model call made inside the block.

    Blocks nest: an inner block overrides the ids it sets and inherits the others; the outer
    values come back on exit. LangChain metadata keys of the same names take precedence.
    """
    outer = _AMBIENT.get() or _NO_AMBIENT
    ambient = _Ambient(
        session_id=outer.session_id if session_id is None else session_id,
        user_id=outer.user_id if user_id is None else user_id,
        conversation_id=outer.conversation_id if conversation_id is None else conversation_id,
    )
    token = _AMBIENT.set(ambient)
    try:
        yield
    finally:
        _AMBIENT.reset(token)


def _from_metadata(metadata: Mapping[str, Any] | None, key: str) -> str | None:
    if not metadata:
        return None
    value = metadata.get(key)
    return None if value is None or value == "" else str(value)


def _new_ids() -> tuple[str, str]:
    """Two random version-4 UUIDs: (32-hex operation id, canonical request id).

    Identifiers, not secrets: Python's PRNG (seeded from os.urandom) is enough and avoids a
    system call per model call.
    """
    raw = bytearray(random.getrandbits(256).to_bytes(32, "big"))
    for offset in (0, 16):
        raw[offset + 6] = (raw[offset + 6] & 0x0F) | 0x40  # version 4
        raw[offset + 8] = (raw[offset + 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return h[:32], f"{h[32:40]}-{h[40:44]}-{h[44:48]}-{h[48:52]}-{h[52:]}"


def new_observability(
    provider: str, model: str, metadata: Mapping[str, Any] | None = None
) -> ObservabilityContext:
    """The context of a new call.

    Precedence for each id: RunnableConfig `metadata[key]` > the innermost
    `observability_context` block. For `conversation_id`, LangGraph's `metadata["thread_id"]`
    is used as a last resort.
    """
    operation_id, request_id = _new_ids()
    ambient = _AMBIENT.get()
    if ambient is None:
        ambient = _NO_AMBIENT
        if not metadata:  # the common case: nothing to look up
            return ObservabilityContext(
                operation_id, request_id, provider, model, None, None, None, time.time()
            )
    conversation_id = _from_metadata(metadata, "conversation_id") or ambient.conversation_id
    if conversation_id is None:
        conversation_id = _from_metadata(metadata, "thread_id")
    return ObservabilityContext(
        operation_id=operation_id,
        request_id=request_id,
        provider=provider,
        model=model,
        session_id=_from_metadata(metadata, "session_id") or ambient.session_id,
        user_id=_from_metadata(metadata, "user_id") or ambient.user_id,
        conversation_id=conversation_id,
        start_time=time.time(),
    )


def current_observability() -> ObservabilityContext | None:
    """The context of the chat-model call running in this thread/task, if any."""
    operation = _CURRENT_OPERATION.get()
    return None if operation is None else operation.observability
