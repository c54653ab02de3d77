"""`chatmodels_langchain.testing`: scrubbing rules, vcrpy settings, and the pytest plugin.

The plugin is exercised end to end with pytester against a local OpenAI-shaped server that
demands a bearer key: record once, stop the server, replay. The user test files below import
httpx directly, as a chain's provider would under the hood.
"""

from __future__ import annotations

import importlib.metadata
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr.request
import yaml  # type: ignore[import-untyped]

from chatmodels_langchain.testing import cassettes, scrub
from chatmodels_langchain.testing.cassettes import (
    MissingCassetteError,
    cassette_dir,
    json_body_matcher,
    make_vcr,
    resolve_record_mode,
    use_cassette,
    vcr_config,
)
from chatmodels_langchain.testing.scrub import (
    audit_cassette_text,
    before_record_request,
    before_record_response,
    find_secrets,
)

pytest_plugins = ["pytester"]

KEY = "sk-test-" + "0123456789abcdef" * 2
OTHER_KEY = "sk-test-" + "fedcba9876543210" * 2
ANSWER = "Hello from the fake server"


class FakeOpenAI:
    """A local /v1/chat/completions that requires `Authorization: Bearer <KEY>`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer = ANSWER
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()
            self.running = False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Authorization") != f"Bearer {KEY}":
                    self._reply(401, {"error": {"message": "invalid key", "type": "auth"}})
                    return
                fake.requests.append({"path": self.path, "body": json.loads(body)})
                message = {"role": "assistant", "content": fake.answer}
                self._reply(
                    200,
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "model": "gpt-test",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
                    },
                )

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Set-Cookie", "__cf_bm=cookie0123456789; path=/; HttpOnly")
                self.send_header("openai-organization", "org-secret-0123")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    monkeypatch.setenv("FAKE_OPENAI_URL", server.url)
    monkeypatch.setenv("FAKE_OPENAI_KEY", KEY)
    monkeypatch.delenv(cassettes.RECORD_MODE_ENV, raising=False)
    yield server
    server.stop()


def _post(url: str, key: str, *, reverse: bool = False) -> str:
    payload: dict[str, Any] = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": f"my key is {key}"}],
        "api_key": key,
        "temperature": 0,
    }
    if reverse:
        payload = dict(reversed(payload.items()))
    response = httpx.post(
        f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=payload
    )
    response.raise_for_status()
    return str(response.json()["choices"][0]["message"]["content"])


# The same request, as user test files see it (importable by the pytester runs).
USER_HELPERS = """
import os
import httpx

