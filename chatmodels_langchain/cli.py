"""The command line: `chatmodels-langchain providers | demo | check`.

Exit codes: 0 success, 1 the operation failed (the `ChatModelError` code is printed),
2 usage or configuration error (code `config_invalid` or `model_unsupported`).
Nothing in the package imports this module.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from chatmodels_langchain.config import ProviderConfig
from chatmodels_langchain.errors import ChatModelError, ConfigError, ErrorCode
from chatmodels_langchain.health import HealthState, HealthStatus
from chatmodels_langchain.metadata import Capability, ProviderMetadata
from chatmodels_langchain.registry import ChatModelRegistry, default_registry

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

PROG = "chatmodels-langchain"

_EPILOG = """\
exit codes:
  0  success
  1  the operation failed; the error code is printed (e.g. rate_limit, authentication_failed)
  2  usage or configuration error (config_invalid, model_unsupported)

examples:
  chatmodels-langchain providers
  chatmodels-langchain demo                 # offline: replays bundled cassettes
  chatmodels-langchain demo --live          # real providers, keys from the environment
  chatmodels-langchain check --provider openai --model gpt-4o-mini
  chatmodels-langchain check --config chatmodel.toml
"""

_CHECK_EPILOG = """\
where the config comes from:
  --config FILE    a TOML or JSON file (a [chatmodel] table is accepted), flags override it
  --provider NAME  the flags alone (the provider's key env var still supplies the key)
  neither          the environment: CHATMODEL_PROVIDER, CHATMODEL_MODEL, CHATMODEL_API_KEY,
                   CHATMODEL_BASE_URL, CHATMODEL_TIMEOUT, ... (prefix: --env-prefix)

exit codes: 0 healthy or degraded, 1 unhealthy (the error code is printed),
            2 invalid configuration (config_invalid / model_unsupported)
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors say how to get help."""

    def error(self, message: str) -> Any:  # argparse's signature is NoReturn; keep it loose
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog=PROG,
        description=(
            "One registry for LangChain chat-model providers.\n"
            "List the providers, run the offline demo, check that a provider configuration works."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from chatmodels_langchain import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    providers = commands.add_parser(
        "providers",
        help="list registered providers, their capabilities and configuration",
        description=(
            "List the registered providers (built-ins and entry-point plugins): capabilities, "
            "required configuration, the API key environment variable and whether it is set. "
            "Key values are never printed."
        ),
    )
    providers.add_argument("--json", action="store_true", help="print JSON instead of tables")

    demo = commands.add_parser(
        "demo",
        help="run the tour: chain, streaming, tools, structured output, an error, telemetry",
        description=(
            "A short tour of the package. Offline by default: models are created from the "
            "registry with placeholder keys and bundled cassettes are replayed through the real "
            "provider code, so no key and no network are needed. With --live the same steps run "
            "against the real APIs for each provider whose key (OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY) is set."
        ),
    )
    demo.add_argument(
        "--live", action="store_true", help="call the real providers (needs their API keys)"
    )
    demo.add_argument(
        "--record", action="store_true",
        help="with real keys: run live and re-record cassettes/demo/ (scrubbed) as it goes",
    )

    check = commands.add_parser(
        "check",
        aliases=["health"],
        help="validate a provider configuration and probe the provider's health",
        description=(
            "Validate a provider configuration, create the model and run check_health(). "
            "Prints the state, the latency and, on failure, the error code."
        ),
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--config", metavar="FILE", help="TOML or JSON config file")
    check.add_argument("--provider", help="registered provider name (see `providers`)")
    check.add_argument("--model", help="model name (default: the provider's default model)")
    check.add_argument(
        "--api-key-env", metavar="VAR",
        help="read the API key from this environment variable (default: the provider's own)",
    )
    check.add_argument("--base-url", metavar="URL", help="API endpoint")
    check.add_argument("--timeout", type=float, metavar="SECONDS", help="request timeout")
    check.add_argument("--max-retries", type=int, metavar="N", help="retries on retryable errors")
    check.add_argument(
        "--provider-specific", metavar="JSON", help="provider-specific options as a JSON object"
    )
    check.add_argument(
        "--env-prefix", default="CHATMODEL_", metavar="PREFIX",
        help="environment variable prefix when reading the config from the environment",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    out = sys.stdout
    try:
        if args.command == "providers":
            return cmd_providers(default_registry(), as_json=args.json, out=out)
        if args.command == "demo":
            from chatmodels_langchain.demo import run_demo

            if args.record:
                return run_demo(live=True, record_mode="rewrite", out=out)
            return run_demo(live=args.live, out=out)
        if args.command in ("check", "health"):
            return cmd_check(args, registry=default_registry(), out=out)
    except ConfigError as err:
        sys.stderr.write(f"{PROG}: configuration error [{err.code.value}]: {err.message}\n")
        return EXIT_USAGE
    except ChatModelError as err:
        sys.stderr.write(f"{PROG}: failed [{err.code.value}]: {err.message}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader closed the pipe (`... | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    parser.print_help(out)
    return EXIT_USAGE


# --- providers --------------------------------------------------------------------------------


def _source(metadata: ProviderMetadata) -> str:
    from chatmodels_langchain.providers.catalog import BUILTINS

    builtin = BUILTINS.get(metadata.name)
    return "built-in" if builtin is not None and builtin[0] is metadata else "plugin"


def _key_status(metadata: ProviderMetadata) -> str:
    if not metadata.api_key_env:
        return "-"
    is_set = bool(os.environ.get(metadata.api_key_env))
    status = "set" if is_set else "not set"
    return status if metadata.requires_api_key else f"{status} (optional)"


def provider_rows(registry: ChatModelRegistry) -> list[dict[str, Any]]:
    """What `providers --json` prints: one dict per provider, sorted by name."""
    rows: list[dict[str, Any]] = []
    for metadata in registry.list_providers():
        env = metadata.api_key_env
        rows.append({
            "name": metadata.name,
            "source": _source(metadata),
            "description": metadata.description,
            "capabilities": sorted(c.value for c in metadata.capabilities),
            "required_config": list(metadata.required_config),
            "api_key_env": env,
            "api_key_set": bool(os.environ.get(env)) if env else None,
            "default_model": metadata.default_model,
            "supported_models": list(metadata.supported_models),
        })
    return rows


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left-aligned text table with a dashed rule under the header."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def cmd_providers(registry: ChatModelRegistry, *, as_json: bool, out: TextIO) -> int:
    providers = registry.list_providers()
    if as_json:
        json.dump(provider_rows(registry), out, indent=2)
        out.write("\n")
        return EXIT_OK
    plugins = sum(1 for m in providers if _source(m) == "plugin")
    out.write(
        f"{len(providers)} providers registered "
        f"({len(providers) - plugins} built-in, {plugins} from plugins)\n\n"
    )
    rows = [
        [
            m.name,
            _source(m),
            m.default_model or "-",
            ", ".join(m.required_config),
            m.api_key_env or "-",
            _key_status(m),
        ]
        for m in providers
    ]
    out.write(
        format_table(
            ["provider", "source", "default model", "required config", "key env var", "key"],
            rows,
        )
        + "\n\n"
    )
    names = [m.name for m in providers]
    matrix = [
        [cap.value, *("yes" if cap in m.capabilities else "-" for m in providers)]
        for cap in Capability
    ]
    out.write("Capabilities (per provider; some model families add or remove a few):\n")
    out.write(format_table(["capability", *names], matrix) + "\n\n")
    out.write("Models:\n")
    for m in providers:
        out.write(f"  {m.name}: {', '.join(m.supported_models)}  - {m.description}\n")
    return EXIT_OK


# --- check ------------------------------------------------------------------------------------


def config_from_args(
    args: argparse.Namespace, environ: dict[str, str] | None = None
) -> ProviderConfig:
    """The (not yet resolved) config that `check` validates: file or env, then flags on top."""
    env = dict(os.environ) if environ is None else environ
    overrides: dict[str, Any] = {}
    for field in ("provider", "model", "base_url", "timeout", "max_retries"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    if args.api_key_env:
        key = env.get(args.api_key_env)
        if not key:
            raise ConfigError(
                f"--api-key-env {args.api_key_env}: that environment variable is not set",
                op="load_config", context={"env_var": args.api_key_env},
            )
        overrides["api_key"] = key
    if args.provider_specific:
        try:
            specific = json.loads(args.provider_specific)
        except ValueError as exc:
            raise ConfigError(
                f"--provider-specific must be a JSON object: {exc}", op="load_config"
            ) from exc
        if not isinstance(specific, dict):
            raise ConfigError("--provider-specific must be a JSON object", op="load_config")
        overrides["provider_specific"] = specific

    base: ProviderConfig | None = None
    if args.config:
        base = ProviderConfig.from_file(args.config)
    elif not args.provider:
        if not env.get(f"{args.env_prefix}PROVIDER"):
            raise ConfigError(
                f"no configuration: pass --provider NAME, --config FILE or set "
                f"{args.env_prefix}PROVIDER",
                op="load_config", context={"field": "provider"},
            )
        base = ProviderConfig.from_env(args.env_prefix, environ=env)
    return ProviderConfig.build(base=base, **overrides)


def _print_status(
    status: HealthStatus, config: ProviderConfig, key_source: str, out: TextIO
) -> None:
    rows = [
        ("provider", status.provider),
        ("model", status.model),
        ("base url", config.base_url or "-"),
        ("api key", key_source),
        ("state", status.state.value),
        ("latency", f"{status.latency_s * 1000:.0f} ms"),
    ]
    if status.error_code is not None:
        rows.append(("error", f"{status.error_code.value}: {status.message}"))
    for name, value in rows:
        out.write(f"  {name:<9} {value}\n")


def _key_source(
    raw: ProviderConfig, resolved: ProviderConfig, metadata: ProviderMetadata,
    args: argparse.Namespace,
) -> str:
    """Where the API key came from; never the key itself."""
    if resolved.api_key is None:
        return "missing" if metadata.requires_api_key else "none (not required)"
    if args.api_key_env:
        return f"set (from ${args.api_key_env})"
    if raw.api_key is None and metadata.api_key_env:
        return f"set (from ${metadata.api_key_env})"
    return "set (from the config)"


def cmd_check(args: argparse.Namespace, *, registry: ChatModelRegistry, out: TextIO) -> int:
    err_out = sys.stderr
    try:
        raw = config_from_args(args)
        config = registry.resolve_config(config=raw)
        key_source = _key_source(raw, config, registry.metadata(config.provider), args)
        model = registry.new_provider(config=config)
    except ConfigError as err:
        _report_error(err, "configuration error", as_json=args.json, out=out, err_out=err_out)
        return EXIT_USAGE
    except ChatModelError as err:
        _report_error(err, "cannot create the model", as_json=args.json, out=out, err_out=err_out)
        return EXIT_FAILED
    try:
        status = model.check_health()
    finally:
        model.close()
    ok = status.state is not HealthState.UNHEALTHY
    if args.json:
        json.dump({
            "ok": ok,
            "provider": status.provider,
            "model": status.model,
            "state": status.state.value,
            "latency_s": round(status.latency_s, 4),
            "error_code": status.error_code.value if status.error_code else None,
            "message": status.message,
        }, out, indent=2)
        out.write("\n")
    else:
        out.write(f"Checking {status.provider} / {status.model}\n")
        _print_status(status, config, key_source, out)
        if status.state is HealthState.HEALTHY:
            out.write("OK\n")
        elif ok:
            code = f" [{status.error_code.value}]" if status.error_code else ""
            out.write(f"DEGRADED{code}: the provider answers, but slowly or rate limited\n")
        else:
            code = status.error_code or ErrorCode.UNKNOWN
            out.write(f"FAILED [{code.value}]\n")
    return EXIT_OK if ok else EXIT_FAILED


def _report_error(
    err: ChatModelError, what: str, *, as_json: bool, out: TextIO, err_out: TextIO
) -> None:
    if as_json:
        json.dump({"ok": False, "error_code": err.code.value, "message": err.message,
                   "op": err.op}, out, indent=2)
        out.write("\n")
        return
    err_out.write(f"{what} [{err.code.value}]: {err.message}\n")
