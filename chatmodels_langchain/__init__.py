"""chatmodels-langchain: one registry for LangChain chat-model providers.

Capability metadata, structured errors and OpenTelemetry built in. Importing this package is
cheap: providers, telemetry SDKs and the CLI load on first use.
"""

from chatmodels_langchain.config import (
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
from chatmodels_langchain.errors import (
    AuthenticationError,
    CapabilityError,
    ChatModelError,
    ConfigError,
    ContextLengthExceededError,
    ErrorCode,
    InvalidInputError,
    InvalidResponseError,
    ModelUnsupportedError,
    OperationCancelledError,
    ProviderUnavailableError,
    RateLimitError,
    RequestTimeoutError,
    map_exception,
)
from chatmodels_langchain.health import HealthState, HealthStatus, ModelInfo
from chatmodels_langchain.metadata import Capability, ModelOverride, ProviderMetadata
from chatmodels_langchain.registry import (
    ChatModelRegistry,
    default_registry,
    list_providers,
    new_provider,
    register_global,
)
from chatmodels_langchain.wrapper import ChatModelWrapper

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Capability",
    "CapabilityError",
    "ChatModelError",
    "ChatModelRegistry",
    "ChatModelWrapper",
    "ConfigError",
    "ContextLengthExceededError",
    "ErrorCode",
    "HealthState",
    "HealthStatus",
    "InvalidInputError",
    "InvalidResponseError",
    "ModelInfo",
    "ModelOverride",
    "ModelUnsupportedError",
    "OperationCancelledError",
    "ProviderConfig",
    "ProviderMetadata",
    "ProviderUnavailableError",
    "RateLimitError",
    "RequestTimeoutError",
    "default_registry",
    "list_providers",
    "map_exception",
    "new_provider",
    "register_global",
    "with_api_key",
    "with_base_url",
    "with_max_retries",
    "with_max_tokens",
    "with_model",
    "with_provider",
    "with_temperature",
    "with_timeout",
]
