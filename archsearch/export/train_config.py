"""train.yaml: the LightningCLI config that trains an exported architecture at full size.

Defaults follow MobileCLIP's DataCompDR-12M recipe (apple/ml-mobileclip): per-GPU batch 256 (global
8192 on 4 nodes x 8 GPUs), 30k steps, AdamW lr 1e-3, betas (0.9, 0.95), weight decay 0.2, 1000
warm-up steps, gradient clipping at 1.0, bf16 on GPUs with DDP. Plain shards train with the CLIP
loss; with a reinforced store, set `kd_lambda` (1.0 as for MobileCLIP-S0..S2, 0.75 for B) and
`captions: both`. The file is written as text to keep its comments, and read back in the tests.
"""

from __future__ import annotations

import textwrap

import yaml

from archsearch.spec.arch import ArchSpec

TRAIN_FILE = "train.yaml"


def train_yaml(spec: ArchSpec, name: str, header: str = "") -> str:
    """train.yaml for `spec`, logging and checkpointing under ``runs/train/<name>``."""
    root = f"runs/train/{name}"
    arch = textwrap.indent(yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=None), "    ")
    return f"""\
# LightningCLI config: `archsearch train --config train.yaml` trains the full-size model (no scale-down).
# Any key can be overridden on the command line, e.g. --trainer.devices 4 --data.batch_size 128.
{header}seed_everything: 0
trainer:
  accelerator: gpu
  devices: auto               # every GPU of the node, one DDP process each
  num_nodes: 1                # multi-node: the number of nodes; launch on each (SLURM srun or torchrun, see README.md)
  strategy: ddp
  precision: bf16-mixed
  gradient_clip_val: 1.0
  log_every_n_steps: 50
  val_check_interval: 2000    # steps between validations (only with data.val_source)
  check_val_every_n_epoch: null
  default_root_dir: {root}
  logger:
    class_path: lightning.pytorch.loggers.WandbLogger
    init_args:
      project: archsearch
      name: {name}
      save_dir: {root}
      offline: true           # nothing leaves the machine; `wandb sync {root}/wandb/offline-run-*` uploads later
  callbacks:
  - class_path: lightning.pytorch.callbacks.ModelCheckpoint
    init_args:
      dirpath: {root}/checkpoints
      filename: "{{step:07d}}"    # step=0005000.ckpt
      every_n_train_steps: 5000
      save_top_k: -1          # keep every one; resume from {root}/checkpoints/last.ckpt
      save_last: true
  - class_path: lightning.pytorch.callbacks.LearningRateMonitor
    init_args:
      logging_interval: step
  - class_path: archsearch.train.final.FinalWeights   # final.pt and reparameterized.pt in {root}
model:
  steps: 30000                # optimizer steps; also the trainer's max_steps (linked)
  lr: 0.001                   # peak, after warm-up; cosine decay to 0
  weight_decay: 0.2
  betas: [0.9, 0.95]
  warmup_steps: 1000
  kd_lambda: 0.0              # distillation weight; > 0 needs data.store
  teacher_logit_scale: 100.0
  captions: real              # real | synthetic | both (synthetic captions come from data.store)
  arch:                       # the architecture, as in arch.yaml (a preset name or a path works too)
{arch}data:
  source: null                # REQUIRED unless data.store: WebDataset shards, e.g. /data/shards/{{00000..01023}}.tar
  store: null                 # a reinforced store (archsearch reinforce) for distillation
  val_source: null            # held-out shards for validation (val/loss, in-batch top-1)
  batch_size: 256             # per GPU; global batch = batch_size x devices x num_nodes
  num_workers: 8              # per GPU; give the data at least num_workers x GPUs shards
  shuffle_buffer: 1000
  crop_scale: [0.9, 1.0]      # random-resized crop of plain shards (OpenCLIP's default)
  crop_ratio: [0.75, 1.3333333333333333]
  flip: 0.0
  seed: 0
"""
