"""The notebooks run top to bottom in a real Jupyter kernel (nbclient + ipykernel), as a reader runs them.

The kernel is this interpreter (``sys.executable``, the project's virtual environment): a kernel spec
written under the test's temporary folder says so, so nothing is installed outside the repository and no
other Python on the machine is picked up. Each notebook runs in a temporary working folder with a
temporary store (``EXPLORER_DB``); a cell that raises fails the test with the cell's index, its first
line and the error. The notebooks are committed without outputs (``test_notebooks_are_committed_clean``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 240  # one cell on a loaded 2-core machine; the notebooks aim at well under a minute in all


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_committed_clean(path: Path) -> None:
    """No outputs, no execution counts, valid nbformat 4: diffs stay readable and nothing stale is shown."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            first = cell.source.splitlines()[0] if cell.source else ""
            assert cell.outputs == [], f"{path.name} cell {i} ({first!r}) has outputs; clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} ({first!r}) has an execution count"


def _kernel_spec_dir(root: Path) -> Path:
    """A kernel spec 'python3' that starts ipykernel in *this* interpreter (written under ``root``)."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (attendnext venv)",
        "language": "python",
    }))
    return root / "kernels"


def _first_line(source: str) -> str:
    return next((line for line in source.splitlines() if line.strip()), "")


def run_notebook(path: Path, workdir: Path) -> list[str]:
    """Execute ``path`` cell by cell in a fresh kernel; the sources of the code cells run.

    Raises ``AssertionError`` naming the failing cell (index and first line) and the error.
    """
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(_kernel_spec_dir(workdir / "jupyter"))], ensure_native_kernel=False)
    km = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=CELL_TIMEOUT_S, allow_errors=False,
                            resources={"metadata": {"path": str(workdir)}})
    ran: list[str] = []
    with client.setup_kernel(cwd=str(workdir)):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as exc:
                error = f"{exc.ename}: {exc.evalue}"
                raise AssertionError(f"{path.name} cell {index} ({_first_line(cell.source)!r}) failed: "
                                     f"{error}\n{exc}") from None
            ran.append(cell.source)
        probe = nbformat.v4.new_code_cell("import sys; print(sys.executable)")
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
        kernel_python = "".join(o.get("text", "") for o in probe.outputs).strip()
    assert Path(kernel_python).absolute() == Path(sys.executable).absolute(), (
        f"the kernel ran {kernel_python}, not this environment's {sys.executable}")
    return ran


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_a_kernel(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLORER_DB", str(tmp_path / "explorer.sqlite"))
    monkeypatch.setenv("NOTEBOOK_UNDER_TEST", "1")  # cells that would serve a page (``explorer.ui.show``) skip it
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    ran = run_notebook(path, tmp_path)
    assert len(ran) >= 4


def test_a_failing_cell_is_named(tmp_path: Path) -> None:
    """The harness itself: an error in cell 2 fails with that cell's index, first line and the error."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("# the bad one\nraise ValueError('boom ' + str(x))")]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(AssertionError, match=r"bad\.ipynb cell 2 \('# the bad one'\) failed: ValueError: boom 1"):
        run_notebook(path, work)


@pytest.mark.parametrize(("name", "least"), [("01_attention_condensers.ipynb", 5),
                                             ("05_design_space_and_search.ipynb", 2)])
def test_exercise_answers_are_collapsed(name: str, least: int) -> None:
    """Every answer cell is collapsed (``jupyter.source_hidden``), and follows its question."""
    import nbformat

    cells = nbformat.read(NOTEBOOK_DIR / name, as_version=4).cells
    answers = [i for i, c in enumerate(cells) if c.source.lstrip("# ").startswith(("**Answer", "Answer"))]
    assert len(answers) >= least
    for i in answers:
        assert cells[i].metadata.get("jupyter", {}).get("source_hidden") is True, f"{name} cell {i} is not collapsed"
        if cells[i].cell_type == "code":  # its printout would give the answer away too
            assert cells[i].metadata["jupyter"].get("outputs_hidden") is True
        question = cells[i - 1].source
        assert "**" in question and i - 1 not in answers, f"{name} cell {i}: no question before it"
