"""ArchSpec and its presets: pure data, no torch."""

from archsearch.spec.arch import (
    ArchSpec, ImageHeadSpec, ImageTowerSpec, StageSpec, StemSpec, TextTowerSpec,
)
from archsearch.spec.io import dump_spec, load_spec, resolve_arch, save_spec, spec_from_mapping
from archsearch.spec.presets import (
    get_preset, open_clip_reference, preset_names, preset_of, resolve_preset_name, timm_reference,
)

__all__ = [
    "ArchSpec", "ImageHeadSpec", "ImageTowerSpec", "StageSpec", "StemSpec", "TextTowerSpec",
    "dump_spec", "load_spec", "resolve_arch", "save_spec", "spec_from_mapping",
    "get_preset", "open_clip_reference", "preset_names", "preset_of", "resolve_preset_name", "timm_reference",
]
