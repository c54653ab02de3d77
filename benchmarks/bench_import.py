"""Import time in fresh interpreters: `python -X importtime -c "import <module>"`.

Each repetition starts one interpreter per module, in a rotating order (interleaved); the
figures are medians. `cumulative` is what `-X importtime` reports for the module itself
(everything it pulled in, interpreter start-up excluded); `wall` is the whole child process
minus an empty interpreter's (`python -c pass`), measured in the same repetition.
"""

from __future__ import annotations

import subprocess
import sys
import time

from _common import median

MODULES = (
    "chatmodels_langchain",
    "chatmodels_langchain.providers.openai",
    "langchain_openai",
    "langchain_anthropic",
    "langchain_core.language_models.chat_models",
)
_BASELINE = ""


def _once(module: str) -> tuple[float, float]:
    """(cumulative import seconds from -X importtime, wall seconds of the process)."""
    code = f"import {module}" if module else "pass"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, check=True,
    )
    wall = time.perf_counter() - started
    if not module:
        return 0.0, wall
    cumulative = 0.0
    for line in done.stderr.splitlines():
        # "import time:  self [us] | cumulative | imported package"
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            cumulative = int(parts[1]) / 1e6
    return cumulative, wall


def measure(repetitions: int, *, warm_up: bool = True) -> dict[str, dict[str, float]]:
    targets = (_BASELINE, *MODULES)
    cumulative: dict[str, list[float]] = {m: [] for m in targets}
    wall: dict[str, list[float]] = {m: [] for m in targets}
    if warm_up:  # one pass to warm the OS page cache and the bytecode caches
        for module in targets:
            _once(module)
    for rep in range(repetitions):
        shift = rep % len(targets)
        order = targets[shift:] + targets[:shift]
        for module in order:
            c, w = _once(module)
            cumulative[module].append(c)
            wall[module].append(w)
    base = median(wall[_BASELINE])
    return {
        module: {"cumulative": median(cumulative[module]), "wall": median(wall[module]) - base}
        for module in MODULES
    }
