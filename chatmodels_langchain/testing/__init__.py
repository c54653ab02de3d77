"""Testing helpers: cassettes with the project's scrubbing rules, and the pytest plugin.

`use_cassette` records or replays HTTP traffic (replay only unless `CHATMODELS_RECORD_MODE`
says otherwise); `vcr_config` holds the shared vcrpy settings; `find_secrets` and
`audit_cassette_text` check recordings for leaked keys. The pytest fixtures live in
`chatmodels_langchain.testing.plugin`, loaded by pytest automatically. vcrpy is needed only
when a cassette is actually used.
"""

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
    KEY_PATTERN,
    REDACTED,
    audit_cassette_text,
    before_record_request,
    before_record_response,
    find_secrets,
    scrub_text,
)

__all__ = [
    "KEY_PATTERN",
    "REDACTED",
    "MissingCassetteError",
    "audit_cassette_text",
    "before_record_request",
    "before_record_response",
    "cassette_dir",
    "find_secrets",
    "json_body_matcher",
    "make_vcr",
    "resolve_record_mode",
    "scrub_text",
    "use_cassette",
    "vcr_config",
]
