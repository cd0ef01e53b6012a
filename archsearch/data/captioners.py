"""Synthetic-caption writers: procedural for the embedded scenes, stored ones, and open_clip CoCa.

MobileCLIP's DataCompDR stores 5 CoCa captions per image. Here the embedded scenes get exact
procedural captions from their scene description, data that already carries synthetic captions
(DataCompDR's syn.json) reuses them, and real images get a CoCa from a local checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.data.captioner import Captioner
from archsearch.data.open_clip_local import encode_options, load_open_clip, parse_model_ref, preprocess_cfg, short_sha
from archsearch.data.source import CaptionedImage
from archsearch.errors import UserError

ACCEPTED_REFS = ("procedural (the embedded scenes)", "stored (meta['synthetic'], e.g. DataCompDR's syn.json)",
                 "coca:<model-name>:<path/to/checkpoint>[?top_p=P&temperature=T&seq_len=L&tag=TAG]")


class ProceduralCaptioner:
    """Exact captions written from an embedded scene's description (the CoCa stand-in)."""

    id = "procedural"

    def caption(self, sample: CaptionedImage, n: int, seed: int) -> list[str]:
        if "objects" not in sample.meta:
            raise UserError(f"sample {sample.key}: no scene description; the procedural captioner captions the "
                            f"embedded data only; for real data use: {'; '.join(ACCEPTED_REFS[1:])}")
        from archsearch.data.scenes import synthetic_captions

        return synthetic_captions(sample.meta, n, seed)


class StoredCaptioner:
    """The synthetic captions a sample already carries in `meta["synthetic"]`: the first `n`, as
    stored (they are fixed, so `seed` changes nothing)."""

    id = "stored"

    def caption(self, sample: CaptionedImage, n: int, seed: int) -> list[str]:
        stored = sample.meta.get("synthetic")
        if not stored:
            others = "; ".join(a for a in ACCEPTED_REFS if "stored" not in a)
            raise UserError(f"sample {sample.key}: no stored synthetic captions (meta['synthetic'], e.g. DataCompDR's "
                            f"syn.json); use another captioner: {others}")
        if n > len(stored):
            raise UserError(f"sample {sample.key}: {n} synthetic captions asked for, {len(stored)} stored; "
                            f"allowed: at most {len(stored)}")
        return list(stored[:n])


