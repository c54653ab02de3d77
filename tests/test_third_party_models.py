"""An existing LangChain model (langchain-openai's ChatOpenAI) registered unchanged keeps the
wrapper in front for tools and structured output: the call is traced and errors are mapped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_openai import ChatOpenAI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from chatmodels_langchain import (
    Capability,
    CapabilityError,
    ChatModelRegistry,
    ProviderConfig,
    ProviderMetadata,
)

KEY = "sk-proj-test0000000000000000000000000000"


class Weather(BaseModel):
    """Weather in a city."""

    city: str
    celsius: float


def _completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-local", "object": "chat.completion", "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", **message},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }


class Server:
    """An in-process OpenAI: answers tools with a call, response_format with JSON text."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        args = {"city": "Paris", "celsius": 18.5}
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            call = {"id": "call_1", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)}}
            return httpx.Response(200, json=_completion(
                {"content": None, "tool_calls": [call]}, "tool_calls"))
        return httpx.Response(200, json=_completion({"content": json.dumps(args)}, "stop"))


@pytest.fixture
def setup() -> Iterator[tuple[ChatModelRegistry, Server, InMemorySpanExporter]]:
    server = Server()
    client = httpx.Client(transport=httpx.MockTransport(server))
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = ChatModelRegistry(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
    )

    def create(config: ProviderConfig) -> ChatOpenAI:
        return ChatOpenAI(model=config.model, api_key=KEY, http_client=client, max_retries=0)

    caps = {Capability.STREAMING, Capability.TOOL_CALLING, Capability.TOOL_CHOICE,
            Capability.STRUCTURED_OUTPUT, Capability.JSON_SCHEMA}
    registry.register("lc_openai", create, ProviderMetadata(
        name="lc_openai", description="langchain-openai, wrapped", capabilities=caps,
        supported_models=("gpt-*",), default_model="gpt-4o-mini",
    ))
    yield registry, server, exporter
    client.close()


def test_bind_tools_goes_through_chatopenai_formatting_and_the_wrapper(
    setup: tuple[ChatModelRegistry, Server, InMemorySpanExporter],
) -> None:
    registry, server, exporter = setup
    model = registry.new_provider("lc_openai")
    message = model.bind_tools([Weather], tool_choice="Weather").invoke("weather in Paris?")
    assert message.tool_calls[0]["args"] == {"city": "Paris", "celsius": 18.5}
    sent = server.bodies[-1]
    assert sent["tools"][0]["function"]["name"] == "Weather"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o-mini"
    assert (span.attributes or {})["gen_ai.usage.input_tokens"] == 12


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_keeps_the_wrapper_in_front(
    setup: tuple[ChatModelRegistry, Server, InMemorySpanExporter], method: str
) -> None:
    registry, server, exporter = setup
    model = registry.new_provider("lc_openai")
    result = model.with_structured_output(Weather, method=method).invoke("weather?")  # type: ignore[arg-type]
    assert result == Weather(city="Paris", celsius=18.5)
    sent = server.bodies[-1]
    if method == "json_schema":
        assert sent["response_format"]["type"] == "json_schema"
    else:
        assert sent["tools"][0]["function"]["name"] == "Weather"
    assert [s.name for s in exporter.get_finished_spans()] == ["chat gpt-4o-mini"]


def test_capabilities_still_gate_a_third_party_model(
    setup: tuple[ChatModelRegistry, Server, InMemorySpanExporter],
) -> None:
    registry, server, _ = setup
    model = registry.new_provider("lc_openai")
    with pytest.raises(CapabilityError):
        model.with_structured_output(Weather, method="json_mode")
    assert server.bodies == []  # refused before any request
