"""Faster proxy steps buy more steps: the throughput levers of a cpu-tiny training step, side by side.

For the cpu-tiny student of each preset, one training step (forward, MobileCLIP's loss, backward,
AdamW) on a fixed reinforced batch, as the proxy runs it (1 thread, channels-last RepMixer stages)
against the same step with one lever changed:

- `fused-adamw`: `torch.optim.AdamW(fused=True)` instead of the default for-each kernels;
- `bf16-autocast`: the forward and loss under `torch.autocast("cpu", torch.bfloat16)` (the CPU has
  AVX-512 BF16); weights and optimiser state stay fp32;
- `compile`: `torch.compile` (inductor) of the two encoders; its compile time is reported apart, since
  every trial builds a new architecture and pays it again;
- `batch256-48px`: twice the batch at 48 px, per image (EcoNAS's "smaller images", bought as batch).

Timing: each (preset, lever) pair runs in a fresh process (a lever that crashes the process, as
inductor can, is recorded as such and the others go on), with the baseline and the lever as two
modules of the same initial weights taking turns within each round (`--rounds`, `--steps` steps
each), so a slow phase of the shared host touches both; the speed-up is the median over rounds of
baseline seconds / lever seconds per image.

    python -m benchmarks.proxy_step_levers [--presets mobileclip_s0 mobileclip_s2 vitamin_s mobileclip_b]

Results: results/proxy_step_levers.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.data import DataLoader

from archsearch.data.dataset import ReinforcedDataset
from archsearch.data.store import ReinforcedStore
from archsearch.proxy.assets import ensure_store, training_source
from archsearch.training.module import ClipModule
from archsearch.proxy.recipe import load_recipe
from archsearch.proxy.scale import scale_down
from archsearch.spec import get_preset, preset_names
from archsearch.spec.arch import layout_summary

from benchmarks.common import RESULTS, cell, run_meta

VARIANTS = ("baseline", "fused-adamw", "bf16-autocast", "compile", "batch256-48px")


class Step:
    """One variant's training step on its own copy of the proxy, with its own optimiser; every copy of
    one spec starts from the same weights (seed 0)."""

    def __init__(self, variant: str, spec, recipe, dims, batch: dict):
        self.variant, self.batch = variant, batch
        self.images = batch["image"].shape[0]
        torch.manual_seed(0)
        self.module = ClipModule(spec, recipe.train, recipe.loss, dims)
        self.module.log = self.module.log_dict = lambda *a, **k: None  # no trainer attached
        params = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=recipe.train.lr, fused=variant == "fused-adamw")
        if variant == "compile":  # the step calls the towers' encoders, not the CLIP's forward
            model = self.module.model
            model.encode_image, model.encode_text = torch.compile(model.encode_image), torch.compile(model.encode_text)

    def __call__(self, steps: int) -> float:
        """Seconds per image over `steps` steps."""
        autocast = (torch.autocast("cpu", torch.bfloat16) if self.variant == "bf16-autocast"
                    else contextlib.nullcontext())
        start = time.perf_counter()
        for i in range(steps):
            with autocast:
                loss = self.module.training_step(self.batch, i)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - start) / (steps * self.images)


def batch_of(store, recipe, spec, size: int) -> dict:
    dataset = ReinforcedDataset(store, training_source(recipe), spec.resolution, spec.text.context_length)
    return next(iter(DataLoader(dataset, batch_size=size, shuffle=True, generator=torch.Generator().manual_seed(0))))


def measure(name: str, recipe, store, dims, rounds: int, steps: int, variants: tuple[str, ...] = VARIANTS) -> dict:
    spec = scale_down(get_preset(name), recipe.scale)
    small = scale_down(get_preset(name), recipe.scale.model_copy(update={"resolution": 48}))
    batch = batch_of(store, recipe, spec, recipe.train.batch_size)
    steps_of = {}
    for variant in variants:
        if variant == "batch256-48px":
            steps_of[variant] = Step(variant, small, recipe, dims, batch_of(store, recipe, small, 256))
        else:
            steps_of[variant] = Step(variant, spec, recipe, dims, batch)
    first = {}
    for variant, step in steps_of.items():  # warm-up; for compile this is where the graphs are built
        began = time.perf_counter()
        step(2)
        first[variant] = time.perf_counter() - began
    per_round = {v: [] for v in variants}
    for _ in range(rounds):
        for variant, step in steps_of.items():
            per_round[variant].append(step(steps))
    base = per_round["baseline"]
    row = {"preset": name, "proxy": layout_summary(spec),
           "baseline_images_per_second": 1 / statistics.median(base), "warmup_seconds": first, "variants": {}}
    for variant in variants:
        ratios = [b / v for b, v in zip(base, per_round[variant])]
        row["variants"][variant] = {"speedup": statistics.median(ratios), "speedup_min": min(ratios),
                                    "speedup_max": max(ratios),
                                    "images_per_second": 1 / statistics.median(per_round[variant])}
    return row


def child(name: str, variant: str, recipe_name: str, rounds: int, steps: int) -> dict:
    """One (preset, lever) pair in a fresh process; a crash is recorded with its exit status."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.proxy_step_levers", "--presets", name, "--variants",
                           variant, "--recipe", recipe_name, "--rounds", str(rounds), "--steps", str(steps), "--child"],
                          capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"preset": name, "variant": variant, "crashed": done.returncode,
                "error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return {"variant": variant, **json.loads(lines[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["mobileclip_s0", "mobileclip_s2", "vitamin_s", "mobileclip_b"],
                        choices=preset_names())
    parser.add_argument("--recipe", default="cpu-tiny")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS[1:], default=list(VARIANTS[1:]))
    parser.add_argument("--merge", action="store_true",
                        help="keep the other (preset, lever) rows of results/proxy_step_levers.json, replace these")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    threads = recipe.train.threads or 1
    if args.child:  # one preset, one lever against the baseline, here
        torch.set_num_threads(threads)
        store = ReinforcedStore.open(ensure_store(recipe, progress=False))
        dims = tuple(t.embed_dim for t in store.settings.teachers)
        print(json.dumps(measure(args.presets[0], recipe, store, dims, args.rounds, args.steps,
                                 ("baseline", *args.variants))), flush=True)
        return
    rows = []
    for name in args.presets:
        for variant in args.variants:
            rows.append(child(name, variant, args.recipe, args.rounds, args.steps))
            print(json.dumps(rows[-1]), flush=True)
    meta = {**run_meta("proxy_step_levers", threads=threads, recipe=recipe.name), "rounds": args.rounds,
            "steps": args.steps, "batch_size": recipe.train.batch_size}
    if args.merge:  # rows of an earlier run that this one did not redo, first, with that run's command
        earlier = json.loads((RESULTS / "proxy_step_levers.json").read_text())
        redone = {(r["preset"], r["variant"]) for r in rows}
        rows = [r for r in earlier["runs"] if (r["preset"], r["variant"]) not in redone] + rows
        meta["merged_into"] = earlier["meta"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proxy_step_levers.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n")
    lines = ["# Throughput levers of a proxy training step (cpu-tiny students)", "",
             f"- date: {meta['date']}; command: `{meta['command']}`",
             *([f"- rows not redone by that command: `{meta['merged_into']['command']}` ({meta['merged_into']['date']})"]
               if "merged_into" in meta else []),
             f"- machine: {meta['machine']['cpu']}, {threads} thread(s), torch {meta['machine']['libraries']['torch']}",
             f"- each preset and lever in a fresh process: {args.rounds} interleaved rounds of {args.steps} steps of "
             "the baseline and the lever; speed-up = median over the rounds of baseline s/image / lever s/image "
             f"(range over rounds in brackets; n = {args.rounds} rounds); warm-up = the first two steps (for "
             "`compile`, graph capture and code generation, paid again by every new architecture)", "",
             "| preset | proxy | lever | baseline images/s | speed-up [range] | lever warm-up s |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "crashed" in r:
            lines.append(f"| {r['preset']} | | {r['variant']} | | crashed (exit {r['crashed']}): {cell(r['error'])} | |")
            continue
        v = r["variants"][r["variant"]]
        lines.append(f"| {r['preset']} | {cell(r['proxy'])} | {r['variant']} | {r['baseline_images_per_second']:.0f} | "
                     f"{v['speedup']:.2f}x [{v['speedup_min']:.2f}, {v['speedup_max']:.2f}] | "
                     f"{r['warmup_seconds'][r['variant']]:.0f} |")
    (RESULTS / "proxy_step_levers.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