def call():
    key = os.environ["FAKE_OPENAI_KEY"]
    payload = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "my key is " + key}],
        "api_key": key,
        "temperature": 0,
    }
    if os.environ.get("REVERSE_KEYS"):
        payload = dict(reversed(payload.items()))
    response = httpx.post(
        os.environ["FAKE_OPENAI_URL"] + "/v1/chat/completions",
        headers={"Authorization": "Bearer " + key},
        json=payload,
    )
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"]
"""


def _plugin_args() -> list[str]:
    """`-p` our plugin unless its entry point is installed (pytest refuses a double register)."""
    installed = any(
        ep.value == "chatmodels_langchain.testing.plugin"
        for ep in importlib.metadata.entry_points(group="pytest11")
    )
    return [] if installed else ["-p", "chatmodels_langchain.testing.plugin"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*_plugin_args(), "-p", "no:cacheprovider", "-p", "no:asyncio", *args)


def _interactions(path: Path) -> list[dict[str, Any]]:
    """A vcrpy YAML cassette, parsed (long strings are folded across lines in the text)."""
    data = yaml.safe_load(path.read_text())
    assert data["version"] == 1
    return list(data["interactions"])


def _answers(path: Path) -> list[str]:
    return [
        json.loads(i["response"]["body"]["string"])["choices"][0]["message"]["content"]
        for i in _interactions(path)
    ]


def _assert_clean(text: str) -> None:
    assert KEY not in text
    assert "__cf_bm" not in text
    assert "org-secret" not in text
    assert audit_cassette_text(text) == []


# --- scrubbing rules ----------------------------------------------------------------------


def test_request_hook_redacts_headers_query_and_body() -> None:
    request = vcr.request.Request(
        "POST",
        "https://api.example.com/v1/chat?model=m&key=abc&api_key=xyz",
        json.dumps({"api_key": "plain-secret", "text": f"use {KEY}"}).encode(),
        {
            "Authorization": f"Bearer {KEY}",
            "X-Api-Key": "anthropic-secret",
            "api-key": "azure-secret",
            "Cookie": "session=1",
            "User-Agent": "test",
        },
    )

    scrubbed = before_record_request(request)

    assert scrubbed.headers["authorization"] == "REDACTED"
    assert scrubbed.headers["x-api-key"] == "REDACTED"
    assert scrubbed.headers["api-key"] == "REDACTED"
    assert scrubbed.headers["cookie"] == "REDACTED"
    assert scrubbed.headers["user-agent"] == "test"
    assert dict(scrubbed.query) == {"model": "m", "key": "REDACTED", "api_key": "REDACTED"}
    assert json.loads(scrubbed.body) == {"api_key": "REDACTED", "text": "use REDACTED"}


def test_response_hook_drops_identifying_headers_and_scrubs_sse_body() -> None:
    body = f'data: {{"echo": "Bearer {KEY}"}}\n\ndata: [DONE]\n\n'.encode()
    response: dict[str, Any] = {
        "status": {"code": 200, "message": "OK"},
        "headers": {
            "Set-Cookie": ["__cf_bm=abc; path=/", "_cfuvid=def; path=/"],
            "OpenAI-Organization": ["org-1"],
            "openai-project": ["proj_1"],
            "anthropic-organization-id": ["uuid"],
            "Content-Type": ["text/event-stream"],
            "Content-Length": [str(len(body))],
        },
        "body": {"string": body},
    }

    scrubbed = before_record_response(response)

    assert set(scrubbed["headers"]) == {"Content-Type", "Content-Length"}
    new_body = scrubbed["body"]["string"]
    assert new_body == b'data: {"echo": "Bearer REDACTED"}\n\ndata: [DONE]\n\n'
    assert scrubbed["headers"]["Content-Length"] == [str(len(new_body))]
    assert response["body"]["string"] == body, "the live response must not be altered"


def test_response_hook_keeps_str_and_binary_bodies_usable() -> None:
    as_text = before_record_response({"headers": {}, "body": {"string": f"key {KEY}"}})
    assert as_text["body"]["string"] == "key REDACTED"
    binary = b"\x1f\x8b\xff\x00" + KEY.encode()[:3]
    untouched = before_record_response({"headers": {}, "body": {"string": binary}})
    assert untouched["body"]["string"] == binary


@pytest.mark.parametrize(
    "secret",
    [
        "sk-" + "a1" * 24,
        "sk-proj-" + "Ab3_-" * 20,
        "sk-ant-api03-" + "x9" * 40 + "-AA",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig123",
        "bearer ya29.a0AfH6SMBx1234",
    ],
)
def test_find_secrets_flags_key_shaped_values(secret: str) -> None:
    assert find_secrets(f'{{"text": "{secret}"}}') == [secret]
    assert secret not in scrub.scrub_text(secret)


@pytest.mark.parametrize(
    "harmless",
    [
        "Bearer REDACTED",
        "task-force-alpha-bravo-2024",
        "use Bearer authentication",
        "sk-...",
        "sk-short1",
    ],
)
def test_find_secrets_ignores_placeholders_and_prose(harmless: str) -> None:
    assert find_secrets(harmless) == []


# --- vcrpy settings -------------------------------------------------------------------------


class _Req:
    def __init__(self, body: bytes | str | None) -> None:
        self.body = body


def test_json_body_matcher_ignores_key_order_only() -> None:
    json_body_matcher(_Req(b'{"a": 1, "b": [1, 2]}'), _Req('{"b": [1, 2], "a": 1}'))
    json_body_matcher(_Req(None), _Req(b""))
    json_body_matcher(_Req(b"raw=1"), _Req(b"raw=1"))
    with pytest.raises(AssertionError):
        json_body_matcher(_Req(b'{"a": 1}'), _Req(b'{"a": 2}'))
    with pytest.raises(AssertionError):
        json_body_matcher(_Req(b'{"b": [1, 2]}'), _Req(b'{"b": [2, 1]}'))
    with pytest.raises(AssertionError):
        json_body_matcher(_Req(b"raw=1"), _Req(b"raw=2"))


def test_record_mode_defaults_to_replay_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cassettes.RECORD_MODE_ENV, raising=False)
    assert resolve_record_mode() == "none"
    assert vcr_config()["record_mode"] == "none"
    monkeypatch.setenv(cassettes.RECORD_MODE_ENV, "rewrite")
    assert vcr_config()["record_mode"] == "rewrite"
    assert resolve_record_mode("once") == "once", "an explicit mode beats the environment"
    monkeypatch.setenv(cassettes.RECORD_MODE_ENV, "sometimes")
    with pytest.raises(ValueError, match="unknown record mode 'sometimes'"):
        resolve_record_mode()


def test_vcr_config_holds_the_scrubbing_rules() -> None:
    config = vcr_config()
    assert ("authorization", "REDACTED") in config["filter_headers"]
    assert ("x-api-key", "REDACTED") in config["filter_headers"]
    assert config["before_record_request"] is before_record_request
    assert config["before_record_response"] is before_record_response
    assert config["decode_compressed_response"] is True
    assert config["match_on"] == ("method", "scheme", "host", "port", "path", "json_body")


def test_cassette_dir_is_the_repository_cassettes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cassettes.CASSETTE_DIR_ENV, raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert cassette_dir() == repo / "cassettes"
    assert cassette_dir("openai") == repo / "cassettes" / "openai"
    monkeypatch.setenv(cassettes.CASSETTE_DIR_ENV, "/elsewhere")
    assert cassette_dir("ollama") == Path("/elsewhere/ollama")


def test_use_cassette_records_scrubbed_then_replays_offline(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "openai" / "demo"
    with use_cassette(path, record_mode="once"):
        assert _post(fake_openai.url, KEY) == ANSWER
    assert fake_openai.requests[0]["body"]["api_key"] == KEY, "the live request is not altered"
    _assert_clean((tmp_path / "openai" / "demo.yaml").read_text())

    fake_openai.stop()
    with use_cassette(path):  # replay with another key and another key order
        assert _post(fake_openai.url, OTHER_KEY, reverse=True) == ANSWER
    assert len(fake_openai.requests) == 1


def test_use_cassette_rewrite_replaces_the_recording(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "demo.yaml"
    with use_cassette(path, record_mode="once"):
        _post(fake_openai.url, KEY)
    fake_openai.answer = "A newer answer"
    with use_cassette(path, record_mode="rewrite"):
        assert _post(fake_openai.url, KEY) == "A newer answer"
    assert _answers(path) == ["A newer answer"]

    fake_openai.answer = "The newest answer"  # the same through a bare VCR, as conftests use it
    recorder = make_vcr(**vcr_config(record_mode="rewrite"))
    with recorder.use_cassette(str(path)):
        assert _post(fake_openai.url, KEY) == "The newest answer"
    assert _answers(path) == ["The newest answer"]
    with make_vcr(**vcr_config()).use_cassette(str(path)):
        assert _post(fake_openai.url, KEY, reverse=True) == "The newest answer"
    assert len(fake_openai.requests) == 3


def test_use_cassette_refuses_a_missing_cassette_in_replay_mode(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    with pytest.raises(MissingCassetteError, match=r"missing\.yaml does not exist.*'none'"):
        with use_cassette(tmp_path / "missing"):
            _post(fake_openai.url, KEY)
    assert fake_openai.requests == []
    assert not (tmp_path / "missing.yaml").exists()


# --- the pytest plugin ------------------------------------------------------------------------


def test_plugin_records_then_replays_with_the_server_gone(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        userhelpers=USER_HELPERS,
        test_user_chain="""
            from userhelpers import call

            def test_chain(chat_model_cassette):
                with chat_model_cassette("completion"):
                    assert call() == "Hello from the fake server"
        """,
    )
    monkeypatch.setenv(cassettes.RECORD_MODE_ENV, "once")
    run(pytester).assert_outcomes(passed=1)

    assert len(fake_openai.requests) == 1
    assert fake_openai.requests[0]["body"]["messages"][0]["content"].endswith(KEY)
    cassette = pytester.path / "cassettes" / "test_user_chain" / "completion.yaml"
    text = cassette.read_text()
    _assert_clean(text)
    (interaction,) = _interactions(cassette)
    request = interaction["request"]
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["authorization"] == ["REDACTED"]
    assert json.loads(request["body"])["api_key"] == "REDACTED"
    assert "set-cookie" not in {h.lower() for h in interaction["response"]["headers"]}
    assert _answers(cassette) == [ANSWER]

    fake_openai.stop()
    monkeypatch.delenv(cassettes.RECORD_MODE_ENV)
    monkeypatch.setenv("FAKE_OPENAI_KEY", OTHER_KEY)
    monkeypatch.setenv("REVERSE_KEYS", "1")
    run(pytester).assert_outcomes(passed=1)
    assert len(fake_openai.requests) == 1
    assert cassette.read_text() == text, "replay does not rewrite the cassette"


def test_marker_wraps_the_test_in_a_cassette_under_the_ini_dir(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nchatmodels_cassette_dir = recorded\n")
    pytester.makepyfile(
        userhelpers=USER_HELPERS,
        test_marked="""
            import pytest
            from userhelpers import call

            @pytest.mark.chat_model_cassette("named")
            def test_named():
                assert call() == "Hello from the fake server"

            @pytest.mark.chat_model_cassette
            def test_default_name():
                assert call() == "Hello from the fake server"

            class TestGroup:
                @pytest.mark.chat_model_cassette
                def test_in_class(self):
                    assert call() == "Hello from the fake server"

            def test_unmarked():
                pass
        """,
    )
    monkeypatch.setenv(cassettes.RECORD_MODE_ENV, "once")
    run(pytester, "-p", "no:recording").assert_outcomes(passed=4)

    recorded = pytester.path / "recorded" / "test_marked"
    names = sorted(p.name for p in recorded.iterdir())
    assert names == ["TestGroup.test_in_class.yaml", "named.yaml", "test_default_name.yaml"]
    assert not (pytester.path / "cassettes").exists()
    for path in recorded.iterdir():
        _assert_clean(path.read_text())

    fake_openai.stop()
    monkeypatch.delenv(cassettes.RECORD_MODE_ENV)
    run(pytester).assert_outcomes(passed=4)
    assert len(fake_openai.requests) == 3


def test_replay_only_mode_fails_clearly_on_a_missing_cassette(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        userhelpers=USER_HELPERS,
        test_missing="""
            import pytest
            from userhelpers import call

            def test_fixture(chat_model_cassette):
                with chat_model_cassette("never_recorded"):
                    call()

            @pytest.mark.chat_model_cassette("never_marked")
            def test_marker():
                call()
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*MissingCassetteError: cassette *never_recorded.yaml does not exist "
            "and the record mode is 'none' (replay only)*--record-mode=once*"
        ]
    )
    result.stdout.fnmatch_lines(["*MissingCassetteError: cassette *never_marked.yaml*"])

    monkeypatch.setenv(cassettes.RECORD_MODE_ENV, "once")
    result = run(pytester, "--record-mode=none")  # pytest-recording's flag beats the env
    result.assert_outcomes(failed=1, errors=1)
    assert fake_openai.requests == []
    assert not (pytester.path / "cassettes").exists()


