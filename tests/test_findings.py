"""The finding benchmarks' own logic (benchmarks/finding_*.py, findings_common.py) and the reader
of their results (archsearch.analysis.findings); nothing here trains or times a model."""

from __future__ import annotations

import json

import pytest

from archsearch.errors import UserError
from archsearch.proxy.recipe import load_recipe
from archsearch.proxy.scale import scale_down
from archsearch.spec import get_preset

from benchmarks import finding_latency_order as latency_order
from benchmarks import finding_mlp_ratio as mlp_ratio
from benchmarks import finding_reinforcement as reinforcement
from benchmarks import findings_common as common
from benchmarks import runlog


def test_recipe_variants_keep_the_recipe_at_its_own_values_and_rename_otherwise():
    recipe = load_recipe("cpu-tiny")
    assert runlog.with_steps(recipe, recipe.train.steps) is recipe
    assert runlog.with_seed(recipe, recipe.seed) is recipe
    longer = runlog.with_steps(recipe, 320)
    assert (longer.name, longer.train.steps, longer.train.warmup_steps) == ("cpu-tiny-320steps", 320, 40)
    reseeded = runlog.with_seed(recipe, 2)
    assert (reseeded.name, reseeded.train.seed, reseeded.seed) == ("cpu-tiny-seed2", 2, recipe.seed)
    deep_text = runlog.with_scale(recipe, "textdepth1", text_depth_mult=1.0)
    assert deep_text.scale.text_depth_mult == 1.0 and deep_text.scale.width_mult == recipe.scale.width_mult


@pytest.mark.parametrize("curve, target, expected", [
    ([(20, 5.0), (40, 8.0), (80, 10.0)], 10.0, 80.0),       # reached exactly at a measured point
    ([(20, 5.0), (40, 8.0), (80, 12.0)], 10.0, 40 * 2 ** 0.5),  # halfway in log steps between 40 and 80
    ([(20, 11.0), (40, 12.0)], 10.0, 20.0),                  # already there at the first point
    ([(20, 5.0), (40, 8.0)], 10.0, None),                    # never reached
    ([(20, 5.0), (40, 9.0), (80, 7.0), (160, 11.0)], 10.0, 80 * 2 ** 0.5),  # a dip: running maximum
])
def test_plain_steps_to_match_interpolates_in_log_steps(curve, target, expected):
    got = reinforcement.plain_steps_to_match(target, curve)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_param_model_is_exact_and_the_matched_ratio_4_tower_has_mci0s_params():
    s0 = get_preset("mobileclip_s0")
    scale = load_recipe("cpu-tiny").scale
    ratio4 = mlp_ratio.with_mlp(s0, 4.0, (2, 6, 10, 2))
    model = mlp_ratio.ParamModel(ratio4, None)
    assert model((1, 3, 5, 2)) == mlp_ratio.image_params(mlp_ratio.with_mlp(s0, 4.0, (1, 3, 5, 2)))
    match = mlp_ratio.matched_depths(s0, 4.0, scale)
    assert match["full_gap"] <= 0.03 and sum(match["depths"]) < sum(mlp_ratio.depths_of(s0))
    matched = mlp_ratio.with_mlp(s0, 4.0, match["depths"])
    proxy_gap = abs(mlp_ratio.image_params(scale_down(matched, scale)) / mlp_ratio.image_params(scale_down(s0, scale)) - 1)
    assert proxy_gap == pytest.approx(match["proxy_gap"])
    assert {s.mlp_ratio for s in matched.image.stages} == {4.0}
    assert [s.width for s in matched.image.stages] == [s.width for s in s0.image.stages]  # only ratio and depth differ


def test_latency_order_needs_strict_increase():
    assert latency_order.strictly_increasing([1.0, 2.0, 3.0])
    assert not latency_order.strictly_increasing([1.0, 3.0, 3.0])


def test_load_findings_names_the_missing_results_and_the_scripts(tmp_path):
    from archsearch.analysis.findings import load_findings

    (tmp_path / "finding_mlp_ratio.json").write_text("{}")
    with pytest.raises(UserError) as err:
        load_findings(tmp_path)
    message = str(err.value)
    assert "reinforcement" in message and "python -m benchmarks.finding_reinforcement" in message
    assert "finding_mlp_ratio.py" not in message


def test_write_finding_round_trips_through_load_findings(tmp_path, monkeypatch):
    from archsearch.analysis.findings import FINDINGS, load_findings

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    meta = {"date": "2026-01-02", "command": "python benchmarks/x.py", "recipe": "cpu-tiny",
            "machine": {"cpu": "test", "libraries": {"torch": "2.14.1"}}}
    for i, key in enumerate(FINDINGS):
        common.write_finding(key, f"title {key}", meta, paper="p", measured=["| a |"], seeds=3,
                             reproduced=bool(i % 2), verdict="v", tried="t", summary={"n": i}, rows=[])
    findings = load_findings(tmp_path)
    assert [f.key for f in findings] == list(FINDINGS)
    assert [f.reproduced for f in findings] == [bool(i % 2) for i in range(len(FINDINGS))]
    assert "## Reproduced in direction: no" in (tmp_path / "finding_reinforcement.md").read_text()
    assert json.loads((tmp_path / "finding_text_encoder.json").read_text())["summary"] == {"n": 2}

