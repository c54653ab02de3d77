"""`chatmodels-langchain demo`: a short tour that runs offline in a second or two.

Offline (the default) it creates OpenAI and Anthropic models from the registry with placeholder
keys and replays the bundled cassettes (`cassettes/demo/`) through the real provider code: the
same request building, SSE parsing, error mapping and telemetry as a live call, no network.
With `live=True` the same steps call the real APIs for each provider whose key is set.

Steps: a LangChain chain, a streamed answer, a tool-calling round trip, structured output,
one provoked error (an invalid key: `authentication_failed`), then the telemetry of the run.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from chatmodels_langchain.errors import ChatModelError
from chatmodels_langchain.registry import ChatModelRegistry
from chatmodels_langchain.wrapper import ChatModelWrapper

__all__ = [
    "DEMO_CASSETTES",
    "DEMO_MODELS",
    "PLACEHOLDER_KEYS",
    "CityGuide",
    "get_weather",
    "run_demo",
]


def _bundled_cassettes() -> Path:
    """`_demo_cassettes/` inside the package (a wheel may ship them there), else the
    repository's `cassettes/demo/` (a source checkout or an editable install)."""
    package = Path(__file__).resolve().parent
    candidates = (package / "_demo_cassettes", package.parent / "cassettes" / "demo")
    return next((c for c in candidates if c.is_dir()), candidates[-1])


DEMO_CASSETTES = _bundled_cassettes()
"""The bundled recordings the offline demo replays (one cassette per step)."""

DEMO_MODELS: dict[str, str] = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}

PLACEHOLDER_KEYS: dict[str, str] = {
    "openai": "offline-demo-placeholder-key",
    "anthropic": "offline-demo-placeholder-key",
}
"""Offline the providers still require a key; nothing checks it since nothing is sent."""

INVALID_KEY = "invalid-demo-key-0000"
"""The key of the error step: the provider answers 401, mapped to `authentication_failed`."""

_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE = 0, 1, 2


# --- what the steps use -----------------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    forecasts = {"paris": "18 C, light rain", "lisbon": "24 C, sunny"}
    return f"{city}: {forecasts.get(city.strip().lower(), '21 C, clear skies')}"


class CityGuide(BaseModel):
    """A tiny travel card for a city."""

    city: str = Field(description="City name")
    country: str = Field(description="Country the city is in")
    best_month: str = Field(description="Best month to visit")
    highlights: list[str] = Field(description="Two or three sights worth seeing")


# --- plumbing ---------------------------------------------------------------------------------


@dataclass
class _Demo:
    out: TextIO
    live: bool
    registry: ChatModelRegistry
    cassettes: Path
    record_mode: str
    models: dict[str, str]
    total: int = 6
    done: int = 0
    failures: list[str] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def header(self, title: str) -> None:
        self.done += 1
        self.say()
        self.say(f"[{self.done}/{self.total}] {title}")

    def cassette(self, name: str) -> AbstractContextManager[Any]:
        if self.live and self.record_mode == "none":
            return nullcontext()
        from chatmodels_langchain.testing.cassettes import use_cassette

        return use_cassette(self.cassettes / f"{name}.yaml", record_mode=self.record_mode)

    def available(self, provider: str) -> bool:
        if not self.live:
            return True
        env = self.registry.metadata(provider).api_key_env or ""
        return bool(os.environ.get(env))

    def model(self, provider: str, **overrides: Any) -> ChatModelWrapper:
        fields: dict[str, Any] = {"model": self.models[provider], "temperature": 0.0}
        if not self.live:
            fields["api_key"] = PLACEHOLDER_KEYS[provider]
        fields.update(overrides)
        return self.registry.new_provider(provider, **fields)

    def pick(self, *preferred: str) -> str | None:
        """The first of `preferred` usable in this mode (offline: always the first)."""
        return next((p for p in preferred if self.available(p)), None)

    def skip(self, provider: str) -> None:
        env = self.registry.metadata(provider).api_key_env
        self.say(f"  skipped: {env} is not set")


def _short(text: str, width: int = 96) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


@contextmanager
def _step(demo: _Demo, name: str) -> Iterator[None]:
    """Run one step; a failure is reported with its code and the tour goes on."""
    try:
        yield
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to report to
        raise
    except ChatModelError as err:
        demo.failures.append(f"{name}: [{err.code.value}]")
        demo.say(f"  FAILED [{err.code.value}] {_short(err.message)}")
    except Exception as exc:  # a replay mismatch, for instance: say so, keep going
        demo.failures.append(f"{name}: {type(exc).__name__}")
        demo.say(f"  FAILED {type(exc).__name__}: {_short(str(exc), 300)}")


