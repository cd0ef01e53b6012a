"""archsearch image towers in timm's model registry, under content-addressed names.

A tower is registered as ``archsearch_<12 hex>``: a hash of its ArchSpec (fields left at their
defaults excluded, so a spec keeps its name when ArchSpec later gains a defaulted field). The
name says nothing about the architecture, so a fresh process needs the spec from somewhere. It
registers, when timm is imported (see `timm_hook`):

* every preset (always available, no files needed);
* every ``archsearch_*.yaml`` and ``arch.yaml`` in the directories of ``ARCHSEARCH_TIMM_SPECS``
  (``os.pathsep``-separated; an export directory qualifies as it holds ``arch.yaml``), or, when
  that variable is unset, in the per-user registry ``$XDG_DATA_HOME/archsearch/timm`` (default
  ``~/.local/share/archsearch/timm``), where `archsearch export` records what it exports.

Each file is registered under the name its content hashes to, so renaming a file cannot
mislabel a tower; an unreadable file is a warning, not an error (this runs inside `import timm`).
`register_spec` registers one more spec in the running process.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from archsearch.errors import UserError
from archsearch.files import replacing
from archsearch.spec.arch import ArchSpec, layout_summary

PREFIX = "archsearch_"
SPECS_ENV = "ARCHSEARCH_TIMM_SPECS"
# Entrypoints are attributed to this module (timm keys its per-module tables by it).
default_cfgs: dict[str, dict] = {}
_registered: dict[str, ArchSpec] = {}
_known_done = False


def timm_name(spec: ArchSpec) -> str:
    """The timm model name of `spec`'s image tower, e.g. ``archsearch_3f2a9c0b1d4e``."""
    return PREFIX + spec.digest()


def user_registry() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "archsearch" / "timm"


def search_path() -> list[Path]:
    """Where registered specs are read from (and, first entry, where `record_spec` writes)."""
    value = os.environ.get(SPECS_ENV)
    if value is None:
        return [user_registry()]
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def _spec_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and (p.name == "arch.yaml" or (p.name.startswith(PREFIX) and p.suffix == ".yaml")))


def _pretrained_cfg(name: str, spec: ArchSpec) -> dict:
    from timm.data import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    learned_pos = any(stage.pos == "learned" for stage in spec.image.stages)
    return {
        "architecture": name, "num_classes": spec.embed_dim, "input_size": (3, spec.resolution, spec.resolution),
        "fixed_input_size": learned_pos, "interpolation": "bicubic", "crop_pct": 1.0,
        "mean": OPENAI_CLIP_MEAN, "std": OPENAI_CLIP_STD, "classifier": "proj",
        "description": f"archsearch image tower {layout_summary(spec)} (classifier = projection to the joint embedding)",
    }


def _entrypoint(name: str, spec: ArchSpec):
    def create(pretrained: bool = False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, **kwargs):
        if pretrained:
            raise RuntimeError(f"{name}: archsearch towers have no pretrained weights to download; "
                               "create it with pretrained=False and load a checkpoint")
        from archsearch.export.timm_model import TimmImageTower

        model = TimmImageTower(spec, **kwargs)
        model.pretrained_cfg = model.default_cfg = dict(default_cfgs[name])
        return model

    create.__name__ = create.__qualname__ = name
    create.__module__ = __name__
    create.__doc__ = f"archsearch image tower {layout_summary(spec)}"
    return create


def register_spec(spec: ArchSpec) -> str:
    """Register `spec`'s image tower with timm in this process (idempotent); returns its name."""
    from timm.models import register_model

    name = timm_name(spec)
    if name not in _registered:
        default_cfgs[name] = _pretrained_cfg(name, spec)
        register_model(_entrypoint(name, spec))
        _registered[name] = spec
    return name


def register_known() -> list[str]:
    """Register the presets and every spec file on `search_path()` (once per process)."""
    global _known_done
    from archsearch.spec.io import load_spec
    from archsearch.spec.presets import get_preset, preset_names

    names = [register_spec(get_preset(preset)) for preset in preset_names()] if not _known_done else []
    _known_done = True
    for directory in search_path():
        for path in _spec_files(directory):
            try:
                names.append(register_spec(load_spec(path)))
            except UserError as exc:
                warnings.warn(f"archsearch: {path} not registered with timm: {exc}", stacklevel=2)
    return names


def record_spec(spec: ArchSpec) -> Path:
    """Save `spec` into the first directory of `search_path()`, so that later processes register
    it; returns the file written. Raises UserError if that directory cannot be written."""
    from archsearch.spec.io import save_spec

    directories = search_path()
    if not directories:
        raise UserError(f"{SPECS_ENV} names no directory; allowed: directories separated by {os.pathsep!r}")
    path = directories[0] / f"{timm_name(spec)}.yaml"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file():
            with replacing(path) as tmp:
                save_spec(spec, tmp)
    except OSError as exc:
        raise UserError(f"{path.parent}: cannot record the spec for timm ({exc.strerror}); "
                        f"set {SPECS_ENV} to a writable directory") from None
    if "timm" in sys.modules:
        register_spec(spec)
    return path
