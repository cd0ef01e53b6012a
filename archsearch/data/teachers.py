"""Teachers for reinforcement: a CLIP archsearch trained itself, or an open_clip model on disk.

An archsearch teacher is a directory `runs/teachers/<name>/` holding `teacher.pt` (the spec as a
dict, the state dict *before* reparameterization, and JSON-able meta; loadable with
`weights_only=True`) and `arch.yaml` for people to read. `save_teacher` writes it and
`ArchsearchTeacher` reads it, so the format lives in one place. Ids carry a short sha256 of the
checkpoint, so a store knows exactly which weights produced its embeddings.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from archsearch import workspace
from archsearch.data.open_clip_local import encode_options, load_open_clip, parse_model_ref, preprocess_cfg, short_sha
from archsearch.data.pixels import normalize
from archsearch.data.teacher import Teacher
from archsearch.errors import UserError
from archsearch.models.clip import build_clip
from archsearch.models.reparam import reparameterize
from archsearch.models.tokenizer import tokenize
from archsearch.spec.arch import ArchSpec
from archsearch.spec.io import save_spec, spec_from_mapping

CHECKPOINT_NAME = "teacher.pt"
SHIPPED_SUFFIX = ".safetensors"  # a teacher shipped in fp16: the state dict, with arch and meta as metadata
ACCEPTED_REFS = ("a teacher directory from `archsearch teach` (runs/teachers/NAME/) or its name",
                 f"a {CHECKPOINT_NAME} (or other .pt) written by `archsearch teach`",
                 f"a {SHIPPED_SUFFIX} teacher written by `archsearch teach --ship`",
                 "open_clip:<model-name>:<path/to/checkpoint>[?tag=<pretrained-tag>]")


def _check_images(images: torch.Tensor, size: int, who: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (size, size):
        raise ValueError(f"{who}: expected images [B, 3, {size}, {size}] in [0, 1], got {list(images.shape)}")


def save_teacher(model: nn.Module, spec: ArchSpec, directory: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write `directory/teacher.pt` and `directory/arch.yaml`; returns the checkpoint path.

    `model` is the trained CLIP as built from `spec` (not reparameterized: the loader folds it, so
    the checkpoint stays resumable); `meta` must be JSON-able, which keeps the file loadable with
    `weights_only=True`.
    """
    directory = Path(directory)
    meta = dict(meta or {})
    try:
        meta = json.loads(json.dumps(meta))
    except TypeError as exc:
        raise ValueError(f"save_teacher: meta must be JSON-serialisable ({exc})") from None
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with torch.device("meta"):
        expected = set(build_clip(spec).state_dict())
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"save_teacher: the model's state_dict does not match its spec (missing {missing[:3]}, "
                         f"unexpected {extra[:3]}); pass the model before reparameterization")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_NAME
    partial = path.with_suffix(".pt.partial")
    torch.save({"arch": spec.to_dict(), "state_dict": state, "meta": meta}, partial)
    os.replace(partial, path)
    save_spec(spec, directory / "arch.yaml")
    return path


def save_teacher_fp16(checkpoint: str | Path, out: str | Path) -> Path:
    """Write a `teacher.pt` as fp16 safetensors (arch and meta as JSON metadata): half the bytes,
    no pickle, and small enough to ship in the package. Non-float tensors keep their dtype."""
    from safetensors.torch import save_file

    data = _read_checkpoint(Path(checkpoint))
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in data["state_dict"].items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    save_file(state, partial, metadata={"arch": json.dumps(data["arch"], sort_keys=True),
                                        "meta": json.dumps(data.get("meta") or {}, sort_keys=True)})
    os.replace(partial, out)
    return out


