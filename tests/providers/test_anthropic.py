"""The `anthropic` provider: Messages API wire format, replayed from authored cassettes.

Cassette request bodies are the documented Messages API JSON written by hand, so a replay
(vcrpy matches parsed JSON bodies) proves `build_body` produces exactly that wire format.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast
from uuid import UUID

import httpx
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from pydantic import BaseModel, Field
from vcr.cassette import Cassette

from chatmodels_langchain.errors import (
    AuthenticationError,
    CapabilityError,
    ChatModelError,
    ContextLengthExceededError,
    ErrorCode,
    InvalidInputError,
    InvalidResponseError,
    ModelUnsupportedError,
    ProviderUnavailableError,
    RateLimitError,
    RequestTimeoutError,
)
from chatmodels_langchain.providers import _http, register_builtins
from chatmodels_langchain.providers._http import ServerEvent
from chatmodels_langchain.providers.anthropic import (
    AnthropicStreamParser,
    ChatAnthropicNative,
    convert_tool_choice,
    create_anthropic,
)
from chatmodels_langchain.registry import ChatModelRegistry
from chatmodels_langchain.wrapper import ChatModelWrapper
from tests.providers.conftest import FAKE_ANTHROPIC_KEY

MODEL = "claude-3-5-haiku-latest"
SERVED = "claude-3-5-haiku-20241022"
WEATHER_ID = "toolu_01WthrA1b2C3d4E5f6G7h8J9"
TIME_ID = "toolu_01TimeK9j8H7g6F5e4D3c2B1"
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="City name, e.g. Paris")


class GetTime(BaseModel):
    """Get the current local time in an IANA time zone."""

    timezone: str = Field(description="IANA time zone, e.g. Europe/Paris")


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="Full name")
    age: int = Field(description="Age in years")


PERSON_SCHEMA = {
    "title": "Person",
    "description": "A person mentioned in the text.",
    "type": "object",
    "properties": {
        "name": {"description": "Full name", "type": "string"},
        "age": {"description": "Age in years", "type": "integer"},
    },
    "required": ["name", "age"],
}


Use = Callable[[str, str], AbstractContextManager[Cassette]]
"""The `cassette` fixture of tests/providers/conftest.py."""


def make(**fields: Any) -> ChatAnthropicNative:
    fields = {"model": MODEL, "api_key": FAKE_ANTHROPIC_KEY, "max_retries": 0, **fields}
    return ChatAnthropicNative(**fields)


def sent_body(cass: Cassette, number: int = 0) -> Any:
    return json.loads(cass.requests[number].body)


def assert_no_key(err: ChatModelError) -> None:
    assert FAKE_ANTHROPIC_KEY not in str(err)
    assert FAKE_ANTHROPIC_KEY not in repr(err)
    assert FAKE_ANTHROPIC_KEY not in json.dumps(dict(err.context), default=str)


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff delays the transport asked for, recorded instead of slept."""
    recorded: list[float] = []

    async def async_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(_http, "sleep", recorded.append)
    monkeypatch.setattr(_http, "async_sleep", async_sleep)
    return recorded


# --- invoke ---------------------------------------------------------------------------------


