"""pytest plugin for testing your own chains: cassettes with the project's scrubbing, fake models.

Installed with the package (entry point `pytest11`), nothing to enable. It provides:

- `chat_model_cassette` fixture: `with chat_model_cassette("my_chain"): chain.invoke(...)`
  records to / replays from `<rootdir>/cassettes/<test module>/my_chain.yaml`; the ini option
  `chatmodels_cassette_dir` (relative to the ini file) replaces `<rootdir>/cassettes`, and the
  `chat_model_cassette_dir` fixture can be overridden for any other layout.
- `@pytest.mark.chat_model_cassette(name=None, **vcr_options)`: runs the whole test inside
  that cassette; the name defaults to the test's name.
- `fake_chat_model(responses)` fixture: a deterministic scripted chat model; items are answer
  strings, `AIMessage`s, or exceptions to raise, used in order (then the script starts again).
- `chatmodels_vcr_config` (session) and `vcr_config` fixtures: the project's vcrpy settings.

Record modes: "none" (replay only, the default) unless pytest-recording's `--record-mode`
or the environment variable `CHATMODELS_RECORD_MODE` says otherwise, in that order.

How `vcr_config` coexists with pytest-recording: both plugins define a global `vcr_config`
fixture, and among plugins the one registered last wins, which for two entry points depends
on installation order. So ours does not live in this module: `pytest_configure` registers a
small holder object, and `pytest_configure` runs after every entry-point and `-p` plugin,
pytest-recording included, is registered. Ours therefore deterministically overrides
pytest-recording's `{}`, and `@pytest.mark.vcr` tests get the same scrubbing (the
`pytest_recording_configure` hook below teaches its VCR the "json_body" matcher).
A `vcr_config` fixture in your conftest.py or test module still overrides both; to extend
rather than replace the project's settings, start from `chatmodels_vcr_config`:

    @pytest.fixture(scope="module")
    def vcr_config(chatmodels_vcr_config):
        return {**chatmodels_vcr_config, "match_on": ("method", "path")}

`chat_model_cassette` and the marker use whichever `vcr_config` is in effect.
Do not also pass `-p chatmodels_langchain.testing.plugin` when the package is installed:
pytest would refuse to register the same module twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chatmodels_langchain.testing.cassettes import json_body_matcher, use_cassette
from chatmodels_langchain.testing.cassettes import vcr_config as project_vcr_config

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage

MARKER = "chat_model_cassette"
INI_CASSETTE_DIR = "chatmodels_cassette_dir"
_HOLDER_NAME = "chatmodels_langchain-vcr-config"

CassetteFactory = Callable[..., AbstractContextManager[Any]]
"""`(name: str, **vcr_options) -> context manager` yielding the vcrpy cassette."""

FakeFactory = Callable[["Sequence[str | AIMessage | BaseException]"], "BaseChatModel"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_CASSETTE_DIR,
        help="chatmodels_langchain: cassette root, relative to the ini file "
        "(default: <rootdir>/cassettes)",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name=None, **vcr_options): run the test inside a chat-model cassette "
        "(default name: the test's name)",
    )
    if not config.pluginmanager.has_plugin(_HOLDER_NAME):
        config.pluginmanager.register(_VcrConfigFixture(), _HOLDER_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    holder = config.pluginmanager.get_plugin(_HOLDER_NAME)
    if holder is not None:
        config.pluginmanager.unregister(holder)


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """pytest-recording hook: its VCR must know the matcher our `vcr_config` names."""
    vcr.register_matcher("json_body", json_body_matcher)


class _VcrConfigFixture:
    """Holder of the `vcr_config` fixture, registered late on purpose (see module doc)."""

    @pytest.fixture
    def vcr_config(self, chatmodels_vcr_config: dict[str, Any]) -> dict[str, Any]:
        """The project's vcrpy settings (a copy of `chatmodels_vcr_config`); override freely."""
        return dict(chatmodels_vcr_config)


@pytest.fixture(scope="session")
def chatmodels_vcr_config(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The project's vcrpy settings; record mode from `--record-mode`, else the environment."""
    return project_vcr_config(pytestconfig.getoption("--record-mode", default=None))


@pytest.fixture
def chat_model_cassette_dir(request: pytest.FixtureRequest) -> Path:
    """Where this test module's cassettes live: `<cassette root>/<test module name>`."""
    config = request.config
    configured = str(config.getini(INI_CASSETTE_DIR) or "")
    if configured:
        base = config.inipath.parent if config.inipath else config.rootpath
        root = base / configured
    else:
        root = config.rootpath / "cassettes"
    return root / request.path.stem


@pytest.fixture
def chat_model_cassette(
    vcr_config: dict[str, Any], chat_model_cassette_dir: Path
) -> CassetteFactory:
    """`with chat_model_cassette("name", **vcr_options):` records or replays that cassette."""

    def open_cassette(name: str, **vcr_options: Any) -> AbstractContextManager[Any]:
        return use_cassette(chat_model_cassette_dir / name, **{**vcr_config, **vcr_options})

    return open_cassette


def _default_cassette_name(request: pytest.FixtureRequest) -> str:
    name = request.node.name
    if request.cls is not None:
        name = f"{request.cls.__name__}.{name}"
    return re.sub(r"[<>?%*:|\"'/\\]", "-", name)


@pytest.fixture(autouse=True)
def _chat_model_cassette_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Wraps tests marked `chat_model_cassette` in their cassette; a no-op for the others."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        yield
        return
    options = dict(marker.kwargs)
    name = options.pop("name", None) or (marker.args[0] if marker.args else None)
    open_cassette: CassetteFactory = request.getfixturevalue("chat_model_cassette")
    with open_cassette(name or _default_cassette_name(request), **options):
        yield


def _make_fake(responses: Sequence[str | AIMessage | BaseException]) -> BaseChatModel:
    """The scripted model behind `fake_chat_model`: the one place to switch implementations."""
    from chatmodels_langchain.providers.fake import FakeChatModel

    return FakeChatModel(responses=list(responses))


@pytest.fixture
def fake_chat_model() -> FakeFactory:
    """`fake_chat_model(["hi", AIMessage(...), TimeoutError()])`: a deterministic chat model.

    Each call answers with the next item: a string or `AIMessage` is the answer, an
    exception is raised; after the last item the script starts again.
    """
    return _make_fake
