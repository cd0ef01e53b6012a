"""README.md of an export directory: what each file is, and the exact commands to train, resume,
evaluate and deploy. Generated from the facts of the export, so it never names a missing file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from archsearch.spec.arch import ArchSpec, layout_summary


@dataclass(frozen=True)
class ExportFacts:
    spec: ArchSpec
    name: str                   # the export's name: runs/train/<name>
    out: str                    # the directory as the user named it
    files: tuple[str, ...]      # written, besides README.md
    timm_name: str
    provenance: dict
    open_clip_missing: Optional[str] = None   # why there is no open_clip_config.json
    params: dict = field(default_factory=dict)  # "archsearch", "open_clip" parameter counts (train-time)
    registry_note: str = ""


def _provenance(p: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in p.items())


def export_readme(f: ExportFacts) -> str:
    d, run = f.out.rstrip("/"), f"runs/train/{f.name}"
    rows = [("arch.yaml", f"the architecture (ArchSpec); `archsearch describe {d}/arch.yaml` prints its cost")]
    if "open_clip_config.json" in f.files:
        rows.append(("open_clip_config.json",
                     f"OpenCLIP config for `open_clip.create_model(\"local-dir:{d}\")`; its image tower is the "
                     f"timm model `{f.timm_name}` (registered by `import archsearch`, see below) and its "
                     f"parameter count equals archsearch's ({f.params.get('open_clip', 0):,})"))
    elif f.open_clip_missing:
        rows.append(("open_clip_config.json", f"**not written**: {f.open_clip_missing}. Train and evaluate "
                                              "with archsearch; the image tower alone is still timm model "
                                              f"`{f.timm_name}`"))
    if "train.yaml" in f.files:
        rows.append(("train.yaml", "LightningCLI config for `archsearch train`: full-size model, WebDataset shards, "
                                   "DDP over GPUs and nodes, checkpoints, wandb (offline)"))
    for tower in ("image", "text"):
        if f"{tower}.mlpackage" in f.files:
            rows.append((f"{tower}.mlpackage", f"Core ML ML program of the folded {tower} tower (batch 1, fp16, "
                                               "untrained weights: re-export after training, below)"))
    rows.append(("export.json", "provenance, versions and the timm name of this export"))
    table = "\n".join(f"| `{name}` | {what} |" for name, what in rows)

    s = f.spec
    text = [f"# {f.name}: an architecture exported by archsearch", "",
            f"`{layout_summary(s)}`, resolution {s.resolution}, joint embedding {s.embed_dim}, "
            f"context {s.text.context_length}; {f.params.get('archsearch', 0):,} parameters (train-time). "
            f"From: {_provenance(f.provenance)}.", "", "| file | what it is |", "|---|---|", table, ""]
    if f.open_clip_missing:
        text += [f"**OpenCLIP:** {f.open_clip_missing}.", ""]
    if "train.yaml" in f.files:
        text += [
            "## Train", "",
            "Set your data (WebDataset shards as img2dataset writes them: `KEY.jpg` + `KEY.txt`) and run:", "",
            "```bash",
            f"archsearch train --config {d}/train.yaml --data.source '/data/shards/{{00000..01023}}.tar'",
            "```", "",
            f"Checkpoints go to `{run}/checkpoints/` (every 5000 steps and `last.ckpt`), wandb logs to `{run}/wandb/` "
            f"(offline; `wandb sync` uploads), and at the end `{run}/final.pt` (train-time weights with the "
            f"architecture, readable with `torch.load(..., weights_only=True)`) and `{run}/reparameterized.pt` "
            "(folded weights for deployment). One node uses every GPU (`trainer.devices: auto`, DDP). "
            "Several nodes: set `trainer.num_nodes` and start the same command on each node, e.g. with SLURM",
            "", "```bash",
            f"srun --nodes 4 --ntasks-per-node 8 --gpus-per-node 8 archsearch train --config {d}/train.yaml "
            "--trainer.num_nodes 4 --data.source '/data/shards/{00000..01023}.tar'",
            "```", "", "or torchrun on every node:", "", "```bash",
            "torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HEAD:29500 "
            f"\"$(which archsearch)\" train --config {d}/train.yaml --trainer.num_nodes 4 "
            "--data.source '/data/shards/{00000..01023}.tar'",
            "```", "",
            "Distillation from a reinforced store (`archsearch reinforce`), MobileCLIP's loss:", "", "```bash",
            f"archsearch train --config {d}/train.yaml --data.store runs/stores/NAME --model.kd_lambda 1.0 "
            "--model.captions both",
            "```", "",
            "## Resume", "",
            "Run the same command with the checkpoint to continue from (optimizer, schedule and step included):",
            "", "```bash",
            f"archsearch train --config {d}/train.yaml --data.source '/data/shards/{{00000..01023}}.tar' "
            f"--ckpt_path {run}/checkpoints/last.ckpt",
            "```", "",
            "## Evaluate", "",
            "Held-out loss and in-batch image<->text top-1 of a checkpoint:", "", "```bash",
            f"archsearch train validate --config {d}/train.yaml --data.val_source '/data/val/{{00000..00007}}.tar' "
            f"--ckpt_path {run}/checkpoints/last.ckpt",
            "```", ""]
    text += ["Zero-shot benchmarks run on the trained model in Python:", "", "```python",
             "import torch"]
    if "open_clip_config.json" in f.files:
        text += ["import archsearch  # registers the image tower with timm (in any order with open_clip)",
                 "import open_clip",
                 "from archsearch.export.openclip import open_clip_state_dict", "",
                 f"model, _, preprocess = open_clip.create_model_and_transforms(\"local-dir:{d}\")",
                 f"tokenizer = open_clip.get_tokenizer(\"local-dir:{d}\")",
                 f"final = torch.load(\"{run}/final.pt\", weights_only=True)",
                 "model.load_state_dict(open_clip_state_dict(final[\"state_dict\"]))  # visual.X -> visual.trunk.X"]
    else:
        text += ["from archsearch.models import build_clip",
                 "from archsearch.spec import ArchSpec", "",
                 f"final = torch.load(\"{run}/final.pt\", weights_only=True)",
                 "model = build_clip(ArchSpec.from_dict(final[\"arch\"]))",
                 "model.load_state_dict(final[\"state_dict\"])  # encode_image / encode_text, as open_clip's"]
    text += ["```", "",
             "## Deploy", "", "```python",
             "import torch",
             "from archsearch.latency.coreml import export_clip",
             "from archsearch.models import build_clip, reparameterize",
             "from archsearch.spec import load_spec", "",
             f"spec = load_spec(\"{d}/arch.yaml\")",
             "deployed = reparameterize(build_clip(spec))",
             f"deployed.load_state_dict(torch.load(\"{run}/reparameterized.pt\", weights_only=True))",
             f"export_clip(spec, \"{d}/trained\", model=deployed)  # trained image/text .mlpackage",
             "```", "",
             "## The timm name", "",
             f"`{f.timm_name}` is a hash of arch.yaml. `import archsearch` registers it with timm (when timm is "
             "imported, before or after) for every preset, and for every spec recorded in the per-user registry "
             "(`~/.local/share/archsearch/timm`, `$XDG_DATA_HOME` respected) or found in the directories of "
             f"`ARCHSEARCH_TIMM_SPECS` (`:`-separated; this directory qualifies, as it holds arch.yaml). "
             f"{f.registry_note} On another machine: `export ARCHSEARCH_TIMM_SPECS={d}`. A script that does not "
             "import archsearch itself (e.g. open_clip's trainer) can be run as "
             "`python -c 'import archsearch, runpy, sys; sys.argv = sys.argv[1:] or [\"x\"]; "
             "runpy.run_module(\"MODULE\", run_name=\"__main__\")' ARGS`.", ""]
    return "\n".join(text)
