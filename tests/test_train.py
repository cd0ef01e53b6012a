"""`archsearch train`: the exported train.yaml trains a (tiny) architecture on WebDataset shards,
resumes from its checkpoints, validates, and leaves weights that load with weights_only=True;
distillation from a reinforced store; the streams' splitting and pixels; bad input."""

from __future__ import annotations

import copy
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml

from archsearch.data.augment import AugmentConfig
from archsearch.data.embedded import EmbeddedScenes
from archsearch.data.pixels import to_tensor
from archsearch.data.readers import open_source, write_webdataset
from archsearch.data.reinforce import reinforce
from archsearch.errors import UserError
from archsearch.export.timm_registry import SPECS_ENV
from archsearch.models import build_clip, reparameterize
from archsearch.spec import ArchSpec, get_preset
from archsearch.train.datamodule import ShardDataModule
from archsearch.train.train_module import TrainModule
from archsearch.train.streams import CaptionStream, Slot, shuffled, slot_samples, to_uint8
from reinforce_helpers import TemplateCaptioner, teachers

ARCHSEARCH = shutil.which("archsearch", path=str(Path(sys.executable).parent)) or "archsearch"


def tiny_spec() -> ArchSpec:
    """MobileCLIP-S1's layout at toy size (resolution 32, one block per stage, 2 text layers)."""
    data = get_preset("mobileclip_s1").to_dict()
    data.update(resolution=32, embed_dim=16)
    data["image"]["stem"]["width"] = 8
    for stage, width in zip(data["image"]["stages"], (8, 16, 32, 64)):
        stage.update(width=width, depth=1)
    data["image"]["stages"][3]["head_dim"] = 32
    data["text"].update(width=32, heads=2, layers=["attention"] * 2, context_length=16)
    return ArchSpec.from_dict(data)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """64 embedded scenes at 32 px in two WebDataset shards, and 16 held-out ones in one."""
    root = tmp_path_factory.mktemp("shards")
    write_webdataset(EmbeddedScenes("train", n=64, image_size=32), root / "train", samples_per_shard=32)
    write_webdataset(EmbeddedScenes("retrieval", n=16, image_size=32), root / "val", samples_per_shard=16)
    return root


