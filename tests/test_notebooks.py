"""Every notebook runs end to end (nbclient, local data only); a failing cell fails the test."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_with_outputs() -> None:
    """Committed executed (so they read on a code host), on the Python API, and small."""
    assert len(NOTEBOOKS) == 4
    for path in NOTEBOOKS:
        assert path.stat().st_size < 1_000_000, f"{path.name}: too large to commit"
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{path.name}: run notebooks/build.py"
        outputs = [o for c in code for o in c.outputs]
        assert not [o for o in outputs if o.get("output_type") == "error"], path.name
        assert outputs, f"{path.name}: committed without outputs"
        source = "\n".join(c.source for c in code)
        assert "import landuse as lu" in source and "landuse.cli" not in source, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if path.stem == "02_change_between_years":
        # executed once, on the sample county (as committed), for this test and for test_api's
        # comparison of its outputs with the workflow's and the CLI's
        nb, out, _ = request.getfixturevalue("change_notebook_on_sample_county")
    else:
        monkeypatch.setenv("LANDUSE_NB_OUT", str(tmp_path))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
        client.execute()  # raises CellExecutionError naming the failing cell
        out = tmp_path
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(out.iterdir()), "the notebook wrote nothing"
