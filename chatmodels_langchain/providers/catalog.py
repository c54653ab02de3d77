"""Metadata of the built-in providers: capabilities per provider and per model family, as data.

Context windows and output limits are the providers' documented figures. This module imports
no provider code, so registering the built-ins costs nothing until a provider is used.
"""

from __future__ import annotations

from chatmodels_langchain.metadata import Capability as C
from chatmodels_langchain.metadata import ModelOverride, ProviderMetadata

__all__ = ["ANTHROPIC", "BUILTINS", "FAKE", "OLLAMA", "OPENAI", "OPENAI_COMPATIBLE"]

_CHAT = frozenset({C.STREAMING, C.USAGE_METADATA, C.SYSTEM_MESSAGES})
_TOOLS = frozenset({C.TOOL_CALLING, C.TOOL_CHOICE, C.PARALLEL_TOOL_CALLS, C.STRUCTURED_OUTPUT})
_OPTIONAL = {"base_url": None, "timeout": 60.0, "max_retries": 2, "temperature": None,
             "max_tokens": None}

OPENAI = ProviderMetadata(
    name="openai",
    description="OpenAI Chat Completions API (also any compatible server via base_url)",
    capabilities=_CHAT | _TOOLS | {C.JSON_MODE},
    supported_models=("gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "ft:gpt-*"),
    required_config=("model", "api_key"),
    optional_config=_OPTIONAL,
    api_key_env="OPENAI_API_KEY",
    default_base_url="https://api.openai.com/v1",
    default_model="gpt-4o-mini",
    model_overrides=(
        ModelOverride("gpt-4o*", add=frozenset({C.IMAGE_INPUT, C.JSON_SCHEMA}),
                      max_input_tokens=128_000, max_output_tokens=16_384),
        ModelOverride("gpt-4.1*", add=frozenset({C.IMAGE_INPUT, C.JSON_SCHEMA}),
                      max_input_tokens=1_047_576, max_output_tokens=32_768),
        ModelOverride("gpt-5*", add=frozenset({C.IMAGE_INPUT, C.JSON_SCHEMA}),
                      max_input_tokens=400_000, max_output_tokens=128_000),
        ModelOverride("gpt-4-turbo*", add=frozenset({C.IMAGE_INPUT}),
                      max_input_tokens=128_000, max_output_tokens=4_096),
        ModelOverride("gpt-3.5-turbo*", max_input_tokens=16_385, max_output_tokens=4_096),
        ModelOverride("o1*", add=frozenset({C.IMAGE_INPUT, C.JSON_SCHEMA}),
                      max_input_tokens=200_000, max_output_tokens=100_000),
        ModelOverride("o1-mini*", remove=frozenset({C.TOOL_CALLING, C.TOOL_CHOICE,
                      C.IMAGE_INPUT, C.JSON_SCHEMA, C.SYSTEM_MESSAGES}),
                      max_input_tokens=128_000, max_output_tokens=65_536),
        ModelOverride("o3*", add=frozenset({C.IMAGE_INPUT, C.JSON_SCHEMA}),
                      max_input_tokens=200_000, max_output_tokens=100_000),
        ModelOverride("o3-mini*", remove=frozenset({C.IMAGE_INPUT})),  # text-only model
        ModelOverride("o4-mini*", add=frozenset({C.IMAGE_INPUT, C.JSON_SCHEMA}),
                      max_input_tokens=200_000, max_output_tokens=100_000),
    ),
)

OPENAI_COMPATIBLE = ProviderMetadata(
    name="openai_compatible",
    description="Any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, OpenRouter, Groq, ...)",
    capabilities=_CHAT | _TOOLS | {C.JSON_MODE},
    supported_models=("*",),
    required_config=("model", "base_url"),
    optional_config={**_OPTIONAL, "api_key": None},
    api_key_env="OPENAI_COMPATIBLE_API_KEY",
)

ANTHROPIC = ProviderMetadata(
    name="anthropic",
    description="Anthropic Messages API",
    capabilities=_CHAT | _TOOLS | {C.IMAGE_INPUT},
    supported_models=("claude-*",),
    required_config=("model", "api_key"),
    optional_config={**_OPTIONAL, "max_tokens": 4096},
    api_key_env="ANTHROPIC_API_KEY",
    default_base_url="https://api.anthropic.com",
    default_model="claude-3-5-haiku-latest",
    model_overrides=(
        ModelOverride("claude-*", max_input_tokens=200_000, max_output_tokens=8_192),
        ModelOverride("claude-3-haiku*", max_output_tokens=4_096),
        ModelOverride("claude-3-opus*", max_output_tokens=4_096),
        ModelOverride("claude-3-7-sonnet*", max_output_tokens=64_000),
        ModelOverride("claude-sonnet-4*", max_output_tokens=64_000),
        ModelOverride("claude-haiku-4*", max_output_tokens=64_000),
        ModelOverride("claude-opus-4*", max_output_tokens=32_000),
        ModelOverride("claude-opus-4-5*", max_output_tokens=64_000),
    ),
)

_OLLAMA_VISION = frozenset({C.IMAGE_INPUT})
_OLLAMA_NO_TOOLS = frozenset({C.TOOL_CALLING})

OLLAMA = ProviderMetadata(
    name="ollama",
    description="Ollama native chat API (/api/chat, NDJSON streaming), local models, no key",
    # Any pulled model may be named; tool support and vision depend on the model family
    # (the "tools" / "vision" tags of ollama.com/library). JSON mode and JSON schema are
    # enforced by the server (`format`), so every model has them. No TOOL_CHOICE: Ollama
    # cannot force a tool call. Context windows depend on the `num_ctx` option, not the model.
    capabilities=_CHAT | {C.TOOL_CALLING, C.STRUCTURED_OUTPUT, C.JSON_MODE, C.JSON_SCHEMA},
    supported_models=("*",),
    required_config=("model",),
    optional_config={**_OPTIONAL, "api_key": None},
    default_base_url="http://localhost:11434",
    default_model="llama3.2",
    model_overrides=(
        ModelOverride("llava*", add=_OLLAMA_VISION, remove=_OLLAMA_NO_TOOLS),
        ModelOverride("bakllava*", add=_OLLAMA_VISION, remove=_OLLAMA_NO_TOOLS),
        ModelOverride("moondream*", add=_OLLAMA_VISION, remove=_OLLAMA_NO_TOOLS),
        ModelOverride("llama3.2-vision*", add=_OLLAMA_VISION, remove=_OLLAMA_NO_TOOLS),
        ModelOverride("gemma3*", add=_OLLAMA_VISION, remove=_OLLAMA_NO_TOOLS),
        ModelOverride("gemma3:1b*", remove=_OLLAMA_VISION),
        ModelOverride("gemma3:270m*", remove=_OLLAMA_VISION),
        ModelOverride("minicpm-v*", add=_OLLAMA_VISION),
        ModelOverride("qwen2.5vl*", add=_OLLAMA_VISION),
        ModelOverride("qwen3-vl*", add=_OLLAMA_VISION),
        ModelOverride("llama4*", add=_OLLAMA_VISION),
        ModelOverride("mistral-small3.1*", add=_OLLAMA_VISION),
        ModelOverride("mistral-small3.2*", add=_OLLAMA_VISION),
        ModelOverride("gemma2*", remove=_OLLAMA_NO_TOOLS),
        ModelOverride("llama2*", remove=_OLLAMA_NO_TOOLS),
        ModelOverride("codellama*", remove=_OLLAMA_NO_TOOLS),
        ModelOverride("phi3*", remove=_OLLAMA_NO_TOOLS),
    ),
)

FAKE = ProviderMetadata(
    name="fake",
    description="Deterministic in-process provider with scripted answers (tests, docs, demo)",
    capabilities=_CHAT | _TOOLS | {C.JSON_MODE, C.JSON_SCHEMA, C.IMAGE_INPUT},
    supported_models=("fake-*",),
    required_config=("model",),
    optional_config={"provider_specific": {"responses": [], "capabilities": None}},
    default_model="fake-chat",
    model_overrides=(
        ModelOverride("fake-*", max_input_tokens=32_768, max_output_tokens=4_096),
    ),
)

# name -> (metadata, creator import string); imported lazily on first use.
BUILTINS: dict[str, tuple[ProviderMetadata, str]] = {
    "openai": (OPENAI, "chatmodels_langchain.providers.openai:create_openai"),
    "openai_compatible": (
        OPENAI_COMPATIBLE, "chatmodels_langchain.providers.openai:create_openai_compatible"
    ),
    "anthropic": (ANTHROPIC, "chatmodels_langchain.providers.anthropic:create_anthropic"),
    "ollama": (OLLAMA, "chatmodels_langchain.providers.ollama:create_ollama"),
    "fake": (FAKE, "chatmodels_langchain.providers.fake:create_fake"),
}
