"""ChatModelError: codes, immutability, pickling, redaction, and the one mapping."""

from __future__ import annotations

import asyncio
import pickle

import httpx
import pytest

from chatmodels_langchain.errors import (
    AuthenticationError,
    ChatModelError,
    ContextLengthExceededError,
    ErrorCode,
    InvalidResponseError,
    ProviderUnavailableError,
    RateLimitError,
    RequestTimeoutError,
    error_for_status,
    make_error,
    map_exception,
    parse_retry_after,
)

KEY = "sk-proj-Zq8xY3vB7nM2kL5pR9tW1uE4iO6aS0dF"
ANTHROPIC_KEY = "sk-ant-api03-Zq8xY3vB7nM2kL5pR9tW1uE4iO6aS0dF"


def test_str_is_readable() -> None:
    err = RateLimitError("slow down", op="invoke", provider="openai", model="gpt-4o-mini")
    assert str(err) == "[rate_limit] openai gpt-4o-mini: invoke: slow down"
    assert err.code is ErrorCode.RATE_LIMIT and err.code == "rate_limit"
    assert err.retryable


def test_immutable_after_creation() -> None:
    err = ChatModelError("x", op="invoke", context={"a": 1})
    with pytest.raises(AttributeError):
        err.code = ErrorCode.RATE_LIMIT  # type: ignore[misc]
    with pytest.raises(TypeError):
        err.context["a"] = 2  # type: ignore[index]
    assert err.context["a"] == 1


def test_pickle_round_trip_keeps_fields_and_class() -> None:
    err = make_error("rate_limit", "wait", op="invoke", provider="p", model="m",
                     context={"retry_after": 2.0})
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is RateLimitError
    assert (clone.op, clone.code, clone.provider, clone.model) == ("invoke", "rate_limit", "p", "m")
    assert clone.retry_after == 2.0
    assert str(clone) == str(err)


@pytest.mark.parametrize("secret", [KEY, ANTHROPIC_KEY, "Bearer abcdefghijklmnop1234"])
def test_no_secret_in_text_or_context(secret: str) -> None:
    err = ChatModelError(
        f"request failed with key {secret}",
        op="invoke",
        context={"api_key": secret, "detail": f"header {secret}", "nested": {"k": [secret]}},
        cause=ValueError(secret),
    )
    rendered = str(err) + repr(err) + repr(dict(err.context)) + err._repr_markdown_()
    assert secret not in rendered
    assert "***" in rendered


def test_exact_secret_values_are_redacted_even_if_not_key_shaped() -> None:
    err = map_exception(ValueError("token=hunter2hunter2"), op="invoke", secrets=["hunter2hunter2"])
    assert "hunter2hunter2" not in str(err)


def test_cause_is_chained() -> None:
    cause = httpx.ConnectError("refused")
    err = map_exception(cause, op="invoke", provider="openai")
    assert err.__cause__ is cause
    assert isinstance(err, ProviderUnavailableError)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, '{"error": {"message": "bad param", "type": "invalid_request_error"}}', "invalid_input"),
        (400, '{"error": {"message": "This model\'s maximum context length is 8192 tokens"}}',
         "context_length_exceeded"),
        (400, '{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}',
         "context_length_exceeded"),
        (401, '{"error": {"message": "Incorrect API key provided"}}', "authentication_failed"),
        (403, '{"error": {"message": "forbidden"}}', "authentication_failed"),
        (404, '{"error": {"message": "The model does not exist"}}', "model_unsupported"),
        (408, "timeout", "request_timeout"),
        (429, '{"error": {"message": "Rate limit reached"}}', "rate_limit"),
        (500, "Internal Server Error", "provider_unavailable"),
        (503, "", "provider_unavailable"),
        (529, '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
         "provider_unavailable"),
    ],
)
def test_status_mapping(status: int, body: str, code: str) -> None:
    err = error_for_status(status, body, op="invoke", provider="x", model="y")
    assert err.code == code
    assert err.context["status_code"] == status


def test_provider_message_and_request_id_kept() -> None:
    err = error_for_status(
        429,
        '{"type":"error","error":{"type":"rate_limit_error","message":"Too many"},"request_id":"req_1"}',
        op="invoke",
        headers={"retry-after": "3"},
    )
    assert "Too many" in str(err)
    assert err.context["request_id"] == "req_1"
    assert err.retry_after == 3.0


def test_request_id_from_header() -> None:
    err = error_for_status(500, "{}", op="invoke", headers={"x-request-id": "req_abc"})
    assert err.context["request_id"] == "req_abc"


def test_insufficient_quota_is_not_retryable() -> None:
    body = '{"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}'
    err = error_for_status(429, body, op="invoke")
    assert err.code == "rate_limit" and not err.retryable


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx.ReadTimeout("slow"), "request_timeout"),
        (httpx.ConnectTimeout("slow"), "request_timeout"),
        (TimeoutError(), "request_timeout"),
        (httpx.ConnectError("refused"), "provider_unavailable"),
        (ConnectionRefusedError(), "provider_unavailable"),
        (httpx.RemoteProtocolError("peer closed"), "invalid_response"),
        (asyncio.CancelledError(), "cancelled"),
        (ValueError("bad"), "invalid_input"),
        (RuntimeError("??"), "unknown"),
    ],
)
def test_exception_mapping(exc: BaseException, code: str) -> None:
    assert map_exception(exc, op="invoke").code == code


def test_httpx_status_error_mapping() -> None:
    request = httpx.Request("POST", "https://api.example.com/v1/chat")
    response = httpx.Response(
        429, request=request, json={"error": {"message": "slow"}}, headers={"retry-after": "1"}
    )
    exc = httpx.HTTPStatusError("429", request=request, response=response)
    err = map_exception(exc, op="invoke", provider="openai", model="gpt-4o")
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 1.0 and err.__cause__ is exc


# Duck-typed stand-ins for provider SDK exceptions (the SDKs are not imported).
class _SDKError(Exception):
    def __init__(self, message: str, status_code: int | None = None, body: object = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code
        self.body = body


class AuthenticationErrorSDK(_SDKError):
    pass


AuthenticationErrorSDK.__name__ = "AuthenticationError"


class APITimeoutError(_SDKError):
    pass


class OverloadedError(_SDKError):
    pass


def test_sdk_errors_by_status_and_class_name() -> None:
    assert map_exception(_SDKError("x", 401), op="invoke").code == "authentication_failed"
    assert map_exception(_SDKError("x", 529), op="invoke").code == "provider_unavailable"
    body = {"error": {"message": "maximum context length exceeded"}}
    assert map_exception(_SDKError("x", 400, body), op="invoke").code == "context_length_exceeded"
    assert map_exception(APITimeoutError("t"), op="invoke").code == "request_timeout"
    assert map_exception(OverloadedError("o"), op="invoke").code == "provider_unavailable"
    assert isinstance(map_exception(AuthenticationErrorSDK("a"), op="invoke"), AuthenticationError)


def test_chat_model_error_passes_through_with_location_filled() -> None:
    original = RequestTimeoutError("t", op="invoke")
    mapped = map_exception(original, op="invoke", provider="openai", model="m")
    assert mapped.provider == "openai" and mapped.model == "m"
    assert map_exception(mapped, op="invoke", provider="other") is mapped


def test_subclasses_for_with_retry_and_fallbacks() -> None:
    assert issubclass(ContextLengthExceededError, ChatModelError)
    assert isinstance(make_error("invalid_response", "x", op="stream"), InvalidResponseError)
    for code in ErrorCode:
        assert isinstance(make_error(code, "x", op="op"), ChatModelError)
