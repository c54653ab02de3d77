"""The error vocabulary: `ErrorCode`, the `ChatModelError` family and the one exception mapping.

Every failure that leaves a registry-created model is a `ChatModelError` carrying a stable
`code` users can branch on. `map_exception` is the single place that decides which code an
arbitrary exception (httpx, an HTTP status and body, timeouts, provider SDK errors matched by
duck typing) deserves; providers and the wrapper never classify errors on their own.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

__all__ = [
    "RETRYABLE_CODES",
    "AuthenticationError",
    "CapabilityError",
    "ChatModelError",
    "ConfigError",
    "ContextLengthExceededError",
    "ErrorCode",
    "InvalidInputError",
    "InvalidResponseError",
    "ModelUnsupportedError",
    "OperationCancelledError",
    "ProviderUnavailableError",
    "RateLimitError",
    "RequestTimeoutError",
    "code_for_status",
    "error_class",
    "error_for_status",
    "make_error",
    "map_exception",
    "parse_retry_after",
    "redact",
]


class ErrorCode(StrEnum):
    """Stable error codes. The string values are part of the public API."""

    PROVIDER_UNAVAILABLE = "provider_unavailable"
    CONFIG_INVALID = "config_invalid"
    AUTHENTICATION_FAILED = "authentication_failed"
    RATE_LIMIT = "rate_limit"
    MODEL_UNSUPPORTED = "model_unsupported"
    REQUEST_TIMEOUT = "request_timeout"
    INVALID_INPUT = "invalid_input"
    CAPABILITY_UNSUPPORTED = "capability_unsupported"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    INVALID_RESPONSE = "invalid_response"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


RETRYABLE_CODES: frozenset[ErrorCode] = frozenset(
    {ErrorCode.RATE_LIMIT, ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.REQUEST_TIMEOUT}
)

# --- secret redaction -------------------------------------------------------------------------

_KEY_PATTERNS = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{6,}|sk-(?:proj-)?[A-Za-z0-9_\-]{16,}|"
    r"(?i:bearer)\s+[A-Za-z0-9._\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|gsk_[A-Za-z0-9]{16,})"
)
_SECRET_KEY_NAMES = re.compile(r"(?i)(api[_-]?key|authorization|token|secret|password|cookie)")
REDACTED = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove key-shaped values and the given secret strings from `text`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _KEY_PATTERNS.sub(REDACTED, text)


def _redact_value(key: str, value: Any, secrets: tuple[str, ...]) -> Any:
    if _SECRET_KEY_NAMES.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", v, secrets) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(repr(value), secrets)


# --- the error family -------------------------------------------------------------------------

_FROZEN_OK = frozenset(
    {"__cause__", "__context__", "__traceback__", "__suppress_context__", "__notes__"}
)


class ChatModelError(Exception):
    """A failure of a chat-model operation: what (`op`), why (`code`), where (`provider`, `model`).

    Instances are immutable after creation, picklable, and never hold a secret: the message and
    every context value pass through `redact`. The original exception is chained as `__cause__`.
    """

    default_code: ErrorCode = ErrorCode.UNKNOWN

    op: str
    code: ErrorCode
    provider: str
    model: str
    message: str
    context: Mapping[str, Any]
    retryable: bool

    def __init__(
        self,
        message: str,
        *,
        op: str,
        code: ErrorCode | str | None = None,
        provider: str = "",
        model: str = "",
        context: Mapping[str, Any] | None = None,
        cause: BaseException | None = None,
        retryable: bool | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        secret_tuple = tuple(s for s in secrets if s)
        resolved = ErrorCode(code) if code is not None else self.default_code
        clean_message = redact(str(message), secret_tuple)
        clean_context = {
            str(k): _redact_value(str(k), v, secret_tuple) for k, v in (context or {}).items()
        }
        super().__init__(clean_message)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "code", resolved)
        object.__setattr__(self, "provider", provider)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "message", clean_message)
        object.__setattr__(self, "context", _FrozenDict(clean_context))
        object.__setattr__(
            self, "retryable", resolved in RETRYABLE_CODES if retryable is None else retryable
        )
        if cause is not None:
            self.__cause__ = cause

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FROZEN_OK:
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot delete {name!r}")

    def __str__(self) -> str:
        where = " ".join(p for p in (self.provider, self.model) if p)
        head = f"[{self.code.value}] {where}: " if where else f"[{self.code.value}] "
        return f"{head}{self.op}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.value!r}, op={self.op!r}, "
            f"provider={self.provider!r}, model={self.model!r}, message={self.message!r})"
        )

    @property
    def retry_after(self) -> float | None:
        """Seconds the provider asked us to wait before retrying, when it said so."""
        value = self.context.get("retry_after")
        return float(value) if isinstance(value, int | float) else None

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {
            "op": self.op,
            "code": self.code.value,
            "provider": self.provider,
            "model": self.model,
            "context": dict(self.context),
            "retryable": self.retryable,
        }
        return (_rebuild, (type(self), self.message, kwargs))

    def with_location(
        self, *, op: str | None = None, provider: str = "", model: str = ""
    ) -> ChatModelError:
        """A copy with missing op/provider/model filled in (the original is immutable)."""
        if (op is None or op == self.op) and (self.provider or not provider) and (
            self.model or not model
        ):
            return self
        clone = type(self)(
            self.message,
            op=op or self.op,
            code=self.code,
            provider=self.provider or provider,
            model=self.model or model,
            context=dict(self.context),
            retryable=self.retryable,
        )
        clone.__cause__ = self.__cause__
        return clone

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"| {k} | `{v}` |" for k, v in self.context.items())
        return (
            f"**{type(self).__name__}** `{self.code.value}`\n\n| field | value |\n|---|---|\n"
            f"| op | `{self.op}` |\n| provider | `{self.provider}` |\n| model | `{self.model}` |\n"
            f"| retryable | `{self.retryable}` |\n| message | {self.message} |\n{rows}"
        )


def _rebuild(cls: type[ChatModelError], message: str, kwargs: dict[str, Any]) -> ChatModelError:
    return cls(message, **kwargs)


class _FrozenDict(dict[str, Any]):
    """A read-only dict for `ChatModelError.context`."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("ChatModelError.context is read-only")

    __setitem__ = _readonly  # type: ignore[assignment]
    __delitem__ = _readonly  # type: ignore[assignment]
    update = _readonly  # type: ignore[assignment]
    pop = _readonly  # type: ignore[assignment]
    popitem = _readonly  # type: ignore[assignment]
    clear = _readonly  # type: ignore[assignment]
    setdefault = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class ConfigError(ChatModelError):
    """The configuration is invalid (bad value, unknown provider, missing key)."""

    default_code = ErrorCode.CONFIG_INVALID


