"""The project's scrubbing rules for recorded HTTP traffic, in one place.

Used as vcrpy hooks (`before_record_request`, `before_record_response`) so nothing secret
reaches a cassette, and by the cassette hygiene test (`find_secrets`, `audit_cassette_text`)
to prove it. The request hook also runs on every live request vcrpy tries to match during
replay, so a key in a request body is scrubbed on both sides and still matches.

What is scrubbed:
- request headers `REQUEST_HEADERS` (authorization, x-api-key, ...): value replaced by `REDACTED`;
- response headers `RESPONSE_HEADERS` (set-cookie with Cloudflare's `__cf_bm`/`_cfuvid`
  cookies, organisation and project ids): dropped;
- query parameters `QUERY_PARAMS` (api_key, key): value replaced by `REDACTED`;
- key-shaped values anywhere in the URL, header values and bodies (str or bytes, SSE streams
  included): `sk-...`, `sk-proj-...`, `sk-ant-...` become `REDACTED`, `Bearer <token>` becomes
  `Bearer REDACTED`, and string values of JSON fields such as `"api_key"` become `REDACTED`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, MutableMapping
from typing import Any, Protocol, TypeVar, overload
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "AUTH_HEADERS",
    "KEY_PATTERN",
    "QUERY_PARAMS",
    "REDACTED",
    "REQUEST_HEADERS",
    "RESPONSE_HEADERS",
    "audit_cassette_text",
    "before_record_request",
    "before_record_response",
    "find_secrets",
    "scrub_body",
    "scrub_text",
]

REDACTED = "REDACTED"

REQUEST_HEADERS: tuple[str, ...] = (
    "authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
    "cookie",
    "set-cookie",
)
"""Request headers kept (so the cassette shows they were sent) with the value `REDACTED`."""

RESPONSE_HEADERS: tuple[str, ...] = (
    "set-cookie",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
)
"""Response headers dropped from recordings (`set-cookie` carries `__cf_bm`/`_cfuvid`)."""

AUTH_HEADERS: tuple[str, ...] = ("authorization", "x-api-key", "api-key")
"""Headers whose recorded value must be `REDACTED`: checked by `audit_cassette_text`."""

QUERY_PARAMS: tuple[str, ...] = ("api_key", "key")

_SECRET_FIELDS = (
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "authorization",
    "access_token",
    "client_secret",
)

_SK = r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9][A-Za-z0-9_-]{7,}"
_BEARER_PREFIX = r"(?i:bearer)\s+"
# A bearer token: 12+ token characters, at least one digit (so prose like "Bearer authentication"
# is left alone), and not the placeholder itself.
_TOKEN = r"(?!REDACTED\b)(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{12,}=*"

KEY_PATTERN: re.Pattern[str] = re.compile(f"{_BEARER_PREFIX}{_TOKEN}|{_SK}")
"""Matches a key-shaped value: `sk-...` (OpenAI, project, Anthropic keys) or `Bearer <token>`."""

_SK_RE = re.compile(_SK)
_BEARER_RE = re.compile(f"({_BEARER_PREFIX}){_TOKEN}")
_FIELD_RE = re.compile(
    r'("(?:' + "|".join(re.escape(f) for f in _SECRET_FIELDS) + r')"\s*:\s*")'
    r'((?:[^"\\]|\\.)*)(")',
    re.IGNORECASE,
)


class RecordedRequest(Protocol):
    """The parts of a `vcr.request.Request` the request hook touches."""

    uri: str
    headers: MutableMapping[str, Any]
    body: Any


_Request = TypeVar("_Request", bound=RecordedRequest)


def find_secrets(text: str) -> list[str]:
    """Every key-shaped value in `text` (placeholders such as `Bearer REDACTED` excluded)."""
    return [match.group(0) for match in KEY_PATTERN.finditer(text)]


def _find_secret_fields(text: str) -> list[str]:
    return [m.group(0) for m in _FIELD_RE.finditer(text) if m.group(2) not in ("", REDACTED)]


def scrub_text(text: str) -> str:
    """`text` with bearer tokens, `sk-` keys and JSON secret fields replaced by `REDACTED`."""
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SK_RE.sub(REDACTED, text)
    return _FIELD_RE.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)


@overload
def scrub_body(body: bytes) -> bytes: ...
@overload
def scrub_body(body: str) -> str: ...
@overload
def scrub_body(body: None) -> None: ...
def scrub_body(body: bytes | str | None) -> bytes | str | None:
    """`scrub_text` over a body; bytes that are not UTF-8 (binary payloads) are left as is."""
    if isinstance(body, str):
        return scrub_text(body)
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        scrubbed = scrub_text(text)
        return body if scrubbed == text else scrubbed.encode("utf-8")
    return body


def _scrub_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(name.lower() in QUERY_PARAMS for name, _ in pairs):
            query = urlencode([(n, REDACTED if n.lower() in QUERY_PARAMS else v) for n, v in pairs])
            parts = parts._replace(query=query)
    return scrub_text(urlunsplit(parts))


def before_record_request(request: _Request) -> _Request:
    """vcrpy hook: scrub a request's URL, headers and body. Mutates and returns `request`.

    vcrpy hands this hook a deep copy, so the request actually sent is never altered.
    """
    request.uri = _scrub_uri(request.uri)
    for name in list(request.headers):
        value = request.headers[name]
        if name.lower() in REQUEST_HEADERS:
            request.headers[name] = REDACTED
        elif isinstance(value, str):
            request.headers[name] = scrub_text(value)
    body = request.body
    if isinstance(body, bytes | str):
        request.body = scrub_body(body)
    return request


def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy hook: drop identifying response headers and scrub the body. Returns a copy.

    vcrpy 8 response dicts hold `headers` as a dict of lists and the body (bytes or str)
    under `response["body"]["string"]`; a changed body gets a matching `content-length`.
    """
    response = copy.deepcopy(response)
    headers: dict[str, Any] = {}
    for name, values in response.get("headers", {}).items():
        if name.lower() in RESPONSE_HEADERS:
            continue
        if isinstance(values, list):
            values = [scrub_text(v) if isinstance(v, str) else v for v in values]
        headers[name] = values
    response["headers"] = headers
    body = response.get("body")
    if isinstance(body, dict) and "string" in body:
        old = body["string"]
        new = scrub_body(old)
        if new is not old:
            body["string"] = new
            size = len(new.encode("utf-8") if isinstance(new, str) else new)
            for name in headers:
                if name.lower() == "content-length":
                    headers[name] = [str(size)]
    return response


