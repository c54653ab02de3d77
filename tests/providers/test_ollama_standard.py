"""langchain-tests' standard unit tests for the native Ollama chat model."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from chatmodels_langchain.providers.ollama import ChatOllamaNative


class TestChatOllamaNativeStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatOllamaNative]:
        return ChatOllamaNative

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "llama3.2"}

    @property
    def supports_image_inputs(self) -> bool:
        return True  # inline base64 only, for vision models (llava, gemma3, ...)

    @property
    def supports_image_urls(self) -> bool:
        return False  # Ollama cannot fetch remote images

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    def test_defaults_need_no_environment(self) -> None:
        """Ollama reads no key and no environment variable (the standard test_init_from_env
        is skipped for that reason): the defaults alone must give a usable model."""
        model = ChatOllamaNative(model="llama3.2")
        assert model.api_key is None
        assert model.base_url == "http://localhost:11434"
        assert model.auth_headers() == {}