# --- the steps --------------------------------------------------------------------------------


def _registry_step(demo: _Demo) -> None:
    demo.header("The registry: providers and capabilities")
    names = [m.name for m in demo.registry.list_providers()]
    demo.say(f"  {len(names)} providers registered: {', '.join(names)}")
    for provider in ("openai", "anthropic"):
        if not demo.available(provider):
            demo.skip(provider)
            continue
        model = demo.model(provider)
        info = model.get_model_info()
        window = f"{info.max_input_tokens:,}" if info.max_input_tokens else "?"
        demo.say(f"  {provider}/{model.model}: context {window} tokens, capabilities:")
        for line in textwrap.wrap(", ".join(info.capabilities), width=88):
            demo.say(f"    {line}")


def _chain_step(demo: _Demo) -> None:
    demo.header("A chain: ChatPromptTemplate | model | StrOutputParser")
    provider = demo.pick("openai", "anthropic")
    if provider is None:
        demo.skip("openai")
        return
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a concise assistant. Answer in one sentence."),
        ("human", "What is {topic}?"),
    ])
    chain = prompt | demo.model(provider) | StrOutputParser()
    demo.say(f"  model: {provider}/{demo.models[provider]}")
    demo.say("  > What is OpenTelemetry?")
    with demo.cassette("chain"):
        answer = chain.invoke({"topic": "OpenTelemetry"})
    demo.say(f"  < {answer}")


def _stream_step(demo: _Demo) -> None:
    demo.header("Streaming: tokens printed as they arrive")
    provider = demo.pick("anthropic", "openai")
    if provider is None:
        demo.skip("anthropic")
        return
    model = demo.model(provider)
    demo.say(f"  model: {provider}/{demo.models[provider]}")
    demo.say("  > Write a haiku about tracing a slow request.")
    demo.out.write("  < ")
    chunks = 0
    started = time.perf_counter()
    first: float | None = None
    with demo.cassette("stream"):
        for chunk in model.stream("Write a haiku about tracing a slow request."):
            text = chunk.text
            if text:
                if first is None:
                    first = time.perf_counter() - started
                chunks += 1
                demo.out.write(text.replace("\n", "\n    "))
                demo.out.flush()
    demo.say()
    demo.say(f"  ({chunks} text chunks, first after {(first or 0.0) * 1000:.0f} ms)")


def _tools_step(demo: _Demo) -> None:
    demo.header("Tool calling: bind_tools, run the tool, send a ToolMessage back")
    provider = demo.pick("openai", "anthropic")
    if provider is None:
        demo.skip("openai")
        return
    model = demo.model(provider).bind_tools([get_weather])
    question = "What's the weather in Paris right now? Use the tool."
    messages: list[BaseMessage] = [HumanMessage(question)]
    demo.say(f"  model: {provider}/{demo.models[provider]}, tools: get_weather(city)")
    demo.say(f"  > {question}")
    with demo.cassette("tools"):
        first = model.invoke(messages)
        assert isinstance(first, AIMessage)
        messages.append(first)
        for call in first.tool_calls:
            demo.say(f"  model calls {call['name']}({call['args']})")
            result = get_weather.invoke(call)
            assert isinstance(result, ToolMessage)
            demo.say(f"  tool returns {result.content!r}")
            messages.append(result)
        if not first.tool_calls:
            demo.say("  the model answered without calling the tool")
        final = model.invoke(messages)
    demo.say(f"  < {final.text}")


def _structured_step(demo: _Demo) -> None:
    demo.header("Structured output: with_structured_output(CityGuide)")
    provider = demo.pick("anthropic", "openai")
    if provider is None:
        demo.skip("anthropic")
        return
    structured = demo.model(provider).with_structured_output(CityGuide)
    demo.say(f"  model: {provider}/{demo.models[provider]}")
    demo.say("  > A short travel card for Lisbon.")
    with demo.cassette("structured"):
        guide = structured.invoke("A short travel card for Lisbon.")
    assert isinstance(guide, CityGuide)
    demo.say(f"  < {guide!r}")


