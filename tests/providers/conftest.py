"""Shared fixtures of the provider tests: cassettes replayed offline, keys that are fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"

# Key-shaped placeholders: realistic enough to exercise redaction, never valid anywhere.
FAKE_OPENAI_KEY = "sk-proj-test0000000000000000000000000000"
FAKE_ANTHROPIC_KEY = "sk-ant-api03-test00000000000000000000000000"


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Callable[[str, str], AbstractContextManager[Any]]:
    """`with cassette("openai", "plain"):` replays `cassettes/openai/plain.yaml`.

    Replay only by default; `--record-mode=once|rewrite` (pytest-recording) or
    `CHATMODELS_RECORD_MODE` with a real key in the environment re-records through the
    project's scrubbing rules.
    """
    from chatmodels_langchain.testing.cassettes import use_cassette

    record_mode = request.config.getoption("--record-mode", default=None)

    def use(provider: str, name: str) -> AbstractContextManager[Any]:
        return use_cassette(CASSETTES / provider / f"{name}.yaml", record_mode=record_mode)

    return use


@pytest.fixture
def live_keys(monkeypatch: pytest.MonkeyPatch, record_mode: str) -> Iterator[None]:
    """Fake keys in the environment unless recording (then the real ones are used)."""
    import os

    if record_mode in ("none", ""):
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
        monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    else:
        assert os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
    yield
