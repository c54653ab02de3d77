"""No cassette under `cassettes/` may hold a key or an unfiltered auth header.

Every *.yaml, *.yml and *.json file below the repository's `cassettes/` directory is checked
with `audit_cassette_text`, the same checker the self-tests below feed a dirty cassette to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chatmodels_langchain.testing.scrub import audit_cassette_text

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
SUFFIXES = {".yaml", ".yml", ".json"}
FILES = sorted(p for p in CASSETTES.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)

DIRTY = """\
interactions:
- request:
    body: '{"model":"gpt-4o-mini","api_key":"plain-secret","messages":[{"role":"user",
      "content":"hi sk-proj-Abc123def456ghi789jkl012mno345"}]}'
    headers:
      Authorization:
      - Bearer sk-proj-Abc123def456ghi789jkl012mno345
      x-api-key:
      - not-key-shaped-but-secret
      api-key:
      - REDACTED
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body:
      string: !!binary |
        c2stYW50LWFwaTAzLXNlY3JldDEyMzQ1Njc4OTA=
    headers:
      Content-Type:
      - application/json
    status:
      code: 200
      message: OK
version: 1
"""

CLEAN = """\
interactions:
- request:
    body: '{"model":"gpt-4o-mini","api_key":"REDACTED","messages":[{"role":"user",
      "content":"explain Bearer authentication and sk-... keys"}]}'
    headers:
      authorization:
      - REDACTED
      x-api-key:
      - REDACTED
    method: POST
    uri: https://api.openai.com/v1/chat/completions?key=REDACTED
  response:
    body:
      string: 'data: {"choices":[{"delta":{"content":"task-force-alpha-bravo-2024"}}]}


        data: [DONE]


        '
    headers:
      Content-Type:
      - text/event-stream
    status:
      code: 200
      message: OK
version: 1
"""


def _ids(path: Path) -> str:
    return str(path.relative_to(CASSETTES))


@pytest.mark.skipif(not FILES, reason=f"no cassettes under {CASSETTES} yet")
@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_cassette_holds_no_secret(path: Path) -> None:
    problems = audit_cassette_text(path.read_text(encoding="utf-8"))
    assert not problems, f"{_ids(path)} is not scrubbed:\n" + "\n".join(problems)


def test_checker_flags_a_dirty_cassette() -> None:
    problems = audit_cassette_text(DIRTY)
    found = "\n".join(problems)
    assert "key-shaped value: Bearer sk-proj-Abc123def456ghi789jkl012mno345" in found
    assert "key-shaped value: sk-proj-Abc123def456ghi789jkl012mno345" in found
    assert "unfiltered Authorization header" in found
    assert "unfiltered x-api-key header: 'not-key-shaped-but-secret'" in found
    assert "key-shaped value: sk-ant-api03-secret1234567890" in found, "!!binary bodies too"
    assert 'secret JSON field: "api_key":"plain-secret"' in found
    assert "unfiltered api-key" not in found, "the placeholder is allowed"


def test_checker_accepts_a_scrubbed_cassette() -> None:
    assert audit_cassette_text(CLEAN) == []


def test_checker_flags_json_cassettes_and_unparseable_text() -> None:
    as_json = '{"interactions": [{"request": {"headers": {"Api-Key": ["azure-secret"]}}}]}'
    assert audit_cassette_text(as_json) == ["unfiltered Api-Key header: 'azure-secret'"]
    (problem,) = audit_cassette_text("interactions: [unclosed")
    assert problem.startswith("cassette does not parse")


def test_cassettes_live_in_provider_directories() -> None:
    misplaced = [_ids(p) for p in FILES if len(p.relative_to(CASSETTES).parts) != 2]
    assert not misplaced, "expected cassettes/<provider>/<name>.yaml"
