"""Reinforcement throughput on this machine: samples/s of a whole build, and per teacher.

Teachers are named by reference (`--teachers`, as `archsearch reinforce` takes them) or by preset
(`--teacher-presets`: the preset's CLIP, randomly initialised and saved as an archsearch teacher,
which costs exactly what the trained one costs). One warm-up batch is built and discarded first.

    python -m benchmarks.reinforce_throughput [--data embedded?n=512] [--teacher-presets mobileclip_s0 ...]
        [--teachers REF ...] [--augmentations 10] [--synthetic-captions 5] [--batch-size 32]
        [--threads 2] [--device cpu]

Writes benchmarks/results/reinforce_throughput.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from archsearch.data.captioners import load_captioner
from archsearch.data.readers import open_source
from archsearch.data.reinforce import reinforce
from archsearch.data.teachers import load_teacher, save_teacher
from archsearch.models.clip import build_clip
from archsearch.spec import get_preset, preset_names

from benchmarks.common import RESULTS, run_meta



def preset_teacher(name: str, directory: Path) -> str:
    """Save preset `name`'s randomly initialised CLIP as a teacher; returns its reference."""
    spec = get_preset(name)
    torch.manual_seed(0)
    save_teacher(build_clip(spec), spec, directory / name, meta={"note": "random init, for timing only"})
    return str(directory / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="embedded?n=512")
    parser.add_argument("--teachers", nargs="*", default=[], help="teacher references")
    parser.add_argument("--teacher-presets", nargs="*", default=None, choices=preset_names())
    parser.add_argument("--captioner", default="procedural")
    parser.add_argument("--augmentations", type=int, default=10)
    parser.add_argument("--synthetic-captions", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(RESULTS / "reinforce_throughput.json"))
    args = parser.parse_args()
    presets = args.teacher_presets if args.teacher_presets is not None else ([] if args.teachers else ["mobileclip_s0"])
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        refs = list(args.teachers) + [preset_teacher(name, tmp / "teachers") for name in presets]
        teachers = [load_teacher(ref, args.device) for ref in refs]
        captioner = load_captioner(args.captioner, args.device)
        source = open_source(args.data)
        settings = dict(augmentations=args.augmentations, synthetic_captions=args.synthetic_captions,
                        batch_size=args.batch_size, progress=True)
        warmup_shards = max(1, len(source) // args.batch_size)  # shard 0 of these is about one batch
        reinforce(source, teachers, captioner, out=tmp / "warmup", shard=(0, warmup_shards), **settings)
        report = reinforce(source, teachers, captioner, out=tmp / "store", **settings)

    n = report.processed
    per_teacher = []
    for ref, teacher in zip(refs, teachers):
        image, text = report.timings[f"{teacher.id} image"], report.timings[f"{teacher.id} text"]
        per_teacher.append({
            "ref": ref, "id": teacher.id, "embed_dim": teacher.embed_dim, "image_size": teacher.image_size,
            "image_seconds": image, "text_seconds": text, "samples_per_second": n / (image + text),
            "views_per_second": n * args.augmentations / image,
            "texts_per_second": n * (1 + args.synthetic_captions) / text,
        })
    result = {
        **run_meta("reinforce_throughput", threads=args.threads,
                   device="torch-cuda" if args.device.startswith("cuda") else "torch-cpu"),
        "settings": {"data": args.data, "samples": n, "augmentations": args.augmentations,
                     "synthetic_captions": args.synthetic_captions, "batch_size": args.batch_size,
                     "captioner": captioner.id, "device": args.device, "threads": args.threads},
        "samples_per_second": report.samples_per_second, "seconds": report.seconds,
        "stage_seconds": report.timings, "teachers": per_teacher,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"samples_per_second": round(report.samples_per_second, 2),
                      "teachers": {t["id"]: round(t["samples_per_second"], 2) for t in per_teacher}}))


if __name__ == "__main__":
    main()
