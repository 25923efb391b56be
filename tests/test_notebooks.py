"""The notebooks of examples/notebooks/ execute from top to bottom.

With nbclient, nbformat and ipykernel installed they run in a Jupyter kernel;
without them the code cells run, in order, as one script in a fresh Python
process (the same code, without the kernel), so that a broken notebook
still fails the suite.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
NB_PACKAGES = ("nbformat", "nbclient", "ipykernel")
MISSING = [m for m in NB_PACKAGES if importlib.util.find_spec(m) is None]
TIMEOUT = 300  # seconds per notebook (each runs in well under a minute)


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _code(nb):
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_two_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"moe_diabetes.ipynb", "mpe_intervals.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_format(path):
    nb = _load(path)
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 5
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids), "cell ids must be unique"
    assert nb["cells"][0]["cell_type"] == "markdown"
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            # committed without outputs: the test executes them
            assert c["outputs"] == [] and c["execution_count"] is None
            assert "plt.show()" not in "".join(c["source"])
    code = "\n".join(_code(nb))
    compile(code, str(path), "exec")  # every code cell is valid Python
    if importlib.util.find_spec("nbformat") is not None:
        import nbformat

        nbformat.validate(
            nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        )


@pytest.mark.skipif(
    bool(MISSING),
    reason=(
        f"{', '.join(MISSING)} not installed: add nbclient, nbformat and ipykernel "
        "to the 'test' extra to run the notebooks in a Jupyter kernel"
    ),
)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_kernel(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors


@pytest.mark.skipif(
    not MISSING, reason="executed in a kernel by test_notebook_executes_in_kernel"
)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_code_runs_as_script(path, tmp_path):
    script = tmp_path / f"{path.stem}.py"
    script.write_text("\n\n".join(_code(_load(path))), encoding="utf-8")
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stderr[-4000:]}"
