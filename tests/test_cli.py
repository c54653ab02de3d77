"""The command line: `providers`, `demo` (offline, no network) and `check` / `health`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from chatmodels_langchain import registry as registry_module
from chatmodels_langchain.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from chatmodels_langchain.demo import DEMO_CASSETTES
from chatmodels_langchain.metadata import Capability, ProviderMetadata
from chatmodels_langchain.providers.catalog import BUILTINS
from chatmodels_langchain.providers.fake import FakeChatModel

ROOT = Path(__file__).resolve().parents[1]
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_COMPATIBLE_API_KEY")

# Runs the CLI in a child process with every socket refused (pytest-socket's guard, or the
# same by hand), so the offline demo provably never reaches for the network.
NO_NETWORK = """
import runpy, sys
try:
    from pytest_socket import disable_socket
except ImportError:  # the same guard by hand: refuse every connection attempt
    import socket
    def _refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")
    socket.socket.connect = socket.socket.connect_ex = _refuse
    socket.getaddrinfo = socket.create_connection = _refuse
else:
    disable_socket(allow_unix_socket=True)
sys.argv = ["chatmodels-langchain", *sys.argv[1:]]
runpy.run_module("chatmodels_langchain", run_name="__main__", alter_sys=True)
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env = {k: v for k, v in env.items() if not k.startswith(("CHATMODEL_", "CHATMODELS_"))}
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("CHATMODEL_"):
            monkeypatch.delenv(name)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- help and usage -----------------------------------------------------------------------


def test_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == EXIT_OK
    for command in ("providers", "demo", "check", "health"):
        assert command in out
    assert "exit codes" in out and "config_invalid" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "no-such-command")[0] == EXIT_USAGE
    code, _, err = _run(capsys, "check", "--timeout", "soon")
    assert code == EXIT_USAGE
    assert "invalid float value" in err
    assert _run(capsys)[0] == EXIT_USAGE  # no command: help, and a usage exit


# --- providers ------------------------------------------------------------------------------


def test_providers_table_shows_every_builtin_and_key_status(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-proj-cli0test0000000000000000000000"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    code, out, _ = _run(capsys, "providers")
    assert code == EXIT_OK
    assert secret not in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    for name in BUILTINS:
        assert name in rows
    assert re.search(r"OPENAI_API_KEY\s+set$", rows["openai"])
    assert re.search(r"ANTHROPIC_API_KEY\s+not set$", rows["anthropic"])
    assert "not set (optional)" in rows["openai_compatible"]
    # the capability matrix: one row per capability, "yes" where the catalog says so
    header = next(line for line in out.splitlines() if line.startswith("capability"))
    names = header.split()[1:]
    for capability in Capability:
        cells = rows[capability.value].split()[1:]
        for provider, cell in zip(names, cells, strict=True):
            expected = capability in BUILTINS[provider][0].capabilities
            assert cell == ("yes" if expected else "-"), (capability, provider)


def test_providers_json_matches_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "providers", "--json")
    assert code == EXIT_OK
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(BUILTINS) <= set(rows)
    for name, (metadata, _) in BUILTINS.items():
        row = rows[name]
        assert row["source"] == "built-in"
        assert row["capabilities"] == sorted(c.value for c in metadata.capabilities)
        assert row["required_config"] == list(metadata.required_config)
        assert row["api_key_env"] == metadata.api_key_env
    assert rows["openai"]["api_key_set"] is False
    assert rows["fake"]["api_key_set"] is None  # no key involved


def test_providers_lists_entry_point_plugins(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata = ProviderMetadata(
        name="acme", description="Acme chat", capabilities=frozenset({Capability.STREAMING}),
        supported_models=("acme-*",), required_config=("model", "api_key"),
        api_key_env="ACME_API_KEY",
    )

    def register(registry: registry_module.ChatModelRegistry) -> None:
        registry.register("acme", lambda config: FakeChatModel(model=config.model), metadata)

    monkeypatch.setattr(registry_module, "_default", None)
    monkeypatch.setattr(
        registry_module, "_provider_entry_points",
        lambda: [SimpleNamespace(name="acme", load=lambda: register)],
    )
    monkeypatch.setenv("ACME_API_KEY", "acme-secret-value")
    code, out, _ = _run(capsys, "providers")
    assert code == EXIT_OK
    assert "(5 built-in, 1 from plugins)" in out
    acme = next(line for line in out.splitlines() if line.startswith("acme "))
    assert acme.split()[1] == "plugin"
    assert "ACME_API_KEY" in acme and acme.endswith("set")
    assert "acme-secret-value" not in out


# --- demo ------------------------------------------------------------------------------------


def test_demo_runs_offline_with_no_network() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, "demo"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=_clean_env(),
    )
    out = result.stdout
    assert result.returncode == EXIT_OK, out + result.stderr
    assert "FAILED" not in out
    assert "offline" in out
    for step in range(1, 7):
        assert f"[{step}/6]" in out
    # the chain, the stream, the tool round trip and the structured output all answered
    assert "< OpenTelemetry is an open-source" in out
    assert "the waterfall shows where time pooled" in out
    assert "model calls get_weather({'city': 'Paris'})" in out
    assert "tool returns 'Paris: 18 C, light rain'" in out
    assert "CityGuide(city='Lisbon'" in out
    # the provoked error, with its stable code
    assert "code=authentication_failed retryable=False" in out
    # the telemetry summary: six chat spans, one error, the recorded token usage
    assert "Telemetry of this run" in out
    assert len(re.findall(r"^\s+chat (gpt-4o-mini|claude-haiku-4-5)\s", out, re.M)) == 6
    assert "requests: 6  active: 0" in out
    assert "errors: 1 (authentication_failed=1)" in out
    assert "tokens: in 895  out 186" in out
    finished = re.search(r"Demo finished in ([\d.]+) s\.", out)
    assert finished is not None and float(finished.group(1)) < 10


