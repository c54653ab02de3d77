"""Shared helpers of the benchmark modules: statistics, the machine, markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

# Key-shaped placeholders; the loopback server never checks them.
OPENAI_KEY = "sk-proj-test0000000000000000000000000000"
ANTHROPIC_KEY = "sk-ant-api03-test00000000000000000000000000"
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-latest"
MAX_TOKENS = 1024

_PACKAGES = (
    "langchain-core", "langchain-openai", "openai", "langchain-anthropic", "anthropic",
    "httpx", "opentelemetry-sdk", "pydantic",
)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median of per-round ratios: rounds ran back to back, so pairing cancels drift."""
    ratios = [a / b for a, b in zip(numerator, denominator, strict=False) if b > 0]
    return median(ratios)


def spread(values: Sequence[float]) -> float:
    """Half the inter-quartile range relative to the median (a noise estimate)."""
    if len(values) < 4:
        return float("nan")
    q1, _, q3 = statistics.quantiles(values, n=4)
    mid = median(values)
    return (q3 - q1) / 2 / mid if mid else float("nan")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "os": f"{platform.system()} {platform.release()}",
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; the first column left-aligned, the others right-aligned."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_us(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "-"
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def fmt_ratio(value: float, target: float | None = None) -> str:
    if value != value:
        return "-"
    text = f"{value:.3f}"
    if target is not None:
        text += " ✅" if value < target else " ❌"
    return text


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_mib(n_bytes: float) -> str:
    return "-" if n_bytes != n_bytes else f"{n_bytes / 2**20:.1f}"


def raise_fd_limit() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
