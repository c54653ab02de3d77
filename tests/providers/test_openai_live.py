"""langchain-tests' standard integration tests against the real OpenAI API.

They talk to api.openai.com through `ChatModelWrapper(provider="openai")`, so they run only
when `OPENAI_API_KEY` is set (and cost a few cents); otherwise the module is skipped.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from chatmodels_langchain import ChatModelWrapper

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY not set"),
]


class TestOpenAILive(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatModelWrapper]:
        return ChatModelWrapper

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True