def test_invoke_returns_text_usage_and_metadata(cassette: Use) -> None:
    with cassette("anthropic", "plain") as cass:
        result = make().invoke("What is the capital of France? One word.")
    assert cass.play_count == 1
    assert result.content == "Paris."
    assert result.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert result.response_metadata == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "model_name": SERVED, "stop_reason": "end_turn",
        "stop_sequence": None, "model_provider": "anthropic",
    }
    assert result.usage_metadata == {
        "input_tokens": 19, "output_tokens": 5, "total_tokens": 24,
        "input_token_details": {"cache_read": 0, "cache_creation": 0,
                                "ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    }


async def test_ainvoke(cassette: Use) -> None:
    with cassette("anthropic", "plain"):
        result = await make().ainvoke("What is the capital of France? One word.")
    assert result.content == "Paris."
    assert result.usage_metadata is not None and result.usage_metadata["total_tokens"] == 24


def test_system_messages_params_stop_and_provider_specific(cassette: Use) -> None:
    model = make(temperature=0.2, max_tokens=64,
                 provider_specific={"top_k": 5, "metadata": {"user_id": "user-123"}})
    with cassette("anthropic", "system_params") as cass:
        result = model.invoke(
            [SystemMessage("You are a terse assistant."), SystemMessage("Answer in French."),
             HumanMessage("Name two colours, one per paragraph.")],
            stop=["\n\n"],
        )
    body = sent_body(cass)
    assert body["system"][1] == {"type": "text", "text": "Answer in French."}
    assert (body["stop_sequences"], body["temperature"], body["top_k"]) == (["\n\n"], 0.2, 5)
    assert result.content == "Rouge."
    assert result.response_metadata["stop_reason"] == "stop_sequence"
    assert result.response_metadata["stop_sequence"] == "\n\n"


def test_multi_turn_merges_consecutive_messages_of_one_role(cassette: Use) -> None:
    history: list[BaseMessage] = [
        HumanMessage("My name is Ada."), AIMessage("Nice to meet you, Ada!"),
        SystemMessage("You remember what the user tells you."),  # hoisted to `system`
        HumanMessage("I like tea."), HumanMessage("What is my name?"),
    ]
    with cassette("anthropic", "multi_turn") as cass:
        result = make().invoke(history)
    assert [turn["role"] for turn in sent_body(cass)["messages"]] == ["user", "assistant", "user"]
    assert result.content == "Your name is Ada."


def test_batch_and_call_time_max_tokens_default(cassette: Use) -> None:
    with cassette("anthropic", "batch") as cass:
        results = make().batch(["Reply with the letter A.", "Reply with the letter B."])
    assert [r.content for r in results] == ["A", "B"]
    assert cass.all_played
    assert {sent_body(cass, i)["max_tokens"] for i in range(2)} == {4096}


async def test_abatch(cassette: Use) -> None:
    with cassette("anthropic", "batch") as cass:
        results = await make().abatch(["Reply with the letter A.", "Reply with the letter B."])
    assert sorted(str(r.content) for r in results) == ["A", "B"]
    assert cass.all_played


def test_image_inputs_base64_and_url(cassette: Use) -> None:
    message = HumanMessage(content=[
        {"type": "text", "text": "Describe both images in one sentence."},
        {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
        {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/cat.jpg"}},
    ])
    with cassette("anthropic", "image_input") as cass:
        result = make().invoke([message])
    assert cass.play_count == 1
    assert "cat" in str(result.content)


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image", "source_type": "base64", "data": PNG_B64, "mime_type": "image/png"},
        {"type": "image", "url": f"data:image/png;base64,{PNG_B64}"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG_B64}},
    ],
    ids=["openai-data-url", "v0-base64", "v1-data-url", "anthropic-native"],
)
def test_image_block_formats_become_base64_sources(block: dict[str, Any]) -> None:
    body = make().build_body([HumanMessage(content=[block])], None, False)
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG_B64}}
    ]


def test_image_without_data_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="base64 data or a url"):
        make().build_body([HumanMessage(content=[{"type": "image", "mime_type": "image/png"}])],
                          None, False)


def test_prompt_cache_tokens_count_as_input(cassette: Use) -> None:
    system = SystemMessage(content=[{"type": "text",
                                     "text": "Handbook: be kind, ship small, write tests.",
                                     "cache_control": {"type": "ephemeral"}}])
    with cassette("anthropic", "prompt_cache"):
        result = make().invoke([system, HumanMessage("Summarise the handbook in one line.")])
    usage = result.usage_metadata
    assert usage is not None
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (
        14 + 2048, 9, 2071)
    assert usage.get("input_token_details", {}).get("cache_read") == 2048
    assert usage.get("input_token_details", {}).get("cache_creation") == 0


# --- streaming ------------------------------------------------------------------------------


def _chunks(messages: Iterable[BaseMessage]) -> list[AIMessageChunk]:
    """Stream items as chunks (`bind_tools` runnables are typed as yielding `AIMessage`)."""
    chunks = list(messages)
    assert chunks and all(isinstance(c, AIMessageChunk) for c in chunks)
    return cast(list[AIMessageChunk], chunks)


