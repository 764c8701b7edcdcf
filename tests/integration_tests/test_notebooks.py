"""Every notebook in ``notebooks/`` runs top to bottom, offline, without errors or leaked keys.

Each notebook is executed from a fresh in-memory copy (the stored outputs are never touched)
with ``notebooks/`` as its working directory, in a ``python3`` kernel. The notebooks start
their own local server on loopback. ``notebooks/_execute.py`` re-executes them and stores the
outputs.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.unit_tests.test_repository import OUTSIDE

# jupyter_client binds loopback TCP ports for the kernel's ZMQ channels (through the socket
# module, which --disable-socket blocks); the notebooks' own HTTP runs in the kernel process.
pytestmark = pytest.mark.enable_socket

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
CELL_TIMEOUT = 120  # seconds
NOTEBOOK_SECONDS = 60  # each notebook takes a few seconds; this catches a hang or a slowdown
# A corpus run that the rate limit holds to about a minute (70 s on a quiet machine; a CI run
# on a machine loaded by three other test runs took over 120 s in one cell).
LONGER = {"05_corpus_run": 300}
MACHINE_PATH = re.compile(r"/work/|/tmp/|/home/|/root/|/Users/|[A-Z]:\\\\")  # absolute paths
LOCAL_KEY = re.compile(r"sk-local-[A-Za-z0-9_-]{8,}")  # the local server's random keys
WHERE = "import sys\nprint(sys.executable)\nprint(sys.prefix)"
ROOT = NOTEBOOKS.parent
# Every request the notebook makes through ChatAfarensis: the client's count vs the server's usage.
PRELUDE = (
    f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
    "from tests import _usage_agreement\n_usage_check = _usage_agreement.install()"
)
USAGE = (
    "import json\nprint(json.dumps({'compared': _usage_check.compared, "
    "'totals': _usage_check.totals_compared, 'disagreements': _usage_check.disagreements}))"
)


def execute(path: Path) -> nbformat.NotebookNode:
    """Run a fresh copy of the notebook (outputs cleared), with the usage check around it.

    A first cell installs ``tests/_usage_agreement``; the last two report the kernel and what
    the check found.
    """
    notebook = read(path)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    new_cell = nbformat.v4.new_code_cell
    notebook.cells.insert(0, new_cell(PRELUDE))  # type: ignore[no-untyped-call]
    notebook.cells.append(new_cell(WHERE))  # type: ignore[no-untyped-call]
    notebook.cells.append(new_cell(USAGE))  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=LONGER.get(path.stem, CELL_TIMEOUT),
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return notebook


def read(path: Path) -> nbformat.NotebookNode:
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return notebook


def outputs(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return list(cell.get("outputs", []))


def test_the_notebooks_are_there() -> None:
    names = [path.name for path in PATHS]
    assert names[:5] == [
        "01_quickstart.ipynb",
        "02_token_cost.ipynb",
        "03_agent_describe_image.ipynb",
        "04_rag_images.ipynb",
        "05_corpus_run.ipynb",
    ]


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_notebook_runs_offline_without_errors(path: Path) -> None:
    began = time.perf_counter()
    notebook = execute(path)
    took = time.perf_counter() - began
    _, *cells, where, usage = notebook.cells

    everything = [output for cell in cells for output in outputs(cell)]
    assert [o for o in everything if o.output_type == "error"] == []
    stderr = [o.text for o in everything if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == []  # no warnings, tracebacks or progress bars in the stored outputs
    leaked = LOCAL_KEY.findall(json.dumps(everything))
    assert leaked == [], "a notebook output shows the local server's API key"
    assert all(cell.execution_count for cell in cells if cell.cell_type == "code")

    # The kernel ran this interpreter (the venv's), not some other python3 on the machine.
    assert outputs(where)[0].text.split() == [sys.executable, sys.prefix]
    assert took < LONGER.get(path.stem, NOTEBOOK_SECONDS), f"{path.name} took {took:.1f} s"
    # The server's usage is the client's count on every request the notebook made.
    found = json.loads(outputs(usage)[0].text)
    assert found["disagreements"] == [], found
    print(f"{path.stem}: {found['compared']} requests compared ({found['totals']} in total)")


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_stored_notebook_is_executed_and_small(path: Path) -> None:
    notebook = read(path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    everything = [output for cell in code for output in outputs(cell)]
    assert [o for o in everything if o.output_type == "error"] == []
    assert not LOCAL_KEY.search(json.dumps(everything))
    assert path.stat().st_size < 300_000
    # Nothing of the machine it ran on, nothing outside the repository: a clone stands alone.
    text = path.read_text()
    assert MACHINE_PATH.findall(text) == []
    assert [line for line in text.splitlines() if OUTSIDE.search(line)] == []
