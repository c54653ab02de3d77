"""A provider module that the registry imports lazily in tests."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from chatmodels_langchain.config import ProviderConfig
from chatmodels_langchain.providers.fake import FakeChatModel

CREATED: list[str] = []


def create(config: ProviderConfig) -> BaseChatModel:
    CREATED.append(config.model)
    return FakeChatModel(model=config.model, responses=["lazy"])
