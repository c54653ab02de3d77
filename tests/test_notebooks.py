"""Every notebook in notebooks/ runs top to bottom, offline, in a kernel of this interpreter.

The kernel is started from a kernel spec written to a temporary directory whose argv is
`sys.executable -m ipykernel_launcher`, and only that directory is searched: whatever
"python3" kernel a machine has installed (or lacks) does not matter, and no
`ipykernel install` is needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "chatmodels-test-python"
EXPECTED = [
    "01_quickstart.ipynb",
    "02_tools_and_structured_output.ipynb",
    "03_observability.ipynb",
    "04_testing_with_cassettes.ipynb",
]
SECRET_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_COMPATIBLE_API_KEY")
NEEDS = {"03_observability.ipynb": "matplotlib"}
"""Packages a notebook imports beyond the test extra's core."""


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A spec manager that knows one kernel: this very interpreter."""
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / KERNEL
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "chatmodels tests",
        "language": "python",
        "env": {"MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(root)], ensure_native_kernel=False)


def test_notebooks_are_present_with_outputs_stripped() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    for name in EXPECTED:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.nbformat == 4
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, name
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, (name, cell.source[:60])


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_offline(
    name: str, kernel_specs: KernelSpecManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    # The kernel inherits this environment: no real keys, replay-only cassettes.
    for var in SECRET_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CHATMODELS_RECORD_MODE", raising=False)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=60,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Traceback" not in text
    if name == "03_observability.ipynb":
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert images, "the latency / token plot was not rendered"
