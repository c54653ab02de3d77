"""The benchmark entry point: `python benchmarks/run.py [--quick] [--profile]` (or `make bench`).

One run, one process, one loopback server (in a child process, so it does not compete for the
GIL) measures: per-call client overhead for invoke / ainvoke / stream / 100 concurrent ainvoke
(ours unwrapped, wrapped with telemetry off and on, and the langchain-openai /
langchain-anthropic peers), import time, peak memory of 1,000 concurrent streams, and registry
throughput from 1-32 threads. The markdown table is printed and written to
`benchmarks/results/latest.md` (raw figures in `latest.json`; `--quick` writes `quick.md`
so that a smoke run does not replace the reference table). See `benchmarks/README.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_import
import bench_latency
import bench_memory
import bench_registry
from _common import (
    RESULTS_DIR,
    fmt_mib,
    fmt_rate,
    fmt_ratio,
    fmt_us,
    machine,
    median,
    paired_ratio,
    raise_fd_limit,
    spread,
    table,
)
from loopback_server import spawn_server_process

WRAPPER_TARGET = 1.05
_SCENARIO_LABELS = {
    "invoke": "invoke",
    "ainvoke": "ainvoke",
    "stream": "stream (sync, 50 chunks)",
    "concurrent": "100 concurrent ainvoke (per call)",
}
_PEERS = {"openai": "ChatOpenAI", "anthropic": "ChatAnthropic"}


def _latency_section(samples: bench_latency.Samples) -> str:
    out = ["## Per-call latency\n",
           "Median µs per call (lower is better); in brackets the overhead above the raw "
           "httpx floor (same request, bare `httpx`, JSON decoded).\n"]
    for family, scenarios in samples.items():
        headers = ["scenario", "raw httpx", "ours unwrapped", "ours wrapped (tel. off)",
                   "ours wrapped (tel. on)", _PEERS[family], "noise ±"]
        rows = []
        for scenario, variants in scenarios.items():
            floor = median(variants["raw"])
            cells = [_SCENARIO_LABELS[scenario], fmt_us(floor)]
            for variant in ("unwrapped", "wrapped_off", "wrapped_on", "peer"):
                value = median(variants[variant])
                cells.append("-" if value != value
                             else f"{fmt_us(value)} (+{fmt_us(value - floor)})")
            noise = max((n for n in map(spread, variants.values()) if n == n), default=0.0)
            cells.append(f"{noise * 100:.1f}%")
            rows.append(cells)
        out.append(f"### {family}\n\n" + table(headers, rows) + "\n")
    out.append("## Ratios\n")
    out.append("Medians of per-round paired ratios (each round runs every client back to back). "
               f"Target for wrapper/unwrapped: < {WRAPPER_TARGET}.\n")
    headers = ["family", "scenario", "ours/peer (tel. off)", "ours/peer (tel. on)",
               "wrapper/unwrapped (tel. off)", "telemetry on/off",
               "overhead ours/peer (above floor)"]
    rows = []
    for family, scenarios in samples.items():
        for scenario, v in scenarios.items():
            floor = median(v["raw"])
            over_ours = median(v["wrapped_off"]) - floor
            over_peer = median(v["peer"]) - floor
            rows.append([
                family, _SCENARIO_LABELS[scenario],
                fmt_ratio(paired_ratio(v["wrapped_off"], v["peer"]), 1.0),
                fmt_ratio(paired_ratio(v["wrapped_on"], v["peer"]), 1.0),
                fmt_ratio(paired_ratio(v["wrapped_off"], v["unwrapped"]), WRAPPER_TARGET),
                fmt_ratio(paired_ratio(v["wrapped_on"], v["wrapped_off"])),
                fmt_ratio(over_ours / over_peer if over_peer > 0 else float("nan")),
            ])
    out.append(table(headers, rows) + "\n")
    return "\n".join(out)


def _import_section(results: dict[str, dict[str, float]], reps: int) -> str:
    rows = [[f"`{m}`", f"{r['cumulative'] * 1e3:.0f}", f"{r['wall'] * 1e3:.0f}"]
            for m, r in results.items()]
    ours = results["chatmodels_langchain"]
    ours_openai = results["chatmodels_langchain.providers.openai"]
    peer = results["langchain_openai"]
    return (
        "## Import time\n\n"
        f"Fresh interpreter per import, {reps} interleaved repetition(s), medians. "
        "`-X importtime` cumulative ms; wall ms is the child process minus `python -c pass`.\n\n"
        + table(["module", "import (ms)", "wall (ms)"], rows)
        + f"\n\nchatmodels_langchain / langchain_openai: "
        f"{ours['cumulative'] / peer['cumulative']:.2f}; with the openai provider module: "
        f"{ours_openai['cumulative'] / peer['cumulative']:.2f}.\n"
    )


def _memory_section(results: dict[str, dict[str, Any]], streams: int, first: float) -> str:
    rows = []
    for client, r in results.items():
        rows.append([
            bench_memory.LABELS[client],
            fmt_mib(r.get("rss_peak_delta", float("nan"))),
            fmt_mib(r.get("heap_peak", float("nan"))),
            f"{r['seconds']:.2f}",
            str(r["in_flight"]),
            str(r["accepted"]),
            str(r["chunks"]),
        ])
    peer = results["chatopenai"]

    def ratios(key: str) -> str:
        ours = results[key]
        rss = ours["rss_peak_delta"] / peer["rss_peak_delta"] if peer["rss_peak_delta"] else 0.0
        heap = (ours["heap_peak"] / peer["heap_peak"]
                if "heap_peak" in ours and peer.get("heap_peak") else float("nan"))
        return f"RSS {rss:.2f}, heap {fmt_ratio(heap)}"

    return (
        f"## Peak memory, {streams:,} concurrent async streams\n\n"
        "Each client in a fresh child process, after warm-up; the server paces each stream "
        f"(first event after {first:g} s, then one every "
        f"{bench_memory.PACE_INTERVAL * 1e3:.0f} ms) so they are in flight together. "
        "RSS: peak during the streams minus RSS just before (sampled every 2 ms). "
        "Heap: `tracemalloc` peak in a second child (`--memory-heap`). In flight: most streams "
        "started and not finished at once. Connections opened: accepted by the server during "
        "the streams.\n\n"
        + table(["client", "RSS peak Δ (MiB)", "Python heap peak (MiB)", "wall (s)",
                 "peak in flight", "conns opened", "chunks"], rows)
        + f"\n\nours/ChatOpenAI: {ratios('ours')}; with a 1,000-connection pool: "
        f"{ratios('ours_pool1000')}.\n"
    )


def _registry_section(results: dict[str, dict[int, float]]) -> str:
    threads = bench_registry.THREADS
    rows = [[kind] + [fmt_rate(results[kind][t]) for t in threads]
            for kind in ("lookups", "creations")]
    return (
        "## Registry throughput (operations per second, all threads together)\n\n"
        "Lookups: `metadata()` / `is_registered()` alternating. Creations: "
        "`new_provider(\"fake\", model=\"fake-chat\")`.\n\n"
        + table(["operation"] + [f"{t} thread{'s' if t > 1 else ''}" for t in threads], rows)
        + "\n"
    )


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chatmodels_langchain benchmarks")
    parser.add_argument("--quick", action="store_true", help="~30 s smoke run")
    parser.add_argument("--memory-heap", action="store_true",
                        help="also measure the tracemalloc heap peak (slow)")
    parser.add_argument("--profile", action="store_true",
                        help="also write pyinstrument profiles to benchmarks/results/")
    parser.add_argument("--only", choices=("latency", "import", "memory", "registry"),
                        action="append", help="run only these sections (repeatable)")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown output (default: results/latest.md, "
                        "results/quick.md with --quick)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS_DIR / ("quick.md" if args.quick else "latest.md")
    sections = set(args.only or ("latency", "import", "memory", "registry"))
    quick = args.quick
    raise_fd_limit()

    started = time.perf_counter()
    load_before = _load()
    info = machine()
    url, server = spawn_server_process()
    raw: dict[str, Any] = {"machine": info, "quick": quick}
    parts: list[str] = []

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        if "latency" in sections:
            log("latency ...")
            plan = bench_latency.QUICK if quick else bench_latency.FULL
            samples = bench_latency.run(url, plan, log=log)
            raw["latency"] = samples
            parts.append(_latency_section(samples))
        if "import" in sections:
            log("import time ...")
            reps = 1 if quick else 7
            imports = bench_import.measure(reps, warm_up=not quick)
            raw["import"] = imports
            parts.append(_import_section(imports, reps))
        if "memory" in sections:
            streams, first = (200, 0.5) if quick else (1000, bench_memory.PACE_FIRST)
            log(f"memory ({streams} streams) ...")
            memory = bench_memory.measure(url, streams, heap=args.memory_heap, first=first)
            raw["memory"] = memory
            parts.append(_memory_section(memory, streams, first))
        if "registry" in sections:
            log("registry ...")
            registry = (bench_registry.measure(40_000, 400, 1) if quick
                        else bench_registry.measure(400_000, 3_000, 3))
            raw["registry"] = registry
            parts.append(_registry_section(registry))
        if args.profile:
            import bench_profile

            log("profiles ...")
            for path in bench_profile.profile(url, args.out.parent / "profiles"):
                log(f"  {path}")
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.terminate()
        server.wait(timeout=10)

    elapsed = time.perf_counter() - started
    header = (
        "# Benchmark results\n\n"
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"`python benchmarks/run.py{' --quick' if quick else ''}`, {elapsed:.0f} s.\n\n"
        f"- CPU: {info['cpu']}, {info['cores']} cores\n"
        f"- {info['python']} on {info['os']}\n"
        f"- {info['packages']}\n"
        f"- Load average (1 min) at start / end: {load_before} / {_load()} "
        "(other work on the machine shows up as noise)\n"
        "- Server: `benchmarks/loopback_server.py` in a child process on 127.0.0.1 "
        "(~200-token answer, 50 stream chunks)\n"
    )
    report = header + "\n" + "\n".join(parts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str),
                                             encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
