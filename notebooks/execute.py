"""Run notebooks top to bottom in place, so they are committed with their outputs and figures.

    python notebooks/execute.py pareto findings proxy_fidelity

Each notebook reads the committed results (`benchmarks/results/`) by default, so a reader sees
the figures on arrival; `tests/test_notebooks.py` re-runs them and fails when the committed
outputs no longer match what the committed results give. Timing metadata is not recorded, so a
rerun on unchanged results changes nothing but the images' bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent


def execute(name: str, timeout: int = 300) -> nbformat.NotebookNode:
    """The notebook `name` run from notebooks/ (as Jupyter runs it), outputs in place."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def main(names: list[str]) -> None:
    for name in names:
        nb = execute(name)
        nbformat.write(nb, NOTEBOOKS / f"{name}.ipynb")
        print(f"executed notebooks/{name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:] or ["pareto", "findings", "proxy_fidelity"])
