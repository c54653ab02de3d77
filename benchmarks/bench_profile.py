"""pyinstrument profiles of the hot paths (`python benchmarks/run.py --profile`).

For the OpenAI and Anthropic wire formats: the unwrapped native model, the wrapper with
telemetry off and on, and the peer, each for `invoke` and `stream`, profiled over many calls
against the loopback server. One text report per case goes to
`results/profiles/<family>-<variant>-<op>.txt`: the call tree in percent of the profiled
time, then the functions with the most self time (the flat view).
"""

from __future__ import annotations

import gc
from pathlib import Path

from _common import RESULTS_DIR
from bench_latency import Telemetry, build_clients

_CALLS = {"invoke": 400, "stream": 100}
_VARIANTS = ("unwrapped", "wrapped_off", "wrapped_on", "peer")
_FLAT_LINES = 40


def profile(url: str, out_dir: Path = RESULTS_DIR / "profiles", *,
            families: tuple[str, ...] = ("openai", "anthropic")) -> list[Path]:
    try:
        from pyinstrument import Profiler
    except ImportError as exc:
        raise SystemExit("--profile needs pyinstrument: pip install pyinstrument") from exc

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    telemetry = Telemetry.create()
    for family in families:
        clients = build_clients(url, family, telemetry)
        for variant in _VARIANTS:
            if variant not in clients:
                continue
            client = clients[variant]
            for op, calls in _CALLS.items():
                call = getattr(client, op)
                for _ in range(10):
                    call()
                client.after_batch()
                # A full collection of the (large) set-up heap would be charged to whichever
                # frame runs at that moment and distort the comparison: freeze it first.
                gc.collect()
                gc.freeze()
                profiler = Profiler(interval=0.0001, async_mode="disabled")
                profiler.start()
                for _ in range(calls):
                    call()
                profiler.stop()
                gc.unfreeze()
                client.after_batch()
                tree = profiler.output_text(unicode=False, color=False, time="percent_of_total")
                flat = profiler.output_text(unicode=False, color=False, flat=True,
                                            time="percent_of_total")
                flat_top = "\n".join(flat.splitlines()[:_FLAT_LINES])
                path = out_dir / f"{family}-{variant}-{op}.txt"
                path.write_text(
                    f"# {family} {variant} {op}: {calls} calls\n\n## call tree\n{tree}\n"
                    f"## self time, top {_FLAT_LINES}\n{flat_top}\n",
                    encoding="utf-8",
                )
                written.append(path)
    return written
