"""langchain-tests' standard integration tests against the real Anthropic API.

They talk to api.anthropic.com through `ChatModelWrapper(provider="anthropic")`, so they run
only when `ANTHROPIC_API_KEY` is set (and cost a few cents); otherwise the module is skipped.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from chatmodels_langchain import ChatModelWrapper

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not os.environ.get("ANTHROPIC_API_KEY"), reason="ANTHROPIC_API_KEY not set"
    ),
]


class TestAnthropicLive(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatModelWrapper]:
        return ChatModelWrapper

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"provider": "anthropic", "model": "claude-3-5-haiku-latest", "temperature": 0}

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True
