"""vcrpy configuration shared by the project's tests, the pytest plugin and notebooks.

Replay only by default: record mode "none" never touches the network. Recording is opted into
with `CHATMODELS_RECORD_MODE` (or pytest-recording's `--record-mode`, which wins in pytest):
"once", "new_episodes", "all", or "rewrite" (record again, replacing the cassette).

`vcr_config()` names the custom body matcher "json_body" in `match_on`, so a VCR built from
it must know that matcher: use `make_vcr(**vcr_config())` (or call
`recorder.register_matcher("json_body", json_body_matcher)` on your own `vcr.VCR`).
vcrpy is imported lazily: importing this module does not require it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatmodels_langchain.testing import scrub

if TYPE_CHECKING:
    import vcr

__all__ = [
    "CASSETTE_DIR_ENV",
    "MATCH_ON",
    "RECORD_MODES",
    "RECORD_MODE_ENV",
    "MissingCassetteError",
    "cassette_dir",
    "json_body_matcher",
    "make_vcr",
    "resolve_record_mode",
    "use_cassette",
    "vcr_config",
]

RECORD_MODE_ENV = "CHATMODELS_RECORD_MODE"
CASSETTE_DIR_ENV = "CHATMODELS_CASSETTE_DIR"
RECORD_MODES: tuple[str, ...] = ("none", "once", "new_episodes", "all", "rewrite")
MATCH_ON: tuple[str, ...] = ("method", "scheme", "host", "port", "path", "json_body")


class MissingCassetteError(FileNotFoundError):
    """Replay-only mode and the cassette does not exist: nothing to replay, nothing recorded."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"cassette {path} does not exist and the record mode is 'none' (replay only). "
            f"Record it once with a real key: {RECORD_MODE_ENV}=once, or pytest --record-mode=once."
        )
        self.path = path


def resolve_record_mode(record_mode: str | None = None) -> str:
    """`record_mode` if given, else `$CHATMODELS_RECORD_MODE`, else "none"; validated."""
    mode = record_mode or os.environ.get(RECORD_MODE_ENV, "").strip() or "none"
    if mode not in RECORD_MODES:
        raise ValueError(f"unknown record mode {mode!r}; expected one of {', '.join(RECORD_MODES)}")
    return mode


def _body_bytes(request: Any) -> bytes:
    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body) if isinstance(body, bytes | bytearray) else b"".join(body)


def json_body_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: equal parsed JSON when both bodies are JSON, else equal bytes.

    JSON objects compare regardless of key order. Raises AssertionError on a mismatch,
    which vcrpy reports in its "no match" message.
    """
    b1, b2 = _body_bytes(r1), _body_bytes(r2)
    if b1 == b2:
        return
    try:
        j1, j2 = json.loads(b1), json.loads(b2)
    except ValueError:
        raise AssertionError(f"bodies differ: {b1[:200]!r} != {b2[:200]!r}") from None
    if j1 != j2:
        raise AssertionError(f"JSON bodies differ: {j1!r:.200} != {j2!r:.200}")


def vcr_config(record_mode: str | None = None) -> dict[str, Any]:
    """The project's vcrpy settings, as keyword arguments for `vcr.VCR`/`use_cassette`.

    Fits pytest-recording's `vcr_config` fixture as is. `record_mode` may be "rewrite"
    (a pytest-recording mode): `make_vcr` and `use_cassette` understand it, a bare `vcr.VCR`
    does not.
    """
    return {
        "filter_headers": [(name, scrub.REDACTED) for name in scrub.REQUEST_HEADERS],
        "filter_query_parameters": [(name, scrub.REDACTED) for name in scrub.QUERY_PARAMS],
        "before_record_request": scrub.before_record_request,
        "before_record_response": scrub.before_record_response,
        "decode_compressed_response": True,
        "match_on": MATCH_ON,
        "record_mode": resolve_record_mode(record_mode),
    }


def cassette_dir(provider: str | None = None) -> Path:
    """The repository's top-level `cassettes/` (or `$CHATMODELS_CASSETTE_DIR`), or a subdir."""
    override = os.environ.get(CASSETTE_DIR_ENV)
    root = Path(override) if override else Path(__file__).resolve().parents[2] / "cassettes"
    return root / provider if provider else root


def make_vcr(**config: Any) -> vcr.VCR:
    """A `vcr.VCR(**config)` that knows the "json_body" matcher and the "rewrite" mode.

    "rewrite" ignores existing recordings and records every request again (vcrpy's
    "new_episodes" over an empty cassette); the file is replaced when the cassette is saved.
    """
    import vcr
    from vcr.persisters.filesystem import CassetteNotFoundError, FilesystemPersister

    rewrite = config.get("record_mode") == "rewrite"
    if rewrite:
        config = {**config, "record_mode": "new_episodes"}
    recorder = vcr.VCR(**config)
    recorder.register_matcher("json_body", json_body_matcher)
    if rewrite:

        class Rewrite(FilesystemPersister):  # type: ignore[misc]
            """Loads nothing, so every request is recorded afresh; saves as usual."""

            @classmethod
            def load_cassette(cls, cassette_path: str, serializer: Any) -> Any:
                raise CassetteNotFoundError(cassette_path)

        recorder.register_persister(Rewrite)
    return recorder


@contextmanager
def use_cassette(
    path: str | os.PathLike[str], record_mode: str | None = None, **overrides: Any
) -> Iterator[Any]:
    """Record to / replay from the cassette at `path` (".yaml" appended unless it ends in
    ".yaml", ".yml" or ".json"; a ".json" cassette uses vcrpy's JSON serializer).

    For notebooks and scripts: `with use_cassette(cassette_dir("openai") / "demo.yaml"):`.
    `record_mode` defaults to `$CHATMODELS_RECORD_MODE`, else "none"; `overrides` replace
    entries of `vcr_config()`. Yields the vcrpy `Cassette`.

    Raises MissingCassetteError up front in mode "none" when the file is missing.
    """
    cassette = Path(path)
    if cassette.suffix not in (".yaml", ".yml", ".json"):
        cassette = cassette.with_name(cassette.name + ".yaml")
    config = {**vcr_config(), **overrides}
    if cassette.suffix == ".json":
        config.setdefault("serializer", "json")
    configured = config.pop("record_mode")
    mode = resolve_record_mode(record_mode or configured)
    if mode == "none" and not cassette.is_file():
        raise MissingCassetteError(cassette)
    with make_vcr(record_mode=mode).use_cassette(str(cassette), **config) as recorded:
        yield recorded
