"""Proxy room: scale-down rule, MobileCLIP loss, recipes, zero-shot scoring, training runs."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss, DistillClipLoss

from archsearch.errors import SpecError, UserError
from archsearch.training.loss import ReinforcedClipLoss
from archsearch.proxy.recipe import ScaleDown, list_recipes, load_recipe
from archsearch.training.config import LossConfig, TrainConfig
from archsearch.proxy.scale import scale_down
from archsearch.space import load_space
from archsearch.spec import get_preset, preset_names
from archsearch.spec.arch import layout_summary

TINY_RECIPE = {
    "name": "test-tiny",
    "data": {"source": "embedded:train?n=192", "augmentations": 2, "synthetic_captions": 2,
             "teacher_training": {"arch": "mobileclip_s0", "count": 2, "steps": 4, "batch_size": 32,
                                  "scale": {"resolution": 32, "width_mult": 0.125, "depth_mult": 0.25,
                                            "text_width_mult": 0.125, "text_depth_mult": 0.25, "context_length": 24}}},
    "scale": {"resolution": 32, "width_mult": 0.125, "depth_mult": 0.25, "text_width_mult": 0.125,
              "text_depth_mult": 0.25, "context_length": 24},
    "train": {"steps": 3, "batch_size": 32, "warmup_steps": 1, "threads": 1},
    "eval": {"classify": 64, "retrieval": 32},
}


@pytest.mark.parametrize("name", preset_names())
def test_scale_down_keeps_what_a_search_decides(name):
    full = get_preset(name)
    proxy = scale_down(full, ScaleDown())
    assert proxy.resolution == 64 and proxy.text.context_length == 32
    assert [s.mixer for s in proxy.image.stages] == [s.mixer for s in full.image.stages]
    assert [s.mlp_ratio for s in proxy.image.stages] == [s.mlp_ratio for s in full.image.stages]
    assert [s.heads for s in proxy.image.stages] == [s.heads for s in full.image.stages]
    assert proxy.text.heads == full.text.heads
    assert sorted(set(proxy.text.layers)) == sorted(set(full.text.layers))
    assert all(s.width % 4 == 0 for s in proxy.image.stages)
    assert all(p.depth == max(1, math.floor(f.depth / 2 + 0.5)) for p, f in zip(proxy.image.stages, full.image.stages))
    assert scale_down(full, ScaleDown()) == proxy  # deterministic


def test_scale_down_of_mobileclip_s0_is_the_documented_example():
    proxy = scale_down(get_preset("mobileclip_s0"), ScaleDown())
    assert layout_summary(proxy) == "R1-R3-R5-A1 @64 | text R-A2-R x128"
    assert [s.width for s in proxy.image.stages] == [16, 32, 64, 128]
    assert scale_down(get_preset("mobileclip_s0"), ScaleDown(resolution=None, context_length=None)).resolution == 256


@pytest.mark.parametrize("space", ["hybrid", "vitamin"])
def test_scale_down_builds_for_sampled_architectures(space):
    from archsearch.models.clip import build_clip

    loaded = load_space(space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    built = 0
    for _ in range(40):
        trial = study.ask()
        try:
            spec = loaded.sample(trial)
        except optuna.TrialPruned:
            continue
        proxy = scale_down(spec, ScaleDown())
        if built < 3:  # building is the slow part; validation above covers the rest
            build_clip(proxy)
            built += 1
    assert built == 3


def _features(seed, n=8, d=16):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=-1)


def test_loss_without_distillation_is_open_clips_clip_loss():
    image, text, scale = _features(0), _features(1), torch.tensor(20.0)
    ours = ReinforcedClipLoss(kd_lambda=0.0)(image, text, scale)["loss"]
    assert torch.allclose(ours, ClipLoss()(image, text, scale))


def test_distillation_from_one_teacher_is_open_clips_distill_term():
    image, text, scale = _features(0), _features(1), torch.tensor(20.0)
    t_image, t_text = _features(2, d=12), _features(3, d=12)
    ours = ReinforcedClipLoss(kd_lambda=1.0, teacher_logit_scale=100.0)(image, text, scale, t_image, t_text, (12,))
    reference = DistillClipLoss()(image, text, scale, t_image, t_text, torch.tensor(100.0), output_dict=True)
    assert torch.allclose(ours["distill"], reference["distill_loss"], atol=1e-6)
    assert torch.allclose(ours["loss"], ours["distill"])


def test_teacher_ensemble_averages_probabilities():
    image, text, scale = _features(0), _features(1), torch.tensor(20.0)
    a_image, a_text, b_image, b_text = _features(2, d=12), _features(3, d=12), _features(4, d=6), _features(5, d=6)
    loss = ReinforcedClipLoss(kd_lambda=0.5)
    both = loss(image, text, scale, torch.cat([a_image, b_image], 1), torch.cat([a_text, b_text], 1), (12, 6))
    student = scale * image @ text.T
    p = ((100 * a_image @ a_text.T).softmax(1) + (100 * b_image @ b_text.T).softmax(1)) / 2
    q = ((100 * a_image @ a_text.T).softmax(0) + (100 * b_image @ b_text.T).softmax(0)) / 2
    expected = (-(p * student.log_softmax(1)).sum(1).mean() - (q * student.log_softmax(0)).sum(0).mean()) / 2
    assert torch.allclose(both["distill"], expected, atol=1e-6)
    assert torch.allclose(both["loss"], 0.5 * both["contrastive"] + 0.5 * expected, atol=1e-6)


def test_distillation_needs_teachers():
    with pytest.raises(ValueError, match="teacher"):
        ReinforcedClipLoss(kd_lambda=1.0)(_features(0), _features(1), torch.tensor(10.0))


def test_bundled_recipes_load():
    assert {"cpu-tiny", "cpu-small", "gpu-datacompdr"} <= set(list_recipes())
    for name in list_recipes():
        assert load_recipe(name).name == name


def test_recipe_errors_name_file_field_and_allowed(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntrain:\n  stepz: 3\n")
    with pytest.raises(SpecError, match=r"bad.yaml: train.stepz: unknown field; allowed: steps, batch_size"):
        load_recipe(bad)
    bad.write_text("name: bad\nloss:\n  captions: all\n")
    with pytest.raises(SpecError, match=r"loss.captions: .*'real', 'synthetic' or 'both'"):
        load_recipe(bad)
    with pytest.raises(SpecError, match="unknown recipe 'nope'; allowed: cpu-small, cpu-tiny"):
        load_recipe("nope")


def test_recall_counts_rank_of_the_true_match():
    from archsearch.proxy.evaluate import recall_at_k

    similarity = torch.tensor([[0.9, 0.1, 0.0],   # image 0: right at rank 0
                               [0.8, 0.5, 0.1],   # image 1: right at rank 1
                               [0.7, 0.6, 0.2]])  # image 2: right at rank 2
    assert recall_at_k(similarity, (1, 2, 3)) == pytest.approx({1: 100 / 3, 2: 200 / 3, 3: 100.0})
    ties = torch.ones(3, 3)  # ties count as right: no candidate scores strictly higher
    assert recall_at_k(ties, (1,)) == {1: 100.0}


def test_zero_shot_scoring_runs_on_a_real_untrained_clip():
    from archsearch.data.embedded import classification_task, retrieval_task
    from archsearch.models.clip import build_clip
    from archsearch.proxy.evaluate import evaluate

    cls, ret = classification_task(n=128, image_size=32), retrieval_task(n=32, image_size=32)
    model = build_clip(scale_down(get_preset("mobileclip_s0"), ScaleDown(**TINY_RECIPE["scale"])))
    scores = evaluate(model, cls, ret)
    assert set(scores) == {"zeroshot_top1", "i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"}
    assert scores["i2t_r1"] <= scores["i2t_r5"] and scores["t2i_r1"] <= scores["t2i_r5"]
    assert scores["zeroshot_top1"] < 20  # an untrained model is near chance (1.6%) on 64 classes


@pytest.fixture
def tiny_recipe(tmp_path, monkeypatch):
    """A recipe whose whole pipeline (pixel cache, 2 teachers, store, proxy) runs in seconds."""
    monkeypatch.chdir(tmp_path)  # runs/ caches land in the test's directory
    torch.set_num_threads(1)
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(TINY_RECIPE))
    return path


@pytest.mark.slow
def test_proxy_run_is_deterministic_and_distils_from_its_own_teachers(tiny_recipe):
    from archsearch.data.store import ReinforcedStore
    from archsearch.proxy.assets import ensure_store
    from archsearch.proxy.run import run_proxy

    recipe = load_recipe(tiny_recipe)
    first = run_proxy(get_preset("mobileclip_s0"), recipe, wandb="disabled", progress=False)
    second = run_proxy(get_preset("mobileclip_s0"), recipe, wandb="disabled", progress=False)
    metrics = ("zeroshot_top1", "i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5")
    assert {k: first[k] for k in metrics} == {k: second[k] for k in metrics}
    assert first["steps"] == 3 and first["images_per_second"] > 0 and math.isfinite(first["train_loss_tail"])
    store = ReinforcedStore.open(ensure_store(recipe, progress=False))
    assert len(store.teachers) == 2 and all(t.id.startswith("archsearch:") for t in store.teachers)
    assert store.settings.augmentations == 2 and len(store) == 192


@pytest.mark.slow
def test_teachers_trained_side_by_side_equal_teachers_trained_one_after_another(tiny_recipe, monkeypatch):
    """Parallel teacher training only changes when they finish: with the same threads per teacher,
    two spawned workers save the very weights a sequential loop saves."""
    import archsearch.proxy.teach as teach_module
    from archsearch.data.teachers import CHECKPOINT_NAME

    recipe = load_recipe(tiny_recipe)

    def weights(dirs):
        return [torch.load(d / CHECKPOINT_NAME, map_location="cpu", weights_only=False) for d in dirs]

    monkeypatch.setattr(teach_module, "available_cpus", lambda: [0, 1])  # 2 at once, 1 thread each
    parallel = weights(teach_module.teach(recipe, progress=False))
    monkeypatch.setattr(teach_module, "available_cpus", lambda: [0])  # one after another, 1 thread
    sequential = weights(teach_module.teach(recipe, progress=False, force=True))
    assert [t["meta"]["threads"] for t in parallel] == [1, 1] == [t["meta"]["threads"] for t in sequential]
    assert parallel[0]["meta"]["seed"] != parallel[1]["meta"]["seed"]
    for a, b in zip(parallel, sequential):
        assert a["state_dict"].keys() == b["state_dict"].keys()
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert not torch.equal(next(iter(parallel[0]["state_dict"].values())), next(iter(parallel[1]["state_dict"].values())))


def test_non_finite_loss_fails_the_run_with_its_reason():
    from archsearch.training.fit import fit
    from archsearch.training.module import NonFiniteLoss

    class Poisoned(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            tokens = torch.zeros(24, dtype=torch.long)
            tokens[:3] = torch.tensor([49406, 320, 49407])
            return {"image": torch.full((3, 32, 32), float("nan")), "text": tokens}

    torch.set_num_threads(1)
    spec = scale_down(get_preset("mobileclip_s0"), ScaleDown(**TINY_RECIPE["scale"]))
    with pytest.raises(NonFiniteLoss, match="non-finite loss at step 0: text/loss=nan"):
        fit(spec, Poisoned(), TrainConfig(steps=2, batch_size=4), LossConfig(kd_lambda=0.0, captions="real"),
            seed=0, progress=False)


def test_distillation_without_a_store_is_refused(tiny_recipe):
    from archsearch.proxy.run import run_proxy

    recipe = load_recipe(tiny_recipe).model_copy(update={"data": load_recipe(tiny_recipe).data.model_copy(update={"store": None})})
    with pytest.raises(UserError, match="data.store is null, but loss.kd_lambda = 1.0"):
        run_proxy(get_preset("mobileclip_s0"), recipe, wandb="disabled", progress=False)


ARCHSEARCH = shutil.which("archsearch", path=str(Path(sys.executable).parent)) or "archsearch"


@pytest.mark.slow
def test_cli_proxy_json_as_a_user_runs_it(tmp_path):
    (tmp_path / "tiny.yaml").write_text(json.dumps(TINY_RECIPE))
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    result = subprocess.run([ARCHSEARCH, "proxy", "MobileCLIP-S0", "--recipe", "tiny.yaml", "--json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    for key in ("zeroshot_top1", "i2t_r1", "t2i_r1", "train_seconds", "images_per_second"):
        assert isinstance(data[key], float)
    assert data["status"] == "ok" and data["preset"] == "mobileclip_s0"
    assert list((tmp_path / "runs" / "proxy" / "mobileclip_s0-test-tiny" / "wandb").glob("offline-run-*"))
    assert len(list((tmp_path / "runs" / "teachers").iterdir())) == 2

    bad = subprocess.run([ARCHSEARCH, "proxy", "MobileCLIP-S0", "--recipe", "nope"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("archsearch: error: unknown recipe 'nope'")


def test_student_seed_varies_the_training_but_not_teachers_or_store():
    from archsearch.proxy.assets import store_path
    from archsearch.proxy.run import student_seed

    recipe = load_recipe("cpu-tiny")
    reseeded = recipe.model_copy(update={"train": recipe.train.model_copy(update={"seed": 7})})
    assert student_seed(recipe) == recipe.seed and student_seed(reseeded) == 7
    assert store_path(recipe, ["t"]) == store_path(reseeded, ["t"])


def test_cpu_small_is_cpu_tiny_trained_ten_times_longer():
    """Fidelity compares training length alone: same data, teachers, store and proxy sizes."""
    tiny, small = load_recipe("cpu-tiny"), load_recipe("cpu-small")
    assert small.data == tiny.data and small.scale == tiny.scale and small.loss == tiny.loss
    assert small.train.steps == 10 * tiny.train.steps and small.train.batch_size == tiny.train.batch_size


@pytest.mark.slow
def test_proxy_runs_side_by_side_wait_for_one_asset_builder(tiny_recipe):
    """While one process holds the assets lock, another's ensure_store trains nothing; it goes on
    (and finds or builds the assets) once the lock is free."""
    import threading

    from archsearch.proxy.assets import assets_lock, ensure_store

    recipe = load_recipe(tiny_recipe)
    done: list = []
    with assets_lock():
        waiter = threading.Thread(target=lambda: done.append(ensure_store(recipe, progress=False)))
        waiter.start()
        waiter.join(timeout=3)
        assert waiter.is_alive() and not done and not (Path("runs") / "teachers").exists()
    waiter.join(timeout=300)
    assert done and (done[0] / "manifest.json").is_file()
    assert len(list((Path("runs") / "teachers").iterdir())) == 2


def test_proxy_layer_scale_init_touches_only_the_trained_proxy():
    """The scale-down rule's proxy-only init: the proxy spec, every full-size build and so every
    export and latency figure keep the papers' 1e-5; only the module a proxy trains starts higher."""
    from archsearch.models.clip import build_clip
    from archsearch.models.init import set_layer_scale
    from archsearch.training.module import ClipModule

    def gains(model):
        return {round(float(v), 7) for name, p in model.named_parameters()
                if name.endswith(("gamma", "layer_scale")) for v in p.detach().flatten()}

    full = get_preset("mobileclip_s0")
    plain_rule, opened = ScaleDown(), ScaleDown(layer_scale_init=0.1)
    assert scale_down(full, opened) == scale_down(full, plain_rule)
    assert gains(build_clip(full)) == {1e-5}
    proxy = scale_down(full, opened)
    module = ClipModule(proxy, TrainConfig(), LossConfig(), (8,), layer_scale_init=opened.layer_scale_init)
    assert gains(module.model) == {0.1}
    assert gains(ClipModule(proxy, TrainConfig(), LossConfig(), (8,)).model) == {1e-5}
    # RepMixer mixers and blocks, conv-attention blocks, Text-RepMixers, and two per transformer block
    assert set_layer_scale(build_clip(full), 0.5) == 44 + 2 * 4
    assert set_layer_scale(build_clip(proxy), 0.5) == 24 + 2 * 2
    assert set_layer_scale(build_clip(get_preset("vitamin_s")), 0.5) == 2 * 14 + 2 * 12
    with pytest.raises(Exception, match="layer_scale_init"):
        ScaleDown(layer_scale_init=0.0)


