"""Proxy training throughput on this machine: where a cpu-tiny trial's time goes.

For the cpu-tiny student of each preset: end-to-end images/s of a Lightning fit on the reinforced
store; the same steps in a bare loop on a fixed batch (model only: no data, no Lightning); the data
pipeline alone (store + replay + tokenize); and the achieved FLOP/s (fvcore MACs x 2 x 3 for
forward + backward, text counted once per caption batch) against the measured fp32 matmul peak.

    python -m benchmarks.proxy_throughput [--presets mobileclip_s0 mobileclip_s2 vitamin_s] [--steps 20]

Writes benchmarks/results/proxy_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader

from archsearch.data.dataset import ReinforcedDataset
from archsearch.data.store import ReinforcedStore
from archsearch.latency.cost import measure_cost
from archsearch.latency.peak import matmul_peak_gflops
from archsearch.proxy.assets import ensure_store, training_source
from archsearch.training.fit import fit
from archsearch.training.module import ClipModule
from archsearch.proxy.recipe import load_recipe
from archsearch.proxy.scale import scale_down
from archsearch.spec import get_preset, preset_names
from archsearch.spec.arch import layout_summary

from benchmarks.common import RESULTS, cell, run_meta



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


# Profiler op name -> where the time goes; the first matching prefix wins, anything else is "other".
OP_GROUPS = (
    ("conv backward", ("aten::convolution_backward",)),
    ("conv forward", ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear")),
    ("attention", ("aten::_scaled_dot_product",)),
    ("norm", ("aten::native_batch_norm", "aten::native_layer_norm", "aten::batch_norm", "aten::layer_norm")),
    ("activation", ("aten::gelu", "aten::silu", "aten::relu", "aten::sigmoid", "aten::hardswish")),
    ("optimizer", ("Optimizer.", "aten::lerp_", "aten::addcdiv_", "aten::sqrt", "aten::_foreach")),
)


def op_group(name: str) -> str:
    return next((group for group, prefixes in OP_GROUPS if name.startswith(prefixes)), "other")


def time_shares(module: ClipModule, batch: dict, steps: int = 3) -> tuple[dict[str, float], list[dict]]:
    """Share of a training step's self CPU time per op group, and the five costliest (op, input
    shapes) entries: what keeps a small proxy far from the matmul peak."""
    from torch.profiler import ProfilerActivity, profile

    bare_loop_seconds(module, batch, 1)  # warm: first-call allocations stay out of the profile
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        bare_loop_seconds(module, batch, steps)
    events = [e for e in prof.key_averages(group_by_input_shape=True) if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    shares: dict[str, float] = {}
    for e in events:
        shares[op_group(e.key)] = shares.get(op_group(e.key), 0.0) + e.self_cpu_time_total / total
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:5]
    return (dict(sorted(shares.items(), key=lambda kv: -kv[1])),
            [{"op": e.key, "shapes": str(e.input_shapes[:3]), "share": e.self_cpu_time_total / total, "calls": e.count}
             for e in top])


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
        shares, top_ops = time_shares(module, batches[0])
        cost = measure_cost(spec)
        macs_per_image = cost.image.macs + caption_sets * cost.text.macs
        flops = macs_per_image * 2 * 3 * timing["images_per_second"]
        rows.append({
            "preset": name, "proxy": layout_summary(spec), "images_per_second": timing["images_per_second"],
            "model_only_images_per_second": batch_size / model_seconds,
            "data_only_images_per_second": batch_size / data_seconds,
            "train_gmacs_per_image": macs_per_image / 1e9, "achieved_gflops": flops / 1e9,
            "share_of_peak": flops / (peak * 1e9), "time_shares": shares, "top_ops": top_ops,
        })
        print(json.dumps(rows[-1]), flush=True)
    meta = {**run_meta("proxy_throughput", threads=threads), "threads": threads, "peak_gflops": peak,
            "batch_size": batch_size, "steps": args.steps}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proxy_throughput.json").write_text(json.dumps({"meta": meta, "presets": rows}, indent=2) + "\n")
    write_markdown(meta, rows)


def write_markdown(meta: dict, rows: list[dict]) -> None:
    peak, threads, batch_size = meta["peak_gflops"], meta["threads"], meta["batch_size"]
    lines = ["# Proxy training throughput (cpu-tiny students)", "",
             f"{meta['date']}, {meta['machine']['cpu']}, {threads} threads, batch {batch_size}; fp32 matmul peak "
             f"{peak:.0f} GFLOP/s. Command: `{meta['command']}`", "",
             "| preset | proxy | images/s (fit) | images/s (model only) | images/s (data only) | train GMACs/image | GFLOP/s | share of peak |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['preset']} | {cell(r['proxy'])} | {r['images_per_second']:.0f} | {r['model_only_images_per_second']:.0f} | "
              f"{r['data_only_images_per_second']:.0f} | {r['train_gmacs_per_image']:.4f} | {r['achieved_gflops']:.1f} | "
              f"{r['share_of_peak']:.1%} |" for r in rows]
    lines += ["", "Data loading and Lightning together cost " + ", ".join(
        f"{r['preset']} {1 - r['images_per_second'] / r['model_only_images_per_second']:.0%}" for r in rows)
        + " of the fit's time (1 - fit / model-only images/s); the model alone reaches " + ", ".join(
        f"{r['share_of_peak'] * r['model_only_images_per_second'] / r['images_per_second']:.0%}" for r in rows)
        + " of the peak, so the gap is in the model's kernels, not around them."]
    lines += ["", "## Where a training step's time goes (model only, self CPU time, torch.profiler)", "",
              "| preset | " + " | ".join(group for group, _ in OP_GROUPS) + " | other |",
              "|---|" + "---|" * (len(OP_GROUPS) + 1)]
    lines += [f"| {r['preset']} | " + " | ".join(f"{r['time_shares'].get(g, 0):.0%}" for g, _ in (*OP_GROUPS, ("other", ())))
              + " |" for r in rows]
    lines += ["", "Costliest single ops (op, first input shapes, share of the step):", ""]
    lines += [f"- {r['preset']}: " + "; ".join(f"{o['op']} {o['shapes']} {o['share']:.0%}" for o in r["top_ops"][:3])
              for r in rows]
    (RESULTS / "proxy_throughput.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