def _aggregate(messages: Iterable[BaseMessage]) -> AIMessageChunk:
    chunks = _chunks(messages)
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


def _check_text_stream(chunks: list[AIMessageChunk]) -> None:
    texts = [c.content for c in chunks if c.content]
    assert texts == ["Hello", "! How", " can I help", " you today?"]  # as it arrives
    assert all(isinstance(c.content, str) for c in chunks)
    assert [c.chunk_position for c in chunks].count("last") == 1
    assert chunks[-1].chunk_position == "last"
    assert all(c.usage_metadata is None for c in chunks[:-1])
    full = _aggregate(chunks)
    assert full.content == "Hello! How can I help you today?"
    assert full.id == "msg_01StrmTxt7uA9dX4bS2eKqP1"
    assert full.usage_metadata is not None
    assert (full.usage_metadata["input_tokens"], full.usage_metadata["output_tokens"]) == (8, 12)
    assert full.response_metadata["stop_reason"] == "end_turn"
    assert full.response_metadata["model_name"] == SERVED
    assert full.response_metadata["model_provider"] == "anthropic"


def test_stream_text(cassette: Use) -> None:
    with cassette("anthropic", "stream_text") as cass:
        chunks = list(make().stream("Hello"))
    assert sent_body(cass)["stream"] is True
    _check_text_stream(chunks)


async def test_astream_text(cassette: Use) -> None:
    with cassette("anthropic", "stream_text"):
        chunks = [chunk async for chunk in make().astream("Hello")]
    _check_text_stream(chunks)


EXPECTED_CALLS = [
    {"name": "GetWeather", "args": {"city": "Paris"}, "id": WEATHER_ID, "type": "tool_call"},
    {"name": "GetTime", "args": {"timezone": "Europe/Paris"}, "id": TIME_ID,
     "type": "tool_call"},
]
QUESTION = "What is the weather and local time in Paris?"


def _check_tool_stream(messages: Sequence[BaseMessage]) -> AIMessageChunk:
    chunks = _chunks(messages)
    fragments = [tc for c in chunks for tc in c.tool_call_chunks]
    assert {tc["index"] for tc in fragments} == {1, 2}  # Anthropic content block indexes
    assert [tc["id"] for tc in fragments if tc["id"]] == [WEATHER_ID, TIME_ID]
    assert "".join(str(tc["args"]) for tc in fragments if tc["index"] == 1) == '{"city": "Paris"}'
    full = _aggregate(chunks)
    assert full.tool_calls == EXPECTED_CALLS
    assert full.invalid_tool_calls == []
    assert full.text == "I'll look up both for you."
    assert [b["type"] for b in full.content_blocks] == ["text", "tool_call", "tool_call"]
    assert full.response_metadata["stop_reason"] == "tool_use"
    assert full.usage_metadata is not None and full.usage_metadata["output_tokens"] == 98
    return full


def test_stream_tool_calls_aggregate_into_tool_calls(cassette: Use) -> None:
    model = make().bind_tools([GetWeather, GetTime])
    with cassette("anthropic", "stream_tool_calls"):
        chunks = list(model.stream(QUESTION))
    _check_tool_stream(chunks)


async def test_astream_tool_calls(cassette: Use) -> None:
    model = make().bind_tools([GetWeather, GetTime])
    with cassette("anthropic", "stream_tool_calls"):
        chunks = [chunk async for chunk in model.astream(QUESTION)]
    _check_tool_stream(chunks)


def test_stream_thinking_blocks_round_trip(cassette: Use) -> None:
    model = make(model="claude-sonnet-4-20250514", max_tokens=2048,
                 provider_specific={"thinking": {"type": "enabled", "budget_tokens": 1024}})
    with cassette("anthropic", "stream_thinking"):
        chunks = list(model.stream("Is 97 prime?"))
    assert all(isinstance(c.content, list) for c in chunks)  # blocks, as langchain-anthropic
    full = _aggregate(chunks)
    assert full.text == "Yes, 97 is prime."
    thinking = full.content[0]
    assert isinstance(thinking, dict)
    assert thinking["thinking"] == "97 is not divisible by 2, 3, 5 or 7, and 11^2 > 97."
    assert thinking["signature"] == "EqQBCkYIBxgCKkBsig=="
    assert [b["type"] for b in full.content_blocks] == ["reasoning", "text"]
    # the thinking block (with its signature) goes back to the API before the text
    body = model.build_body([HumanMessage("Is 97 prime?"), full, HumanMessage("And 91?")],
                            None, False)
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": thinking["thinking"],
         "signature": "EqQBCkYIBxgCKkBsig=="},
        {"type": "text", "text": "Yes, 97 is prime."},
    ]


