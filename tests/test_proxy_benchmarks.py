"""The proxy benchmarks' own logic (benchmarks/proxy_scores.py, proxy_throughput.py); nothing here
trains or times a model."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
scores = importlib.import_module("proxy_scores")
throughput = importlib.import_module("proxy_throughput")


def test_seed_repeatability_pairs_the_seeds_of_each_architecture_and_recipe():
    rows = [{"arch": arch, "recipe": recipe + suffix, "zeroshot_top1": value}
            for arch, recipe, values in (("a", "r", (1, 2, 3)), ("b", "r", (2, 3, 1)), ("c", "r", (3, 1, 2)),
                                         ("d", "r-textdepth1", (4, 4, 4)), ("e", "r", (9, 9)))
            for suffix, value in zip(("", "-seed1", "-seed2"), values)]
    result = scores.seed_repeatability(rows)
    assert result["items"] == ["a (r)", "b (r)", "c (r)", "d (r-textdepth1)"]  # e lacks seed 2
    # seed 0 ranks a<b<c<d; seed 1 c<a<b<d: of the 6 pairs, 4 agree, 2 do not -> tau 1/3
    assert result["kendall_tau_between_seeds"]["0-1"] == pytest.approx(1 / 3)
    assert result["mean_seed_sd_top1"] == pytest.approx(3 / 4)
    assert scores.seed_repeatability(rows[:6])["items"] == []


def test_fidelity_table_lists_every_architecture_and_both_taus():
    summary = {"architectures": ["a", "b"], "short_recipe": "cpu-tiny", "long_recipe": "cpu-small",
               "reinforced": {"kendall_tau": 1.0, "short": [1.0, 2.0], "long": [3.0, 4.0]},
               "plain": {"kendall_tau": -1.0, "short": [2.0, 1.0], "long": [3.0, 4.0]},
               "seed_repeatability": {"items": []}}
    lines = scores.fidelity_table(summary)
    assert lines[0] == "| arch | cpu-tiny reinforced | cpu-small reinforced | cpu-tiny plain | cpu-small plain |"
    assert lines[2:4] == ["| a | 1.0 | 3.0 | 2.0 | 3.0 |", "| b | 2.0 | 4.0 | 1.0 | 4.0 |"]
    assert "- reinforced: Kendall tau (cpu-tiny vs cpu-small) = 1.00" in lines
    assert "- plain: Kendall tau (cpu-tiny vs cpu-small) = -1.00" in lines


@pytest.mark.parametrize("op, group", [
    ("aten::convolution_backward", "conv backward"), ("aten::mkldnn_convolution", "conv forward"),
    ("aten::addmm", "matmul"), ("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "attention"),
    ("aten::native_layer_norm_backward", "norm"), ("aten::gelu_backward", "activation"),
    ("Optimizer.step#AdamW.step", "optimizer"), ("aten::copy_", "other"),
])
def test_profiler_ops_fall_into_their_group(op, group):
    assert throughput.op_group(op) == group


def test_fidelity_table_marks_a_variant_not_run_yet():
    summary = {"architectures": ["a"], "short_recipe": "s", "long_recipe": "l",
               "reinforced": {"kendall_tau": 0.5, "short": [1.0], "long": [2.0]},
               "missing": {"plain": ["a (l-plain)"]}, "partial": {"plain": {"short": [3.0], "long": [None]}},
               "seed_repeatability": {"items": []}}
    lines = scores.fidelity_table(summary)
    assert lines[2] == "| a | 1.0 | 2.0 | 3.0 | not run |"
    assert "- plain: not measured yet; missing a (l-plain)" in lines


def test_long_kd_lambda_renames_the_recipe_and_changes_lambda_alone():
    base = scores.load_recipe("cpu-small")
    changed = scores.with_kd_lambda(base, 0.75)
    assert changed.name == "cpu-small-kd0.75" and changed.loss.kd_lambda == 0.75
    assert {**changed.to_dict(), "name": base.name, "loss": base.to_dict()["loss"]} == base.to_dict()
    with pytest.raises(Exception, match="kd_lambda"):
        scores.with_kd_lambda(base, 1.5)


def test_fidelity_table_names_the_long_reinforced_recipe_where_it_differs():
    summary = {"architectures": ["a", "b"], "short_recipe": "cpu-tiny", "long_recipe": "cpu-small",
               "long_reinforced_recipe": "cpu-small-kd0.75",
               "reinforced": {"kendall_tau": 1.0, "short": [1.0, 2.0], "long": [3.0, 4.0]},
               "plain": {"kendall_tau": -1.0, "short": [2.0, 1.0], "long": [3.0, 4.0]},
               "reinforced_short_vs_plain_long": 1.0, "seed_repeatability": {"items": []}}
    lines = scores.fidelity_table(summary)
    assert lines[0] == "| arch | cpu-tiny reinforced | cpu-small-kd0.75 reinforced | cpu-tiny plain | cpu-small plain |"
    assert "- reinforced: Kendall tau (cpu-tiny vs cpu-small-kd0.75) = 1.00" in lines
    assert "- plain: Kendall tau (cpu-tiny vs cpu-small) = -1.00" in lines
    assert "- reinforced cpu-tiny vs plain cpu-small (no teacher ceiling on the long run): Kendall tau = 1.00" in lines


def test_proxy_levers_are_validated_recipes_and_their_screen_figures_follow_the_runs():
    from archsearch.analysis.ranking import PUBLISHED_PRESETS
    from archsearch.proxy.recipe import load_recipe

    levers = importlib.import_module("proxy_levers")
    base = load_recipe("cpu-tiny")
    assert levers.with_overrides(base, "default") == base
    varied = levers.with_overrides(base, "ls0.1-r32-s240")
    assert (varied.name, varied.scale.resolution, varied.scale.layer_scale_init, varied.train.steps) == \
        ("cpu-tiny@ls0.1-r32-s240", 32, 0.1, 240)
    assert varied.data == base.data and varied.loss == base.loss  # one lever changes the proxy, not the store
    for name in levers.LEVERS:
        levers.with_overrides(base, name)  # every lever is a valid recipe

    names = list(PUBLISHED_PRESETS)
    # seed 0 in the papers' order; seed 1 swaps S2 and B
    seed0 = {n: 10.0 + i for i, n in enumerate(names)}
    seed1 = {**seed0, "mobileclip_s2": seed0["mobileclip_b"], "mobileclip_b": seed0["mobileclip_s2"]}
    rows = [{"zeroshot_top1": s[n], "train_loss_tail": 100 - s[n] if s is seed0 else 1.0, "train_seconds": 50.0,
             "wall_seconds": 60.0 + i} for i, n in enumerate(names) for s in (seed0, seed1)]
    costs = {n: {"params_m": float(i), "gmacs": float(-i)} for i, n in enumerate(names)}
    out = levers.summarise("ls0.1", varied, names, rows, [0, 1], costs)
    top1, loss = out["zeroshot_top1"], out["neg_train_loss_tail"]
    assert top1["preset_order_swaps"] == {"seed0": {"MobileCLIP": 0.0, "ViTamin": 0.0},
                                          "seed1": {"MobileCLIP": 1.0, "ViTamin": 0.0}}
    assert top1["tau_seeds"] == pytest.approx(1 - 2 * 1 / 21)  # one discordant pair of 21
    assert out["min_multiple_of_chance"] == pytest.approx(10.0 / (100 / 64))
    assert out["median_wall_seconds"] == pytest.approx(63.0)
    assert top1["tau_params"] > 0.9 and top1["tau_gmacs"] < -0.9
    # minus the loss: seed 0 in order (lower loss = better), seed 1 all tied (half a swap per pair)
    assert loss["preset_order_swaps"]["seed0"] == {"MobileCLIP": 0.0, "ViTamin": 0.0}
    assert loss["preset_order_swaps"]["seed1"] == {"MobileCLIP": 3.0, "ViTamin": 1.5}
    unscored = [{**r, "train_loss_tail": None} for r in rows]  # runs logged before the score existed
    assert "neg_train_loss_tail" not in levers.summarise("default", varied, names, unscored, [0, 1], costs)
