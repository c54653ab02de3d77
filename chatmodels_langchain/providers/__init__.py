"""Built-in providers. Each wire format is one module; `_http` holds the shared transport."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatmodels_langchain.providers.catalog import BUILTINS

if TYPE_CHECKING:
    from chatmodels_langchain.registry import ChatModelRegistry

__all__ = ["register_builtins"]


def register_builtins(registry: ChatModelRegistry) -> None:
    """Register every built-in provider in `registry` (creators stay unimported until used)."""
    for name, (metadata, creator) in BUILTINS.items():
        registry.register(name, creator, metadata)