def test_stream_thinking_round_trips_in_langchain_v1_output(cassette: Use) -> None:
    model = make(model="claude-sonnet-4-20250514", max_tokens=2048, output_version="v1",
                 provider_specific={"thinking": {"type": "enabled", "budget_tokens": 1024}})
    with cassette("anthropic", "stream_thinking"):
        full = _aggregate(list(model.stream("Is 97 prime?")))
    assert [b["type"] for b in full.content_blocks] == ["reasoning", "text"]
    body = model.build_body([HumanMessage("Is 97 prime?"), full], None, False)
    assert body["messages"][1]["content"][0] == {
        "type": "thinking", "thinking": "97 is not divisible by 2, 3, 5 or 7, and 11^2 > 97.",
        "signature": "EqQBCkYIBxgCKkBsig==",
    }


@pytest.mark.parametrize("name", ["stream_text", "stream_tool_calls"])
def test_langchain_v3_stream_events_are_valid(cassette: Use, name: str) -> None:
    """LangChain's Anthropic block translator reads our chunks (`model_provider`)."""
    from langchain_tests.utils.stream_lifecycle import assert_valid_event_stream

    tools = name == "stream_tool_calls"
    model = make().bind_tools([GetWeather, GetTime]) if tools else make()
    with cassette("anthropic", name):
        stream: Any = model.stream_events(QUESTION if tools else "Hello", version="v3")
        events = list(stream)
    assert_valid_event_stream(events)
    kinds = [b["type"] for b in stream.output.content_blocks]
    assert kinds == (["text", "tool_call", "tool_call"] if tools else ["text"])


def test_stream_callbacks_receive_each_token(cassette: Use) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    tokens: list[str] = []

    class Collect(BaseCallbackHandler):
        def on_llm_new_token(
            self,
            token: str | list[str | dict[str, Any]],
            *,
            chunk: GenerationChunk | ChatGenerationChunk | None = None,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            tags: list[str] | None = None,
            **kwargs: Any,
        ) -> None:
            assert isinstance(token, str)
            tokens.append(token)

    with cassette("anthropic", "stream_text"):
        list(make().stream("Hello", config={"callbacks": [Collect()]}))
    assert [t for t in tokens if t] == ["Hello", "! How", " can I help", " you today?"]


# --- tools ----------------------------------------------------------------------------------


def test_parallel_tool_calls(cassette: Use) -> None:
    model = make().bind_tools([GetWeather, GetTime])
    with cassette("anthropic", "tool_calls") as cass:
        result = model.invoke(QUESTION)
    assert [t["name"] for t in sent_body(cass)["tools"]] == ["GetWeather", "GetTime"]
    assert result.tool_calls == EXPECTED_CALLS
    assert isinstance(result.content, list)  # langchain-anthropic shape: tool_use blocks kept
    assert [b["type"] for b in result.content if isinstance(b, dict)] == [
        "text", "tool_use", "tool_use"]
    assert result.response_metadata["stop_reason"] == "tool_use"


def test_tool_choice_any_without_parallel_calls(cassette: Use) -> None:
    model = make().bind_tools([GetWeather], tool_choice="any", parallel_tool_calls=False)
    with cassette("anthropic", "tool_choice_any") as cass:
        result = model.invoke("Weather in Paris and Rome?")
    assert sent_body(cass)["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert [(c["name"], c["args"]) for c in result.tool_calls] == [("GetWeather",
                                                                    {"city": "Paris"})]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("any", None, {"type": "any"}),
        ("required", None, {"type": "any"}),
        ("none", False, {"type": "none"}),
        ("GetWeather", None, {"type": "tool", "name": "GetWeather"}),
        ({"type": "function", "function": {"name": "GetTime"}}, None,
         {"type": "tool", "name": "GetTime"}),
        ({"type": "tool", "name": "GetTime"}, False,
         {"type": "tool", "name": "GetTime", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, True, None),
    ],
)
def test_tool_choice_conversion(choice: Any, parallel: bool | None, expected: Any) -> None:
    assert convert_tool_choice(choice, parallel) == expected


