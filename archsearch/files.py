"""Writing files whole: the one atomic write every room uses for the JSON it shares.

Workers on one `runs/` tree read each other's files while they are written. A write goes to a
temporary file with a name no other writer can take (tempfile, in the same directory), is synced,
then renamed over the target, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: mkstemp creates 0600 files; the written file gets the usual 0666 & ~umask


def _temp_beside(path: Path) -> Path:
    """An empty file in `path`'s directory with a name no other writer can take."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    return Path(tmp)


def _sync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that wants a file name (torch.save, a YAML
    dump): on a clean exit it is synced and renamed over `path`, on an error removed."""
    tmp = _temp_beside(Path(path))
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def create_text_once(path: str | Path, text: str) -> bool:
    """Write `path` only if no file is there, atomically: of writers racing to create it exactly
    one wins (a hard link fails on an existing name), and every reader sees a whole file. True if
    this call created it."""
    tmp = _temp_beside(Path(path))
    try:
        tmp.write_text(text)
        _sync(tmp)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=indent) + "\n")
