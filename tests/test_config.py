"""ProviderConfig validation, defaults from metadata/env, copying, options and loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from chatmodels_langchain import (
    ConfigError,
    ErrorCode,
    ModelUnsupportedError,
    ProviderConfig,
    with_api_key,
    with_base_url,
    with_max_retries,
    with_max_tokens,
    with_model,
    with_provider,
    with_temperature,
    with_timeout,
)
from chatmodels_langchain.providers.catalog import ANTHROPIC, OPENAI

KEY = "sk-proj-Zq8xY3vB7nM2kL5pR9tW1uE4iO6aS0dF"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.1),
        ("temperature", 2.01),
        ("max_tokens", 0),
        ("timeout", 0),
        ("timeout", -1),
        ("max_retries", -1),
        ("provider", ""),
    ],
)
def test_ranges_rejected_with_config_error(field: str, value: object) -> None:
    data: dict[str, object] = {"provider": "fake", "model": "fake-chat", field: value}
    with pytest.raises(ConfigError) as info:
        ProviderConfig.build(**data)
    assert info.value.code == ErrorCode.CONFIG_INVALID
    assert field in str(info.value)


def test_boundaries_accepted() -> None:
    config = ProviderConfig.build(provider="fake", temperature=2.0, max_tokens=1, max_retries=0)
    assert config.temperature == 2.0 and config.max_tokens == 1 and config.max_retries == 0


def test_unknown_field_rejected() -> None:
    with pytest.raises(ConfigError, match="colour"):
        ProviderConfig.build(provider="fake", colour="red")


def test_api_key_is_secret_and_masked() -> None:
    config = ProviderConfig.build(provider="openai", api_key=KEY)
    assert isinstance(config.api_key, SecretStr)
    for text in (repr(config), str(config), config.model_dump_json()):
        assert KEY not in text


def test_missing_key_names_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as info:
        ProviderConfig.build(provider="openai", model="gpt-4o").resolved_for(OPENAI)
    assert info.value.context["env_var"] == "OPENAI_API_KEY"


def test_key_read_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    config = ProviderConfig.build(provider="anthropic").resolved_for(ANTHROPIC)
    assert config.api_key is not None and config.api_key.get_secret_value() == KEY
    assert config.model == ANTHROPIC.default_model
    assert config.base_url == ANTHROPIC.default_base_url


def test_model_must_match_pattern() -> None:
    config = ProviderConfig.build(provider="openai", model="claude-3", api_key=KEY)
    with pytest.raises(ModelUnsupportedError) as info:
        config.resolved_for(OPENAI)
    assert info.value.code == ErrorCode.MODEL_UNSUPPORTED
    assert "gpt-*" in str(info.value)


def test_caller_objects_not_shared() -> None:
    extra = {"top_p": 0.5, "nested": {"a": 1}}
    config = ProviderConfig.build(provider="fake", provider_specific=extra)
    extra["top_p"] = 0.9
    extra["nested"]["a"] = 2  # type: ignore[index]
    assert config.provider_specific == {"top_p": 0.5, "nested": {"a": 1}}
    with pytest.raises(Exception):  # frozen  # noqa: B017
        config.model = "other"  # type: ignore[misc]


def test_functional_options() -> None:
    config = ProviderConfig.build(
        with_provider("openai"),
        with_model("gpt-4o"),
        with_api_key(KEY),
        with_base_url("http://localhost:1234/v1"),
        with_timeout(5),
        with_temperature(0.2),
        with_max_tokens(64),
        with_max_retries(0),
    )
    assert (config.provider, config.model, config.base_url) == (
        "openai", "gpt-4o", "http://localhost:1234/v1")
    assert (config.timeout, config.temperature, config.max_tokens, config.max_retries) == (
        5, 0.2, 64, 0)


def test_non_option_positional_rejected() -> None:
    with pytest.raises(ConfigError, match="options"):
        ProviderConfig.build("gpt-4o")  # type: ignore[arg-type]


def test_from_env() -> None:
    env = {"APP_PROVIDER": "fake", "APP_MODEL": "fake-x", "APP_TEMPERATURE": "0.5",
           "APP_PROVIDER_SPECIFIC": '{"responses": ["hi"]}'}
    config = ProviderConfig.from_env("APP_", environ=env)
    assert config.model == "fake-x" and config.temperature == 0.5
    assert config.provider_specific == {"responses": ["hi"]}
    with pytest.raises(ConfigError, match=r"APP_TEMPERATURE|temperature"):
        ProviderConfig.from_env("APP_", environ={**env, "APP_TEMPERATURE": "9"})


def test_from_file_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "model.toml"
    toml.write_text('[chatmodel]\nprovider = "fake"\nmodel = "fake-a"\nmax_tokens = 10\n')
    assert ProviderConfig.from_file(toml).max_tokens == 10
    js = tmp_path / "model.json"
    js.write_text(json.dumps({"provider": "fake", "timeout": 3}))
    assert ProviderConfig.from_file(js).timeout == 3
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        ProviderConfig.from_file(bad)
    with pytest.raises(ConfigError):
        ProviderConfig.from_file(tmp_path / "missing.toml")


def test_from_dict_validates() -> None:
    with pytest.raises(ConfigError, match="max_tokens"):
        ProviderConfig.from_dict({"provider": "fake", "max_tokens": -5})


def test_http_client_is_carried_not_copied_and_not_from_text() -> None:
    import httpx

    client = httpx.Client()
    config = ProviderConfig.build(provider="fake", http_client=client)
    rebuilt = ProviderConfig.build(base=config, model="fake-2")
    assert rebuilt.http_client is client and rebuilt.model == "fake-2"
    assert "http_client" not in config.model_dump()
    env = {"APP_PROVIDER": "fake", "APP_HTTP_CLIENT": "ignored"}
    assert ProviderConfig.from_env("APP_", environ=env).http_client is None
    client.close()
