"""notebooks/ladder.ipynb: committed without outputs, the GPU command of
docs/gpu.md in it verbatim, and every cell run with nbclient on the tests'
tiny data, shrunk through the environment variables its length cell reads."""

import json
import os

import keras
import pytest
from helpers import REPO, subprocess_env

NOTEBOOK = os.path.join(REPO, "notebooks", "ladder.ipynb")
RUNGS = ("baseline", "trick1")


def cells(kind):
    """The notebook's cells of that kind, as committed."""
    with open(NOTEBOOK, encoding="utf-8") as f:
        return [cell for cell in json.load(f)["cells"] if cell["cell_type"] == kind]


def test_the_notebook_is_committed_without_outputs():
    for cell in cells("code"):
        assert (cell["execution_count"], cell["outputs"]) == (None, []), "".join(cell["source"])[:80]


def test_the_notebook_gives_the_gpu_pages_jax_command():
    page = open(os.path.join(REPO, "docs", "gpu.md"), encoding="utf-8").read().splitlines()
    command = next(line for line in page if line.startswith("KERAS_BACKEND=jax python -m kcifar.ladder --run "))
    assert any(command + "\n" in cell["source"] for cell in cells("markdown"))


# Once, not once per backend: the notebook sets KERAS_BACKEND itself (jax,
# its default), so its cells do the same work whichever backend the suite
# runs under; CI runs the suite once per backend, and this test in the jax
# pass only.
@pytest.mark.slow  # a Jupyter kernel and its five child processes
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the notebook trains on jax; run once, in the jax pass")
def test_every_cell_of_the_notebook_runs_on_tiny_data(tiny_dir, tmp_path, tmp_path_factory):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    runs = tmp_path / "runs"
    env = {**subprocess_env(tmp_path_factory), "KCIFAR_DATA": str(tiny_dir), "PYTHONDONTWRITEBYTECODE": "1",
           "KCIFAR_NB_EPOCHS": "1", "KCIFAR_NB_LIMIT_TRAIN": "64", "KCIFAR_NB_RUNGS": "..".join(RUNGS),
           "KCIFAR_NB_LADDER_FLAGS": "--epochs 1 --limit-train 64", "KCIFAR_NB_RUNS": str(runs),
           "MPLCONFIGDIR": str(tmp_path / "matplotlib")}
    # The kernel starts in tmp_path, outside any checkout: the setup cell finds
    # kcifar installed and changes no folder, so everything lands in tmp_path.
    client = NotebookClient(notebook, kernel_name="python3", timeout=600, startup_timeout=180, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)  # raises CellExecutionError at the first failing cell

    outputs = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    text = "".join(out.get("text", "") for cell in outputs for out in cell)
    assert "test accuracy" in text and "gap" in text
    assert any("image/png" in out.get("data", {}) for out in outputs[-1])
    for name in RUNGS:
        assert (runs / "ladder" / f"{name}-jax-seed0" / "metrics.json").is_file()
    assert (runs / "rung" / "trick4-jax-seed0" / "metrics.json").is_file()
    assert (runs / "ladder" / "report" / "figures" / "ladder-custom.png").is_file()