def test_demo_cassettes_are_bundled_and_clean() -> None:
    from chatmodels_langchain.testing import audit_cassette_text

    names = sorted(p.name for p in DEMO_CASSETTES.glob("*.yaml"))
    assert names == ["chain.yaml", "error.yaml", "stream.yaml", "structured.yaml", "tools.yaml"]
    for path in DEMO_CASSETTES.glob("*.yaml"):
        assert audit_cassette_text(path.read_text(encoding="utf-8")) == [], path.name


@pytest.mark.parametrize("flag", ["--live", "--record"])
def test_demo_live_without_keys_says_so(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    code, out, _ = _run(capsys, "demo", flag)
    assert code == EXIT_USAGE
    assert "OPENAI_API_KEY" in out and "ANTHROPIC_API_KEY" in out


# --- check ------------------------------------------------------------------------------------


def test_check_healthy_fake_from_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "check", "--provider", "fake", "--model", "fake-mini")
    assert code == EXIT_OK
    assert "fake / fake-mini" in out
    assert re.search(r"state\s+healthy", out)
    assert out.rstrip().endswith("OK")


def test_check_from_config_file_and_health_alias(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "chatmodel.toml"
    config.write_text('[chatmodel]\nprovider = "fake"\nmodel = "fake-file"\ntimeout = 5\n')
    code, out, _ = _run(capsys, "health", "--config", str(config), "--json")
    assert code == EXIT_OK
    result = json.loads(out)
    assert result["ok"] is True and result["state"] == "healthy"
    assert result["model"] == "fake-file"
    # flags override the file
    code, out, _ = _run(capsys, "check", "--config", str(config), "--model", "fake-flag")
    assert code == EXIT_OK and "fake / fake-flag" in out


def test_check_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATMODEL_PROVIDER", "fake")
    monkeypatch.setenv("CHATMODEL_MODEL", "fake-env")
    code, out, _ = _run(capsys, "check", "--json")
    assert code == EXIT_OK
    assert json.loads(out)["model"] == "fake-env"


def test_check_bad_config_file_exits_2_with_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('provider = "fake"\ntimeout = -1\n')
    code, _, err = _run(capsys, "check", "--config", str(config))
    assert code == EXIT_USAGE
    assert "[config_invalid]" in err and "timeout" in err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = _run(capsys, "check", "--config", str(broken))
    assert code == EXIT_USAGE and "[config_invalid]" in err


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["check"], "config_invalid", "CHATMODEL_PROVIDER"),
        (["check", "--provider", "nope"], "config_invalid", "not registered"),
        (["check", "--provider", "openai"], "config_invalid", "OPENAI_API_KEY"),
        (["check", "--provider", "fake", "--model", "gpt-4o"], "model_unsupported", "fake-*"),
        (["check", "--provider", "fake", "--api-key-env", "UNSET_VAR_FOR_TEST"],
         "config_invalid", "UNSET_VAR_FOR_TEST"),
        (["check", "--provider", "fake", "--provider-specific", "[1]"],
         "config_invalid", "JSON object"),
    ],
)
def test_check_invalid_configs_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: str, fragment: str
) -> None:
    exit_code, _, err = _run(capsys, *argv)
    assert exit_code == EXIT_USAGE
    assert f"[{code}]" in err
    assert fragment in err


def test_check_never_prints_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TEAM_KEY", "team-secret-0123456789")
    code, out, err = _run(capsys, "check", "--provider", "fake", "--api-key-env", "MY_TEAM_KEY")
    assert code == EXIT_OK
    assert "set (from $MY_TEAM_KEY)" in out
    assert "team-secret" not in out + err


def test_check_unhealthy_provider_exits_1_with_code(capsys: pytest.CaptureFixture[str]) -> None:
    script = json.dumps({"responses": [{"error": "authentication_failed", "message": "bad key"}]})
    code, out, _ = _run(capsys, "check", "--provider", "fake", "--provider-specific", script)
    assert code == EXIT_FAILED
    assert re.search(r"state\s+unhealthy", out)
    assert "FAILED [authentication_failed]" in out


def test_check_rate_limited_provider_is_degraded_not_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = json.dumps({"responses": [{"error": "rate_limit"}]})
    code, out, _ = _run(capsys, "check", "--provider", "fake", "--provider-specific", script,
                        "--json")
    assert code == EXIT_OK
    result = json.loads(out)
    assert result["state"] == "degraded" and result["error_code"] == "rate_limit"


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port  # nothing listens there any more: connections are refused at once


def test_check_unreachable_server_through_the_real_http_path(
    capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    code, out, _ = _run(
        capsys, "check", "--provider", "openai_compatible", "--model", "local-llm",
        "--base-url", f"http://127.0.0.1:{closed_port}/v1", "--max-retries", "0",
        "--timeout", "5",
    )
    assert code == EXIT_FAILED
    assert "FAILED [provider_unavailable]" in out


def test_module_entry_point_exit_code_and_output(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"provider": "fake", "temperature": 7}))
    result = subprocess.run(
        [sys.executable, "-m", "chatmodels_langchain", "check", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=_clean_env(),
    )
    assert result.returncode == EXIT_USAGE
    assert "[config_invalid]" in result.stderr and "temperature" in result.stderr