def test_streamed_tool_calls_and_results_round_trip(cassette: Use) -> None:
    """A streamed answer goes back as history with the tool results grouped in one turn."""
    model = make().bind_tools([GetWeather, GetTime])
    with cassette("anthropic", "stream_tool_calls"):
        answer = _aggregate(list(model.stream(QUESTION)))
    history = [
        HumanMessage(QUESTION),
        answer,
        ToolMessage("18°C, light rain", tool_call_id=WEATHER_ID),
        ToolMessage("time service unavailable", tool_call_id=TIME_ID, status="error"),
    ]
    with cassette("anthropic", "tool_results") as cass:
        result = model.invoke(history)
    assert sent_body(cass)["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "I'll look up both for you."},
            {"type": "tool_use", "id": WEATHER_ID, "name": "GetWeather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": TIME_ID, "name": "GetTime",
             "input": {"timezone": "Europe/Paris"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": WEATHER_ID, "content": "18°C, light rain"},
            {"type": "tool_result", "tool_use_id": TIME_ID,
             "content": "time service unavailable", "is_error": True},
        ]},
    ]
    assert "18°C" in result.text


def test_tool_calls_without_content_blocks_become_tool_use() -> None:
    """An AIMessage carrying only `tool_calls` (other providers, hand-written) still works."""
    ai = AIMessage(content="", tool_calls=[EXPECTED_CALLS[0]])  # type: ignore[list-item]
    body = make().build_body(
        [HumanMessage("hi"), ai, ToolMessage(content=[{"type": "text", "text": "sunny"}],
                                             tool_call_id=WEATHER_ID)],
        None, False,
    )
    assert body["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": WEATHER_ID,
                                           "name": "GetWeather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": WEATHER_ID,
                                      "content": [{"type": "text", "text": "sunny"}]}]},
    ]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
    ],
    ids=["openai-style", "langchain-v1"],
)
def test_images_in_tool_results(block: dict[str, Any]) -> None:
    ai = AIMessage(content="", tool_calls=[{"name": "screenshot", "args": {}, "id": "toolu_9"}])
    body = make().build_body(
        [HumanMessage("Take a screenshot."), ai, ToolMessage(content=[block],
                                                             tool_call_id="toolu_9")],
        None, False,
    )
    assert body["messages"][2]["content"] == [{
        "type": "tool_result", "tool_use_id": "toolu_9",
        "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": PNG_B64}}],
    }]


# --- structured output ----------------------------------------------------------------------


def test_structured_output_pydantic(cassette: Use) -> None:
    with cassette("anthropic", "structured_output") as cass:
        person = make().with_structured_output(Person).invoke("Ada Lovelace died at 36.")
    assert person == Person(name="Ada Lovelace", age=36)
    assert sent_body(cass)["tool_choice"] == {"type": "tool", "name": "Person"}


