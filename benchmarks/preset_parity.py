"""Every preset next to its references: timm trunk params and fvcore MACs, open_clip whole-model
params, and the paper-style counts (reparameterized, projection included).

    python -m benchmarks.preset_parity            # writes benchmarks/results/preset_parity.{json,md}
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
from pathlib import Path

import open_clip
import timm
import torch

from archsearch.latency.cost import count_macs, count_params, example_images, example_tokens
from archsearch.models import build_clip, reparameterize
from archsearch.spec import get_preset, open_clip_reference, preset_names, timm_reference

from benchmarks.common import RESULTS, command



def _trunk_macs(tower, images) -> int:
    class Trunk(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tower = tower

        def forward(self, x):
            return self.tower.forward_features(x)
    return count_macs(Trunk(), images)


def measure(name: str) -> dict:
    spec = get_preset(name)
    model = build_clip(spec).eval()
    folded = reparameterize(model)
    images, tokens = example_images(spec), example_tokens(spec)
    reference = timm.create_model(timm_reference(name), num_classes=0).eval()
    row = {
        "preset": name,
        "resolution": spec.resolution,
        "timm_reference": timm_reference(name),
        "trunk_params": count_params(model.visual) - count_params(model.visual.proj),
        "timm_trunk_params": count_params(reference),
        "trunk_gmacs": _trunk_macs(folded.visual, images) / 1e9,
        "timm_trunk_gmacs": count_macs(reparameterize(reference), images) / 1e9,
        "image_params_folded_with_proj": count_params(folded.visual),
        "text_params": count_params(model.text),
        "text_params_folded": count_params(folded.text),
        "image_gmacs": count_macs(folded.visual, images) / 1e9,
        "text_gmacs": count_macs(folded.text, tokens) / 1e9,
        "total_params": count_params(model),
        "open_clip_config": open_clip_reference(name),
        "open_clip_total_params": None,
    }
    del reference
    if open_clip_reference(name):
        row["open_clip_total_params"] = count_params(open_clip.create_model(open_clip_reference(name)))
    return row


def to_markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Preset parity with timm and open_clip",
        "",
        f"Machine: {meta['machine']}; date: {meta['date']}; command: `{meta['command']}`;",
        f"torch {meta['torch']}, timm {meta['timm']}, open_clip {meta['open_clip']}.",
        "MACs: fvcore, batch 1, reparameterized, attention products included. Params in millions.",
        "",
        "| preset | timm reference | trunk params (ours / timm) | trunk GMACs (ours / timm) | image params, folded + proj |"
        " text params (folded) | image / text GMACs | whole model (ours / open_clip) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        oc = (f"{r['total_params'] / 1e6:.3f} / {r['open_clip_total_params'] / 1e6:.3f} ({r['open_clip_config']})"
              if r["open_clip_total_params"] else f"{r['total_params'] / 1e6:.3f} / no open_clip config")
        lines.append(
            f"| {r['preset']} | {r['timm_reference']} @{r['resolution']} "
            f"| {r['trunk_params'] / 1e6:.3f} / {r['timm_trunk_params'] / 1e6:.3f} "
            f"| {r['trunk_gmacs']:.3f} / {r['timm_trunk_gmacs']:.3f} "
            f"| {r['image_params_folded_with_proj'] / 1e6:.2f} "
            f"| {r['text_params'] / 1e6:.2f} ({r['text_params_folded'] / 1e6:.3f}) "
            f"| {r['image_gmacs']:.2f} / {r['text_gmacs']:.2f} | {oc} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    torch.set_num_threads(2)
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    meta = {
        "machine": f"{cpu}, {torch.get_num_threads()} threads, {platform.system()} {platform.machine()}",
        "date": datetime.date.today().isoformat(), "command": command("preset_parity"),
        "torch": torch.__version__, "timm": timm.__version__, "open_clip": open_clip.__version__,
        "python": sys.version.split()[0],
    }
    rows = []
    for name in preset_names():
        rows.append(measure(name))
        print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preset_parity.json").write_text(json.dumps({"meta": meta, "presets": rows}, indent=2) + "\n")
    (RESULTS / "preset_parity.md").write_text(to_markdown(rows, meta))


if __name__ == "__main__":
    main()
