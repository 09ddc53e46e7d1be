"""Every notebook runs end to end (nbclient, local data only); a failing cell fails the test."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_with_outputs_and_use_the_api() -> None:
    """Committed executed, so they read on a code host without running: every code cell ran, in
    order, without error; each notebook shows a figure or a map; they call the API, not the CLI."""
    assert len(NOTEBOOKS) == 4
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{path.name}: run all cells, in order"
        outputs = [o for c in code for o in c.outputs]
        assert not [o for o in outputs if o.get("output_type") == "error"], path.name
        rich = [o for o in outputs if o.get("output_type") in ("display_data", "execute_result")]
        assert any("image/png" in o.get("data", {}) or "text/html" in o.get("data", {}) for o in rich), path.name
        source = "\n".join(c.source for c in code)
        assert "import landuse as lu" in source and "landuse.cli" not in source, path.name
        text = "\n".join(str(o) for o in outputs)
        assert "/work/" not in text and "shared/data" not in text, f"{path.name}: outputs name a local path"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDUSE_NB_OUT", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(tmp_path.iterdir()), "the notebook wrote nothing"