class ModelUnsupportedError(ConfigError):
    """The provider does not serve this model."""

    default_code = ErrorCode.MODEL_UNSUPPORTED


class AuthenticationError(ChatModelError):
    """The provider rejected the credentials (HTTP 401/403)."""

    default_code = ErrorCode.AUTHENTICATION_FAILED


class RateLimitError(ChatModelError):
    """The provider is rate limiting us (HTTP 429). Retryable."""

    default_code = ErrorCode.RATE_LIMIT


class ProviderUnavailableError(ChatModelError):
    """The provider is down, overloaded or unreachable (5xx, 529, connection refused). Retryable."""

    default_code = ErrorCode.PROVIDER_UNAVAILABLE


class RequestTimeoutError(ChatModelError):
    """The request exceeded its timeout. Retryable."""

    default_code = ErrorCode.REQUEST_TIMEOUT


class InvalidInputError(ChatModelError):
    """The request was rejected as malformed (HTTP 400/422) or the input is unusable."""

    default_code = ErrorCode.INVALID_INPUT


class ContextLengthExceededError(InvalidInputError):
    """The prompt does not fit the model's context window."""

    default_code = ErrorCode.CONTEXT_LENGTH_EXCEEDED


class CapabilityError(ChatModelError):
    """The provider or model does not offer the requested capability."""

    default_code = ErrorCode.CAPABILITY_UNSUPPORTED


class InvalidResponseError(ChatModelError):
    """The provider answered with something we cannot parse, or a stream ended early."""

    default_code = ErrorCode.INVALID_RESPONSE


