"""Proxy training throughput on this machine: where a cpu-tiny trial's time goes.

For the cpu-tiny student of each preset: end-to-end images/s of a Lightning fit on the reinforced
store; the same steps in a bare loop on a fixed batch (model only: no data, no Lightning); the data
pipeline alone (store + replay + tokenize); and the achieved FLOP/s (fvcore MACs x 2 x 3 for
forward + backward, text counted once per caption batch) against the measured fp32 matmul peak.

    python benchmarks/proxy_throughput.py [--presets mobileclip_s0 mobileclip_s2 vitamin_s] [--steps 20]

Writes benchmarks/results/proxy_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from archsearch.data.dataset import ReinforcedDataset
from archsearch.data.store import ReinforcedStore
from archsearch.latency.cost import measure_cost
from archsearch.latency.fingerprint import device_fingerprint
from archsearch.latency.peak import matmul_peak_gflops
from archsearch.proxy.assets import ensure_store, training_source
from archsearch.proxy.fit import fit
from archsearch.proxy.module import ClipModule
from archsearch.proxy.recipe import load_recipe
from archsearch.proxy.scale import scale_down
from archsearch.spec import get_preset, preset_names
from archsearch.spec.arch import layout_summary

RESULTS = Path(__file__).parent / "results"


def bare_loop_seconds(module: ClipModule, batch: dict, steps: int) -> float:
    """Forward, backward and AdamW on one fixed batch: the model's own cost."""
    optimizer = module.configure_optimizers()["optimizer"]
    module.log = module.log_dict = lambda *a, **k: None  # no trainer attached
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = module.training_step(batch, i)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["mobileclip_s0", "mobileclip_s2", "vitamin_s"], choices=preset_names())
    parser.add_argument("--recipe", default="cpu-tiny")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    threads = recipe.train.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    peak = matmul_peak_gflops(threads)
    store = ReinforcedStore.open(ensure_store(recipe, progress=False))
    dims = tuple(t.embed_dim for t in store.settings.teachers)
    caption_sets = 2 if recipe.loss.captions == "both" else 1
    batch_size = recipe.train.batch_size
    rows = []
    for name in args.presets:
        spec = scale_down(get_preset(name), recipe.scale)
        dataset = ReinforcedDataset(store, training_source(recipe), spec.resolution, spec.text.context_length)
        loader = iter(DataLoader(dataset, batch_size=batch_size, shuffle=True))
        start = time.perf_counter()
        batches = [next(loader) for _ in range(3)]
        data_seconds = (time.perf_counter() - start) / 3
        module = ClipModule(spec, recipe.train, recipe.loss, dims)
        model_seconds = bare_loop_seconds(module, batches[0], args.steps)
        train = recipe.train.model_copy(update={"steps": args.steps})
        _, timing = fit(spec, dataset, train, recipe.loss, seed=0, teacher_dims=dims, progress=False)
        cost = measure_cost(spec)
        macs_per_image = cost.image.macs + caption_sets * cost.text.macs
        flops = macs_per_image * 2 * 3 * timing["images_per_second"]
        rows.append({
            "preset": name, "proxy": layout_summary(spec), "images_per_second": timing["images_per_second"],
            "model_only_images_per_second": batch_size / model_seconds,
            "data_only_images_per_second": batch_size / data_seconds,
            "train_gmacs_per_image": macs_per_image / 1e9, "achieved_gflops": flops / 1e9,
            "share_of_peak": flops / (peak * 1e9),
        })
        print(json.dumps(rows[-1]), flush=True)
    meta = {"date": datetime.date.today().isoformat(), "threads": threads, "peak_gflops": peak,
            "batch_size": batch_size, "steps": args.steps,
            "command": shlex.join(["python", "benchmarks/proxy_throughput.py", *sys.argv[1:]]),
            "machine": device_fingerprint("torch-cpu", threads)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proxy_throughput.json").write_text(json.dumps({"meta": meta, "presets": rows}, indent=2) + "\n")
    lines = ["# Proxy training throughput (cpu-tiny students)", "",
             f"{meta['date']}, {meta['machine']['cpu']}, {threads} threads, batch {batch_size}; fp32 matmul peak "
             f"{peak:.0f} GFLOP/s. Command: `{meta['command']}`", "",
             "| preset | proxy | images/s (fit) | images/s (model only) | images/s (data only) | train GMACs/image | GFLOP/s | share of peak |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['preset']} | {r['proxy']} | {r['images_per_second']:.0f} | {r['model_only_images_per_second']:.0f} | "
              f"{r['data_only_images_per_second']:.0f} | {r['train_gmacs_per_image']:.4f} | {r['achieved_gflops']:.1f} | "
              f"{r['share_of_peak']:.1%} |" for r in rows]
    (RESULTS / "proxy_throughput.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