def _error_step(demo: _Demo) -> None:
    demo.header("Errors: one vocabulary for every provider (an invalid key, on purpose)")
    provider = demo.pick("openai", "anthropic")
    if provider is None:
        demo.skip("openai")
        return
    model = demo.model(provider, api_key=INVALID_KEY, max_retries=0)
    demo.say(f"  model: {provider}/{demo.models[provider]} with api_key={INVALID_KEY!r}")
    try:
        with demo.cassette("error"):
            model.invoke("Hello?")
    except ChatModelError as err:
        demo.say(f"  caught {type(err).__name__}: code={err.code.value} "
                 f"retryable={err.retryable} op={err.op}")
        demo.say(f"  message: {_short(err.message)}")
        status = err.context.get("status_code")
        if status is not None:
            demo.say(f"  context: status_code={status}")
        return
    demo.failures.append("error: no error raised")
    demo.say("  FAILED: the call was expected to fail and did not")


def _telemetry(demo: _Demo, session: Any) -> None:
    demo.say()
    demo.say("Telemetry of this run (OpenTelemetry GenAI spans and metrics, in memory)")
    for line in str(session.summary()).splitlines():
        demo.say(f"  {line}".rstrip())
    totals = session.metrics()
    ttfc = totals.get("time_to_first_chunk", {})
    if ttfc.get("count"):
        count = ttfc["count"]
        demo.say(f"  time to first chunk: {ttfc['sum_s'] / count * 1000:.1f} ms "
                 f"(mean of {count} stream{'s' if count != 1 else ''})")


STEPS: tuple[tuple[str, Callable[[_Demo], None]], ...] = (
    ("registry", _registry_step),
    ("chain", _chain_step),
    ("stream", _stream_step),
    ("tools", _tools_step),
    ("structured", _structured_step),
    ("error", _error_step),
)


def _missing_packages(live: bool) -> list[str]:
    """Distributions the demo imports that are not installed (they are test extras)."""
    import importlib.util

    needed = {"opentelemetry.sdk": "opentelemetry-sdk"}
    if not live:
        needed["vcr"] = "vcrpy"
    return [dist for module, dist in needed.items() if importlib.util.find_spec(module) is None]


def run_demo(
    *,
    live: bool = False,
    out: TextIO | None = None,
    cassettes: Path | None = None,
    record_mode: str = "none",
    models: dict[str, str] | None = None,
) -> int:
    """Run the tour and return an exit code: 0 when every step worked.

    `cassettes` and `record_mode` exist for re-recording the bundled cassettes; `models`
    overrides `DEMO_MODELS` (offline, only the recorded models replay).
    """
    from chatmodels_langchain import telemetry
    from chatmodels_langchain.providers import register_builtins
    from chatmodels_langchain.providers.catalog import ANTHROPIC, OPENAI

    stream = out if out is not None else sys.stdout
    missing_packages = _missing_packages(live)
    if missing_packages:
        stream.write(f"the demo needs {' and '.join(missing_packages)}: "
                     "pip install 'chatmodels-langchain[test]'\n")
        return _EXIT_FAILED
    if live:
        keys = [m.name for m in (OPENAI, ANTHROPIC) if os.environ.get(m.api_key_env or "")]
        if not keys:
            stream.write("demo --live needs OPENAI_API_KEY and/or ANTHROPIC_API_KEY in the "
                         "environment; run `demo` without --live for the offline tour.\n")
            return _EXIT_USAGE
    directory = cassettes or DEMO_CASSETTES
    if not live and record_mode == "none" and not directory.is_dir():
        stream.write(f"the demo cassettes are missing ({directory}); run the demo from a "
                     "source checkout, or use `demo --live` with API keys.\n")
        return _EXIT_FAILED
    session = telemetry.console()
    session.clear()  # spans of anything that ran before in this process
    registry = ChatModelRegistry(load_plugins=True, metrics=session.chat_model_metrics())
    register_builtins(registry)
    demo = _Demo(
        out=stream, live=live, registry=registry, cassettes=directory,
        record_mode=record_mode, models={**DEMO_MODELS, **(models or {})},
    )
    started = time.perf_counter()
    if live:
        missing = [p for p in ("openai", "anthropic") if p not in keys]
        demo.say(f"chatmodels-langchain demo: LIVE against {', '.join(keys)}"
                 + (f" ({', '.join(missing)} skipped: no key)" if missing else ""))
    else:
        demo.say("chatmodels-langchain demo: offline, replaying cassettes/demo/ through the "
                 "real provider code")
        demo.say("(no API key and no network needed; `demo --live` calls the real APIs)")
    for name, run in STEPS:
        with _step(demo, name):
            run(demo)
    _telemetry(demo, session)
    elapsed = time.perf_counter() - started
    demo.say()
    if demo.failures:
        demo.say(f"Demo finished in {elapsed:.2f} s with failures: {'; '.join(demo.failures)}")
        return _EXIT_FAILED
    demo.say(f"Demo finished in {elapsed:.2f} s.")
    return _EXIT_OK
