"""Where archsearch keeps what it makes: one workspace root for every room.

The root is ``./runs`` unless `--runs DIR` (any command) or the ``ARCHSEARCH_RUNS`` environment
variable says otherwise; it holds run directories, teachers, reinforced stores, the pixel cache,
latency tables and the proxy score cache. The CLI's `--runs` sets the variable, so worker
processes inherit the same root.

A recipe names its store and teachers with a leading ``runs/`` (``runs/stores/embedded``): that
prefix means the workspace root wherever it lies, so a recipe, and the names of the teachers and
stores derived from its fields, stay the same when the root moves. Other relative paths are
relative to the working directory, absolute ones absolute. Below every room, importing none.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "ARCHSEARCH_RUNS"
PREFIX = "runs"


def root() -> Path:
    """The workspace root: ``$ARCHSEARCH_RUNS``, or ``runs`` in the working directory."""
    return Path(os.environ.get(ENV) or PREFIX)


def use(directory: str | Path | None) -> Path:
    """Make `directory` the root for this process and the processes it starts (None: keep it)."""
    if directory is not None:
        os.environ[ENV] = str(directory)
    return root()


def resolve(path: str | Path) -> Path:
    """A recipe's or option's path: ``runs/<rest>`` is ``<root>/<rest>``; anything else as given."""
    path = Path(path)
    if not path.is_absolute() and path.parts[:1] == (PREFIX,):
        return root().joinpath(*path.parts[1:])
    return path


def under(*parts: str) -> Path:
    """A place in the workspace, e.g. ``under("teachers")``."""
    return root().joinpath(*parts)
