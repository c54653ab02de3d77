"""The shared HTTP layer of the native providers: pooled httpx clients, retries, SSE/NDJSON.

Provider modules only build request bodies and parse responses; everything about sending
(timeouts, retries with backoff and jitter honouring Retry-After, error mapping, closing
streams) lives here, once.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from chatmodels_langchain.errors import (
    ChatModelError,
    InvalidResponseError,
    error_for_status,
    map_exception,
)
from chatmodels_langchain.telemetry import current_operation

__all__ = ["HTTPTransport", "ServerEvent", "StreamFormat", "backoff_delay"]

StreamFormat = Literal["sse", "ndjson"]

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
RETRY_AFTER_MAX_S = 60.0
CONNECT_TIMEOUT_MAX_S = 10.0

# Indirection so tests can observe delays without waiting.
sleep: Callable[[float], None] = time.sleep
async_sleep: Callable[[float], Any] = asyncio.sleep


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One streamed event: SSE `event:` name (None for NDJSON/unnamed) and its JSON `data`."""

    event: str | None
    data: Any


DONE = ServerEvent("done", None)
"""Emitted for OpenAI's `data: [DONE]` terminator."""


def backoff_delay(attempt: int, error: ChatModelError) -> float:
    """Seconds before retry `attempt` (0-based): Retry-After if given, else jittered backoff."""
    if error.retry_after is not None:
        return min(error.retry_after, RETRY_AFTER_MAX_S)
    ceiling = min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)  # "equal jitter": never zero, never in lockstep


