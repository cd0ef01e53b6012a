"""The bundled space files, found by name.

They live in `spaces/` at the repository root, located relative to the package; this holds for
the editable install the project uses (`pip install -e .`), not for a wheel, which does not ship
`spaces/`. Any other space file is loaded by its path.
"""

from __future__ import annotations

from pathlib import Path

import archsearch
from archsearch.errors import UserError
from archsearch.space.space import SearchSpace

SPACES_DIR = Path(archsearch.__file__).resolve().parents[1] / "spaces"


def list_spaces() -> list[Path]:
    """The bundled space files, sorted by name."""
    return sorted(SPACES_DIR.glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A bundled space by name ('hybrid') or any space file by path."""
    path = Path(name_or_path)
    if path.suffix or len(path.parts) > 1:
        return SearchSpace.from_file(path)
    bundled = SPACES_DIR / f"{name_or_path}.yaml"
    if not bundled.is_file():
        names = ", ".join(p.stem for p in list_spaces())
        raise UserError(f"{name_or_path}: unknown space; allowed: {names}, or the path of a space file")
    return SearchSpace.from_file(bundled)
