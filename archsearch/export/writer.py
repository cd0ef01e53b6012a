"""`write_export`: one ArchSpec and where it came from -> a complete export directory, or nothing.

Everything is written into a temporary directory beside the target and renamed into place at the
end, so a failure (a conversion error, Ctrl-C) leaves no half-written export; an existing target
is replaced only with ``force``, and only if it is empty or an earlier export (it has
``export.json``), so a mistyped ``--out`` never deletes someone's files. The caller says where
the spec came from (`provenance`: a preset, a file, later a sweep trial), which the export records.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from archsearch.choices import EXPORT_FORMATS
from archsearch.errors import UserError
from archsearch.export.openclip import CONFIG_FILE, open_clip_config, text_unsupported
from archsearch.export.readme import ExportFacts, export_readme
from archsearch.export.timm_registry import record_spec, register_spec, timm_name
from archsearch.export.train_config import TRAIN_FILE, train_yaml
from archsearch.spec.arch import ArchSpec
from archsearch.spec.io import save_spec

MANIFEST = "export.json"


@dataclass
class ExportResult:
    out: Path
    files: list[str]
    timm_name: str
    params: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # what could not be exported, and why
    registry_file: Optional[Path] = None


def check_target(out: Path, force: bool) -> None:
    """Refuse what must not be replaced (before any slow work)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; allowed: a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UserError(f"{out}: exists and is not empty; pass --force to replace an earlier export")
        if not (out / MANIFEST).is_file():
            raise UserError(f"{out}: not an archsearch export (no {MANIFEST}); --force replaces only earlier "
                            "exports; allowed: a new or empty directory")
    try:  # the export is built beside its target, then renamed in: the parent must take a new directory
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.probe-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc}); allowed: a new or empty "
                        "directory whose parent is writable") from None


@contextmanager
def _quiet_open_clip():
    """open_clip logs every config build (and 'no weights found') at WARNING on the root logger."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(previous)


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_open_clip(spec: ArchSpec, directory: Path) -> dict:
    """Build the OpenCLIP model from the written config (meta device: no memory, no init cost) and
    compare its parameter count with archsearch's; they must be equal."""
    import open_clip
    import torch

    from archsearch.models import build_clip

    register_spec(spec)
    with torch.device("meta"), _quiet_open_clip():
        theirs = count_params(open_clip.create_model(f"local-dir:{directory}", device="meta"))
        ours = count_params(build_clip(spec))
    if theirs != ours:
        raise RuntimeError(f"open_clip builds {theirs:,} parameters from {CONFIG_FILE}, archsearch {ours:,}")
    return {"archsearch": ours, "open_clip": theirs}


def write_export(spec: ArchSpec, out: str | Path, provenance: dict, fmt: str = "all", force: bool = False,
                 name: Optional[str] = None, progress: Callable[[str], None] | None = None) -> ExportResult:
    """Write the export of `spec` into `out` (see the module docstring); `fmt` picks the files
    beyond arch.yaml, README.md and export.json: one of `EXPORT_FORMATS`."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"--format: unknown {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    out = Path(out)
    check_target(out, force)
    unsupported = text_unsupported(spec)
    if fmt == "openclip" and unsupported:
        raise UserError(f"--format openclip: {unsupported}; allowed here: all, lightning, coreml")
    say = progress or (lambda message: None)
    name = name or out.resolve().name
    result = ExportResult(out=out, files=["arch.yaml"], timm_name=timm_name(spec))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_spec(spec, tmp / "arch.yaml")
        if fmt in ("all", "openclip"):
            if unsupported:
                result.notes.append(f"open_clip_config.json not written: {unsupported}")
            else:
                (tmp / CONFIG_FILE).write_text(json.dumps(open_clip_config(spec), indent=2) + "\n")
                say("checking that open_clip builds the config ...")
                result.params = check_open_clip(spec, tmp)
                result.files.append(CONFIG_FILE)
        if not result.params:
            import torch

            from archsearch.models import build_clip

            with torch.device("meta"):
                result.params = {"archsearch": count_params(build_clip(spec))}
        if fmt in ("all", "lightning"):
            (tmp / TRAIN_FILE).write_text(train_yaml(spec, name))
            result.files.append(TRAIN_FILE)
        if fmt in ("all", "coreml"):
            from archsearch.latency.coreml import export_clip

            for tower in ("image", "text"):
                say(f"converting the {tower} tower to Core ML ...")
                export_clip(spec, tmp, towers=(tower,))
                result.files.append(f"{tower}.mlpackage")
        (tmp / MANIFEST).write_text(json.dumps(_manifest(spec, provenance, fmt, result), indent=2) + "\n")
        needs_record = CONFIG_FILE in result.files and provenance.get("preset") is None
        registry_note = ("This spec is recorded there." if needs_record else
                         "Presets are always registered." if provenance.get("preset") else "")
        facts = ExportFacts(spec=spec, name=name, out=str(out), files=tuple(result.files), timm_name=result.timm_name,
                            provenance=provenance, open_clip_missing=unsupported, params=result.params,
                            registry_note=registry_note)
        (tmp / "README.md").write_text(export_readme(facts))
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if needs_record:
        try:
            result.registry_file = record_spec(spec)
        except UserError as exc:
            result.notes.append(f"timm registry: {exc}; set ARCHSEARCH_TIMM_SPECS={out} where you load it")
    return result


def _manifest(spec: ArchSpec, provenance: dict, fmt: str, result: ExportResult) -> dict:
    from archsearch.environment import library_versions

    return {"format": "archsearch-export", "version": 1, "provenance": provenance, "export_format": fmt,
            "timm_model_name": result.timm_name, "files": sorted({*result.files, "README.md", MANIFEST}),
            "params": result.params, "notes": result.notes,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": library_versions()}


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp` with renames (atomic for an absent target)."""
    if not out.exists():
        tmp.rename(out)
        return
    old = out.parent / f".{out.name}.replaced-{os.getpid()}"
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