def test_structured_output_json_schema_dict_include_raw(cassette: Use) -> None:
    with cassette("anthropic", "structured_output"):
        out = make().with_structured_output(PERSON_SCHEMA, include_raw=True).invoke(
            "Ada Lovelace died at 36.")
    assert out["parsed"] == {"name": "Ada Lovelace", "age": 36}
    assert out["parsing_error"] is None
    assert isinstance(out["raw"], AIMessage)
    assert out["raw"].usage_metadata is not None
    assert out["raw"].usage_metadata["input_tokens"] == 402


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_response_format_methods_are_rejected_before_sending(method: Any) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    model = make(http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(CapabilityError, match="function_calling") as info:
        model.with_structured_output(Person, method=method).invoke("Ada")
    assert info.value.code is ErrorCode.CAPABILITY_UNSUPPORTED
    assert calls == []


# --- errors ---------------------------------------------------------------------------------

ERROR_CASES = [
    ("error_400", InvalidInputError, ErrorCode.INVALID_INPUT, "roles must alternate", None),
    ("error_400_context", ContextLengthExceededError, ErrorCode.CONTEXT_LENGTH_EXCEEDED,
     "prompt is too long", None),
    ("error_401", AuthenticationError, ErrorCode.AUTHENTICATION_FAILED, "invalid x-api-key",
     None),
    ("error_403", AuthenticationError, ErrorCode.AUTHENTICATION_FAILED,
     "does not have permission", None),
    ("error_404", ModelUnsupportedError, ErrorCode.MODEL_UNSUPPORTED,
     "model: claude-3-5-haiku-latest", None),
    ("error_429", RateLimitError, ErrorCode.RATE_LIMIT, "per-minute rate limit", 7.0),
    ("error_500", ProviderUnavailableError, ErrorCode.PROVIDER_UNAVAILABLE,
     "Internal server error", None),
    ("error_529", ProviderUnavailableError, ErrorCode.PROVIDER_UNAVAILABLE, "Overloaded", None),
]


@pytest.mark.parametrize(
    ("name", "cls", "code", "fragment", "retry_after"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_http_errors_are_mapped(
    cassette: Use, name: str, cls: type[ChatModelError], code: ErrorCode, fragment: str,
    retry_after: float | None,
) -> None:
    with cassette("anthropic", name), pytest.raises(cls) as info:
        make().invoke("Hello")
    err = info.value
    status = int(name.split("_")[1])
    assert err.code is code
    assert fragment in err.message
    assert err.context["status_code"] == status
    assert str(err.context["request_id"]).startswith(f"req_011CVEErr{status}")
    assert err.context["provider_error_type"]
    assert err.retry_after == retry_after
    assert err.retryable is (code in (ErrorCode.RATE_LIMIT, ErrorCode.PROVIDER_UNAVAILABLE))
    assert (err.provider, err.model) == ("anthropic", MODEL)
    assert_no_key(err)


def test_errors_keep_their_code_through_the_registry_wrapper(cassette: Use) -> None:
    registry = ChatModelRegistry()
    register_builtins(registry)
    wrapper = registry.new_provider("anthropic", model=MODEL, api_key=FAKE_ANTHROPIC_KEY,
                                    max_retries=0)
    with cassette("anthropic", "error_529"), pytest.raises(ProviderUnavailableError) as info:
        wrapper.invoke("Hello")
    assert info.value.context["provider_error_type"] == "overloaded_error"
    assert_no_key(info.value)


def test_retry_after_429_is_honoured_then_succeeds(cassette: Use, delays: list[float]) -> None:
    with cassette("anthropic", "retry_429_then_ok") as cass:
        result = make(max_retries=2).invoke("Hello")
    assert result.content == "Hi there!"
    assert delays == [2.0]
    assert cass.all_played and cass.play_count == 2


async def test_async_retry_after_429(cassette: Use, delays: list[float]) -> None:
    with cassette("anthropic", "retry_429_then_ok") as cass:
        result = await make(max_retries=2).ainvoke("Hello")
    assert result.content == "Hi there!"
    assert delays == [2.0]
    assert cass.play_count == 2


def test_stream_error_event_is_mapped_and_never_retried(
    cassette: Use, delays: list[float]
) -> None:
    received: list[AIMessageChunk] = []
    with cassette("anthropic", "stream_error_event") as cass:
        with pytest.raises(ProviderUnavailableError) as info:
            for chunk in make(max_retries=2).stream("Hello"):
                received.append(chunk)
    assert "".join(str(c.content) for c in received) == "Hello"
    assert info.value.context["provider_error_type"] == "overloaded_error"
    assert "Overloaded" in info.value.message
    assert info.value.retryable  # the caller may retry; the stream itself was not
    assert delays == [] and cass.play_count == 1


def test_truncated_stream_is_an_invalid_response(cassette: Use) -> None:
    received: list[AIMessageChunk] = []
    with cassette("anthropic", "stream_truncated"), pytest.raises(InvalidResponseError) as info:
        for chunk in make().stream("Hello"):
            received.append(chunk)
    assert info.value.code is ErrorCode.INVALID_RESPONSE
    assert "message_stop" in info.value.message
    assert "".join(str(c.content) for c in received) == "Hello the"


async def test_async_truncated_stream_is_an_invalid_response(cassette: Use) -> None:
    with cassette("anthropic", "stream_truncated"), pytest.raises(InvalidResponseError):
        async for _ in make().astream("Hello"):
            pass


def test_malformed_json_body_is_an_invalid_response(cassette: Use) -> None:
    with cassette("anthropic", "malformed_json"), pytest.raises(InvalidResponseError) as info:
        make().invoke("Hello")
    assert info.value.code is ErrorCode.INVALID_RESPONSE


def test_json_that_is_not_a_message_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponseError, match="not a Messages API response"):
        make().parse_response({"id": "msg_1", "type": "message"})


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> ChatAnthropicNative:
    return make(http_client=httpx.Client(transport=httpx.MockTransport(handler)),
                http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def test_connection_refused_is_provider_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(ProviderUnavailableError) as info:
        _mock(refuse).invoke("Hello")
    assert_no_key(info.value)


async def test_timeout_is_request_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RequestTimeoutError):
        await _mock(slow).ainvoke("Hello")


SSE_EVENTS = [
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
    '"model":"claude-3-5-haiku-20241022","usage":{"input_tokens":8,"output_tokens":1}}}\n\n',
    'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    '"content_block":{"type":"text","text":""}}\n\n',
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    '"delta":{"type":"text_delta","text":"Hello"}}\n\n',
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    '"delta":{"type":"text_delta","text":" again"}}\n\n',
    'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]


def _sse_lines() -> list[bytes]:
    return [event.encode() for event in SSE_EVENTS]


class _ObservedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from _sse_lines()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for line in _sse_lines():
            yield line

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def test_abandoned_stream_closes_the_response() -> None:
    stream = _ObservedStream()
    model = _mock(lambda request: httpx.Response(200, stream=stream))
    iterator = model.stream("Hello")
    next(iterator)
    assert not stream.closed
    iterator.close()  # type: ignore[attr-defined]
    assert stream.closed


async def test_abandoned_async_stream_closes_the_response() -> None:
    stream = _ObservedStream()
    model = _mock(lambda request: httpx.Response(200, stream=stream))
    iterator = model.astream("Hello")
    await iterator.__anext__()
    await iterator.aclose()  # type: ignore[attr-defined]
    assert stream.closed


# --- stream parser details ------------------------------------------------------------------


def _feed(parser: AnthropicStreamParser, *events: dict[str, Any]) -> list[AIMessageChunk]:
    out = []
    for data in events:
        out += [c.message for c in parser.feed(ServerEvent(data["type"], data))]
    out += [c.message for c in parser.finish()]
    return out  # type: ignore[return-value]


def test_malformed_streamed_tool_json_becomes_invalid_tool_call() -> None:
    chunks = _feed(
        AnthropicStreamParser(MODEL, blocks=True),
        {"type": "message_start", "message": {"id": "msg_1", "model": SERVED,
                                              "usage": {"input_tokens": 3}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "GetWeather",
                           "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": '{"city": Paris}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
         "usage": {"output_tokens": 4}},
        {"type": "message_stop"},
    )
    full = _aggregate(chunks)
    assert full.tool_calls == []
    assert [(c["name"], c["id"], c["args"]) for c in full.invalid_tool_calls] == [
        ("GetWeather", "toolu_1", '{"city": Paris}')]


@pytest.mark.parametrize(
    ("kind", "message", "code"),
    [
        ("overloaded_error", "Overloaded", ErrorCode.PROVIDER_UNAVAILABLE),
        ("rate_limit_error", "slow down", ErrorCode.RATE_LIMIT),
        ("api_error", "Internal server error", ErrorCode.PROVIDER_UNAVAILABLE),
        ("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum",
         ErrorCode.CONTEXT_LENGTH_EXCEEDED),
        ("something_new", "?", ErrorCode.UNKNOWN),
    ],
)
def test_stream_error_event_types(kind: str, message: str, code: ErrorCode) -> None:
    parser = AnthropicStreamParser(MODEL, blocks=False, secrets=(FAKE_ANTHROPIC_KEY,))
    event = {"type": "error", "error": {"type": kind, "message": message}}
    with pytest.raises(ChatModelError) as info:
        list(parser.feed(ServerEvent("error", event)))
    assert info.value.code is code
    assert info.value.context["provider_error_type"] == kind


def test_stream_without_message_stop_fails_in_finish() -> None:
    parser = AnthropicStreamParser(MODEL, blocks=False)
    list(parser.feed(ServerEvent("message_start", {"type": "message_start",
                                                   "message": {"id": "msg_1"}})))
    with pytest.raises(InvalidResponseError):
        list(parser.finish())


# --- request details ------------------------------------------------------------------------


def test_max_tokens_default_config_and_call_override() -> None:
    hello: list[BaseMessage] = [HumanMessage("hi")]
    assert make().build_body(hello, None, False)["max_tokens"] == 4096
    assert make(max_tokens=300).build_body(hello, None, False)["max_tokens"] == 300
    assert make(max_tokens=300).build_body(hello, None, False, max_tokens=20)["max_tokens"] == 20


def test_call_kwargs_override_model_and_pass_through() -> None:
    body = make(provider_specific={"top_p": 0.5}).build_body(
        [HumanMessage("hi")], None, False, model="claude-opus-4-1", top_p=0.9, temperature=0.0)
    assert (body["model"], body["top_p"], body["temperature"]) == ("claude-opus-4-1", 0.9, 0.0)


def test_unsupported_message_type_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="function"):
        make().build_body([FunctionMessage(content="x", name="f")], None, False)


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        (None, "https://api.anthropic.com/v1/models"),
        ("https://gateway.example/anthropic/v1/", "https://gateway.example/anthropic/v1/models"),
    ],
)
def test_health_probe_lists_models(base_url: str | None, url: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [], "has_more": False})

    fields: dict[str, Any] = {"base_url": base_url} if base_url else {}
    model = make(http_client=httpx.Client(transport=httpx.MockTransport(handler)), **fields)
    model.health_probe()
    assert [(r.method, str(r.url)) for r in seen] == [("GET", url)]
    assert seen[0].headers["x-api-key"] == FAKE_ANTHROPIC_KEY
    assert seen[0].headers["anthropic-version"] == "2023-06-01"


