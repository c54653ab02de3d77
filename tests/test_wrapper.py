"""ChatModelWrapper: delegation, capability gating, error mapping, streaming, LangChain fit."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

from chatmodels_langchain import (
    AuthenticationError,
    Capability,
    CapabilityError,
    ChatModelError,
    ChatModelRegistry,
    ChatModelWrapper,
    ErrorCode,
    ProviderMetadata,
    RateLimitError,
)
from chatmodels_langchain.providers import register_builtins
from chatmodels_langchain.providers.fake import FakeChatModel

KEY = "sk-proj-Zq8xY3vB7nM2kL5pR9tW1uE4iO6aS0dF"


@pytest.fixture
def registry() -> ChatModelRegistry:
    reg = ChatModelRegistry()
    register_builtins(reg)
    return reg


def fake(registry: ChatModelRegistry, *responses: Any, caps: list[str] | None = None,
         model: str = "fake-chat") -> ChatModelWrapper:
    specific: dict[str, Any] = {"responses": list(responses)}
    if caps is not None:
        specific["capabilities"] = caps
    return registry.new_provider("fake", model=model, provider_specific=specific)


class Weather(BaseModel):
    """Weather in a city."""

    city: str
    celsius: float


def test_constructible_from_fields_like_new_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = ChatModelWrapper(provider="fake", model="fake-x", temperature=0.1)
    assert isinstance(model, BaseChatModel)
    assert model.model == "fake-x" and model.temperature == 0.1
    assert isinstance(model.underlying, FakeChatModel)


def test_invoke_batch_async_delegate(registry: ChatModelRegistry) -> None:
    model = fake(registry, "one", "two", "three")
    assert model.invoke("hi").content == "one"
    assert [m.content for m in model.batch(["a", "b"])] == ["two", "three"]
    result = asyncio.run(model.ainvoke("c"))
    assert result.content == "one"  # the script cycles


def test_chain_and_usage(registry: ChatModelRegistry) -> None:
    model = fake(registry)
    chain = ChatPromptTemplate.from_messages([("human", "Say {word}")]) | model | StrOutputParser()
    assert chain.invoke({"word": "cheese"}) == "You said: Say cheese"
    message = model.invoke("hello world")
    assert message.usage_metadata is not None and message.usage_metadata["input_tokens"] == 2
    assert message.response_metadata["model_name"] == "fake-chat"


def test_caller_messages_not_mutated(registry: ChatModelRegistry) -> None:
    model = fake(registry, "x")
    messages: list[BaseMessage] = [SystemMessage("be brief"), HumanMessage("hi")]
    snapshot = copy.deepcopy(messages)
    model.invoke(messages)
    list(model.stream(messages))
    assert messages == snapshot


def test_errors_leave_as_chat_model_error(registry: ChatModelRegistry) -> None:
    model = fake(registry, {"error": "rate_limit", "message": "slow down"}, ValueError("bad arg"))
    with pytest.raises(RateLimitError) as info:
        model.invoke("x")
    assert info.value.provider == "fake" and info.value.model == "fake-chat"
    with pytest.raises(ChatModelError) as info2:
        model.invoke("x")
    assert info2.value.code == ErrorCode.INVALID_INPUT
    assert isinstance(info2.value.__cause__, ValueError)
    assert info2.value.op == "invoke"


def test_stream_errors_have_stream_op(registry: ChatModelRegistry) -> None:
    model = fake(registry, RuntimeError("kaput"))
    with pytest.raises(ChatModelError) as info:
        list(model.stream("x"))
    assert info.value.op == "stream" and info.value.code == ErrorCode.UNKNOWN


def test_async_errors(registry: ChatModelRegistry) -> None:
    model = fake(registry, {"error": "authentication_failed"})

    async def run() -> None:
        with pytest.raises(AuthenticationError) as info:
            await model.ainvoke("x")
        assert info.value.op == "ainvoke"

    asyncio.run(run())


def test_with_retry_and_fallbacks_use_subclasses(registry: ChatModelRegistry) -> None:
    flaky = fake(registry, {"error": "rate_limit"}, "recovered")
    retrying = flaky.with_retry(retry_if_exception_type=(RateLimitError,), stop_after_attempt=2,
                                wait_exponential_jitter=False)
    assert retrying.invoke("x").content == "recovered"
    broken = fake(registry, {"error": "provider_unavailable"})
    backup = fake(registry, "from backup")
    from chatmodels_langchain import ProviderUnavailableError

    chain = broken.with_fallbacks([backup], exceptions_to_handle=(ProviderUnavailableError,))
    assert chain.invoke("x").content == "from backup"


def test_streaming_yields_pieces_and_aggregates(registry: ChatModelRegistry) -> None:
    model = fake(registry, "the quick brown fox")
    chunks = list(model.stream("x"))
    assert len(chunks) > 3
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.content == "the quick brown fox"
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == 4


def test_no_streaming_capability_gives_one_chunk(registry: ChatModelRegistry,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake(registry, "all at once please", caps=["tool_calling"])
    calls: list[str] = []
    original = FakeChatModel._stream

    def spy(self: FakeChatModel, *a: Any, **k: Any) -> Iterator[ChatGenerationChunk]:
        calls.append("stream")
        return original(self, *a, **k)

    monkeypatch.setattr(FakeChatModel, "_stream", spy)
    chunks = list(model.stream("x"))
    assert [c.content for c in chunks if c.content] == ["all at once please"]
    assert calls == []  # no streaming call was made

    async def collect() -> list[Any]:
        return [c async for c in model.astream("x")]

    assert "".join(str(c.content) for c in asyncio.run(collect())) == "all at once please"


def test_abandoned_stream_closes_underlying(registry: ChatModelRegistry,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    original = FakeChatModel._stream

    def tracking(self: FakeChatModel, *a: Any, **k: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from original(self, *a, **k)
        finally:
            closed.append(True)

    monkeypatch.setattr(FakeChatModel, "_stream", tracking)
    model = fake(registry, "one two three four five")
    stream = model.stream("x")
    next(stream)
    stream.close()
    assert closed == [True]


def test_bind_tools_gated_by_capability(registry: ChatModelRegistry) -> None:
    model = fake(registry, caps=["streaming"])
    with pytest.raises(CapabilityError) as info:
        model.bind_tools([Weather])
    err = info.value
    assert (err.code, err.op, err.provider, err.model) == (
        "capability_unsupported", "bind_tools", "fake", "fake-chat")
    no_choice = fake(registry, caps=["tool_calling"])
    no_choice.bind_tools([Weather])  # plain binding is fine
    with pytest.raises(CapabilityError, match="tool_choice"):
        no_choice.bind_tools([Weather], tool_choice="Weather")


def test_bind_tools_keeps_wrapper_in_front(registry: ChatModelRegistry) -> None:
    model = fake(registry)
    bound = model.bind_tools([Weather], tool_choice="any")
    assert getattr(bound, "bound", None) is model
    message = bound.invoke("weather in Paris?")
    assert isinstance(message, AIMessage)
    assert message.tool_calls[0]["name"] == "Weather"


def test_structured_output_picks_supported_method(registry: ChatModelRegistry) -> None:
    model = fake(registry)
    result = model.with_structured_output(Weather).invoke("weather?")
    assert isinstance(result, Weather)
    raw = model.with_structured_output(Weather, include_raw=True).invoke("weather?")
    assert isinstance(raw, dict) and isinstance(raw["parsed"], Weather)
    assert raw["parsing_error"] is None
    none = fake(registry, caps=["streaming"])
    with pytest.raises(CapabilityError) as info:
        none.with_structured_output(Weather)
    assert info.value.op == "with_structured_output"
    with pytest.raises(CapabilityError, match="json_schema"):
        fake(registry, caps=["tool_calling"]).with_structured_output(Weather, method="json_schema")


def test_profile_and_model_info(registry: ChatModelRegistry) -> None:
    model = fake(registry)
    assert model.profile is not None
    assert model.profile["tool_calling"] is True
    assert model.profile["max_input_tokens"] == 32_768
    limited = fake(registry, caps=["streaming"])
    assert limited.profile is not None and limited.profile["tool_calling"] is False
    info = model.get_model_info()
    assert info.provider == "fake" and "tool_calling" in info.capabilities
    assert model.supports(Capability.STREAMING)


def test_ls_params_and_identity(registry: ChatModelRegistry) -> None:
    model = registry.new_provider("fake", temperature=0.4, max_tokens=12)
    params = model._get_ls_params(stop=["END"])
    assert params == {"ls_provider": "fake", "ls_model_name": "fake-chat", "ls_model_type": "chat",
                      "ls_temperature": 0.4, "ls_max_tokens": 12, "ls_stop": ["END"]}
    assert model._llm_type == "chatmodels-fake"
    assert model._identifying_params["model"] == "fake-chat"


def test_no_secret_in_repr_or_serialisation(registry: ChatModelRegistry,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_core.load import dumps

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = registry.new_provider("openai", model="gpt-4o-mini")
    assert KEY not in repr(model) and KEY not in str(model)
    assert KEY not in dumps(model)


def test_health_check_never_raises(registry: ChatModelRegistry) -> None:
    ok = fake(registry, "pong")
    status = ok.check_health()
    assert status.healthy and status.latency_s >= 0
    rate_limited = fake(registry, {"error": "rate_limit"})
    assert rate_limited.check_health().state == "degraded"
    down = fake(registry, {"error": "provider_unavailable"})
    status = asyncio.run(down.acheck_health())
    assert status.state == "unhealthy" and status.error_code == "provider_unavailable"


# --- any existing LangChain chat model can be registered and wrapped unchanged ---


class EchoThirdParty(BaseChatModel):
    """Stands in for a third-party model that raises its own SDK-style exceptions."""

    fail_with: int | None = None

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        if self.fail_with is not None:
            error = Exception("Error code: 429 - rate limited")
            error.status_code = self.fail_with  # type: ignore[attr-defined]
            raise error
        from langchain_core.outputs import ChatGeneration

        return ChatResult(generations=[ChatGeneration(message=AIMessage(f"echo {messages[-1].content}"))])


def test_third_party_models_wrap_unchanged() -> None:
    registry = ChatModelRegistry()
    caps = {Capability.STREAMING, Capability.TOOL_CALLING}
    registry.register(
        "generic", lambda cfg: GenericFakeChatModel(messages=iter(["streamed reply"])),
        ProviderMetadata(name="generic", description="", capabilities=caps, supported_models=("*",),
                         default_model="g"),
    )
    registry.register(
        "echo", lambda cfg: EchoThirdParty(**cfg.provider_specific),
        ProviderMetadata(name="echo", description="", capabilities={Capability.STREAMING},
                         supported_models=("*",), default_model="e"),
    )
    generic = registry.new_provider("generic")
    assert "".join(str(c.content) for c in generic.stream("x")) == "streamed reply"
    assert registry.new_provider("echo").invoke("hi").content == "echo hi"
    # no native _stream: streaming falls back to one chunk
    assert next(c.content for c in registry.new_provider("echo").stream("yo")) == "echo yo"
    with pytest.raises(RateLimitError):
        registry.new_provider("echo", provider_specific={"fail_with": 429}).invoke("x")
    with pytest.raises(CapabilityError, match="bind_tools"):
        generic.bind_tools([Weather])  # GenericFakeChatModel does not implement bind_tools


def test_serialisation_round_trip(registry: ChatModelRegistry) -> None:
    from langchain_core.load import dumpd, load

    model = ChatModelWrapper(provider="fake", model="fake-x", temperature=0.3, max_tokens=9)
    revived = load(dumpd(model), valid_namespaces=["chatmodels_langchain"],
                   allowed_objects=[ChatModelWrapper])
    assert isinstance(revived, ChatModelWrapper)
    assert (revived.provider, revived.model, revived.temperature, revived.max_tokens) == (
        "fake", "fake-x", 0.3, 9)


def test_own_http_client_reaches_the_provider(registry: ChatModelRegistry) -> None:
    import httpx

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "via your client"}}],
        })

    client = httpx.Client(transport=httpx.MockTransport(handler))
    model = registry.new_provider("openai", model="gpt-4o-mini", api_key=KEY, http_client=client)
    assert model.invoke("hi").content == "via your client"
    assert seen == ["https://api.openai.com/v1/chat/completions"]
    assert model._bound.config.http_client is client  # shared, not copied
    assert "http_client" not in repr(model) and KEY not in repr(model)
    model.close()
    assert not client.is_closed  # the caller owns it


def test_tool_choice_naming_no_bound_tool_fails_at_bind(registry: ChatModelRegistry) -> None:
    from chatmodels_langchain import InvalidInputError

    model = fake(registry)
    with pytest.raises(InvalidInputError) as info:
        model.bind_tools([Weather], tool_choice="get_stock_price")
    assert info.value.op == "bind_tools" and "Weather" in str(info.value)
    assert model.bind_tools([Weather], tool_choice="Weather") is not None