class OperationCancelledError(ChatModelError):
    """The operation was cancelled before it finished."""

    default_code = ErrorCode.CANCELLED


_CLASS_FOR_CODE: dict[ErrorCode, type[ChatModelError]] = {
    cls.default_code: cls
    for cls in (
        ConfigError,
        ModelUnsupportedError,
        AuthenticationError,
        RateLimitError,
        ProviderUnavailableError,
        RequestTimeoutError,
        InvalidInputError,
        ContextLengthExceededError,
        CapabilityError,
        InvalidResponseError,
        OperationCancelledError,
    )
}


def error_class(code: ErrorCode | str) -> type[ChatModelError]:
    """The `ChatModelError` subclass users catch for `code`."""
    return _CLASS_FOR_CODE.get(ErrorCode(code), ChatModelError)


def make_error(code: ErrorCode | str, message: str, **kwargs: Any) -> ChatModelError:
    """Build the right subclass for `code`."""
    return error_class(code)(message, code=code, **kwargs)


# --- the one mapping --------------------------------------------------------------------------

_CONTEXT_LENGTH = re.compile(
    r"(?i)(context[ _-]?length|context window|maximum context|too many tokens|"
    r"prompt is too long|input is too long|reduce the length|exceeds the model|"
    r"exceed context limit)"
)

# Provider SDK exception classes, matched by name so no SDK is imported.
_SDK_CLASS_CODES: dict[str, ErrorCode] = {
    "AuthenticationError": ErrorCode.AUTHENTICATION_FAILED,
    "PermissionDeniedError": ErrorCode.AUTHENTICATION_FAILED,
    "RateLimitError": ErrorCode.RATE_LIMIT,
    "NotFoundError": ErrorCode.MODEL_UNSUPPORTED,
    "BadRequestError": ErrorCode.INVALID_INPUT,
    "UnprocessableEntityError": ErrorCode.INVALID_INPUT,
    "APITimeoutError": ErrorCode.REQUEST_TIMEOUT,
    "APIConnectionError": ErrorCode.PROVIDER_UNAVAILABLE,
    "InternalServerError": ErrorCode.PROVIDER_UNAVAILABLE,
    "OverloadedError": ErrorCode.PROVIDER_UNAVAILABLE,
    "ServiceUnavailableError": ErrorCode.PROVIDER_UNAVAILABLE,
    "APIResponseValidationError": ErrorCode.INVALID_RESPONSE,
    "ContextWindowExceededError": ErrorCode.CONTEXT_LENGTH_EXCEEDED,
}


def code_for_status(status: int, message: str = "") -> ErrorCode:
    """The error code an HTTP status (and the provider's message) deserves."""
    if status in (400, 413, 422):
        if _CONTEXT_LENGTH.search(message):
            return ErrorCode.CONTEXT_LENGTH_EXCEEDED
        return ErrorCode.INVALID_INPUT
    if status in (401, 403):
        return ErrorCode.AUTHENTICATION_FAILED
    if status == 404:
        return ErrorCode.MODEL_UNSUPPORTED
    if status == 408:
        return ErrorCode.REQUEST_TIMEOUT
    if status == 429:
        return ErrorCode.RATE_LIMIT
    if status >= 500 or status == 409:
        return ErrorCode.PROVIDER_UNAVAILABLE
    return ErrorCode.INVALID_RESPONSE if status < 400 else ErrorCode.INVALID_INPUT


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _provider_message(body: Any) -> tuple[str, dict[str, Any]]:
    """Pull the human message and structured fields out of an OpenAI/Anthropic/Ollama error body."""
    details: dict[str, Any] = {}
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip()[:500], details
    if not isinstance(body, Mapping):
        return str(body)[:500], details
    if "request_id" in body:
        details["request_id"] = body["request_id"]
    err = body.get("error", body)
    if isinstance(err, str):
        return err[:500], details
    if isinstance(err, Mapping):
        for key in ("type", "code", "param"):
            if err.get(key) is not None:
                details[f"provider_error_{key}"] = err[key]
        return str(err.get("message") or json.dumps(dict(err)))[:500], details
    return str(err)[:500], details


