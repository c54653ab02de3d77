"""langchain-tests' standard unit tests for the native Anthropic chat model class."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from chatmodels_langchain.providers.anthropic import ChatAnthropicNative
from tests.providers.conftest import FAKE_ANTHROPIC_KEY


class TestChatAnthropicNativeStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatAnthropicNative]:
        return ChatAnthropicNative

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "claude-3-5-haiku-latest", "api_key": FAKE_ANTHROPIC_KEY}

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY},
            {"model": "claude-3-5-haiku-latest"},
            {"api_key": FAKE_ANTHROPIC_KEY, "base_url": "https://api.anthropic.com"},
        )