# --- audit of recorded cassettes ---------------------------------------------------------


def _cassette_loader() -> type[Any]:
    import yaml  # type: ignore[import-untyped]

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        """Safe loading that reads vcrpy's `!!python/...` tags as plain data."""

    def plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", plain)
    return Loader


def _parse(text: str) -> Any:
    import yaml  # type: ignore[import-untyped]

    try:
        return json.loads(text)
    except ValueError:
        return yaml.load(text, Loader=_cassette_loader())  # a SafeLoader subclass


def _walk(node: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, value) pair of a parsed cassette; `key` is None for list items."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (str(key), value)
            yield from _walk(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield (None, item)
            yield from _walk(item)


def audit_cassette_text(text: str) -> list[str]:
    """Problems found in a cassette's text (YAML or JSON); an empty list means clean.

    Flags key-shaped values and JSON secret fields anywhere (decoded `!!binary` bodies
    included), auth headers (`AUTH_HEADERS`) holding anything but `REDACTED`, and text that
    does not parse (it could hide anything).
    """
    problems = [f"key-shaped value: {s}" for s in find_secrets(text)]
    problems += [f"secret JSON field: {s}" for s in _find_secret_fields(text)]
    try:
        data = _parse(text)
    except Exception as exc:  # any parse failure is a finding, not a crash
        return [*problems, f"cassette does not parse: {exc}"]
    for key, value in _walk(data):
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if key is not None and key.lower() in AUTH_HEADERS:
            values = value if isinstance(value, list) else [value]
            problems += [f"unfiltered {key} header: {v!r}" for v in values if v != REDACTED]
        if isinstance(value, str):
            problems += [f"key-shaped value: {s}" for s in find_secrets(value)]
            problems += [f"secret JSON field: {s}" for s in _find_secret_fields(value)]
    return list(dict.fromkeys(problems))