def teacher_meta(file: str | Path) -> dict[str, Any]:
    """The meta (metrics, training, seed) of a teacher file without building its model; a shipped
    `.safetensors` is read from its header alone."""
    file = Path(file) / CHECKPOINT_NAME if Path(file).is_dir() else Path(file)
    if file.suffix != SHIPPED_SUFFIX:
        return _read_checkpoint(file).get("meta") or {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            return json.loads((handle.metadata() or {}).get("meta", "{}"))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{file}: not a readable safetensors file ({exc})") from None


def _read_safetensors(file: Path) -> dict[str, Any]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{file}: not a readable safetensors file ({exc})") from None
    if "arch" not in metadata:
        raise UserError(f"{file}: safetensors without the 'arch' metadata of an archsearch teacher "
                        "(write it with `archsearch teach --ship`)")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return {"arch": json.loads(metadata["arch"]), "state_dict": state, "meta": json.loads(metadata.get("meta", "{}"))}


def _read_checkpoint(file: Path) -> dict[str, Any]:
    if file.suffix == SHIPPED_SUFFIX:
        return _read_safetensors(file)
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{file}: not a teacher checkpoint loadable with weights_only=True ({reason})") from None
    return checkpoint


class ArchsearchTeacher:
    """A CLIP trained by archsearch (`archsearch teach`), folded for inference: a `teacher.pt`
    (or its directory), or an fp16 `.safetensors` copy (`save_teacher_fp16`, the shipped teachers)."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu"):
        path = Path(path)
        file = path / CHECKPOINT_NAME if path.is_dir() else path
        if not file.is_file():
            raise UserError(f"{file}: no such teacher checkpoint")
        checkpoint = _read_checkpoint(file)
        if not isinstance(checkpoint, dict) or not {"arch", "state_dict"} <= set(checkpoint):
            found = ", ".join(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
            raise UserError(f"{file}: not an archsearch teacher; expected keys arch, state_dict, meta (found: {found})")
        self.path = file
        self.spec = spec_from_mapping(checkpoint["arch"], f"{file}: arch")
        self.meta: dict[str, Any] = checkpoint.get("meta") or {}
        model = build_clip(self.spec)
        try:
            model.load_state_dict(checkpoint["state_dict"], strict=True)
        except RuntimeError as exc:
            detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise UserError(f"{file}: state_dict does not fit its arch: {detail[:300]}") from None
        self.device = torch.device(device)
        self.model = reparameterize(model).to(self.device).requires_grad_(False)
        name = file.parent.name if file.name == CHECKPOINT_NAME else file.stem
        self.id = f"archsearch:{name}:{short_sha(file)}"
        self.embed_dim = self.spec.embed_dim
        self.image_size = self.spec.resolution

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.image_size, self.id)
        pixels = normalize(images.to(self.device, torch.float32))
        return self.model.encode_image(pixels, normalize=True).float()

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = tokenize(list(texts), self.spec.text.context_length).to(self.device)
        return self.model.encode_text(tokens, normalize=True).float()


class OpenClipTeacher:
    """An open_clip CLIP from a local checkpoint, with its own preprocessing and tokenizer.

    `tag` names the open_clip pretrained tag the weights came from (e.g. ViT-L-14 `openai` or
    `datacomp_xl_s13b_b90k`, MobileCLIP's two teachers), for its mean/std and QuickGELU; without it
    open_clip's defaults (OpenAI mean/std, the config's activation) apply.
    """

    def __init__(self, model_name: str, checkpoint_path: str | Path, tag: str | None = None,
                 device: str | torch.device = "cpu"):
        import open_clip

        self.device = torch.device(device)
        self.model = load_open_clip(model_name, checkpoint_path, tag=tag, device=self.device)
        cfg = preprocess_cfg(self.model)
        self.image_size = cfg["size"]
        self._mean = torch.tensor(cfg["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.embed_dim = int(open_clip.get_model_config(model_name)["embed_dim"])
        self.model_name, self.checkpoint_path, self.tag = model_name, Path(checkpoint_path), tag
        self.id = f"open_clip:{model_name}:{short_sha(checkpoint_path)}" + encode_options({"tag": tag}, {})

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.image_size, self.id)
        pixels = (images.to(self.device, torch.float32) - self._mean) / self._std
        return self.model.encode_image(pixels, normalize=True).float()

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        return self.model.encode_text(tokens, normalize=True).float()


def load_teacher(ref: str, device: str | torch.device = "cpu") -> Teacher:
    """The teacher a reference names; see `ACCEPTED_REFS`."""
    if ref.startswith("open_clip:"):
        name, path, options = parse_model_ref(ref, "open_clip")
        unknown = set(options) - {"tag"}
        if unknown:
            raise UserError(f"teacher {ref!r}: unknown option {sorted(unknown)[0]!r}; allowed: tag")
        return OpenClipTeacher(name, path, tag=options.get("tag"), device=device)
    path = Path(ref)
    if not path.exists() and "/" not in ref and (workspace.under("teachers") / ref).is_dir():
        path = workspace.under("teachers") / ref
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise UserError(f"{ref}: folder has no {CHECKPOINT_NAME}; accepted: {'; '.join(ACCEPTED_REFS)}")
        return ArchsearchTeacher(path, device)
    if path.suffix in (".pt", SHIPPED_SUFFIX) and path.is_file():
        return ArchsearchTeacher(path, device)
    what = "no such file or folder" if not path.exists() else "not a teacher"
    raise UserError(f"teacher {ref!r}: {what}; accepted: {'; '.join(ACCEPTED_REFS)}")


def load_teachers(refs: Sequence[str], device: str | torch.device = "cpu") -> list[Teacher]:
    """An ensemble (MobileCLIP used two ViT-L-14s; any K >= 1), each teacher once."""
    if not refs:
        raise UserError("teachers: none given; name at least one")
    teachers = [load_teacher(ref, device) for ref in refs]
    ids = [t.id for t in teachers]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise UserError(f"teachers: {duplicate} is named twice")
    return teachers
