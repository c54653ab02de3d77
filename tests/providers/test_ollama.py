"""The native Ollama provider: /api/chat wire format, replayed from cassettes/ollama/*.yaml.

Cassette request bodies were written from Ollama's API reference, independently of
`build_body`; vcrpy matches them as parsed JSON, so every cassette test also checks the request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from chatmodels_langchain.errors import (
    CapabilityError,
    ChatModelError,
    ErrorCode,
    InvalidInputError,
    InvalidResponseError,
)
from chatmodels_langchain.providers import _http
from chatmodels_langchain.providers.ollama import ChatOllamaNative, create_ollama

Cassette = Callable[[str, str], AbstractContextManager[Any]]

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"

PROXY_KEY = "ollama-proxy-secret-4f9a1c2e7b"
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


def ollama(model: str = "llama3.2", **kwargs: Any) -> ChatOllamaNative:
    kwargs.setdefault("max_retries", 0)
    return ChatOllamaNative(model=model, **kwargs)


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return {"Paris": "18°C and sunny", "Rome": "24°C, light clouds"}[city]


@tool
def get_time(city: str) -> str:
    """Current local time in a city."""
    return "10:00"


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="full name")
    age: int


PERSON_PROMPT = "Ada Lovelace was 36 years old when she died."


def aggregate(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# --- plain invoke, usage, metadata -----------------------------------------------------------


def test_invoke_returns_text_usage_and_metadata(cassette: Cassette) -> None:
    with cassette("ollama", "plain") as recorded:
        message = ollama().invoke("Why is the sky blue? Answer in one sentence.")
    assert recorded.play_count == 1
    assert isinstance(message, AIMessage)
    assert message.content.startswith("The sky is blue because air molecules scatter")
    assert message.tool_calls == [] and message.invalid_tool_calls == []
    assert message.usage_metadata == {"input_tokens": 36, "output_tokens": 29, "total_tokens": 65}
    meta = message.response_metadata
    assert meta["model_name"] == "llama3.2"
    assert meta["model_provider"] == "ollama"
    assert meta["done_reason"] == "stop"
    assert meta["created_at"] == "2025-06-12T09:15:02.401712Z"
    assert meta["total_duration"] == 1_854_021_375 and meta["eval_duration"] == 1_642_000_000
    assert "reasoning_content" not in message.additional_kwargs


async def test_ainvoke_and_batch(cassette: Cassette) -> None:
    with cassette("ollama", "plain"):
        message = await ollama().ainvoke("Why is the sky blue? Answer in one sentence.")
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 65
    model = ollama()
    with cassette("ollama", "plain"):
        [answer] = model.batch(["Why is the sky blue? Answer in one sentence."])
    assert answer.response_metadata["done_reason"] == "stop"


def test_system_message(cassette: Cassette) -> None:
    with cassette("ollama", "system"):
        message = ollama().invoke([
            SystemMessage("You are a pirate. Answer in five words."),
            HumanMessage("Where is the treasure?"),
        ])
    assert message.content == "Arr, buried beneath yon palm!"


def test_multi_turn(cassette: Cassette) -> None:
    with cassette("ollama", "multi_turn"):
        message = ollama().invoke([
            HumanMessage("My name is Grace. Remember it."),
            AIMessage("Nice to meet you, Grace!"),
            HumanMessage("What is my name?"),
        ])
    assert message.content == "Your name is Grace."


def test_options_and_provider_specific_follow_the_placement_rule(cassette: Cassette) -> None:
    # keep_alive -> top level; num_ctx, seed (via "options"), top_k (call kwarg) -> options.
    model = ollama(
        temperature=0.2, max_tokens=64,
        provider_specific={"keep_alive": "10m", "num_ctx": 8192, "options": {"seed": 42}},
    )
    with cassette("ollama", "options") as recorded:
        message = model.invoke("Count from one to ten, in words.", stop=["six"], top_k=20)
    assert recorded.play_count == 1
    assert message.content == "One, two, three, four, five, "


def test_build_body_precedence_and_defaults() -> None:
    model = ollama(temperature=0.7, provider_specific={"temperature": 0.1, "think": False})
    body = model.build_body([HumanMessage("x")], None, False, temperature=0.3)
    assert body == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "x"}],
        "stream": False,
        "think": False,
        "options": {"temperature": 0.3},
    }
    # no options at all when nothing is set; stop=[] (LangChain's default) sends nothing
    assert "options" not in ollama().build_body([HumanMessage("x")], [], True)


# --- streaming -------------------------------------------------------------------------------


def test_stream_yields_text_as_it_arrives(cassette: Cassette) -> None:
    with cassette("ollama", "stream"):
        chunks = list(ollama().stream("Say hello in three languages."))
    assert [c.content for c in chunks] == ["Hello", ", Bonjour", ", Hola", "!", ""]
    assert all(c.usage_metadata is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.usage_metadata == {"input_tokens": 31, "output_tokens": 8, "total_tokens": 39}
    total = aggregate(chunks)
    assert total.content == "Hello, Bonjour, Hola!"
    assert total.response_metadata["done_reason"] == "stop"
    assert total.response_metadata["model_name"] == "llama3.2"
    assert total.response_metadata["model_provider"] == "ollama"


async def test_astream_yields_text_as_it_arrives(cassette: Cassette) -> None:
    with cassette("ollama", "stream"):
        chunks = [c async for c in ollama().astream("Say hello in three languages.")]
    total = aggregate(chunks)
    assert [c.content for c in chunks][:4] == ["Hello", ", Bonjour", ", Hola", "!"]
    assert total.content == "Hello, Bonjour, Hola!"
    assert total.usage_metadata == {"input_tokens": 31, "output_tokens": 8, "total_tokens": 39}


def test_stream_tool_call_chunks_aggregate_into_tool_calls(cassette: Cassette) -> None:
    model = ollama().bind_tools([get_weather])
    with cassette("ollama", "stream_tool_calls"):
        chunks = list(model.stream("What's the weather in Paris?"))
    [first] = [c for c in chunks if c.tool_call_chunks]
    [piece] = first.tool_call_chunks
    assert piece["index"] == 0 and piece["name"] == "get_weather"
    assert json.loads(piece["args"] or "") == {"city": "Paris"}
    total = aggregate(chunks)
    [call] = total.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
    assert call["id"] is not None and call["id"].startswith("call_")
    assert total.invalid_tool_calls == []
    # the generated id is deterministic: a replay gives the same one
    with cassette("ollama", "stream_tool_calls"):
        again = aggregate(list(model.stream("What's the weather in Paris?")))
    assert again.tool_calls[0]["id"] == call["id"]


async def test_astream_parallel_tool_calls_keep_server_ids(cassette: Cassette) -> None:
    model = ollama().bind_tools([get_weather, get_time])
    with cassette("ollama", "stream_parallel_tool_calls"):
        chunks = [c async for c in model.astream("Weather and local time in Tokyo?")]
    total = aggregate(chunks)
    assert [(c["name"], c["args"], c["id"]) for c in total.tool_calls] == [
        ("get_weather", {"city": "Tokyo"}, "call_k3ozh1u7"),
        ("get_time", {"city": "Tokyo"}, "call_p0w2x9qa"),
    ]
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == 40


def test_thinking_is_streamed_as_reasoning_content(cassette: Cassette) -> None:
    model = ollama("qwen3", provider_specific={"think": True})
    with cassette("ollama", "thinking"):
        chunks = list(model.stream("Is 17 prime? Answer yes or no."))
    assert chunks[0].content == ""
    assert chunks[0].additional_kwargs == {"reasoning_content": "17 has no divisors "}
    total = aggregate(chunks)
    assert total.content == "Yes"
    assert total.additional_kwargs["reasoning_content"] == "17 has no divisors other than 1 and 17."


def test_thinking_on_invoke(cassette: Cassette) -> None:
    model = ollama("qwen3", provider_specific={"think": True})
    with cassette("ollama", "thinking_invoke"):
        message = model.invoke("Is 17 prime? Answer yes or no.")
    assert message.content == "Yes"
    assert message.additional_kwargs["reasoning_content"].startswith("17 has no divisors")


def test_reasoning_is_sent_back_as_thinking() -> None:
    history = AIMessage("Yes", additional_kwargs={"reasoning_content": "17 is prime."})
    body = ollama("qwen3").build_body([HumanMessage("Is 17 prime?"), history], None, False)
    assert body["messages"][1] == {
        "role": "assistant", "content": "Yes", "thinking": "17 is prime.",
    }


# --- tools -----------------------------------------------------------------------------------


def test_parallel_tool_calls_get_distinct_deterministic_ids(cassette: Cassette) -> None:
    model = ollama().bind_tools([get_weather])
    with cassette("ollama", "parallel_tool_calls"):
        message = model.invoke("What's the weather in Paris and in Rome?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"}),
    ]
    ids = [c["id"] for c in message.tool_calls]
    assert all(i and i.startswith("call_") for i in ids) and len(set(ids)) == 2
    with cassette("ollama", "parallel_tool_calls"):
        again = model.invoke("What's the weather in Paris and in Rome?")
    assert [c["id"] for c in again.tool_calls] == ids


def test_malformed_tool_arguments_become_invalid_tool_calls(cassette: Cassette) -> None:
    model = ollama().bind_tools([get_weather])
    with cassette("ollama", "malformed_tool_args"):
        message = model.invoke("What's the weather in Oslo?")
    [bad] = message.invalid_tool_calls
    assert bad["name"] == "get_weather" and bad["args"] == '{"city": "Oslo"'
    assert bad["error"] and "not valid JSON" in bad["error"]
    # a JSON-encoded string that parses is accepted as the arguments object
    [good] = message.tool_calls
    assert good["args"] == {"city": "Bergen"}


def test_tool_round_trip_with_generated_ids(cassette: Cassette) -> None:
    model = ollama().bind_tools([get_weather])
    question = HumanMessage("What's the weather in Paris?")
    with cassette("ollama", "tool_round_trip") as recorded:
        first = model.invoke([question])
        [call] = first.tool_calls
        result = get_weather.invoke(call)  # a ToolMessage echoing call["id"]
        assert isinstance(result, ToolMessage) and result.tool_call_id == call["id"]
        answer = model.invoke([question, first, result])
    # the second request matched the cassette only if it carried the assistant tool call
    # (arguments as an object, same id) and the result with tool_name + tool_call_id
    assert recorded.all_played
    assert answer.content == "It is 18°C and sunny in Paris."


def test_tool_results_for_parallel_calls(cassette: Cassette) -> None:
    history = [
        HumanMessage("What's the weather in Paris and in Rome?"),
        AIMessage("", tool_calls=[
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a"},
            {"name": "get_weather", "args": {"city": "Rome"}, "id": "call_b"},
        ]),
        ToolMessage("18°C and sunny", tool_call_id="call_a"),
        ToolMessage("24°C, light clouds", tool_call_id="call_b"),
    ]
    with cassette("ollama", "tool_results") as recorded:
        answer = ollama().bind_tools([get_weather]).invoke(history)
    assert recorded.play_count == 1
    assert answer.content.startswith("Paris: 18°C")


def test_tool_result_name_falls_back_to_the_tool_message_name() -> None:
    body = ollama().build_body(
        [ToolMessage("42", tool_call_id="unknown", name="calc")], None, False
    )
    assert body["messages"] == [
        {"role": "tool", "content": "42", "tool_name": "calc", "tool_call_id": "unknown"}
    ]


def test_tool_choice_mapping() -> None:
    model = ollama()
    tools = [{"type": "function", "function": {"name": n, "parameters": {}, "strict": True}}
             for n in ("a", "b")]
    msgs = [HumanMessage("x")]

    def sent(**kwargs: Any) -> list[str]:
        body = model.build_body(msgs, None, False, tools=tools, **kwargs)
        return [t["function"]["name"] for t in body.get("tools", [])]

    assert sent() == ["a", "b"] and sent(tool_choice="auto") == ["a", "b"]
    assert sent(tool_choice="none") == []
    assert sent(tool_choice="b") == ["b"]
    assert sent(tool_choice={"type": "function", "function": {"name": "a"}}) == ["a"]
    assert "strict" not in model.build_body(msgs, None, False, tools=tools)["tools"][0]["function"]
    with pytest.raises(CapabilityError, match="cannot force a tool call") as forced:
        sent(tool_choice="any")
    assert forced.value.code is ErrorCode.CAPABILITY_UNSUPPORTED
    single = model.build_body(msgs, None, False, tools=tools[:1], tool_choice="required")
    assert [t["function"]["name"] for t in single["tools"]] == ["a"]
    with pytest.raises(InvalidInputError, match="names no bound tool"):
        sent(tool_choice="c")
    with pytest.raises(CapabilityError, match="parallel"):
        sent(parallel_tool_calls=False)
    assert sent(parallel_tool_calls=True) == ["a", "b"]


# --- structured output -----------------------------------------------------------------------


def test_structured_output_function_calling(cassette: Cassette) -> None:
    structured = ollama().with_structured_output(Person, include_raw=True)
    with cassette("ollama", "structured_function_calling"):
        out = structured.invoke(PERSON_PROMPT)
    assert out["parsed"] == Person(name="Ada Lovelace", age=36)
    assert out["parsing_error"] is None
    assert out["raw"].tool_calls[0]["name"] == "Person"


def test_structured_output_json_schema(cassette: Cassette) -> None:
    structured = ollama().with_structured_output(Person, method="json_schema")
    with cassette("ollama", "structured_json_schema"):
        assert structured.invoke(PERSON_PROMPT) == Person(name="Ada Lovelace", age=36)


def test_structured_output_json_mode_reports_parsing_error(cassette: Cassette) -> None:
    structured = ollama().with_structured_output(Person, method="json_mode", include_raw=True)
    with cassette("ollama", "structured_json_mode"):
        out = structured.invoke(PERSON_PROMPT + " Reply in JSON with keys name and age.")
    assert out["parsed"] is None
    assert out["parsing_error"] is not None
    assert json.loads(out["raw"].content) == {"name": "Ada Lovelace", "age": "thirty-six"}


def test_unsupported_response_format_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="unsupported response_format"):
        ollama().build_body([HumanMessage("x")], None, False, response_format={"type": "xml"})


# --- images and message conversion -----------------------------------------------------------


def test_images_are_sent_inline_as_base64(cassette: Cassette) -> None:
    message = HumanMessage(content=[
        {"type": "text", "text": "What is in this image?"},
        {"type": "image", "base64": PIXEL, "mime_type": "image/png"},
        {"type": "text", "text": "And this one?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ])
    with cassette("ollama", "image") as recorded:
        answer = ollama("llava").invoke([message])
    assert recorded.play_count == 1
    assert answer.content == "Both images are a single white pixel."


def test_v0_base64_block_is_accepted() -> None:
    block = {"type": "image", "source_type": "base64", "data": PIXEL, "mime_type": "image/png"}
    body = ollama().build_body([HumanMessage(content=[block])], None, False)
    assert body["messages"][0] == {"role": "user", "content": "", "images": [PIXEL]}


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
         "cannot fetch image URLs"),
        ({"type": "image", "url": "http://example.com/cat.png"}, "cannot fetch image URLs"),
        ({"type": "image", "file_id": "file-123"}, "inline as base64"),
        ({"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"}, "'audio'"),
    ],
)
def test_unusable_content_blocks_raise_invalid_input(block: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as info:
        ollama().build_body([HumanMessage(content=[block])], None, False)
    assert info.value.code is ErrorCode.INVALID_INPUT and info.value.provider == "ollama"


def test_unknown_role_raises_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="role 'function'"):
        ollama().build_body([ChatMessage(content="x", role="function")], None, False)
    body = ollama().build_body([ChatMessage(content="x", role="system")], None, False)
    assert body["messages"] == [{"role": "system", "content": "x"}]


def test_assistant_reasoning_and_tool_use_blocks_are_not_sent_as_text() -> None:
    history = AIMessage(content=[
        {"type": "thinking", "thinking": "hmm"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
    ], tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "t1"}])
    body = ollama().build_body([history], None, False)
    assert body["messages"] == [{
        "role": "assistant", "content": "Checking.",
        "tool_calls": [{"id": "t1", "function": {"name": "get_weather",
                                                  "arguments": {"city": "Paris"}}}],
    }]


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model", "code", "fragment", "request_id"),
    [
        ("error_401", "llama3.2", ErrorCode.AUTHENTICATION_FAILED, "unauthorized",
         "req_7f3a9c0e21"),
        ("error_403", "llama3.2", ErrorCode.AUTHENTICATION_FAILED, "not allowed to use model",
         "req_0b77d1e5aa"),
        ("error_404", "llama9", ErrorCode.MODEL_UNSUPPORTED, "model 'llama9' not found", None),
        ("error_429", "llama3.2", ErrorCode.RATE_LIMIT, "too many requests", None),
        ("error_400_context", "llama3.2", ErrorCode.CONTEXT_LENGTH_EXCEEDED,
         "exceeds the context length", None),
        ("error_500", "llama3.2", ErrorCode.PROVIDER_UNAVAILABLE, "llama runner process", None),
        ("error_503", "llama3.2", ErrorCode.PROVIDER_UNAVAILABLE, "server busy", None),
    ],
)
def test_http_errors_map_to_codes(
    cassette: Cassette, name: str, model: str, code: ErrorCode, fragment: str,
    request_id: str | None,
) -> None:
    with cassette("ollama", name), pytest.raises(ChatModelError) as info:
        ollama(model, api_key=PROXY_KEY).invoke("hi")
    err = info.value
    assert err.code is code
    assert fragment in err.message
    assert err.provider == "ollama" and err.model == model and err.op == "invoke"
    assert err.context.get("request_id") == request_id
    assert PROXY_KEY not in str(err) and PROXY_KEY not in repr(dict(err.context))
    assert err.retryable is (code in {ErrorCode.RATE_LIMIT, ErrorCode.PROVIDER_UNAVAILABLE})
    if code is ErrorCode.RATE_LIMIT:
        assert err.retry_after == 7.0


def test_model_without_tool_support_is_invalid_input(cassette: Cassette) -> None:
    with cassette("ollama", "error_400"), pytest.raises(InvalidInputError) as info:
        ollama("gemma3").bind_tools([get_weather]).invoke("hi")
    assert info.value.code is ErrorCode.INVALID_INPUT
    assert "does not support tools" in info.value.message


def test_retry_after_429_honours_retry_after(
    cassette: Cassette, monkeypatch: pytest.MonkeyPatch
) -> None:
    delays: list[float] = []
    monkeypatch.setattr(_http, "sleep", delays.append)
    with cassette("ollama", "retry_429_then_200") as recorded:
        message = ollama(max_retries=2).invoke("hi")
    assert message.content == "Hello! How can I help you today?"
    assert delays == [3.0]
    assert recorded.play_count == 2 and recorded.all_played


def test_malformed_json_body_is_invalid_response(cassette: Cassette) -> None:
    with cassette("ollama", "malformed_json"), pytest.raises(InvalidResponseError) as info:
        ollama().invoke("hi")
    assert info.value.code is ErrorCode.INVALID_RESPONSE


@pytest.mark.parametrize(
    "data", [[1, 2], {"model": "llama3.2", "done": False}, {"message": "hi", "done": True}, "x"]
)
def test_unexpected_response_shapes_are_invalid_response(data: Any) -> None:
    with pytest.raises(InvalidResponseError, match="unexpected Ollama chat response"):
        ollama().parse_response(data)


def test_truncated_stream_is_invalid_response(cassette: Cassette) -> None:
    seen: list[str] = []
    with cassette("ollama", "stream_truncated"), pytest.raises(InvalidResponseError) as info:
        for chunk in ollama(max_retries=2).stream("hi"):
            seen.append(str(chunk.content))
    assert seen == ["Hello", "! How"]
    assert info.value.code is ErrorCode.INVALID_RESPONSE
    assert "done: true" in info.value.message


async def test_error_line_mid_stream_is_raised_and_not_retried(cassette: Cassette) -> None:
    seen: list[str] = []
    with cassette("ollama", "stream_error_event") as recorded:
        with pytest.raises(ChatModelError) as info:
            async for chunk in ollama(max_retries=2).astream("hi"):
                seen.append(str(chunk.content))
        assert recorded.play_count == 1
    assert seen == ["Hello"]
    assert info.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert "unexpected EOF" in info.value.message
    assert info.value.context["in_stream"] is True


def test_error_line_about_context_length_is_context_length_exceeded() -> None:
    parser = ollama().new_stream_parser({})
    event = _http.ServerEvent(None, {"error": "prompt is too long for the context window"})
    with pytest.raises(ChatModelError) as info:
        list(parser.feed(event))
    assert info.value.code is ErrorCode.CONTEXT_LENGTH_EXCEEDED


# --- transport behaviour through the model (MockTransport) -----------------------------------

DONE_LINE = json.dumps({"model": "llama3.2", "created_at": "t", "done": True,
                        "done_reason": "stop", "message": {"role": "assistant", "content": ""},
                        "prompt_eval_count": 1, "eval_count": 1})
TEXT_LINE = json.dumps({"model": "llama3.2", "created_at": "t", "done": False,
                        "message": {"role": "assistant", "content": "Hi"}})


def test_auth_header_only_when_a_key_is_configured() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=DONE_LINE)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    ollama(http_client=client).invoke("x")
    ollama(http_client=client, api_key=PROXY_KEY, base_url="https://gpu.example:8443/").invoke("x")
    assert "authorization" not in seen[0].headers
    assert str(seen[0].url) == "http://localhost:11434/api/chat"
    assert seen[1].headers["authorization"] == f"Bearer {PROXY_KEY}"
    assert str(seen[1].url) == "https://gpu.example:8443/api/chat"


def test_a_key_echoed_by_a_proxy_never_reaches_the_error() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={
            "error": f"invalid credentials: {request.headers['authorization']}"})

    client = httpx.Client(transport=httpx.MockTransport(echo))
    with pytest.raises(ChatModelError) as info:
        ollama(http_client=client, api_key=PROXY_KEY).invoke("x")
    assert info.value.code is ErrorCode.AUTHENTICATION_FAILED
    assert "invalid credentials" in info.value.message
    assert PROXY_KEY not in str(info.value) and PROXY_KEY not in repr(info.value)


def test_connection_refused_is_provider_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(ChatModelError) as info:
        ollama(http_client=client).invoke("x")
    assert info.value.code is ErrorCode.PROVIDER_UNAVAILABLE


async def test_timeout_is_request_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    with pytest.raises(ChatModelError) as info:
        await ollama(http_async_client=client).ainvoke("x")
    assert info.value.code is ErrorCode.REQUEST_TIMEOUT


class _Lines(httpx.SyncByteStream):
    """A response body that records whether it was closed."""

    def __init__(self, *lines: str, fail_after: bool = False) -> None:
        self.lines = lines
        self.fail_after = fail_after
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for line in self.lines:
            yield (line + "\n").encode()
        if self.fail_after:
            raise httpx.ReadError("connection reset")

    def close(self) -> None:
        self.closed = True


class _ALines(httpx.AsyncByteStream):
    def __init__(self, *lines: str) -> None:
        self.lines = lines
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for line in self.lines:
            yield (line + "\n").encode()

    async def aclose(self) -> None:
        self.closed = True


def test_leaving_a_stream_early_closes_the_response() -> None:
    body = _Lines(TEXT_LINE, TEXT_LINE, DONE_LINE)
    client = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, stream=body)))
    stream = ollama(http_client=client).stream("x")
    assert next(stream).content == "Hi"
    stream.close()
    assert body.closed


async def test_leaving_an_async_stream_early_closes_the_response() -> None:
    body = _ALines(TEXT_LINE, TEXT_LINE, DONE_LINE)
    client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, stream=body)))
    stream = ollama(http_async_client=client).astream("x")
    assert (await anext(stream)).content == "Hi"
    await stream.aclose()
    assert body.closed


def test_a_stream_that_yielded_data_is_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, stream=_Lines(TEXT_LINE, fail_after=True))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    seen: list[str] = []
    with pytest.raises(ChatModelError) as info:
        for chunk in ollama(http_client=client, max_retries=3).stream("x"):
            seen.append(str(chunk.content))
    assert seen == ["Hi"] and len(calls) == 1
    assert info.value.code is ErrorCode.PROVIDER_UNAVAILABLE


# --- health, creator, registry ---------------------------------------------------------------


def test_health_probe_lists_tags(cassette: Cassette) -> None:
    with cassette("ollama", "health") as recorded:
        ollama().health_probe()
    assert recorded.play_count == 1


def test_create_ollama_from_config() -> None:
    from chatmodels_langchain.config import ProviderConfig

    config = ProviderConfig(provider="ollama", model="qwen3", temperature=0.5,
                            base_url="http://gpu:11434", provider_specific={"num_ctx": 4096})
    model = create_ollama(config)
    assert isinstance(model, ChatOllamaNative)
    assert (model.model, model.base_url, model.temperature) == ("qwen3", "http://gpu:11434", 0.5)
    assert model.build_body([HumanMessage("x")], None, False)["options"] == {
        "num_ctx": 4096, "temperature": 0.5,
    }
    params = model._get_ls_params()
    assert params["ls_provider"] == "ollama" and params["ls_model_name"] == "qwen3"


def test_through_the_registry(cassette: Cassette) -> None:
    from chatmodels_langchain import ChatModelRegistry
    from chatmodels_langchain.metadata import Capability
    from chatmodels_langchain.providers import register_builtins

    registry = ChatModelRegistry()
    register_builtins(registry)
    model = registry.new_provider("ollama")  # no key, default model and base URL
    assert model.model == "llama3.2"
    assert model.supports(Capability.TOOL_CALLING)
    assert not model.supports(Capability.TOOL_CHOICE)
    with cassette("ollama", "plain"):
        message = model.invoke("Why is the sky blue? Answer in one sentence.")
    assert message.usage_metadata is not None and message.usage_metadata["input_tokens"] == 36
    assert message.response_metadata["model_provider"] == "ollama"
    with pytest.raises(CapabilityError):
        model.bind_tools([get_weather], tool_choice="any")
    with cassette("ollama", "stream"):
        text = "".join(str(c.content) for c in model.stream("Say hello in three languages."))
    assert text == "Hello, Bonjour, Hola!"
    # without tool_choice the wrapper prefers the server-enforced JSON schema
    with cassette("ollama", "structured_json_schema"):
        assert model.with_structured_output(Person).invoke(PERSON_PROMPT) == Person(
            name="Ada Lovelace", age=36
        )
    vision = registry.new_provider("ollama", model="llava:13b")
    assert vision.supports(Capability.IMAGE_INPUT)
    assert not vision.supports(Capability.TOOL_CALLING)
