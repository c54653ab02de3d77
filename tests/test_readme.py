"""The README stays true: its Python runs, its tables match the code, its commands exist.

Every ```python block runs in order in one namespace, offline (sockets refused), in a child
process so that the global OpenTelemetry providers `telemetry.console()` installs do not leak
into the rest of the suite. The testing example also runs as a real pytest module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatmodels_langchain.errors import RETRYABLE_CODES, ErrorCode, error_class
from chatmodels_langchain.metadata import Capability, ProviderMetadata
from chatmodels_langchain.providers.catalog import BUILTINS
from chatmodels_langchain.registry import ENTRY_POINT_GROUP
from chatmodels_langchain.testing import plugin

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
TESTING_EXAMPLE = "# tests/test_my_chain.py"
OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http"
CHECK, DASH, MINUS = "\u2713", "\u2013", "\u2212"  # ✓, en dash, minus sign

RUNNER = r"""
import json, os, sys, traceback
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
namespace = {"__name__": "__readme__"}
for block in json.load(open(sys.argv[1], encoding="utf-8")):
    print(f"--- README block at line {block['line']}", flush=True)
    try:
        exec(compile(block["code"], f"README.md:{block['line']}", "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        print(f"FAILED: README block at line {block['line']}", flush=True)
        sys.exit(1)
print("ALL BLOCKS OK", flush=True)
# Skip interpreter shutdown: the OTLP block's exporters would try (and, offline, fail) to
# flush to a collector that is not there.
os._exit(0)
"""


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line number of the first code line, code) of every fenced block in `language`."""
    found = []
    for match in FENCE.finditer(TEXT):
        if match.group(1) == language:
            line = TEXT.count("\n", 0, match.start(2)) + 1
            found.append((line, match.group(2)))
    return found


def _section(name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", TEXT, re.S)
    assert match is not None, f"README lost its {name} markers"
    return match.group(1)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CHATMODELS_RECORD_MODE")}
    env.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
    return env


# --- what the tables must say, generated from the code -----------------------------------------


def capability_table() -> str:
    """The README section between the capability-table markers, from the catalog."""
    providers = [metadata for metadata, _ in BUILTINS.values()]
    lines = [
        "| capability | " + " | ".join(f"`{m.name}`" for m in providers) + " |",
        "|---|" + "---|" * len(providers),
    ]
    for capability in Capability:
        cells = (CHECK if capability in m.capabilities else DASH for m in providers)
        lines.append(f"| `{capability.value}` | " + " | ".join(cells) + " |")

    def key(m: ProviderMetadata) -> str:
        if not m.api_key_env:
            return DASH
        return f"`{m.api_key_env}`" + ("" if m.requires_api_key else " (optional)")

    lines.append("| **key env var** | " + " | ".join(key(m) for m in providers) + " |")
    lines.append(
        "| **required config** | " + " | ".join(", ".join(m.required_config) for m in providers)
        + " |"
    )
    lines += ["", "Model families:", ""]
    for metadata in providers:
        for override in metadata.model_overrides:
            changes = []
            if override.add:
                changes.append("+ " + ", ".join(sorted(c.value for c in override.add)))
            if override.remove:
                changes.append(f"{MINUS} " + ", ".join(sorted(c.value for c in override.remove)))
            if changes:
                lines.append(f"- `{metadata.name}` `{override.pattern}`: {'; '.join(changes)}")
    return "\n".join(lines) + "\n"


def error_rows() -> list[tuple[str, str, str]]:
    return [
        (f"`{code.value}`", f"`{error_class(code).__name__}`",
         "yes" if code in RETRYABLE_CODES else "no")
        for code in ErrorCode
    ]


# --- tests -------------------------------------------------------------------------------------


def test_capability_table_matches_the_catalog() -> None:
    expected = capability_table()
    assert _section("capability-table") == expected, (
        "README capability table is stale; replace the section with:\n" + expected
    )


def test_error_table_matches_error_code() -> None:
    rows = [
        tuple(cell.strip() for cell in line.strip().strip("|").split("|"))
        for line in _section("error-table").splitlines()[2:]
        if line.strip()
    ]
    assert [row[:3] for row in rows] == error_rows()
    assert all(len(row) == 4 and row[3] for row in rows)  # every code explained


def test_quickstart_is_exactly_make_demo_and_make_test() -> None:
    quickstart = TEXT.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    first_block = FENCE.search(quickstart)
    assert first_block is not None and first_block.group(1) == "bash"
    commands = [line.split("#")[0].strip() for line in first_block.group(2).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    demo_recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "-m chatmodels_langchain demo" in demo_recipe
    assert "--live" not in demo_recipe  # offline by default
    for tool in ("ruff", "mypy", "pytest"):
        assert tool in test_recipe


def test_names_the_readme_promises_exist() -> None:
    assert f'"{ENTRY_POINT_GROUP}"' in TEXT
    for fixture in ("chat_model_cassette", "fake_chat_model", "chatmodels_vcr_config",
                    "chat_model_cassette_dir"):
        assert f"`{fixture}`" in TEXT and hasattr(plugin, fixture), fixture
    assert "`vcr_config`" in TEXT and plugin.MARKER == "chat_model_cassette"
    for notebook in re.findall(r"`(0\d_\w+)`", TEXT):
        assert (ROOT / "notebooks" / f"{notebook}.ipynb").is_file(), notebook
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" in TEXT
    from chatmodels_langchain.telemetry import semconv

    assert semconv.CAPTURE_CONTENT_ENV == "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
    for metric in (semconv.METRIC_OPERATION_DURATION, semconv.METRIC_TOKEN_USAGE,
                   semconv.METRIC_TIME_TO_FIRST_CHUNK):
        assert f"`{metric}`" in TEXT, metric
    assert all(m.startswith("chatmodels.") for m in (
        semconv.METRIC_REQUESTS, semconv.METRIC_ERRORS, semconv.METRIC_ACTIVE_REQUESTS))


def _otlp_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(OTLP_MODULE) is not None
    except ModuleNotFoundError:
        return False


def test_otlp_block_can_run() -> None:
    """Reported as a skip when the OTLP exporter is missing, so the gap is visible."""
    if not _otlp_installed():
        pytest.skip("the README's OTLP block needs opentelemetry-exporter-otlp-proto-http "
                    "(list it in the test extra); it was left out of the block run")


def test_every_python_block_runs_in_order_offline(tmp_path: Path) -> None:
    blocks = [{"line": line, "code": code} for line, code in _blocks("python")]
    assert len(blocks) >= 6
    if not _otlp_installed():  # see test_otlp_block_can_run
        blocks = [b for b in blocks if OTLP_MODULE not in b["code"]]
    payload = tmp_path / "blocks.json"
    payload.write_text(json.dumps(blocks), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(payload)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=_child_env(),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ALL BLOCKS OK" in result.stdout
    assert result.stdout.count("--- README block at line") == len(blocks)
    # what the examples say they print
    assert "Paris." in result.stdout and "Bonjour, tout le monde !" in result.stdout
    assert "rate_limit: slow down" in result.stdout
    assert "the waterfall shows where time pooled" in result.stdout
    assert "hello from acme-small False" in result.stdout
    assert "sess-42" in result.stdout


def test_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    example = [code for _, code in _blocks("python") if code.startswith(TESTING_EXAMPLE)]
    assert len(example) == 1
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_my_chain.py").write_text(example[0], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--color=no", "tests/test_my_chain.py"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=_child_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def _rewrite_generated_sections() -> None:
    """`python tests/test_readme.py`: refresh the capability table after a catalog change."""
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- capability-table:start -->\n", "<!-- capability-table:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(head + start + capability_table() + end + tail, encoding="utf-8")
    print(f"updated {README}")


if __name__ == "__main__":
    _rewrite_generated_sections()
