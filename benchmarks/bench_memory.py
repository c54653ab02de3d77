"""Peak memory of N concurrent async streams, each client in a fresh child process.

A child builds one client, warms it up, then opens N `astream` calls at once and consumes
them all. The server paces every stream (`/fault/pace,first=1,interval=0.005`: the first
event after 1 s, then one every 5 ms, like a model thinking and then generating) so that the
streams really are in flight together; an instant server would let each task finish its
stream before the next one has even started.

- `rss` child (always): no tracing; a sampler thread reads the resident set size every 2 ms;
  the figure is the peak during the streams minus the RSS just before them (interpreter,
  imports and warm pools excluded). The wall time of the N streams comes from this child.
- `heap` child (`--memory-heap`): `tracemalloc` on; the peak of Python allocations during
  the streams (slow: tracing multiplies the CPU time).

Clients: ours as created by the registry (httpx's default pool: at most 100 connections,
20 kept alive), ours with a 1,000-connection pool injected (`http_async_client`, the limits
the openai/anthropic SDKs use), and `ChatOpenAI`.

Also reported: the most streams in flight at once (started, not finished; a stream waits for
a free connection when the pool is full) and how many connections the server accepted during
the streams (connections beyond the pool's keep-alive limit are closed after use).

Run as a script by `run.py`: `python bench_memory.py --url URL --client ours --streams 1000`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

CLIENTS = ("ours", "ours_pool1000", "chatopenai")
LABELS = {
    "ours": "ours (registry default: httpx pool of 100)",
    "ours_pool1000": "ours with a 1,000-connection pool",
    "chatopenai": "ChatOpenAI (SDK pool of 1,000)",
}
PACE_INTERVAL = 0.005
PACE_FIRST = 1.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * _PAGE


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.002):
            self.peak = max(self.peak, _rss())

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return max(self.peak, _rss())


def _server(url: str, path: str, method: str = "GET") -> dict[str, Any]:
    import httpx

    return dict(httpx.request(method, url + path).json())


def _child(url: str, client: str, streams: int, mode: str, first: float) -> dict[str, Any]:
    from _common import OPENAI_KEY, OPENAI_MODEL, raise_fd_limit
    from langchain_core.messages import HumanMessage, SystemMessage

    raise_fd_limit()
    messages = [SystemMessage("You are a concise senior engineer."),
                HumanMessage("Explain HTTP connection pooling in one paragraph.")]
    base_url = f"{url}/fault/pace,interval={PACE_INTERVAL},first={first}/v1"
    fields: dict[str, Any] = {"model": OPENAI_MODEL, "api_key": OPENAI_KEY,
                              "base_url": base_url, "max_retries": 0, "timeout": 300.0}
    if client in ("ours", "ours_pool1000"):
        from chatmodels_langchain.providers import register_builtins
        from chatmodels_langchain.registry import ChatModelRegistry
        from chatmodels_langchain.telemetry import NoOpMetrics

        registry = ChatModelRegistry(metrics=NoOpMetrics())
        register_builtins(registry)
        if client == "ours":
            model: Any = registry.new_provider("openai", **fields)
        else:
            import httpx

            from chatmodels_langchain.providers.openai import ChatOpenAINative
            from chatmodels_langchain.wrapper import ChatModelWrapper

            pool = httpx.AsyncClient(timeout=300.0, limits=httpx.Limits(
                max_connections=1000, max_keepalive_connections=100))
            native = ChatOpenAINative(**fields, http_async_client=pool)
            model = ChatModelWrapper(provider="openai", registry=registry, underlying=native,
                                     **fields)
    else:
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(**fields, stream_usage=True)

    flight = {"now": 0, "peak": 0}

    async def one() -> int:
        n = 0
        try:
            async for _ in model.astream(messages):
                if n == 0:  # the response has started: this stream is in flight
                    flight["now"] += 1
                    flight["peak"] = max(flight["peak"], flight["now"])
                n += 1
        finally:
            if n:
                flight["now"] -= 1
        return n

    async def main() -> dict[str, Any]:
        for _ in range(5):
            await one()
        await asyncio.gather(*(one() for _ in range(20)))
        gc.collect()
        flight["peak"] = 0
        _server(url, "/_reset", "POST")
        sampler: _Sampler | None = None
        if mode == "heap":
            tracemalloc.start()
        else:
            sampler = _Sampler()
            sampler.start()
        before = _rss()
        started = time.perf_counter()
        counts = await asyncio.gather(*(one() for _ in range(streams)))
        elapsed = time.perf_counter() - started
        result: dict[str, Any] = {"client": client, "mode": mode, "streams": streams,
                                  "chunks": sum(counts), "seconds": elapsed}
        if sampler is not None:
            result["rss_peak_delta"] = sampler.stop() - before
        else:
            result["heap_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        result["peak_in_flight"] = flight["peak"]
        result["server_accepted"] = _server(url, "/_stats")["accepted"] - 1  # minus /_stats
        return result

    return asyncio.run(main())


def measure(url: str, streams: int, *, heap: bool = False,
            first: float = PACE_FIRST) -> dict[str, dict[str, Any]]:
    """Run one child per client and mode, and merge their reports."""
    results: dict[str, dict[str, Any]] = {client: {} for client in CLIENTS}
    modes = ("rss", "heap") if heap else ("rss",)
    for mode in modes:
        for client in CLIENTS:
            output = subprocess.run(
                [sys.executable, str(Path(__file__)), "--url", url, "--client", client,
                 "--streams", str(streams), "--mode", mode, "--first", str(first)],
                capture_output=True, text=True, check=False, timeout=600,
            )
            if output.returncode != 0:
                raise RuntimeError(f"memory child {client}/{mode} failed:\n{output.stderr}")
            report = json.loads(output.stdout.strip().splitlines()[-1])
            if mode == "rss":
                results[client].update(
                    rss_peak_delta=report["rss_peak_delta"], seconds=report["seconds"],
                    chunks=report["chunks"], in_flight=report["peak_in_flight"],
                    accepted=report["server_accepted"],
                )
            else:
                results[client]["heap_peak"] = report["heap_peak"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--mode", choices=("rss", "heap"), default="rss")
    parser.add_argument("--first", type=float, default=PACE_FIRST,
                        help="seconds before each stream's first event")
    args = parser.parse_args()
    print(json.dumps(_child(args.url, args.client, args.streams, args.mode, args.first)))


if __name__ == "__main__":
    main()