def error_for_status(
    status: int,
    body: Any,
    *,
    op: str,
    provider: str = "",
    model: str = "",
    headers: Mapping[str, str] | None = None,
    cause: BaseException | None = None,
    secrets: Iterable[str] = (),
) -> ChatModelError:
    """Build the error for an HTTP response with a non-success `status` and its `body`."""
    message, details = _provider_message(body)
    code = code_for_status(status, message)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    request_id = lowered.get("x-request-id") or lowered.get("request-id")
    if request_id and "request_id" not in details:
        details["request_id"] = request_id
    retry_after = parse_retry_after(headers)
    if retry_after is not None:
        details["retry_after"] = retry_after
    retryable: bool | None = None
    if details.get("provider_error_code") == "insufficient_quota":
        retryable = False  # a 429 that waiting will not fix
    return make_error(
        code,
        f"HTTP {status}: {message}" if message else f"HTTP {status}",
        op=op,
        provider=provider,
        model=model,
        context={"status_code": status, **details},
        cause=cause,
        retryable=retryable,
        secrets=secrets,
    )


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _code_for_exception(exc: BaseException) -> ErrorCode:
    # httpx is a run-time dependency, but classify by class hierarchy names so that
    # mapping stays one function whatever the transport.
    import httpx

    if isinstance(exc, asyncio.CancelledError):
        return ErrorCode.CANCELLED
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ErrorCode.REQUEST_TIMEOUT
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError | json.JSONDecodeError):
        return ErrorCode.INVALID_RESPONSE
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return ErrorCode.PROVIDER_UNAVAILABLE
    for klass in type(exc).__mro__:
        code = _SDK_CLASS_CODES.get(klass.__name__)
        if code is not None:
            if code is ErrorCode.INVALID_INPUT and _CONTEXT_LENGTH.search(str(exc)):
                return ErrorCode.CONTEXT_LENGTH_EXCEEDED
            return code
    if type(exc).__name__ == "ValidationError":
        return ErrorCode.INVALID_INPUT
    if isinstance(exc, ValueError | TypeError | KeyError | NotImplementedError):
        return ErrorCode.INVALID_INPUT
    return ErrorCode.UNKNOWN


def map_exception(
    exc: BaseException,
    *,
    op: str,
    provider: str = "",
    model: str = "",
    secrets: Iterable[str] = (),
) -> ChatModelError:
    """Turn any exception into the `ChatModelError` with the right code, cause chained.

    A `ChatModelError` passes through (with provider/model filled in when missing).
    Objects with an HTTP `status_code` (httpx.HTTPStatusError, the openai/anthropic SDK
    errors) are classified by status and body; everything else by type.
    """
    if isinstance(exc, ChatModelError):
        return exc.with_location(provider=provider, model=model)
    status = _status_of(exc)
    headers: Mapping[str, str] | None = None
    response = getattr(exc, "response", None)
    if response is not None:
        raw_headers = getattr(response, "headers", None)
        if isinstance(raw_headers, Mapping):
            headers = {str(k): str(v) for k, v in raw_headers.items()}
    if status is not None and status >= 400:
        body = getattr(exc, "body", None)
        if body is None and response is not None:
            try:
                body = response.text
            except Exception:  # a streamed response that was never read
                body = None
        if body is None:
            body = getattr(exc, "message", None) or str(exc)
        err = error_for_status(
            status, body, op=op, provider=provider, model=model, headers=headers,
            cause=exc, secrets=secrets,
        )
        # SDK class names are more specific than the bare status for a few cases.
        sdk_code = _code_for_exception(exc)
        if sdk_code is ErrorCode.CONTEXT_LENGTH_EXCEEDED and err.code is not sdk_code:
            return make_error(sdk_code, err.message, op=op, provider=provider, model=model,
                              context=dict(err.context), cause=exc, secrets=secrets)
        return err
    code = _code_for_exception(exc)
    message = str(exc) or type(exc).__name__
    return make_error(
        code,
        f"{type(exc).__name__}: {message}",
        op=op,
        provider=provider,
        model=model,
        context={"exception_type": type(exc).__name__},
        cause=exc,
        secrets=secrets,
    )
