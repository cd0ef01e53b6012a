"""Full-size training of one chosen architecture: `archsearch train --config train.yaml`.

LightningCLI over `TrainModule` (the proxies' `ClipModule` on the full-size spec) and
`ShardDataModule` (WebDataset shards, optionally a reinforced store for distillation), with DDP,
checkpoints, and deployable weights at the end (`FinalWeights`). `archsearch export` writes the
train.yaml this reads.
"""
