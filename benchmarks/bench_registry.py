"""Registry throughput from 1, 2, 8 and 32 threads.

- lookups: `metadata("openai")` and `is_registered("openai")`, alternating (each call counts);
- creations: `new_provider("fake", model="fake-chat")` (config validation, creator, wrapper).

A fixed total amount of work is split evenly between the threads, which start together on a
barrier; the rate is total operations over the wall time. CPython's GIL lets only one thread
run Python at a time, so the interesting result is that rates hold up (no lock convoy, no
contention collapse) rather than that they scale.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from _common import median

from chatmodels_langchain.providers import register_builtins
from chatmodels_langchain.registry import ChatModelRegistry
from chatmodels_langchain.telemetry import NoOpMetrics

THREADS = (1, 2, 8, 32)


def _registry() -> ChatModelRegistry:
    registry = ChatModelRegistry(metrics=NoOpMetrics())
    register_builtins(registry)
    return registry


def _rate(threads: int, total: int, work: Callable[[int], None]) -> float:
    per_thread = total // threads
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def body() -> None:
        barrier.wait()
        try:
            work(per_thread)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=body) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return per_thread * threads / elapsed


def measure(lookups: int, creations: int, repetitions: int) -> dict[str, dict[int, float]]:
    registry = _registry()

    def lookup(n: int) -> None:
        metadata, is_registered = registry.metadata, registry.is_registered
        for _ in range(n // 2):
            metadata("openai")
            is_registered("openai")

    def create(n: int) -> None:
        for _ in range(n):
            registry.new_provider("fake", model="fake-chat")

    lookup(1000)
    create(50)
    results: dict[str, dict[int, list[float]]] = {
        "lookups": {t: [] for t in THREADS}, "creations": {t: [] for t in THREADS},
    }
    for rep in range(repetitions):
        order = THREADS if rep % 2 == 0 else tuple(reversed(THREADS))
        for threads in order:
            results["lookups"][threads].append(_rate(threads, lookups, lookup))
            results["creations"][threads].append(_rate(threads, creations, create))
    return {kind: {t: median(v) for t, v in by.items()} for kind, by in results.items()}
