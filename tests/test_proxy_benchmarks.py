"""The proxy benchmarks' own logic (benchmarks.proxy_scores, proxy_fidelity, proxy_levers, runlog,
proxy_throughput); nothing here trains or times a model."""

from __future__ import annotations

import importlib
import json

import pytest

from benchmarks import proxy_fidelity as protocol
from benchmarks import proxy_scores as scores
from benchmarks import proxy_throughput as throughput
from benchmarks import runlog


@pytest.mark.parametrize("op, group", [
    ("aten::convolution_backward", "conv backward"), ("aten::mkldnn_convolution", "conv forward"),
    ("aten::addmm", "matmul"), ("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "attention"),
    ("aten::native_layer_norm_backward", "norm"), ("aten::gelu_backward", "activation"),
    ("Optimizer.step#AdamW.step", "optimizer"), ("aten::copy_", "other"),
])
def test_profiler_ops_fall_into_their_group(op, group):
    assert throughput.op_group(op) == group


def test_proxy_levers_are_validated_recipes_and_their_screen_figures_follow_the_runs():
    from archsearch.analysis.ranking import PUBLISHED_PRESETS
    from archsearch.proxy.recipe import load_recipe

    levers = importlib.import_module("benchmarks.proxy_levers")
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

    # Against the reference: seed by seed against its seed 0, and the seed-0 score against the mean of
    # its two seeds over the architectures where both ran (one has seed 0 only).
    from scipy.stats import kendalltau

    reference = {n: [30.0 - i, 29.0 - i if i % 3 else 40.0] for i, n in enumerate(names)}
    reference[names[-1]][1] = None
    top1 = levers.summarise("ls0.1", varied, names, rows, [0, 1], costs, reference)["zeroshot_top1"]
    assert top1["tau_reference_seed0"]["seed0"] == pytest.approx(-1.0)
    both = names[:-1]
    expected = kendalltau([seed0[n] for n in both], [sum(reference[n]) / 2 for n in both]).statistic
    assert top1["tau_reference_mean"]["n"] == len(both)
    assert top1["tau_reference_mean"]["tau"] == pytest.approx(expected)


def test_protocol_draws_are_fixed_by_the_seed_and_hold_every_layout_twice():
    from collections import Counter

    from archsearch.space import load_space

    draws = protocol.protocol_draws(14, seed=0, per_layout=2)
    assert len(draws) == 14 and len({name for name, _, _ in draws}) == 14
    layouts = Counter(layout for _, layout, _ in draws)
    assert set(layouts) == set(load_space("hybrid").file.image.layouts) and min(layouts.values()) >= 2
    again = protocol.protocol_draws(14, seed=0, per_layout=2)
    assert [(n, s.to_dict()) for n, _, s in again] == [(n, s.to_dict()) for n, _, s in draws]
    assert [n for n, _, _ in protocol.protocol_draws(14, seed=1)] != [n for n, _, _ in draws] or \
        [s.to_dict() for _, _, s in protocol.protocol_draws(14, seed=1)] != [s.to_dict() for _, _, s in draws]
    # a quota the count cannot hold is refused, not silently shrunk
    with pytest.raises(ValueError, match="cannot hold 3 of each of 5 layouts"):
        protocol.protocol_draws(14, seed=0, per_layout=3)


def test_reference_recipe_must_be_ten_times_longer_with_the_same_loss_and_no_smaller_scale():
    short, reference = scores.load_recipe("cpu-tiny"), scores.load_recipe("cpu-small")
    protocol.check_reference(short, reference)  # the shipped pair fits
    with pytest.raises(ValueError, match=r"train.steps 400 < 10 x 80"):
        protocol.check_reference(short, reference.model_copy(
            update={"train": reference.train.model_copy(update={"steps": 400})}))
    with pytest.raises(ValueError, match=r"loss .*differs"):
        protocol.check_reference(short, runlog.plain(reference))
    with pytest.raises(ValueError, match=r"scale.resolution 32 < the short recipe's 64"):
        protocol.check_reference(short, reference.model_copy(
            update={"scale": reference.scale.model_copy(update={"resolution": 32})}))


def _protocol_inputs(reference_missing: int = 0):
    names = ["mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b", "vitamin_s", "vitamin_b", "d1", "d2"]
    kinds = {n: "preset" if n.startswith(("mob", "vit")) else "vit" for n in names}
    costs = {n: {"params_m": 10.0 + i, "gmacs": 1.0 + (i % 3), "layout": "A2 @64 | text A x64"}
             for i, n in enumerate(names)}
    short = {n: [10.0 + i, 10.5 + i] for i, n in enumerate(names)}  # papers' order, both seeds
    short["d2"] = [11.2, 11.7]  # d2 ranks low at both seeds, between S1 and S2
    reference = {n: [40.0 + 2 * i, 41.0 + 2 * i] for i, n in enumerate(names)}
    for n in names[len(names) - reference_missing:]:
        reference[n] = [None, None]
    extra = {"vitamin_l": [30.0, 3.0]}  # ViTamin-L in order at seed 0, last at seed 1
    loss = {n: [8.0 - 0.1 * i, 8.1 - 0.1 * i] for i, n in enumerate(names)}
    return names, kinds, costs, short, reference, extra, loss


def test_protocol_figures_follow_the_scores():
    from scipy.stats import kendalltau

    names, kinds, costs, short, reference, extra, loss = _protocol_inputs()
    out = protocol.summarise(names, kinds, costs, short, reference, extra, loss)
    s0 = [short[n][0] for n in names]
    mean = [sum(reference[n]) / 2 for n in names]
    assert out["tau_short_reference"] == pytest.approx(kendalltau(s0, mean).statistic)
    assert out["tau_short_seeds"] == pytest.approx(1.0)  # d2 moves alike at both seeds
    assert out["tau_reference_seeds"] == pytest.approx(1.0)
    assert out["tau_params"] == pytest.approx(1.0) and out["tau_gmacs"] < 0.5
    low, high = out["tau_short_reference_ci"]
    assert low <= out["tau_short_reference"] <= high
    assert out["reference_complete"] == 8 and out["best_reference_top1"] == 41.0 + 14
    assert out["preset_order_swaps_total"] == {"seed0": 0.0, "seed1": 2.0}  # L below S and B at seed 1
    assert out["min_multiple_of_chance"] == pytest.approx(10.0 / (100 / 64))
    assert out["tau_short_loss_tail_seeds"] == pytest.approx(1.0)
    assert [row["arch"] for row in out["table"]] == names and out["table"][0]["reference_mean"] == 40.5
    met = protocol.targets(out, 80.0)
    assert met["tau_short_seeds"]["met"] and met["median_trial_seconds"]["met"]
    assert met["preset_order_swaps"] == {**met["preset_order_swaps"], "value": 2.0, "met": False}
    assert met["tau_short_reference"]["baseline"] == pytest.approx(1.0)
    assert met["tau_short_reference"]["met"] is False  # not 0.15 above the params baseline


def test_protocol_with_a_partial_reference_reports_its_n_and_leaves_the_target_open():
    names, kinds, costs, short, reference, extra, loss = _protocol_inputs(reference_missing=3)
    out = protocol.summarise(names, kinds, costs, short, reference, extra, loss)
    assert out["reference_complete"] == 5 and out["table"][-1]["reference_mean"] is None
    assert out["reference_seed0_complete"] == 5 and out["tau_short_reference_seed0"] == pytest.approx(1.0)
    low, high = out["tau_short_reference_seed0_ci"]
    assert low <= out["tau_short_reference_seed0"] <= high
    assert out["tau_short_reference"] == pytest.approx(1.0)  # over the 5 with a reference
    assert protocol.targets(out, 120.0)["tau_short_reference"]["met"] is None
    none = protocol.summarise(names, kinds, costs, short, {n: [None, None] for n in names}, extra, loss)
    assert none["tau_short_reference"] is None and none["tau_reference_seeds"] is None


def test_protocol_report_names_every_architecture_and_the_partial_reference(tmp_path):
    from scipy.stats import kendalltau

    from archsearch.analysis.fidelity import load_fidelity

    names, kinds, costs, short, reference, extra, loss = _protocol_inputs(reference_missing=3)
    summary = protocol.summarise(names, kinds, costs, short, reference, extra, loss)
    summary["median_trial_seconds"] = 95.0
    summary["score_screen"] = protocol.score_screen(names, {"zeroshot_top1": short}, reference, costs)
    tiny, small = scores.load_recipe("cpu-tiny"), scores.load_recipe("cpu-small")
    machine = {"cpu": "test cpu", "threads": 1, "libraries": {"torch": "2.14.1"}}
    record = {"meta": {"date": "2026-12-06", "command": "python -m benchmarks.proxy_scores fidelity",
                       "machine": machine}, **summary, "recipe": tiny.to_dict(), "reference_recipe": small.to_dict(),
              "teachers_top1": [86.8, 94.4], "targets": protocol.targets(summary, 95.0),
              "draws": [{"name": "d1", "layout": "vit"}, {"name": "d2", "layout": "vit"}]}
    # the figures the report is rendered from: 5 of 8 have a reference at both seeds (and at seed 0)
    complete = names[:5]
    assert record["reference_complete"] == 5 and record["reference_seed0_complete"] == 5
    assert len(record["architectures"]) == 8
    expected_tau = kendalltau([short[n][0] for n in complete], [sum(reference[n]) / 2 for n in complete]).statistic
    assert record["tau_short_reference"] == pytest.approx(expected_tau) == pytest.approx(1.0)
    assert record["tau_short_reference_seed0"] == pytest.approx(
        kendalltau([short[n][0] for n in complete], [reference[n][0] for n in complete]).statistic)
    median = record["targets"]["median_trial_seconds"]
    assert median["value"] == 95.0 and median["met"] is False  # over the 90 s target
    assert record["targets"]["tau_short_reference"]["met"] is None  # partial reference: left open
    assert [row["arch"] for row in record["table"] if row["reference_mean"] is None] == names[5:]

    # the report shows them: a row per architecture and per target, the value in its row, the partial n
    lines = protocol.report(record, workers=2)
    text = "\n".join(lines)
    assert all(f"| {n} |" in text for n in names)

    def row(first_cell):
        found = [line for line in lines if line.startswith(f"| {first_cell} |")]
        assert len(found) == 1, (first_cell, found)
        return found[0]

    assert all(row(name) for name in record["targets"])
    median_row = row("median_trial_seconds")
    assert "95" in median_row and "no" in [cell.strip() for cell in median_row.split("|")]  # value, not met
    assert any("reference mean" in line and f"{expected_tau:.2f}" in line and "5 of 8" in line for line in lines)
    assert any("5 of 8" in line for line in lines[lines.index("## Targets"):])  # the partial reference is said
    # the analysis room reads the same record (what the notebook plots)
    path = tmp_path / "proxy_fidelity.json"
    path.write_text(json.dumps(record))
    fidelity = load_fidelity(path)
    assert [r.arch for r in fidelity.with_reference] == names[:5]
    assert fidelity.short_recipe == "cpu-tiny" and fidelity.reference_name == "cpu-small"


def test_score_screen_sets_every_short_score_and_the_baselines_against_the_reference():
    names, kinds, costs, short, reference, extra, loss = _protocol_inputs(reference_missing=3)
    reversed_scores = {n: [-v for v in short[n]] for n in names}
    out = protocol.score_screen(names, {"top1": short, "reversed": reversed_scores}, reference, costs)
    assert out["top1"]["tau_reference_seed0"] == pytest.approx(1.0) and out["top1"]["n_seed0"] == 5
    assert out["reversed"]["tau_reference_mean"] == pytest.approx(-1.0) and out["reversed"]["n_mean"] == 5
    assert out["params_m"]["tau_reference_seed0"] == pytest.approx(1.0) and out["params_m"]["tau_seeds"] is None
    assert protocol.score_screen(names[:2], {"top1": short}, reference, costs)["top1"]["tau_reference_seed0"] is None


def test_two_stage_promotes_whole_non_dominated_layers_and_scores_recovery_against_the_true_front():
    two_stage = importlib.import_module("benchmarks.proxy_two_stage")
    score = [10.0, 20.0, 30.0, 15.0, 5.0]
    latency = [1.0, 2.0, 3.0, 2.5, 0.5]
    # front: 4 (5 @0.5), 0 (10 @1), 1 (20 @2), 2 (30 @3); 3 is dominated by 1
    assert two_stage.layers(score, latency) == [[4, 0, 1, 2], [3]]
    assert two_stage.promoted(score, latency, 2) == [2, 1]  # the last layer taken is cut by score
    assert two_stage.promoted(score, latency, 5) == [2, 1, 0, 4, 3]
    truth = [1.0, 2.0, 3.0, 4.0, 0.0]  # the true front: 0, 1, 3 (4 has no accuracy, 2 is dominated by 3)
    front = {0, 1, 3}
    hv, recall = two_stage.recovery([0, 1, 2, 3, 4], truth, latency, front, latency_ref=4.0)
    assert hv == pytest.approx(1.0) and recall == 1.0
    hv, recall = two_stage.recovery([0], truth, latency, front, latency_ref=4.0)
    # the true front dominates 1 x 1 + 2 x 0.5 + 4 x 1.5 = 8 up to latency 4; trial 0 alone 1 x 3
    assert hv == pytest.approx(3 / 8) and recall == pytest.approx(1 / 3)
    chance = two_stage.random_recoveries(5, 1, truth, latency, front, 4.0)
    assert len(chance) == 5 and max(c[0] for c in chance) == pytest.approx(4 * 1.5 / 8)


def test_curve_fidelity_ranks_each_step_of_one_seed_against_the_other_seeds_final_as_scipy_does():
    from scipy.stats import kendalltau

    curves = {n: [{"step": 80, "zeroshot_top1": early}, {"step": 160, "zeroshot_top1": late}]
              for n, early, late in [("a", 5.0, 40.0), ("b", 9.0, 30.0), ("c", 7.0, 35.0), ("d", 8.0, 20.0)]}
    other = {"a": 41.0, "b": 33.0, "c": 30.0, "d": 22.0, "e": 50.0}  # e has no curve: not counted
    rows = protocol.curve_fidelity(curves, other, {n: 0.5 for n in curves})
    assert [r["step"] for r in rows] == [80, 160] and all(r["n"] == 4 for r in rows)
    names = ["a", "b", "c", "d"]
    for row, k in zip(rows, (0, 1)):
        mine = [curves[n][k]["zeroshot_top1"] for n in names]
        assert row["tau_other_seed_final"] == pytest.approx(kendalltau(mine, [other[n] for n in names]).statistic)
        assert row["tau_own_final"] == pytest.approx(kendalltau(mine, [curves[n][1]["zeroshot_top1"] for n in names]).statistic)
    assert rows[0]["seconds"] == pytest.approx(40.0) and rows[1]["tau_own_final"] == pytest.approx(1.0)
    assert protocol.curve_fidelity({"a": curves["a"]}, other, {"a": 0.5}) == []  # too few to rank
