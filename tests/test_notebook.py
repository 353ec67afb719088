"""examples/quickstart.ipynb runs top to bottom in a kernel of this venv (nbclient) and is kept in git
without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat  # a dev dependency: its absence is a failure, not a skip

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_quickstart_notebook_runs(tmp_path):
    """scan -> flags -> link -> curate -> probe on the demo corpus, plots inline (about a minute on 2
    cores with a cold embedding cache)."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # raises CellExecutionError (with the cell and its traceback) when a cell fails
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the issue summary, the slice lifts, the probe accuracies
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<table>" in h and "near_duplicate" in h for h in html)  # Run._repr_html_
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "rows kept" in text and "dev accuracy" in text
    nbformat.validate(nb)