def test_gains_added_to_transformer_blocks_sit_on_their_residual_branches():
    """A gain of 1 added to gain-free ViT and text blocks changes nothing; a small one shrinks every
    branch, so the tower's output moves: the added LayerScales are on the residual path."""
    from archsearch.models.clip import build_clip
    from archsearch.models.init import set_layer_scale
    from archsearch.models.tokenizer import tokenize

    spec = scale_down(get_preset("vitamin_s"), ScaleDown(**TINY_RECIPE["scale"]))
    torch.manual_seed(0)
    model = build_clip(spec).eval()
    images, tokens = torch.rand(2, 3, 32, 32), tokenize(["a large red star", "two small rings"], 24)
    with torch.no_grad():
        before = (model.encode_image(images), model.encode_text(tokens))
        set_layer_scale(model, 1.0)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(before, (model.encode_image(images),
                                                                           model.encode_text(tokens))))
        set_layer_scale(model, 0.01)
        assert not torch.allclose(before[0], model.encode_image(images), atol=1e-3)
        assert not torch.allclose(before[1], model.encode_text(tokens), atol=1e-3)


def test_train_loss_tail_averages_the_last_quarter_of_the_steps():
    from types import SimpleNamespace

    from archsearch.training.fit import TrainLossTail

    tail = TrainLossTail(steps=8)
    for step in range(1, 9):  # global_step after the update; losses 10, 20, ..., 80
        tail.on_train_batch_end(SimpleNamespace(global_step=step), None, {"loss": torch.tensor(10.0 * step)}, None,
                                step - 1)
    assert tail.value == pytest.approx(75.0)  # steps 7 and 8
    assert math.isnan(TrainLossTail(steps=8).value)


@pytest.mark.slow
def test_every_architecture_sees_the_same_batches_at_one_seed(tiny_recipe):
    """Common random numbers: at one student seed, two architectures train on the same samples,
    stored views and synthetic captions in the same order, so their scores differ by the model alone."""
    import lightning as L

    from archsearch.proxy.run import run_proxy

    class Seen(L.Callback):
        def __init__(self):
            self.batches = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.batches.append([batch[k].tolist() for k in ("index", "view", "synthetic")])

    recipe = load_recipe(tiny_recipe)
    seen = {}
    for name in ("mobileclip_s0", "vitamin_s"):
        seen[name] = Seen()
        run_proxy(get_preset(name), recipe, wandb="disabled", progress=False, callbacks=[seen[name]])
    assert len(seen["mobileclip_s0"].batches) == recipe.train.steps
    assert seen["mobileclip_s0"].batches == seen["vitamin_s"].batches
    reseeded = recipe.model_copy(update={"train": recipe.train.model_copy(update={"seed": 5})})
    other = Seen()
    run_proxy(get_preset("mobileclip_s0"), reseeded, wandb="disabled", progress=False, callbacks=[other])
    assert other.batches != seen["mobileclip_s0"].batches
