"""ChatModelRegistry: validation, lazy creation, thread safety, plugins, default registry."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import chatmodels_langchain.registry as registry_module
from chatmodels_langchain import (
    Capability,
    ChatModelRegistry,
    ChatModelWrapper,
    ConfigError,
    ProviderMetadata,
    default_registry,
    list_providers,
    new_provider,
    with_model,
    with_temperature,
)
from chatmodels_langchain.providers.fake import FakeChatModel


def meta(name: str, **kw: Any) -> ProviderMetadata:
    fields: dict[str, Any] = {
        "description": "test", "capabilities": {Capability.STREAMING},
        "supported_models": ("m-*",), "default_model": "m-1",
    }
    fields.update(kw)
    return ProviderMetadata(name=name, **fields)


def fake_creator(config: Any) -> FakeChatModel:
    return FakeChatModel(model=config.model, responses=["ok"])


@pytest.fixture
def registry() -> ChatModelRegistry:
    return ChatModelRegistry()


def test_register_and_lookup(registry: ChatModelRegistry) -> None:
    registry.register("b", fake_creator, meta("b"))
    registry.register("a", fake_creator, meta("a"))
    assert registry.is_registered("a") and not registry.is_registered("c")
    assert [m.name for m in registry.list_providers()] == ["a", "b"]
    assert registry.metadata("a").name == "a"


def test_names_unique_and_non_empty(registry: ChatModelRegistry) -> None:
    registry.register("a", fake_creator, meta("a"))
    with pytest.raises(ConfigError, match="already registered"):
        registry.register("a", fake_creator, meta("a"))
    registry.register("a", fake_creator, meta("a", description="new"), replace=True)
    assert registry.metadata("a").description == "new"
    with pytest.raises(ConfigError, match="non-empty"):
        registry.register("", fake_creator, meta("x"))
    with pytest.raises(ConfigError, match="does not match"):
        registry.register("x", fake_creator, meta("y"))


def test_creator_must_be_callable(registry: ChatModelRegistry) -> None:
    with pytest.raises(ConfigError, match="callable"):
        registry.register("a", 42, meta("a"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="callable"):
        registry.register("a", "no_colon_here", meta("a"))


def test_metadata_needs_capability_and_models() -> None:
    with pytest.raises(ConfigError, match="capability"):
        meta("a", capabilities=set())
    with pytest.raises(ConfigError, match="supported-model"):
        meta("a", supported_models=())
    with pytest.raises(ConfigError):
        meta("a", capabilities={"teleportation"})


def test_unknown_provider_lists_registered(registry: ChatModelRegistry) -> None:
    registry.register("a", fake_creator, meta("a"))
    with pytest.raises(ConfigError, match=r"'nope' is not registered \(registered: a\)"):
        registry.new_provider("nope")
    with pytest.raises(ConfigError):
        registry.metadata("nope")


def test_unregister(registry: ChatModelRegistry) -> None:
    registry.register("a", fake_creator, meta("a"))
    registry.unregister("a")
    assert not registry.is_registered("a")
    with pytest.raises(ConfigError):
        registry.unregister("a")


def test_creation_is_lazy_and_tracked(registry: ChatModelRegistry) -> None:
    import tests._lazy_provider as lazy

    lazy.CREATED.clear()
    registry.register("lazy", "tests._lazy_provider:create", meta("lazy"))
    assert lazy.CREATED == [] and registry.initialized() == frozenset()
    model = registry.new_provider("lazy", model="m-2")
    assert isinstance(model, ChatModelWrapper)
    assert lazy.CREATED == ["m-2"] and registry.initialized() == {"lazy"}
    assert model.invoke("hi").content == "lazy"


def test_creator_failure_is_config_error(registry: ChatModelRegistry) -> None:
    def broken(config: Any) -> Any:
        raise RuntimeError("boom")

    registry.register("broken", broken, meta("broken"))
    with pytest.raises(ConfigError, match="boom") as info:
        registry.new_provider("broken")
    assert isinstance(info.value.__cause__, RuntimeError)
    registry.register("wrong", lambda c: object(), meta("wrong"))
    with pytest.raises(ConfigError, match="BaseChatModel"):
        registry.new_provider("wrong")


def test_options_config_and_fields(registry: ChatModelRegistry) -> None:
    registry.register("a", fake_creator, meta("a"))
    model = registry.new_provider("a", with_model("m-9"), with_temperature(0.3), max_tokens=5)
    assert (model.model, model.temperature, model.max_tokens) == ("m-9", 0.3, 5)
    from_dict = registry.new_provider(config={"provider": "a", "model": "m-3"})
    assert from_dict.model == "m-3"


def test_concurrent_register_and_create_loses_nothing(
    registry: ChatModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    imports: list[str] = []
    real_import = importlib.import_module
    lock = threading.Lock()

    def counting_import(name: str, package: str | None = None) -> Any:
        if name == "tests._lazy_provider":
            with lock:
                imports.append(name)
        return real_import(name, package)

    monkeypatch.setattr(registry_module.importlib, "import_module", counting_import)
    registry.register("lazy", "tests._lazy_provider:create", meta("lazy"))
    threads = 32
    barrier = threading.Barrier(threads)
    created: list[ChatModelWrapper] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            registry.register(f"p{i}", fake_creator, meta(f"p{i}"))
            created.append(registry.new_provider("lazy"))
            assert registry.is_registered(f"p{i}")
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    assert len(created) == threads
    assert {m.name for m in registry.list_providers()} == {"lazy"} | {f"p{i}" for i in range(threads)}
    assert imports == ["tests._lazy_provider"]  # the lazy creator resolved exactly once


def test_entry_point_plugins_load_once_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []

    def register(reg: ChatModelRegistry) -> None:
        loads.append("plugin")
        reg.register("plugged", fake_creator, meta("plugged"))

    def broken(reg: ChatModelRegistry) -> None:
        raise RuntimeError("bad plugin")

    points = [SimpleNamespace(name="ok", load=lambda: register),
              SimpleNamespace(name="bad", load=lambda: broken)]
    monkeypatch.setattr(registry_module, "_provider_entry_points", lambda: points)
    reg = ChatModelRegistry(load_plugins=True)
    assert loads == []  # nothing at construction
    assert reg.is_registered("plugged")
    reg.list_providers()
    assert loads == ["plugin"]  # once, and a broken plugin did not break the registry


@pytest.fixture
def fresh_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry_module, "_default", None)
    yield


def test_default_registry_has_builtins(fresh_default: None) -> None:
    names = [m.name for m in list_providers()]
    for builtin in ("anthropic", "fake", "ollama", "openai", "openai_compatible"):
        assert builtin in names
    assert default_registry() is default_registry()
    model = new_provider("fake", provider_specific={"responses": ["hello"]})
    assert model.invoke("x").content == "hello"
    registry_module.register_global("custom", fake_creator, meta("custom"))
    assert default_registry().is_registered("custom")


def test_health_report_of_initialized_providers(registry: ChatModelRegistry) -> None:
    registry.register("a", fake_creator, meta("a"))
    model = registry.new_provider("a")
    report = registry.health()
    assert set(report) == {"a"} and report["a"].healthy
    del model


def test_registry_renders_as_html_table(registry: ChatModelRegistry) -> None:
    registry.register("a", fake_creator, meta("a"))
    html = registry._repr_html_()
    assert "<table>" in html and "<td>a</td>" in html
