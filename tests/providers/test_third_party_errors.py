"""A third-party LangChain model (langchain-openai's `ChatOpenAI`) registered in a registry
fails with the same `ChatModelError` codes as the native `openai` provider.

Both talk to one local HTTP server that answers like OpenAI does when things go wrong, so the
comparison covers the whole path: the openai SDK's exceptions on one side, our httpx
transport on the other, and the one mapping (`errors.map_exception`) in between.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from langchain_openai import ChatOpenAI

from chatmodels_langchain.config import ProviderConfig
from chatmodels_langchain.errors import ChatModelError, ErrorCode
from chatmodels_langchain.metadata import Capability, ProviderMetadata
from chatmodels_langchain.providers import register_builtins
from chatmodels_langchain.registry import ChatModelRegistry
from chatmodels_langchain.wrapper import ChatModelWrapper
from tests.providers.conftest import FAKE_OPENAI_KEY

ERRORS: dict[int, tuple[dict[str, Any], dict[str, str]]] = {
    401: ({"error": {"message": "Incorrect API key provided: sk-proj-****0000.",
                     "type": "invalid_request_error", "param": None,
                     "code": "invalid_api_key"}}, {}),
    429: ({"error": {"message": "Rate limit reached for gpt-4o-mini on requests per min (RPM).",
                     "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
          {"retry-after": "7"}),
    500: ({"error": {"message": "The server had an error while processing your request.",
                     "type": "server_error", "param": None, "code": None}}, {}),
}
EXPECTED = {401: ErrorCode.AUTHENTICATION_FAILED, 429: ErrorCode.RATE_LIMIT,
            500: ErrorCode.PROVIDER_UNAVAILABLE}


class _OpenAIErrors(BaseHTTPRequestHandler):
    """`POST /<status>/v1/chat/completions` answers `<status>` with an OpenAI error body."""

    def do_POST(self) -> None:  # http.server names handlers this way
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status = int(self.path.strip("/").split("/")[0])
        body, headers = ERRORS[status]
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-request-id", f"req_local_{status}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        return


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAIErrors)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _langchain_openai(config: ProviderConfig) -> ChatOpenAI:
    key = config.api_key.get_secret_value() if config.api_key else None
    return ChatOpenAI(model=config.model, api_key=key,  # type: ignore[arg-type]
                      base_url=config.base_url, max_retries=0, timeout=config.timeout)


LC_OPENAI = ProviderMetadata(
    name="lc_openai",
    description="langchain-openai's ChatOpenAI behind the registry",
    capabilities=frozenset({Capability.STREAMING, Capability.TOOL_CALLING}),
    supported_models=("gpt-*",),
    required_config=("model", "api_key"),
)


@pytest.fixture
def registry() -> ChatModelRegistry:
    created = ChatModelRegistry()
    register_builtins(created)
    created.register("lc_openai", _langchain_openai, LC_OPENAI)
    return created


def _models(registry: ChatModelRegistry, base_url: str) -> dict[str, ChatModelWrapper]:
    common: dict[str, Any] = {"model": "gpt-4o-mini", "api_key": FAKE_OPENAI_KEY,
                              "base_url": base_url, "max_retries": 0, "timeout": 10.0}
    return {name: registry.new_provider(name, **common) for name in ("lc_openai", "openai")}


def _invoke_error(model: ChatModelWrapper, streaming: bool) -> ChatModelError:
    with pytest.raises(ChatModelError) as info:
        if streaming:
            list(model.stream("hi"))
        else:
            model.invoke("hi")
    return info.value


@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("status", sorted(ERRORS))
def test_third_party_and_native_errors_share_codes(
    registry: ChatModelRegistry, server_url: str, status: int, streaming: bool
) -> None:
    models = _models(registry, f"{server_url}/{status}/v1")
    assert isinstance(models["lc_openai"].underlying, ChatOpenAI)
    errors = {name: _invoke_error(model, streaming) for name, model in models.items()}
    third_party, native = errors["lc_openai"], errors["openai"]

    assert third_party.code is native.code is EXPECTED[status]
    assert type(third_party) is type(native)
    assert third_party.retryable == native.retryable
    assert third_party.provider == "lc_openai" and native.provider == "openai"
    assert third_party.context["status_code"] == native.context["status_code"] == status
    assert third_party.context["request_id"] == native.context["request_id"]
    message = ERRORS[status][0]["error"]["message"]
    for err in (third_party, native):
        assert message in err.message
        assert FAKE_OPENAI_KEY not in str(err)
    if status == 429:
        assert third_party.retry_after == native.retry_after == 7.0
    # the SDK's exception stays reachable as the cause of the third-party error
    assert isinstance(third_party.__cause__, openai.APIStatusError)


async def test_async_third_party_and_native_errors_share_codes(
    registry: ChatModelRegistry, server_url: str
) -> None:
    models = _models(registry, f"{server_url}/429/v1")
    codes = set()
    for model in models.values():
        with pytest.raises(ChatModelError) as info:
            await model.ainvoke("hi")
        codes.add(info.value.code)
    assert codes == {ErrorCode.RATE_LIMIT}
