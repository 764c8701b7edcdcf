"""Re-execute the notebooks and store their outputs in place.

Usage, from the repository root::

    .venv/bin/python notebooks/_execute.py                  # every notebook
    .venv/bin/python notebooks/_execute.py 02_token_cost    # some of them

Each notebook runs top to bottom with ``notebooks/`` as its working directory, offline against
the local server it starts itself, in a ``python3`` kernel. That kernel spec runs ``python``,
which jupyter_client replaces with this interpreter: run the script with the venv's python.
A failing cell stops the script and nothing is written for that notebook.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 300  # seconds (the corpus run in 05 waits about a minute on its rate limit)


def notebooks(names: list[str]) -> list[Path]:
    """The notebooks named (with or without ``.ipynb``), or all of them."""
    if not names:
        return sorted(HERE.glob("[0-9]*.ipynb"))
    return [HERE / (name if name.endswith(".ipynb") else f"{name}.ipynb") for name in names]


def execute(path: Path) -> nbformat.NotebookNode:
    """Run a notebook top to bottom and return it with fresh outputs."""
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        record_timing=False,  # no per-cell timestamps in the stored files
        resources={"metadata": {"path": str(HERE)}},
    )
    client.execute()
    return notebook


def main() -> None:
    """Execute the notebooks given on the command line (all by default) and save them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    for path in notebooks(parser.parse_args().names):
        began = time.perf_counter()
        notebook = execute(path)
        nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
        took = time.perf_counter() - began
        print(f"{path.name}: {took:.1f} s, {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