def test_vcr_config_overrides_pytest_recordings_and_yields_to_conftest(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    pytester.makepyfile(
        userhelpers=USER_HELPERS,
        test_recording="""
            import pytest
            from chatmodels_langchain.testing import scrub
            from userhelpers import call

            def test_config(vcr_config, chatmodels_vcr_config):
                assert vcr_config["before_record_request"] is scrub.before_record_request
                assert vcr_config == chatmodels_vcr_config
                assert vcr_config is not chatmodels_vcr_config
                assert vcr_config["record_mode"] == "once"

            @pytest.mark.vcr
            def test_pytest_recording():
                assert call() == "Hello from the fake server"
        """,
    )
    run(pytester, "--record-mode=once").assert_outcomes(passed=2)
    # pytest-recording's own layout, our scrubbing and json_body matcher.
    text = (
        pytester.path / "cassettes" / "test_recording" / "test_pytest_recording.yaml"
    ).read_text()
    _assert_clean(text)

    fake_openai.stop()
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def vcr_config(chatmodels_vcr_config):
            return {**chatmodels_vcr_config, "record_mode": "once", "marker": "mine"}
        """
    )
    pytester.makepyfile(
        test_override="""
            def test_conftest_wins(vcr_config):
                assert vcr_config["marker"] == "mine"
        """
    )
    run(pytester, "test_override.py").assert_outcomes(passed=1)
    run(pytester, "test_recording.py::test_pytest_recording").assert_outcomes(passed=1)


def test_fake_chat_model_fixture_follows_its_script(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fake="""
            import pytest
            from langchain_core.language_models import BaseChatModel
            from langchain_core.messages import AIMessage

            def test_script(fake_chat_model):
                script = ["first", AIMessage(content="second"), RuntimeError("boom")]
                model = fake_chat_model(script)
                assert isinstance(model, BaseChatModel)
                assert model.invoke("hi").content == "first"
                assert model.invoke("hi").content == "second"
                with pytest.raises(RuntimeError, match="boom"):
                    model.invoke("hi")
                assert model.invoke("hi").content == "first"

            def test_models_are_independent(fake_chat_model):
                one, two = fake_chat_model(["a", "b"]), fake_chat_model(["x"])
                assert one.invoke("q").content == "a"
                assert two.invoke("q").content == "x"
                assert one.invoke("q").content == "b"

            def test_streams(fake_chat_model):
                chunks = fake_chat_model(["hello there world"]).stream("hi")
                assert "".join(str(c.content) for c in chunks) == "hello there world"
        """
    )
    run(pytester).assert_outcomes(passed=3)


def test_plugin_leaves_unrelated_runs_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
            def test_plain():
                assert 1 + 1 == 2
        """
    )
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(["*chat_model_cassette(name=None, **vcr_options)*"])
    run(pytester).assert_outcomes(passed=1)
    assert not (pytester.path / "cassettes").exists()