class HTTPTransport:
    """One pooled `httpx.Client` and one `httpx.AsyncClient` per model instance, created lazily.

    Clients passed in are used as they are and never closed here (the caller owns them).
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        max_retries: int,
        provider: str,
        model: str,
        secrets: tuple[str, ...] = (),
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_MAX_S))
        self.max_retries = max_retries
        self.provider = provider
        self.model = model
        self._secrets = secrets
        self._client = client
        self._async_client = async_client
        self._owns_client = client is None
        self._owns_async_client = async_client is None
        self._create_lock = threading.Lock()

    # --- clients ---

    @property
    def client(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._create_lock:  # one pool per model, even under concurrent first calls
                if self._client is None:
                    self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
                client = self._client
        return client

    @property
    def async_client(self) -> httpx.AsyncClient:
        client = self._async_client
        if client is None:
            with self._create_lock:
                if self._async_client is None:
                    self._async_client = httpx.AsyncClient(
                        timeout=self.timeout, follow_redirects=False
                    )
                client = self._async_client
        return client

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._owns_async_client and self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    # --- helpers ---

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _mapped(self, exc: BaseException, op: str) -> ChatModelError:
        return map_exception(exc, op=op, provider=self.provider, model=self.model,
                             secrets=self._secrets)

    def _status_error(self, response: httpx.Response, op: str) -> ChatModelError:
        return error_for_status(
            response.status_code, response.text, op=op, provider=self.provider,
            model=self.model, headers=dict(response.headers), secrets=self._secrets,
        )

    def _decode(self, response: httpx.Response, op: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise InvalidResponseError(
                f"response is not JSON: {response.text[:200]!r}", op=op,
                provider=self.provider, model=self.model, cause=exc,
                context={"status_code": response.status_code}, secrets=self._secrets,
            ) from exc

    def _retry_delay(
        self, exc: ChatModelError | httpx.HTTPError, op: str, attempt: int, *, yielded: bool = False
    ) -> float:
        """Seconds to wait before retrying after `exc`; raises the mapped error to give up.

        Never retries once a stream has yielded data, nor a non-retryable error, nor beyond
        `max_retries`. Each retry is reported to the call's telemetry as a span event.
        """
        error = exc if isinstance(exc, ChatModelError) else self._mapped(exc, op)
        if yielded or not error.retryable or attempt >= self.max_retries:
            raise error from error.__cause__
        delay = backoff_delay(attempt, error)
        operation = current_operation()
        if operation is not None:
            operation.record_retry(attempt + 1, error, delay)
        return delay

    # --- plain requests ---

    def request_json(
        self, method: str, path: str, body: Any = None, *, op: str = "invoke"
    ) -> Any:
        attempt = 0
        while True:
            try:
                response = self.client.request(
                    method, self._url(path), json=body, headers=self.headers
                )
                if response.status_code >= 400:
                    raise self._status_error(response, op)
                return self._decode(response, op)
            except (ChatModelError, httpx.HTTPError) as exc:
                delay = self._retry_delay(exc, op, attempt)
            sleep(delay)
            attempt += 1

    async def arequest_json(
        self, method: str, path: str, body: Any = None, *, op: str = "ainvoke"
    ) -> Any:
        attempt = 0
        while True:
            try:
                response = await self.async_client.request(
                    method, self._url(path), json=body, headers=self.headers
                )
                if response.status_code >= 400:
                    raise self._status_error(response, op)
                return self._decode(response, op)
            except (ChatModelError, httpx.HTTPError) as exc:
                delay = self._retry_delay(exc, op, attempt)
            await async_sleep(delay)
            attempt += 1

    # --- streams ---

    def stream(
        self, path: str, body: Any, *, fmt: StreamFormat, op: str = "stream"
    ) -> Iterator[ServerEvent]:
        """Events of a streamed POST. Retries only before the first event; closes on exit."""
        attempt = 0
        while True:
            yielded = False
            try:
                with self.client.stream(
                    "POST", self._url(path), json=body, headers=self.headers
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise self._status_error(response, op)
                    for event in _parse_events(response.iter_lines(), fmt, self, op):
                        yielded = True
                        yield event
                return
            except (ChatModelError, httpx.HTTPError) as exc:
                delay = self._retry_delay(exc, op, attempt, yielded=yielded)
            sleep(delay)
            attempt += 1

    async def astream(
        self, path: str, body: Any, *, fmt: StreamFormat, op: str = "astream"
    ) -> AsyncIterator[ServerEvent]:
        attempt = 0
        while True:
            yielded = False
            try:
                async with self.async_client.stream(
                    "POST", self._url(path), json=body, headers=self.headers
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise self._status_error(response, op)
                    parser = _EventParser(fmt, self, op)
                    async for line in response.aiter_lines():
                        for event in parser.feed(line):
                            yielded = True
                            yield event
                    for event in parser.flush():
                        yielded = True
                        yield event
                return
            except (ChatModelError, httpx.HTTPError) as exc:
                delay = self._retry_delay(exc, op, attempt, yielded=yielded)
            await async_sleep(delay)
            attempt += 1


class _EventParser:
    """Incremental SSE / NDJSON line parser producing `ServerEvent`s."""

    __slots__ = ("_data", "_event", "_fmt", "_op", "_transport")

    def __init__(self, fmt: StreamFormat, transport: HTTPTransport, op: str) -> None:
        self._fmt = fmt
        self._transport = transport
        self._op = op
        self._event: str | None = None
        self._data: list[str] = []

    def _load(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as exc:
            t = self._transport
            raise InvalidResponseError(
                f"malformed stream event: {text[:200]!r}", op=self._op, provider=t.provider,
                model=t.model, cause=exc, secrets=t._secrets,
            ) from exc

    def feed(self, line: str) -> list[ServerEvent]:
        if self._fmt == "ndjson":
            line = line.strip()
            return [ServerEvent(None, self._load(line))] if line else []
        if not line:
            return self.flush()
        if line.startswith(":"):
            return []  # SSE comment / keep-alive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        return []

    def flush(self) -> list[ServerEvent]:
        if not self._data:
            self._event = None
            return []
        text = "\n".join(self._data)
        event, self._event, self._data = self._event, None, []
        if text.strip() == "[DONE]":
            return [DONE]
        return [ServerEvent(event, self._load(text))]


def _parse_events(
    lines: Iterator[str], fmt: StreamFormat, transport: HTTPTransport, op: str
) -> Iterator[ServerEvent]:
    parser = _EventParser(fmt, transport, op)
    for line in lines:
        yield from parser.feed(line)
    yield from parser.flush()
