"""The embedded default's teachers, trained once and shipped in the package (fp16 safetensors).

Training the default recipe's teachers long enough to be clearly stronger than any student takes
an hour of two cores; a first run should not pay that. `archsearch teach --force --ship` trains
them locally and writes `archsearch/assets/teachers/`: one `<name>.safetensors` per teacher (the
name is the one `teach.teacher_dirs` gives, so it carries a digest of the recipe's teacher
settings) and `manifest.json` with each file's sha256, the exact command, the machine and the
teacher's learning curve. `teach` then uses a shipped teacher whenever its name matches and no
local checkpoint exists; every load checks the sha256 first, and a mismatch is an error, never a
silent retrain.
"""

from __future__ import annotations

import datetime
import json
import shlex
from pathlib import Path
from typing import Any

from archsearch.data.open_clip_local import file_sha256
from archsearch.data.teachers import CHECKPOINT_NAME, SHIPPED_SUFFIX, save_teacher_fp16, teacher_meta
from archsearch.errors import UserError
from archsearch.files import write_json_atomic

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "teachers"
MANIFEST_NAME = "manifest.json"


def read_manifest(root: Path = SHIPPED_DIR) -> dict[str, Any]:
    """The shipped teachers' manifest; an empty one when nothing is shipped."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {"teachers": []}
    try:
        manifest = json.loads(path.read_text())
        names = [entry["name"] for entry in manifest["teachers"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a shipped-teacher manifest ({type(exc).__name__}: {exc}); it needs "
                        "teachers: [{name, file, sha256}]") from None
    if len(set(names)) != len(names):
        raise UserError(f"{path}: a teacher is listed twice")
    return manifest


def shipped_teacher(name: str, root: Path = SHIPPED_DIR) -> Path | None:
    """The checked path of the shipped teacher called `name`, or None when none is shipped under it.

    Raises `UserError` when the file is missing or its sha256 differs from the manifest's."""
    entry = next((e for e in read_manifest(root)["teachers"] if e["name"] == name), None)
    if entry is None:
        return None
    path = root / entry["file"]
    if not path.is_file():
        raise UserError(f"{path}: listed in {root / MANIFEST_NAME} but missing; reinstall archsearch, or "
                        f"rebuild the teachers locally with `{entry.get('command', 'archsearch teach --force')}`")
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise UserError(f"{path}: sha256 {actual} does not match the manifest's {entry['sha256']}; the file is "
                        "damaged or was changed. Reinstall archsearch, or rebuild the teachers locally with "
                        "`archsearch teach --force`")
    return path


def ship_teachers(dirs: list[Path], recipe_name: str, root: Path = SHIPPED_DIR,
                  machine: dict[str, Any] | None = None) -> Path:
    """Write fp16 copies of the local teachers in `dirs` and a manifest naming exactly them."""
    command = shlex.join(["archsearch", "teach", "--recipe", recipe_name, "--force", "--ship"])
    entries = []
    for directory in dirs:
        checkpoint = Path(directory) / CHECKPOINT_NAME
        if not checkpoint.is_file():
            raise UserError(f"{checkpoint}: no local teacher to ship; train it first with `{command}`")
        out = save_teacher_fp16(checkpoint, root / f"{Path(directory).name}{SHIPPED_SUFFIX}")
        curve_file = Path(directory) / "curve.jsonl"
        curve = [json.loads(line) for line in curve_file.read_text().splitlines()] if curve_file.is_file() else []
        meta = teacher_meta(out)
        entries.append({"name": Path(directory).name, "file": out.name, "sha256": file_sha256(out),
                        "bytes": out.stat().st_size, "dtype": "float16", "arch": meta.get("arch"),
                        "seed": meta.get("seed"), "training": meta.get("training"),
                        "train_seconds": meta.get("train_seconds"), "threads": meta.get("threads"),
                        "metrics": meta.get("metrics"), "curve": curve})
    for stale in root.glob(f"*{SHIPPED_SUFFIX}"):
        if stale.name not in {e["file"] for e in entries}:
            stale.unlink()
    manifest = {"recipe": recipe_name, "command": command,
                "created": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine or {},
                "teachers": entries}
    write_json_atomic(root / MANIFEST_NAME, manifest)
    return root / MANIFEST_NAME
