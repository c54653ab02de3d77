"""langchain-tests' standard unit tests for the native OpenAI chat model classes."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from chatmodels_langchain.providers.openai import ChatOpenAICompatibleNative, ChatOpenAINative
from tests.providers.conftest import FAKE_OPENAI_KEY


class TestChatOpenAINativeStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAINative]:
        return ChatOpenAINative

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gpt-4o-mini", "api_key": FAKE_OPENAI_KEY}

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"OPENAI_API_KEY": FAKE_OPENAI_KEY},
            {"model": "gpt-4o-mini"},
            {"api_key": FAKE_OPENAI_KEY, "base_url": "https://api.openai.com/v1"},
        )


class TestChatOpenAICompatibleNativeStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAICompatibleNative]:
        return ChatOpenAICompatibleNative

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "meta-llama/Llama-3.1-8B-Instruct", "base_url": "http://localhost:8000/v1"}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"OPENAI_COMPATIBLE_API_KEY": "local-test-key"},
            {"model": "qwen2.5", "base_url": "http://localhost:8000/v1"},
            {"api_key": "local-test-key"},
        )
