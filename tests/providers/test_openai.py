"""The `openai` / `openai_compatible` wire format, replayed from cassettes/openai/*.yaml.

Every cassette request is matched on its parsed JSON body, so a test that replays a cassette
also proves the exact request body. Cases where a cassette adds nothing (connection errors,
timeouts, stream closing) use `httpx.MockTransport`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from pydantic import BaseModel, Field

from chatmodels_langchain.errors import (
    AuthenticationError,
    ChatModelError,
    ConfigError,
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
from chatmodels_langchain.providers.openai import (
    ChatOpenAICompatibleNative,
    ChatOpenAINative,
)
from chatmodels_langchain.registry import ChatModelRegistry
from tests.providers.conftest import FAKE_OPENAI_KEY

Cassette = Callable[[str, str], AbstractContextManager[Any]]


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="City name, e.g. Paris")


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


def openai(**fields: Any) -> ChatOpenAINative:
    return ChatOpenAINative(**{"model": "gpt-4o-mini", "api_key": FAKE_OPENAI_KEY,
                               "max_retries": 0, **fields})


def sent_body(cass: Any, index: int = 0) -> dict[str, Any]:
    """The JSON body of the cassette request that was matched (played) at `index`."""
    assert cass.play_counts[index] == 1
    body = cass.requests[index].body
    parsed: dict[str, Any] = json.loads(body.decode() if isinstance(body, bytes) else body)
    return parsed


WEATHER_QUESTION = "What's the weather in Paris and Tokyo?"
PARIS_TOKYO = [
    {"name": "GetWeather", "args": {"city": "Paris"}, "id": "call_paris01", "type": "tool_call"},
    {"name": "GetWeather", "args": {"city": "Tokyo"}, "id": "call_tokyo01", "type": "tool_call"},
]


# --- plain requests ------------------------------------------------------------------------


def test_invoke_returns_text_usage_and_metadata(cassette: Cassette) -> None:
    with cassette("openai", "plain") as cass:
        message = openai().invoke("Say hello in one word.")
    assert cass.all_played
    assert isinstance(message, AIMessage)
    assert message.content == "Hello!"
    assert message.id == "chatcmpl-OAIplain0001"
    assert message.tool_calls == [] and message.invalid_tool_calls == []
    assert message.usage_metadata == {
        "input_tokens": 13, "output_tokens": 2, "total_tokens": 15,
        "input_token_details": {"cache_read": 0, "audio": 0},
        "output_token_details": {"reasoning": 0, "audio": 0},
    }
    assert message.response_metadata == {
        "model_name": "gpt-4o-mini-2024-07-18",
        "finish_reason": "stop",
        "id": "chatcmpl-OAIplain0001",
        "system_fingerprint": "fp_0ba0d124f1",
        "service_tier": "default",
        "model_provider": "openai",
        "token_usage": {  # the raw usage, as langchain-openai reports it too
            "prompt_tokens": 13, "completion_tokens": 2, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        },
    }


async def test_ainvoke(cassette: Cassette) -> None:
    with cassette("openai", "plain") as cass:
        message = await openai().ainvoke("Say hello in one word.")
    assert cass.all_played
    assert message.content == "Hello!"
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 15


def test_batch(cassette: Cassette) -> None:
    with cassette("openai", "batch") as cass:
        answers = openai().batch(["Reply with the letter A.", "Reply with the letter B."])
    assert cass.all_played
    assert [a.content for a in answers] == ["A", "B"]
    assert [a.id for a in answers] == ["chatcmpl-OAIbatchA001", "chatcmpl-OAIbatchB001"]


async def test_abatch(cassette: Cassette) -> None:
    with cassette("openai", "batch") as cass:
        answers = await openai().abatch(["Reply with the letter B.", "Reply with the letter A."])
    assert cass.all_played
    assert [a.content for a in answers] == ["B", "A"]


def test_multi_turn_sends_the_history(cassette: Cassette) -> None:
    history: list[BaseMessage] = [
        HumanMessage("My name is Ada."),
        AIMessage("Nice to meet you, Ada!"),
        HumanMessage("What is my name?"),
    ]
    with cassette("openai", "multi_turn") as cass:
        message = openai().invoke(history)
    assert message.content == "Your name is Ada."
    assert [m["role"] for m in sent_body(cass)["messages"]] == ["user", "assistant", "user"]


def test_system_message_temperature_max_tokens_stop_and_provider_specific(
    cassette: Cassette,
) -> None:
    model = openai(temperature=0.2, max_tokens=20, provider_specific={"seed": 7})
    with cassette("openai", "system_params") as cass:
        message = model.invoke(
            [SystemMessage("You are terse. Answer in French."), HumanMessage("Say hello.")],
            stop=["\n"],
        )
    assert message.content == "Bonjour."
    body = sent_body(cass)
    assert body["messages"][0] == {"role": "system", "content": "You are terse. Answer in French."}
    assert body["max_completion_tokens"] == 20 and "max_tokens" not in body
    assert (body["temperature"], body["stop"], body["seed"]) == (0.2, ["\n"], 7)


def test_reasoning_model_uses_developer_role_and_reports_cache_and_reasoning(
    cassette: Cassette,
) -> None:
    model = openai(model="o3-mini", max_tokens=500)
    with cassette("openai", "reasoning_usage") as cass:
        message = model.invoke([SystemMessage("Be brief."), HumanMessage("What is 2+2?")])
    assert sent_body(cass)["messages"][0]["role"] == "developer"
    assert message.content == "4"
    assert message.usage_metadata == {
        "input_tokens": 1200, "output_tokens": 210, "total_tokens": 1410,
        "input_token_details": {"cache_read": 1024, "audio": 0},
        "output_token_details": {"reasoning": 192, "audio": 0},
    }
    assert message.response_metadata["model_name"] == "o3-mini-2025-01-31"


def test_images_standard_and_openai_blocks(cassette: Cassette) -> None:
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJ"
           "RU5ErkJggg==")
    content: list[str | dict[str, Any]] = [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image", "base64": png, "mime_type": "image/png"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    ]
    with cassette("openai", "image_input") as cass:
        message = openai().invoke([HumanMessage(content=content)])
    assert message.content == "A single red pixel and a cat."
    parts = sent_body(cass)["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}


# --- streaming -----------------------------------------------------------------------------


def _chunks(stream: Iterator[Any]) -> list[AIMessageChunk]:
    chunks = list(stream)
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    return chunks


def _merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


def test_stream_yields_text_then_usage_on_the_last_chunk(cassette: Cassette) -> None:
    with cassette("openai", "stream_text") as cass:
        chunks = list(openai().stream("Count to three."))
    body = sent_body(cass)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert [c.content for c in chunks] == ["One", ", two", ", three.", ""]
    assert all(c.usage_metadata is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {"chatcmpl-OAIstream001"}
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.usage_metadata is not None and last.usage_metadata["total_tokens"] == 18
    merged = _merge(chunks)
    assert merged.content == "One, two, three."
    assert merged.response_metadata["finish_reason"] == "stop"
    assert merged.response_metadata["model_name"] == "gpt-4o-mini-2024-07-18"
    assert merged.response_metadata["model_provider"] == "openai"


async def test_astream(cassette: Cassette) -> None:
    with cassette("openai", "stream_text") as cass:
        chunks = [c async for c in openai().astream("Count to three.")]
    assert cass.all_played
    merged = _merge(chunks)
    assert merged.content == "One, two, three."
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["input_tokens"] == 12


def test_stream_tool_call_chunks_aggregate_into_parallel_tool_calls(cassette: Cassette) -> None:
    model = openai().bind_tools([GetWeather], parallel_tool_calls=True)
    with cassette("openai", "stream_tool_calls") as cass:
        chunks = _chunks(model.stream(WEATHER_QUESTION))
    assert cass.all_played
    fragments = [tc for c in chunks for tc in c.tool_call_chunks]
    assert [f["index"] for f in fragments] == [0, 0, 0, 0, 1, 1, 1]
    assert fragments[0]["id"] == "call_paris01" and fragments[0]["name"] == "GetWeather"
    assert fragments[1]["name"] is None and fragments[1]["args"] == '{"ci'
    merged = _merge(chunks)
    assert merged.content == "Let me check both."
    assert merged.tool_calls == PARIS_TOKYO
    assert merged.response_metadata["finish_reason"] == "tool_calls"


def test_stream_malformed_tool_arguments_become_invalid_tool_calls(cassette: Cassette) -> None:
    model = openai().bind_tools([GetWeather], parallel_tool_calls=True)
    with cassette("openai", "stream_invalid_tool_args"):
        merged = _merge(_chunks(model.stream(WEATHER_QUESTION)))
    assert merged.tool_calls == []
    assert [(c["name"], c["args"]) for c in merged.invalid_tool_calls] == [
        ("GetWeather", '{"city": Paris}')
    ]


# --- tools -----------------------------------------------------------------------------------


def test_parallel_tool_calls(cassette: Cassette) -> None:
    model = openai().bind_tools([GetWeather], parallel_tool_calls=True)
    with cassette("openai", "tool_calls") as cass:
        message = model.invoke(WEATHER_QUESTION)
    body = sent_body(cass)
    assert body["tools"][0]["function"]["name"] == "GetWeather"
    assert body["parallel_tool_calls"] is True and "tool_choice" not in body
    assert message.content == ""
    assert message.tool_calls == PARIS_TOKYO
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_tool_results_are_sent_back(cassette: Cassette) -> None:
    history: list[BaseMessage] = [
        HumanMessage(WEATHER_QUESTION),
        AIMessage(content="", tool_calls=PARIS_TOKYO),
        ToolMessage("18°C, sunny", tool_call_id="call_paris01"),
        ToolMessage("24°C, cloudy", tool_call_id="call_tokyo01"),
    ]
    with cassette("openai", "tool_results") as cass:
        message = openai().bind_tools([GetWeather]).invoke(history)
    assert message.content == "Paris is 18°C and sunny; Tokyo is 24°C and cloudy."
    messages = sent_body(cass)["messages"]
    assert messages[1] == {
        "role": "assistant", "content": None,
        "tool_calls": [
            {"id": "call_paris01", "type": "function",
             "function": {"name": "GetWeather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_tokyo01", "type": "function",
             "function": {"name": "GetWeather", "arguments": '{"city": "Tokyo"}'}},
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "call_paris01", "content": "18°C, sunny"},
        {"role": "tool", "tool_call_id": "call_tokyo01", "content": "24°C, cloudy"},
    ]


def test_malformed_tool_arguments_become_invalid_tool_calls(cassette: Cassette) -> None:
    model = openai().bind_tools([GetWeather], parallel_tool_calls=True)
    with cassette("openai", "invalid_tool_args"):
        message = model.invoke(WEATHER_QUESTION)
    assert [c["id"] for c in message.tool_calls] == ["call_good01"]
    assert len(message.invalid_tool_calls) == 1
    invalid = message.invalid_tool_calls[0]
    assert (invalid["id"], invalid["name"], invalid["args"]) == (
        "call_bad01", "GetWeather", '{"city": "Paris"'
    )
    assert "not valid JSON" in str(invalid["error"])


# --- structured output -----------------------------------------------------------------------


def test_structured_output_function_calling(cassette: Cassette) -> None:
    with cassette("openai", "structured_function_calling") as cass:
        person = openai().with_structured_output(Person).invoke("Ada Lovelace was 36.")
    assert person == Person(name="Ada Lovelace", age=36)
    assert sent_body(cass)["tool_choice"] == {"type": "function", "function": {"name": "Person"}}


def test_structured_output_include_raw(cassette: Cassette) -> None:
    structured = openai().with_structured_output(Person, include_raw=True)
    with cassette("openai", "structured_function_calling"):
        result = structured.invoke("Ada Lovelace was 36.")
    assert result["parsed"] == Person(name="Ada Lovelace", age=36)
    assert result["parsing_error"] is None
    assert isinstance(result["raw"], AIMessage)
    assert result["raw"].tool_calls[0]["id"] == "call_person01"


def test_structured_output_json_schema_is_made_strict(cassette: Cassette) -> None:
    structured = openai().with_structured_output(Person, method="json_schema")
    with cassette("openai", "structured_json_schema") as cass:
        person = structured.invoke("Ada Lovelace was 36.")
    assert person == Person(name="Ada Lovelace", age=36)
    schema = sent_body(cass)["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["additionalProperties"] is False


def test_structured_output_json_mode(cassette: Cassette) -> None:
    schema = {"title": "Person", "type": "object",
              "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    structured = openai().with_structured_output(schema, method="json_mode")
    with cassette("openai", "structured_json_mode") as cass:
        result = structured.invoke([
            SystemMessage("Reply with a JSON object with keys name and age."),
            HumanMessage("Ada Lovelace was 36."),
        ])
    assert result == {"name": "Ada Lovelace", "age": 36}
    assert sent_body(cass)["response_format"] == {"type": "json_object"}


def test_refusal_is_kept_and_reported_as_a_parsing_error(cassette: Cassette) -> None:
    structured = openai().with_structured_output(Person, method="json_schema", include_raw=True)
    with cassette("openai", "refusal"):
        result = structured.invoke("Tell me how to pick a lock.")
    assert result["parsed"] is None and result["parsing_error"] is not None
    assert result["raw"].additional_kwargs["refusal"] == "I'm sorry, I can't help with that."


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "error_class", "status", "text", "retryable"),
    [
        ("error_401", ErrorCode.AUTHENTICATION_FAILED, AuthenticationError, 401,
         "Incorrect API key provided", False),
        ("error_403", ErrorCode.AUTHENTICATION_FAILED, AuthenticationError, 403,
         "Country, region, or territory not supported", False),
        ("error_404", ErrorCode.MODEL_UNSUPPORTED, ModelUnsupportedError, 404,
         "`gpt-does-not-exist` does not exist", False),
        ("error_429", ErrorCode.RATE_LIMIT, RateLimitError, 429, "Rate limit reached", True),
        ("error_429_quota", ErrorCode.RATE_LIMIT, RateLimitError, 429,
         "exceeded your current quota", False),
        ("error_400", ErrorCode.INVALID_INPUT, InvalidInputError, 400,
         "Invalid 'top_logprobs'", False),
        ("error_400_context", ErrorCode.CONTEXT_LENGTH_EXCEEDED, ContextLengthExceededError, 400,
         "maximum context length is 128000 tokens", False),
        ("error_500", ErrorCode.PROVIDER_UNAVAILABLE, ProviderUnavailableError, 500,
         "The server had an error", True),
        ("error_503", ErrorCode.PROVIDER_UNAVAILABLE, ProviderUnavailableError, 503,
         "currently overloaded", True),
    ],
)
def test_http_errors_map_to_codes(
    cassette: Cassette, name: str, code: ErrorCode, error_class: type[ChatModelError],
    status: int, text: str, retryable: bool,
) -> None:
    prompts = {"error_404": ("Say hello in one word.", {"model": "gpt-does-not-exist"}),
               "error_400": ("Say hello in one word.", {}),
               "error_400_context": ("Summarise this very long document: ...", {})}
    prompt, fields = prompts.get(name, ("Say hello in one word.", {}))
    kwargs: dict[str, Any] = {"top_logprobs": 30, "logprobs": True} if name == "error_400" else {}
    with cassette("openai", name) as cass, pytest.raises(error_class) as info:
        openai(**fields).invoke(prompt, **kwargs)
    assert cass.all_played
    err = info.value
    assert err.code is code and err.retryable is retryable
    assert (err.provider, err.op) == ("openai", "invoke")
    assert err.context["status_code"] == status
    assert err.context["request_id"] == f"req_{name}"
    assert text in err.message
    assert FAKE_OPENAI_KEY not in str(err) and FAKE_OPENAI_KEY not in repr(dict(err.context))


def test_rate_limit_carries_retry_after_and_provider_error_fields(cassette: Cassette) -> None:
    with cassette("openai", "error_429"), pytest.raises(RateLimitError) as info:
        openai().invoke("Say hello in one word.")
    assert info.value.retry_after == 20.0
    assert info.value.context["provider_error_code"] == "rate_limit_exceeded"


def test_a_key_echoed_by_the_server_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(401, json={"error": {"message": f"bad key {key}",
                                                   "type": "invalid_request_error"}})

    model = openai(http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(AuthenticationError) as info:
        model.invoke("hi")
    assert FAKE_OPENAI_KEY not in str(info.value)
    assert "bad key" in str(info.value)


def test_malformed_json_body_is_an_invalid_response(cassette: Cassette) -> None:
    with cassette("openai", "malformed_json"), pytest.raises(InvalidResponseError) as info:
        openai().invoke("Say hello in one word.")
    assert info.value.code is ErrorCode.INVALID_RESPONSE
    assert "not JSON" in info.value.message


def test_truncated_stream_is_an_invalid_response_after_the_partial_text(
    cassette: Cassette,
) -> None:
    received: list[str] = []
    with cassette("openai", "stream_truncated"), pytest.raises(InvalidResponseError) as info:
        for chunk in openai().stream("Count to three."):
            received.append(str(chunk.content))
    assert received == ["One", ", two"]
    assert info.value.code is ErrorCode.INVALID_RESPONSE
    assert "truncated" in info.value.message


async def test_error_event_inside_a_stream_is_mapped(cassette: Cassette) -> None:
    received: list[str] = []
    with cassette("openai", "stream_error_event"), pytest.raises(ProviderUnavailableError) as info:
        async for chunk in openai().astream("Count to three."):
            received.append(str(chunk.content))
    assert received == ["One"]
    assert info.value.context["provider_error_type"] == "server_error"
    assert "The server had an error" in info.value.message


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"error": {"message": "slow down", "type": "rate_limit_error"}}, ErrorCode.RATE_LIMIT),
        ({"error": {"message": "upstream limit", "code": 429}}, ErrorCode.RATE_LIMIT),
        ({"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096",
          "error_type": "validation"}, ErrorCode.INVALID_INPUT),
        ({"error": {"message": "boom", "type": "api_error"}}, ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
def test_error_payloads_of_compatible_servers(payload: dict[str, Any], code: ErrorCode) -> None:
    parser = openai().new_stream_parser({})
    with pytest.raises(ChatModelError) as streamed:
        list(parser.feed(ServerEvent(None, payload)))
    assert streamed.value.code is code
    with pytest.raises(ChatModelError) as in_body:
        openai().parse_response(payload)  # some servers answer HTTP 200 with an error body
    assert in_body.value.code is code


def test_tool_arguments_that_are_not_an_object_are_invalid() -> None:
    result = openai().parse_response({"id": "c", "model": "m", "choices": [{
        "index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": ""}},
        ]}}]})
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    assert [c["id"] for c in message.invalid_tool_calls] == ["a"]
    assert message.tool_calls == [{"name": "g", "args": {}, "id": "b", "type": "tool_call"}]


def test_response_without_choices_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponseError):
        openai().parse_response({"id": "x", "object": "chat.completion", "choices": []})


# --- retries -----------------------------------------------------------------------------------


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(_http, "sleep", recorded.append)

    async def record(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(_http, "async_sleep", record)
    return recorded


def test_429_then_200_succeeds_after_retry_after(cassette: Cassette, delays: list[float]) -> None:
    with cassette("openai", "retry_429_then_200") as cass:
        message = openai(max_retries=2).invoke("Say hello in one word.")
    assert message.content == "Hello!"
    assert cass.play_counts == {0: 1, 1: 1}
    assert delays == [2.0]


async def test_async_429_then_200(cassette: Cassette, delays: list[float]) -> None:
    with cassette("openai", "retry_429_then_200") as cass:
        message = await openai(max_retries=2).ainvoke("Say hello in one word.")
    assert message.content == "Hello!" and cass.all_played
    assert delays == [2.0]


def test_without_retries_the_429_is_raised(cassette: Cassette, delays: list[float]) -> None:
    with cassette("openai", "retry_429_then_200") as cass, pytest.raises(RateLimitError):
        openai(max_retries=0).invoke("Say hello in one word.")
    assert cass.play_counts == {0: 1} and delays == []


def test_stream_is_retried_before_its_first_event(
    cassette: Cassette, delays: list[float]
) -> None:
    with cassette("openai", "stream_retry") as cass:
        text = "".join(str(c.content) for c in openai(max_retries=2).stream("Count to three."))
    assert text == "One, two, three."
    assert cass.all_played and delays == [1.0]


class _FailingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """One SSE event, then (optionally) a dropped connection; records being closed."""

    def __init__(self, fail: bool = True) -> None:
        self.fail = fail
        self.closed = False
        self.event = (
            b'data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,'
            b'"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
        )

    def __iter__(self) -> Iterator[bytes]:
        yield self.event
        yield self.event
        if self.fail:
            raise httpx.ReadError("connection reset by peer")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.event
        yield self.event
        if self.fail:
            raise httpx.ReadError("connection reset by peer")

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def test_a_stream_that_yielded_data_is_never_retried(delays: list[float]) -> None:
    calls: list[httpx.Request] = []
    stream = _FailingStream()

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, stream=stream,
                              headers={"content-type": "text/event-stream"})

    model = openai(max_retries=3, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    received: list[str] = []
    with pytest.raises(ProviderUnavailableError):
        for chunk in model.stream("hi"):
            received.append(str(chunk.content))
    assert received == ["Hi", "Hi"]
    assert len(calls) == 1 and delays == []
    assert stream.closed


def test_breaking_out_of_a_stream_closes_the_response() -> None:
    stream = _FailingStream(fail=False)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, stream=stream,
                                       headers={"content-type": "text/event-stream"})
    )
    model = openai(http_client=httpx.Client(transport=transport))
    chunks = model.stream("hi")
    assert next(chunks).content == "Hi"
    assert not stream.closed
    chunks.close()  # type: ignore[attr-defined]  # a generator
    assert stream.closed


async def test_breaking_out_of_an_async_stream_closes_the_response() -> None:
    stream = _FailingStream(fail=False)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, stream=stream,
                                       headers={"content-type": "text/event-stream"})
    )
    model = openai(http_async_client=httpx.AsyncClient(transport=transport))
    chunks = model.astream("hi")
    first = await chunks.__anext__()
    assert first.content == "Hi" and not stream.closed
    await chunks.aclose()  # type: ignore[attr-defined]  # an async generator
    assert stream.closed


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), ProviderUnavailableError),
        (httpx.ReadTimeout("timed out"), RequestTimeoutError),
    ],
)
def test_transport_failures(
    exc: Exception, error_class: type[ChatModelError], delays: list[float]
) -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise exc

    model = openai(max_retries=1, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(error_class):
        model.invoke("hi")
    assert len(attempts) == 2 and len(delays) == 1  # retryable: one retry, then raised


# --- request building (no network) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("any", "required"),
        ("required", "required"),
        ("auto", "auto"),
        ("none", "none"),
        ("GetWeather", {"type": "function", "function": {"name": "GetWeather"}}),
        (True, {"type": "function", "function": {"name": "GetWeather"}}),
    ],
)
def test_tool_choice_translation(choice: Any, sent: Any) -> None:
    captured: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(json.loads(request.content))
        return httpx.Response(200, json={"id": "c", "model": "gpt-4o-mini", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"},
             "finish_reason": "stop"}]})

    model = openai(http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    model.bind_tools([GetWeather], tool_choice=choice, parallel_tool_calls=False).invoke("hi")
    assert captured[0]["tool_choice"] == sent
    assert captured[0]["parallel_tool_calls"] is False


def test_body_precedence_and_message_shapes() -> None:
    model = openai(temperature=0.1, max_tokens=5, provider_specific={"temperature": 0.3, "seed": 1})
    body = model.build_body(
        [
            SystemMessage("s"),
            HumanMessage("hello", name="ada"),
            HumanMessage(content=[{"type": "image", "source": {
                "type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}]),
            AIMessage(content=[{"type": "text", "text": "thinking out loud"},
                               {"type": "tool_use", "id": "x", "name": "f", "input": {}}]),
        ],
        None, False, temperature=0.9, model="o1-mini", user="u-1",
    )
    assert body["model"] == "o1-mini"
    assert body["temperature"] == 0.9 and body["seed"] == 1 and body["user"] == "u-1"
    assert body["max_completion_tokens"] == 5
    assert "stop" not in body and "stream" not in body and "stream_options" not in body
    assert body["messages"] == [
        {"role": "developer", "content": "s"},
        {"role": "user", "content": "hello", "name": "ada"},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]},
        {"role": "assistant", "content": "thinking out loud"},
    ]


def test_unsupported_content_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        openai().build_body([HumanMessage(content=[{"type": "hologram"}])], None, False)


# --- auth, environment and the compatible provider -----------------------------------------


def _capture_headers(store: list[httpx.Headers]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        store.append(request.headers)
        return httpx.Response(200, json={"id": "c", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"},
             "finish_reason": "stop"}]})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_key_from_the_environment_is_sent_as_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    headers: list[httpx.Headers] = []
    model = ChatOpenAINative(model="gpt-4o-mini", http_client=_capture_headers(headers))
    model.invoke("hi")
    assert headers[0]["authorization"] == f"Bearer {FAKE_OPENAI_KEY}"


def test_compatible_without_key_sends_no_authorization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    headers: list[httpx.Headers] = []
    model = ChatOpenAICompatibleNative(model="local", base_url="http://localhost:1234/v1",
                                       http_client=_capture_headers(headers))
    assert model.invoke("hi").content == "ok"
    assert "authorization" not in headers[0]


def test_compatible_requires_base_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        ChatOpenAICompatibleNative(model="local")


def test_compatible_server_plain(cassette: Cassette, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    model = ChatOpenAICompatibleNative(
        model="meta-llama/Llama-3.1-8B-Instruct", base_url="http://localhost:8000/v1",
        max_tokens=50, max_retries=0,
    )
    with cassette("openai", "compatible_plain") as cass:
        message = model.invoke("Say hello in one word.")
    assert sent_body(cass)["max_tokens"] == 50  # compatible servers keep the classic name
    assert message.content == "Hello!"
    assert message.usage_metadata == {"input_tokens": 41, "output_tokens": 3,
                                      "total_tokens": 44}
    assert message.response_metadata["model_provider"] == "openai_compatible"
    assert "system_fingerprint" not in message.response_metadata


def test_catalog_capabilities() -> None:
    from chatmodels_langchain.metadata import Capability
    from chatmodels_langchain.providers.catalog import OPENAI

    assert Capability.IMAGE_INPUT in OPENAI.capabilities_for("gpt-4o-mini")
    assert Capability.IMAGE_INPUT in OPENAI.capabilities_for("o3")
    assert Capability.IMAGE_INPUT not in OPENAI.capabilities_for("o3-mini")
    assert OPENAI.limits_for("gpt-4o-mini") == (128_000, 16_384)


def test_health_probe_lists_models(cassette: Cassette) -> None:
    with cassette("openai", "health_models") as cass:
        openai().health_probe()
    assert cass.all_played
    assert cass.requests[0].uri == "https://api.openai.com/v1/models"


# --- through the registry ---------------------------------------------------------------------


@pytest.fixture
def registry() -> ChatModelRegistry:
    created = ChatModelRegistry()
    register_builtins(created)
    return created


def test_registry_openai_invoke_and_stream(
    cassette: Cassette, registry: ChatModelRegistry
) -> None:
    model = registry.new_provider("openai", model="gpt-4o-mini", api_key=FAKE_OPENAI_KEY,
                                  max_retries=0)
    assert isinstance(model.underlying, ChatOpenAINative)
    with cassette("openai", "plain"):
        assert model.invoke("Say hello in one word.").content == "Hello!"
    with cassette("openai", "stream_text"):
        chunks = list(model.stream("Count to three."))
    assert chunks[-1].chunk_position == "last"
    merged = _merge(chunks)
    assert merged.content == "One, two, three."
    assert merged.usage_metadata is not None and merged.usage_metadata["total_tokens"] == 18


def test_registry_errors_keep_their_code(cassette: Cassette, registry: ChatModelRegistry) -> None:
    model = registry.new_provider("openai", model="gpt-4o-mini", api_key=FAKE_OPENAI_KEY,
                                  max_retries=0)
    with cassette("openai", "error_429"), pytest.raises(RateLimitError) as info:
        model.invoke("Say hello in one word.")
    assert info.value.code is ErrorCode.RATE_LIMIT and info.value.provider == "openai"


def test_registry_openai_compatible(
    cassette: Cassette, registry: ChatModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    with pytest.raises(ConfigError):
        registry.new_provider("openai_compatible", model="meta-llama/Llama-3.1-8B-Instruct")
    model = registry.new_provider(
        "openai_compatible", model="meta-llama/Llama-3.1-8B-Instruct",
        base_url="http://localhost:8000/v1", max_tokens=50, max_retries=0,
    )
    with cassette("openai", "compatible_plain"):
        assert model.invoke("Say hello in one word.").content == "Hello!"


def test_one_pooled_client_per_model_under_concurrent_first_use() -> None:
    import threading

    from chatmodels_langchain.providers.openai import ChatOpenAINative

    model = ChatOpenAINative(model="gpt-4o-mini", api_key="sk-proj-test0000000000000000000000")
    barrier = threading.Barrier(16)
    seen: list[object] = []

    def first_use() -> None:
        barrier.wait()
        seen.append(model._transport.client)

    threads = [threading.Thread(target=first_use) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1
    model.close()
    assert model._transport._client is None