def _row_seed(seed: int, row: int) -> int:
    """A generator seed per (seed, caption index), so caption i does not depend on the others."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, row]).generate_state(1, np.uint64)[0] >> 1)


def _nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches `top_p` (at least one)."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability mass ranked above each token
    drop = before >= top_p
    drop[..., 0] = False
    return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


class CocaCaptioner:
    """An open_clip CoCa from a local checkpoint, writing `n` captions by seeded nucleus sampling.

    Caption i is sampled with its own generator seeded from (seed, i): the n captions of one image
    differ, and the same seed gives the same captions. The loop follows open_clip's
    `CoCa.generate(generation_type="top_p")` (start token, no end token before `min_seq_len`,
    end token forced at `seq_len`), written out here because open_clip's own needs the
    `transformers` package for its logit processors. `top_p=0` is greedy decoding.
    """

    DEFAULTS = {"top_p": 0.9, "temperature": 1.0, "seq_len": 30, "min_seq_len": 5, "tag": None}

    def __init__(self, model_name: str, checkpoint_path: str | Path, *, top_p: float = 0.9,
                 temperature: float = 1.0, seq_len: int = 30, min_seq_len: int = 5, tag: str | None = None,
                 device: str | torch.device = "cpu"):
        import open_clip
        from open_clip.transform import PreprocessCfg, image_transform_v2

        if not 0 <= top_p <= 1 or temperature <= 0 or not 1 <= min_seq_len < seq_len:
            raise UserError(f"coca {model_name}: top_p={top_p}, temperature={temperature}, seq_len={seq_len}, "
                            f"min_seq_len={min_seq_len}; allowed: 0 <= top_p <= 1, temperature > 0, "
                            "1 <= min_seq_len < seq_len")
        self.device = torch.device(device)
        self.model = load_open_clip(model_name, checkpoint_path, tag=tag, device=self.device)
        if not isinstance(self.model, open_clip.CoCa):
            coca = [m for m in open_clip.list_models() if m.startswith("coca_")]
            raise UserError(f"open_clip model {model_name!r} is not a CoCa; allowed: {', '.join(coca)}")
        cfg = preprocess_cfg(self.model)
        self.preprocess = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
        tokenizer = open_clip.get_tokenizer(model_name)
        self.sot, self.eot = tokenizer.sot_token_id, tokenizer.eot_token_id
        self.top_p, self.temperature, self.seq_len, self.min_seq_len = top_p, temperature, seq_len, min_seq_len
        options = {"top_p": top_p, "temperature": temperature, "seq_len": seq_len, "min_seq_len": min_seq_len,
                   "tag": tag}
        self.id = f"coca:{model_name}:{short_sha(checkpoint_path)}" + encode_options(options, self.DEFAULTS)

    def caption(self, sample: CaptionedImage, n: int, seed: int) -> list[str]:
        image = self.preprocess(sample.image.convert("RGB")).unsqueeze(0).to(self.device)
        return [self._decode(row) for row in self.generate(image, n, seed)]

    @torch.no_grad()
    def generate(self, image: torch.Tensor, n: int, seed: int) -> list[list[int]]:
        """Token ids of `n` captions of one preprocessed image [1, 3, H, W], start token first."""
        model = self.model
        latent, embs = model._encode_image(image)
        latent, embs = latent.expand(n, -1), embs.expand(n, -1, -1)
        generators = [torch.Generator(device=self.device).manual_seed(_row_seed(seed, i)) for i in range(n)]
        out = torch.full((n, 1), self.sot, dtype=torch.long, device=self.device)
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        window = getattr(model.text, "context_length", model.context_length)  # the text tower's positions
        while not done.all():
            logits = model(None, out[:, -window:], image_latent=latent, image_embs=embs,
                           output_labels=False)["logits"][:, -1]
            logits = logits.float() / self.temperature
            if out.shape[1] < self.min_seq_len:
                logits[:, self.eot] = float("-inf")
            probs = _nucleus(logits, self.top_p).softmax(dim=-1)
            step = torch.full((n,), model.pad_id, dtype=torch.long, device=self.device)
            for i in (~done).nonzero().flatten().tolist():
                last = out.shape[1] + 1 == self.seq_len
                step[i] = self.eot if last else torch.multinomial(probs[i], 1, generator=generators[i])[0]
            out = torch.cat([out, step[:, None]], dim=1)
            done |= step == self.eot
        return out.tolist()

    def _decode(self, tokens: list[int]) -> str:
        import open_clip

        body = tokens[1:]
        body = body[:body.index(self.eot)] if self.eot in body else body
        text = open_clip.decode(torch.tensor(body, dtype=torch.long))
        text = text.replace("<start_of_text>", "").replace("<end_of_text>", "")
        return re.sub(r"\s+", " ", text).strip()


def _coca(ref: str, device: str | torch.device) -> CocaCaptioner:
    name, path, options = parse_model_ref(ref, "coca")
    kinds: dict[str, Any] = {"top_p": float, "temperature": float, "seq_len": int, "min_seq_len": int, "tag": str}
    kwargs = {}
    for key, value in options.items():
        if key not in kinds:
            raise UserError(f"captioner {ref!r}: unknown option {key!r}; allowed: {', '.join(kinds)}")
        try:
            kwargs[key] = kinds[key](value)
        except ValueError:
            raise UserError(f"captioner {ref!r}: option {key}={value!r} is not a {kinds[key].__name__}") from None
    return CocaCaptioner(name, path, device=device, **kwargs)


def load_captioner(ref: str = "procedural", device: str | torch.device = "cpu") -> Captioner:
    """The captioner a reference names; see `ACCEPTED_REFS`."""
    if ref == "procedural":
        return ProceduralCaptioner()
    if ref == "stored":
        return StoredCaptioner()
    if ref.startswith("coca:"):
        return _coca(ref, device)
    raise UserError(f"captioner {ref!r}: unknown; accepted: {'; '.join(ACCEPTED_REFS)}")
