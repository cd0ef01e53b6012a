"""open_clip models from local checkpoint files only: what teachers and captioners share.

Real teachers (ViT-L-14s) and captioners (CoCa) are open_clip models whose weights a user has on
disk; nothing here may reach a model hub. open_clip looks a `pretrained` value up as a tag before
treating it as a path, so paths are passed absolute (tags never contain '/'), and checkpoints are
loaded with `weights_only=True`. A tag may still be named, for its preprocessing (mean/std,
interpolation) and QuickGELU setting, which are a dict in open_clip and need no download.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

from archsearch.errors import UserError

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (cached by path, size and mtime: teacher checkpoints run to gigabytes)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def short_sha(path: str | Path) -> str:
    """The first 12 hex digits of the file's sha256: enough to tell checkpoints apart in an id."""
    return file_sha256(path)[:12]


def parse_model_ref(ref: str, scheme: str) -> tuple[str, str, dict[str, str]]:
    """`SCHEME:<model-name>:<path>[?key=value&...]` -> (model name, path, options)."""
    from urllib.parse import parse_qsl

    body = ref[len(scheme) + 1:]
    name, sep, rest = body.partition(":")
    path, options = rest, {}
    if "?" in rest:
        head, _, query = rest.rpartition("?")
        if "=" in query:
            path, options = head, dict(parse_qsl(query, keep_blank_values=True))
    if not sep or not name or not path:
        raise UserError(f"{ref!r}: expected {scheme}:<model-name>:<path/to/checkpoint>")
    return name, path, options


def _needs_hugging_face(config: dict[str, Any]) -> str | None:
    text = config.get("text_cfg", {})
    return text.get("hf_model_name") or text.get("hf_tokenizer_name") or None


def load_open_clip(model_name: str, checkpoint_path: str | Path, tag: str | None = None,
                   device: str | Any = "cpu"):
    """An open_clip model built from its config and loaded strictly from a local checkpoint, in eval
    mode with gradients off. Bad names, paths and checkpoints raise UserError."""
    import open_clip

    if model_name not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if model_name.lower() in m.lower()][:8]
        hint = f"; close: {', '.join(close)}" if close else "; see open_clip.list_models()"
        raise UserError(f"open_clip model {model_name!r} unknown{hint}")
    checkpoint = Path(checkpoint_path).expanduser()
    if not checkpoint.is_file():
        raise UserError(f"{checkpoint_path}: no such checkpoint file (for open_clip model {model_name})")
    hf_name = _needs_hugging_face(open_clip.get_model_config(model_name))
    if hf_name and os.environ.get("HF_HUB_OFFLINE", "").upper() not in ("1", "ON", "YES", "TRUE"):
        raise UserError(f"open_clip model {model_name!r} needs Hugging Face files ({hf_name}); nothing is "
                        "downloaded here: put them in the Hugging Face cache and set HF_HUB_OFFLINE=1, or use a "
                        "model with open_clip's built-in CLIP tokenizer (e.g. ViT-L-14, ViT-B-32, coca_ViT-L-14)")
    kwargs: dict[str, Any] = {}
    if tag is not None:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if tag not in tags:
            raise UserError(f"open_clip model {model_name!r}: unknown tag {tag!r}; "
                            f"allowed: {', '.join(tags) or 'none'}")
        pretrained_cfg = open_clip.get_pretrained_cfg(model_name, tag)
        kwargs["force_preprocess_cfg"] = {k: pretrained_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode")
                                          if k in pretrained_cfg}
        kwargs["force_quick_gelu"] = bool(pretrained_cfg.get("quick_gelu", False))
    try:
        model = open_clip.create_model(model_name, pretrained=str(checkpoint.resolve()), device=device,
                                       weights_only=True, pretrained_text=False, pretrained_image=False, **kwargs)
    except pickle.UnpicklingError as exc:
        raise UserError(f"{checkpoint_path}: not loadable with weights_only=True (it pickles Python objects); "
                        f"save a plain state_dict ({str(exc).splitlines()[0]})") from None
    except RuntimeError as exc:
        lines = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        short = lines if len(lines) <= 300 else lines[:297] + "..."
        raise UserError(f"{checkpoint_path}: does not fit open_clip model {model_name!r}: {short}") from None
    return model.eval().requires_grad_(False)


def preprocess_cfg(model) -> dict[str, Any]:
    """The model's image size, mean and std as open_clip attached them."""
    import open_clip

    cfg = dict(open_clip.get_model_preprocess_cfg(model))
    size = cfg["size"]
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise UserError(f"open_clip model with non-square input {tuple(size)}; allowed: square inputs")
        size = size[0]
    cfg["size"] = int(size)
    return cfg


def encode_options(options: dict[str, Any], defaults: dict[str, Any]) -> str:
    """`?k=v&...` of the options that differ from their defaults (appended to ids), or ''."""
    changed = [f"{k}={v}" for k, v in options.items() if v is not None and v != defaults.get(k)]
    return "?" + "&".join(changed) if changed else ""
