"""What every benchmark shares: where results go, the metadata each result carries, Markdown cells."""

from __future__ import annotations

import datetime
import shlex
import sys
from pathlib import Path
from typing import Sequence

from archsearch.environment import device_fingerprint

RESULTS = Path(__file__).parent / "results"


def command(module: str, argv: Sequence[str] | None = None) -> str:
    """The exact command that reproduces this run: `python -m benchmarks.<module> <its arguments>`."""
    return shlex.join(["python", "-m", f"benchmarks.{module}", *(sys.argv[1:] if argv is None else argv)])


def run_meta(module: str, *, threads: int = 1, device: str = "torch-cpu", argv: Sequence[str] | None = None,
             **extra) -> dict:
    """Date, exact command and machine fingerprint (CPU, threads, library versions) of a result."""
    return {"date": datetime.date.today().isoformat(), "command": command(module, argv),
            "machine": device_fingerprint(device, threads), **extra}


def cell(text: str) -> str:
    """Text in a Markdown table cell: a layout's text part is separated by '|', which would split the cell."""
    return text.replace("|", r"\|")


def ci_suffix(ci, digits: int = 2) -> str:
    """' [0.12, 0.80]': a 95% interval as every report prints it after its figure ('' for none)."""
    return "" if ci is None else f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def with_ci(value: float, ci, digits: int = 2) -> str:
    """'0.45 [0.12, 0.80]'."""
    return f"{value:.{digits}f}{ci_suffix(ci, digits)}"
