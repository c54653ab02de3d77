"""langchain-tests' standard unit tests for ChatModelWrapper (on the deterministic fake)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.unit_tests import ChatModelUnitTests

from chatmodels_langchain import ChatModelWrapper


class TestChatModelWrapperStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatModelWrapper]:
        return ChatModelWrapper

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"provider": "fake", "model": "fake-chat"}

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"OPENAI_API_KEY": "sk-proj-envtest0000000000000000000000"},
            {"provider": "openai", "model": "gpt-4o-mini"},
            {"api_key": "sk-proj-envtest0000000000000000000000"},
        )

    @pytest.mark.xfail(
        reason="langchain-core 1.8's load(allowed_objects='all') admits only the classes in its "
        "own allowlist (langchain_core.load.mapping), so no out-of-tree integration can pass this "
        "call; the dumpd snapshot part passes, and the round trip with an explicit allowlist is "
        "covered by tests/test_wrapper.py::test_serialisation_round_trip.",
        strict=True,
        raises=ValueError,
    )
    def test_serdes(self, model: Any, snapshot: Any) -> None:
        super().test_serdes(model, snapshot)