def test_health_probe_cassette(cassette: Use) -> None:
    with cassette("anthropic", "models") as cass:
        make().health_probe()
    assert cass.play_count == 1


# --- through the registry -------------------------------------------------------------------


def _wrapper() -> ChatModelWrapper:
    registry = ChatModelRegistry()
    register_builtins(registry)
    return registry.new_provider("anthropic", model=MODEL, api_key=FAKE_ANTHROPIC_KEY)


def test_registry_creates_the_native_model() -> None:
    wrapper = _wrapper()
    assert isinstance(wrapper.underlying, ChatAnthropicNative)
    assert wrapper.underlying.base_url == "https://api.anthropic.com"
    assert wrapper.underlying.max_tokens is None  # 4096 is applied per request


def test_create_anthropic_from_config() -> None:
    from chatmodels_langchain.config import ProviderConfig

    model = create_anthropic(ProviderConfig(provider="anthropic", model=MODEL,
                                            api_key=FAKE_ANTHROPIC_KEY, temperature=0.3,
                                            provider_specific={"top_k": 3}))
    assert (model.temperature, model.provider_specific) == (0.3, {"top_k": 3})


def test_registry_invoke_and_stream(cassette: Use) -> None:
    wrapper = _wrapper()
    with cassette("anthropic", "plain"):
        result = wrapper.invoke("What is the capital of France? One word.")
    assert result.content == "Paris."
    assert result.response_metadata["model_provider"] == "anthropic"
    with cassette("anthropic", "stream_tool_calls"):
        chunks = list(wrapper.bind_tools([GetWeather, GetTime]).stream(QUESTION))
    _check_tool_stream(chunks)