def run(*args, cwd: Path):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", SPECS_ENV: str(cwd / "registry"),
                   **{f"WANDB_{k}_DIR": str(cwd / "wandb-home") for k in ("CACHE", "CONFIG", "DATA")}}
    return subprocess.run([ARCHSEARCH, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=environment)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """train.yaml as `archsearch export --format lightning` writes it for the tiny arch."""
    root = tmp_path_factory.mktemp("export")
    (root / "arch.yaml").write_text(yaml.safe_dump(tiny_spec().to_dict()))
    result = run("export", "arch.yaml", "--out", "tiny", "--format", "lightning", cwd=root)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load((root / "tiny/train.yaml").read_text())


def exported_config(tmp_path: Path, exported: dict, shards: Path) -> Path:
    """The exported train.yaml, edited as a user would for a CPU and a few steps."""
    config = copy.deepcopy(exported)
    config["trainer"].update(accelerator="cpu", devices=1, strategy="auto", precision="32-true", val_check_interval=2,
                             log_every_n_steps=1, enable_progress_bar=False)
    config["trainer"]["callbacks"][0]["init_args"]["every_n_train_steps"] = 2
    config["model"].update(steps=4, warmup_steps=1)
    config["data"].update(source=str(shards / "train"), val_source=str(shards / "val"), batch_size=8, num_workers=0,
                          shuffle_buffer=16)
    path = tmp_path / "tiny/train.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _metrics(root: Path) -> list[dict]:
    [path] = root.rglob("metrics.csv")
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_train_resume_validate_and_deployable_weights(tmp_path, exported, shards):
    config = exported_config(tmp_path, exported, shards)
    run_dir = tmp_path / "runs/train/tiny"

    first = run("train", "--config", str(config), cwd=tmp_path)  # as exported: wandb, offline
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "last.ckpt", "step=0000002.ckpt", "step=0000004.ckpt"]
    assert list((run_dir / "wandb").glob("offline-run-*"))
    for name in ("last.ckpt", "step=0000002.ckpt"):
        checkpoint = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        assert ArchSpec.from_dict(checkpoint["hyper_parameters"]["arch"]) == tiny_spec()
    final = torch.load(run_dir / "final.pt", weights_only=True)
    assert final["step"] == 4 and ArchSpec.from_dict(final["arch"]) == tiny_spec()
    last, second = (torch.load(run_dir / "checkpoints" / n, weights_only=True)["state_dict"]
                    for n in ("last.ckpt", "step=0000002.ckpt"))
    assert all(torch.equal(value, last[f"model.{key}"]) for key, value in final["state_dict"].items())
    assert any(not torch.equal(value, second[f"model.{key}"]) for key, value in final["state_dict"].items())
    model = build_clip(tiny_spec())
    model.load_state_dict(final["state_dict"])
    deployed = reparameterize(build_clip(tiny_spec()))
    deployed.load_state_dict(torch.load(run_dir / "reparameterized.pt", weights_only=True))
    images, tokens = torch.rand(2, 3, 32, 32), torch.randint(1, 1000, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(deployed.encode_image(images), reparameterize(model).encode_image(images))
        torch.testing.assert_close(deployed.encode_text(tokens), model.eval().encode_text(tokens))

    # Resume from step 2 (CSV logs this time, to read what ran): steps 3 and 4 only, then validation.
    (run_dir / "final.pt").unlink()
    resumed = run("train", "--config", str(config), "--ckpt_path", str(run_dir / "checkpoints/step=0000002.ckpt"),
                  "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir",
                  str(tmp_path / "csv"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rows = _metrics(tmp_path / "csv")
    assert sorted({int(r["step"]) for r in rows if r.get("train/loss")}) == [2, 3]  # 0-based: the 3rd and 4th
    assert [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert torch.load(run_dir / "final.pt", weights_only=True)["step"] == 4

    validated = run("train", "validate", "--config", str(config), "--ckpt_path", str(run_dir / "checkpoints/last.ckpt"),
                    "--trainer.logger", "false", "--trainer.callbacks", "[]", cwd=tmp_path)
    assert validated.returncode == 0, validated.stdout[-3000:] + validated.stderr[-3000:]
    assert "val/i2t_top1_in_batch" in validated.stdout and "val/loss" in validated.stdout


BAD_TRAIN = {
    "distillation without a store": (["--model.kd_lambda", "0.5"],
                                     "model.kd_lambda 0.5 / model.captions 'real': distillation and synthetic "
                                     "captions need data.store"),
    "unknown option": (["--model.learning_rate", "1"], "train: "),
    "no GPU here": (["--trainer.accelerator", "gpu"], "train: No supported gpu backend found!"),
}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the 'no GPU here' case needs a machine without one")
@pytest.mark.parametrize("case", BAD_TRAIN)
def test_bad_train_input_is_one_line_exit_2(tmp_path, exported, shards, case):
    """What the CLI layer turns into one line: parse errors, trainer set-up, data/loss mismatch."""
    args, expected = BAD_TRAIN[case]
    config = exported_config(tmp_path, exported, shards)
    result = run("train", "--config", str(config), "--trainer.logger", "false", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("archsearch: error: ")
    assert not (tmp_path / "runs/train/tiny/final.pt").exists()


def test_bad_model_and_data_arguments_name_the_field(shards):
    with pytest.raises(UserError, match="model: captions: Input should be 'real', 'synthetic' or 'both'"):
        TrainModule(tiny_spec().to_dict(), captions="some")
    with pytest.raises(UserError, match="model: lr: Input should be greater than 0"):
        TrainModule(tiny_spec().to_dict(), lr=-1)
    with pytest.raises(UserError, match="model.arch: embed_dim: required field is missing"):
        TrainModule({"resolution": 32})
    with pytest.raises(UserError, match="unknown preset 'MobileCLIP-S7'"):
        TrainModule("MobileCLIP-S7")
    with pytest.raises(UserError, match="data.source: not set; allowed: WebDataset shards"):
        ShardDataModule()
    with pytest.raises(UserError, match="nowhere/0.tar: no such shard [(][+]3 more[)]"):
        ShardDataModule(source="nowhere/{0..3}.tar")
    with pytest.raises(UserError, match="data.batch_size: 0; allowed: 1 or more"):
        ShardDataModule(source=str(shards / "train"), batch_size=0)


def test_distillation_from_a_reinforced_store(tmp_path, shards):
    """A store built over the shards by two teachers of different widths (16 and 24), read from
    the shards in order; the distillation loss trains on the real and the synthetic captions."""
    torch.set_num_threads(1)
    source = open_source(str(shards / "train"))
    reinforce(source, teachers(), TemplateCaptioner(), 2, 2, tmp_path / "store", batch_size=32, progress=False)
    module = TrainModule(tiny_spec().to_dict(), steps=2, warmup_steps=1, kd_lambda=1.0, captions="both",
                         teacher_dims=[16, 24])
    data = ShardDataModule(store=str(tmp_path / "store"), batch_size=8, num_workers=0, shuffle_buffer=8)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, data)
    assert trainer.global_step == 2
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and metrics["train/syn_text/distill"] > 0
    batch = next(iter(data.train_dataloader()))
    assert batch["teacher_image"].shape == (8, 40) and batch["syn_text"].shape == (8, 16)
    assert batch["image"].dtype == torch.uint8


# --- streams -------------------------------------------------------------------------------------

def test_slots_share_the_data_exactly_once(shards):
    train = open_source(str(shards / "train"))
    rng = np.random.default_rng(0)
    for source, count in ((train, 2), (train, 3), (EmbeddedScenes("train", n=10, image_size=16), 3)):
        keys = [s.key for i in range(count) for _, s in slot_samples(source, Slot(i, count), rng)]
        assert sorted(keys) == sorted(s.key for s in source), (type(source).__name__, count)


def test_shuffled_is_a_permutation_through_a_small_buffer():
    rng = np.random.default_rng(0)
    out = list(shuffled(iter(range(100)), 8, rng))
    assert sorted(out) == list(range(100)) and out != list(range(100))


def test_uint8_pixels_are_exact():
    image = EmbeddedScenes("train", n=1, image_size=32)[0].image
    pixels = to_tensor(image)
    assert torch.equal(to_uint8(pixels).float().div_(255), pixels)


def test_caption_stream_never_ends_and_draws_other_crops_each_pass(shards):
    stream = CaptionStream(open_source(str(shards / "val")), 32, 16, AugmentConfig(), seed=0, shuffle_buffer=4)
    examples = [x for _, x in zip(range(40), iter(stream))]  # 16 samples: two and a half passes
    assert len(examples) == 40 and examples[0]["image"].shape == (3, 32, 32)
    texts = [tuple(x["text"].tolist()) for x in examples]
    assert sorted(texts[:16]) == sorted(texts[16:32]) and texts[:16] != texts[16:32]
    first, second = ({t: x["image"] for t, x in zip(texts[a:b], examples[a:b])} for a, b in ((0, 16), (16, 32)))
    assert any(not torch.equal(first[t], second[t]) for t in first)
