"""The pure functions of benchmarks/search_efficiency/: hypervolume, trials-to-target, the summary,
sampler arguments and the accuracy stand-in (no model is built, nothing is measured)."""

from __future__ import annotations

import math
import statistics

import pytest

from archsearch.spec.presets import get_preset
from benchmarks.search_efficiency import report, runner, standin

COST = {"image_params": 20e6, "text_params": 40e6, "image_gmacs": 5.0, "text_gmacs": 1.5}


def test_hypervolume_single_point_is_its_box():
    # acc 70% on (-acc/100) against -0.4: 0.3 wide; 10 of 40 GMACs: 0.75 high
    assert runner.hypervolume([(70.0, 10.0)], acc_ref=40.0, latency_ref=40.0) == pytest.approx(0.3 * 0.75)


def test_hypervolume_two_points_and_dominated_and_outside():
    a, b = (60.0, 4.0), (80.0, 20.0)
    union = 0.2 * 0.9 + 0.4 * 0.5 - 0.2 * 0.5
    assert runner.hypervolume([a, b]) == pytest.approx(union)
    assert runner.hypervolume([a, b, (55.0, 30.0)]) == pytest.approx(union)  # dominated: adds nothing
    assert runner.hypervolume([a, b, (30.0, 1.0), (90.0, 50.0)]) == pytest.approx(union)  # outside the box
    assert runner.hypervolume([]) == 0.0


def test_hypervolume_curve_carries_over_pruned_trials():
    curve = runner.hypervolume_curve([None, (60.0, 4.0), None, (80.0, 20.0), (50.0, 30.0)])
    assert curve[0] == 0.0
    assert curve[1] == curve[2] == pytest.approx(0.2 * 0.9)
    assert curve[3] == curve[4] == pytest.approx(runner.hypervolume([(60.0, 4.0), (80.0, 20.0)]))
    assert all(x <= y for x, y in zip(curve, curve[1:]))


def test_trials_to_reach():
    assert report.trials_to_reach([0.1, 0.2, 0.3], 0.2) == 2
    assert report.trials_to_reach([0.1, 0.2, 0.3], 0.31) is None
    assert report.trials_to_reach([0.5], 0.1) == 1


def test_summarise_target_and_censoring():
    runs = {"random": [[0.1, 0.2, 0.4], [0.1, 0.3, 0.6]],   # target = mean final = 0.5
            "tpe": [[0.2, 0.5, 0.7], [0.1, 0.2, 0.3]]}
    s = report.summarise(runs, checkpoints=(1, 3, 10))
    assert s["budget"] == 3 and s["target_hv"] == pytest.approx(0.5)
    assert set(s["samplers"]["tpe"]["hv"]) == {"1", "3"}
    assert s["samplers"]["tpe"]["hv"]["3"]["mean"] == pytest.approx(0.5)
    tpe = s["samplers"]["tpe"]
    assert tpe["trials_to_target"] == [2, None]
    assert tpe["mean_trials_to_target"] == pytest.approx((2 + 4) / 2)  # never reached: budget + 1
    assert tpe["mean_trials_to_target_is_lower_bound"] and tpe["seeds_reaching"] == 1
    assert tpe["mean_curve_trials_to_target"] == 3  # mean curve 0.15, 0.35, 0.5


def test_verdict_wording():
    runs = {"random": [[0.1, 0.2, 0.4]], "ehvi": [[0.5, 0.5, 0.5]], "tpe": [[0.1, 0.1, 0.1]]}
    s = report.summarise(runs)
    assert report.verdict(s).startswith("Default (ehvi): meets the target")
    assert report.verdict(s, default="tpe").startswith("Default (tpe): does not meet the target")


def test_parse_sampler():
    assert runner.parse_sampler("tpe") == ("tpe", {})
    assert runner.parse_sampler("nsga2:population_size=20,crossover_prob=0.8") == (
        "nsga2", {"population_size": 20, "crossover_prob": 0.8})
    assert runner.parse_sampler("tpe:multivariate=false") == ("tpe", {"multivariate": False})
    with pytest.raises(ValueError):
        runner.parse_sampler("tpe:oops")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_build_sampler_goes_through_make_sampler():
    import optuna

    sampler, as_sweep = runner.build_sampler("tpe", 0)
    assert isinstance(sampler, optuna.samplers.TPESampler) and as_sweep
    sampler, as_sweep = runner.build_sampler("tpe:n_startup_trials=5", 0)
    assert isinstance(sampler, optuna.samplers.TPESampler) and not as_sweep
    sampler, as_sweep = runner.build_sampler("nsga2:population_size=20", 0)
    assert isinstance(sampler, optuna.samplers.NSGAIISampler) and not as_sweep

    from archsearch.search.ehvi import KnownLatencySampler
    from archsearch.space import load_space

    def towers(spec, measure_missing):
        return 1.0, 1.0

    sampler, as_sweep = runner.build_sampler("ehvi", 0, load_space("hybrid"), towers)
    assert isinstance(sampler, KnownLatencySampler) and sampler.latency_of is towers and as_sweep
    sampler, as_sweep = runner.build_sampler("ehvi:n_random=64", 0, load_space("hybrid"), towers)
    assert sampler.n_random == 64 and not as_sweep


def test_spec_noise_is_fixed_and_standard():
    assert standin.spec_noise("abc") == standin.spec_noise("abc")
    draws = [standin.spec_noise(f"{i:012x}") for i in range(2000)]
    mean = sum(draws) / len(draws)
    sd = math.sqrt(sum((d - mean) ** 2 for d in draws) / len(draws))
    assert abs(mean) < 0.1 and 0.9 < sd < 1.1


def test_accuracy_stand_in_is_deterministic_and_saturating():
    spec = get_preset("mobileclip_s0")
    acc = standin.accuracy_stand_in(spec, COST, "fixed")
    assert acc == standin.accuracy_stand_in(spec, COST, "fixed")
    assert 0.0 <= acc <= 100.0
    bigger = [standin.accuracy_stand_in(spec, {**COST, "image_gmacs": g, "image_params": g * 4e6}, "fixed")
              for g in (1, 2, 4, 8, 16, 32, 64, 128)]
    steps = [b - a for a, b in zip(bigger, bigger[1:])]
    assert all(s > 0 for s in steps)          # more capacity, more accuracy
    assert steps[-1] < steps[len(steps) // 2]  # ... with diminishing returns
    huge = standin.accuracy_stand_in(spec, {**COST, "image_gmacs": 1e6, "image_params": 1e12, "text_params": 1e12}, "x")
    assert huge <= standin.ACC_FLOOR + standin.ACC_SPAN + standin.HYBRID_BONUS + 5 * standin.NOISE_SD + 5


def test_latency_stand_in():
    assert standin.latency_stand_in(COST) == pytest.approx(6.5)


def _run(sampler, seed, hv, presets=True):
    return {"sampler": sampler, "seed": seed, "presets": presets, "as_sweep": ":" not in sampler, "hv": hv,
            "pruned": 0, "repeats": 0, "sampler_seconds": 0.1, "seconds": 1.0, "trials": []}


def test_variant_and_markdown(monkeypatch):
    monkeypatch.setattr(report, "CHECKPOINTS", (1, 3))
    runs = [_run("random", 0, [0.1, 0.2, 0.4]), _run("random", 1, [0.1, 0.3, 0.6]),
            _run("ehvi", 0, [0.1, 0.5, 0.7]), _run("ehvi", 1, [0.1, 0.6, 0.6]),
            _run("tpe:n_startup_trials=5", 0, [0.1, 0.1, 0.1]), _run("tpe:n_startup_trials=5", 1, [0.1, 0.1, 0.5])]
    v = report.variant(runs[::-1], ["ehvi", "tpe:n_startup_trials=5", "random"], "random")
    assert [(r["sampler"], r["seed"]) for r in v["runs"]][:2] == [("ehvi", 0), ("ehvi", 1)]
    assert v["as_sweep"] == {"ehvi": True, "tpe:n_startup_trials=5": False, "random": True}
    assert v["verdict"].startswith("Default (ehvi): meets the target: mean 2.0 trials")
    meta = {"space": "hybrid", "seeds": [0, 1], "trials": 3, "presets": ["mobileclip_s0"], "fingerprint": {"id": "x"},
            "date": "today", "optuna": "5", "torch": "2", "command": "python -m benchmarks.search_efficiency",
            "wall_seconds": 1.0, "jobs": 1, "measure_seconds": 0.0, "measured": 0, "cached_at_start": 3,
            "cache": "runs/c.jsonl", "distinct_architectures": 3, "mean_cost_seconds": 2.0, "cold_measure_seconds": 6,
            "notes": ["a note"]}
    preset = {"preset": "mobileclip_s0", "acc": 58.0, "gmacs": 3.7, "params_m": 54.0, "layout": "R2 | text A x512"}
    no_presets = report.variant([_run("random", 0, [0.2, 0.3, 0.3], False)], ["random"], "random")
    # the summary the table is rendered from; target: random's mean final HV, (0.4 + 0.6) / 2
    s = v["summary"]
    assert s["budget"] == 3 and s["reference"] == "random" and s["target_hv"] == pytest.approx(0.5)
    ehvi, tpe = s["samplers"]["ehvi"], s["samplers"]["tpe:n_startup_trials=5"]
    assert ehvi["hv"]["1"] == pytest.approx({"mean": 0.1, "std": 0.0})
    assert ehvi["hv"]["3"] == pytest.approx({"mean": 0.65, "std": statistics.stdev([0.7, 0.6])})
    assert ehvi["trials_to_target"] == [2, 2] and ehvi["seeds_reaching"] == 2 and ehvi["seeds"] == 2
    assert ehvi["mean_trials_to_target"] == pytest.approx(2.0) and not ehvi["mean_trials_to_target_is_lower_bound"]
    assert ehvi["mean_curve_trials_to_target"] == 2  # mean curve 0.1, 0.55, 0.65
    assert tpe["trials_to_target"] == [None, 3] and tpe["seeds_reaching"] == 1
    assert tpe["mean_trials_to_target"] == pytest.approx((4 + 3) / 2)  # seed 0 never reaches it: budget + 1
    assert tpe["mean_trials_to_target_is_lower_bound"] and tpe["mean_curve_trials_to_target"] is None
    assert s["samplers"]["random"]["trials_to_target"] == [None, 3]
    alone = no_presets["summary"]  # one run: its own final HV is the target, reached at trial 2
    assert alone["target_hv"] == pytest.approx(0.3) and alone["samplers"]["random"]["trials_to_target"] == [2]

    # the report shows them: a row per sampler in each table, the figures in it, the notes and presets
    text = report.to_markdown({"meta": meta, **v, "preset_values": [preset], "no_presets": no_presets})
    main, _, alone_part = text.partition("Hypervolume: no presets")
    assert alone_part, "no section for the studies without presets"

    def row(part, label):
        found = [line for line in part.splitlines() if line.startswith(f"| {label}")]
        assert found, label
        return found[0]

    ehvi_row, tpe_row = row(main, "ehvi"), row(main, "tpe:n_startup_trials=5")
    assert all(f in ehvi_row for f in (f"{0.65:.4f}", f"{statistics.stdev([0.7, 0.6]):.4f}", "2/2"))
    assert "not make_sampler default" in tpe_row and "not make_sampler default" not in ehvi_row
    assert "≥ 3.5" in tpe_row and "≥" not in ehvi_row and "1/2" in tpe_row  # the lower bound is marked
    assert row(main, "random") and row(alone_part, "random")
    assert "58.0" in row(text, "mobileclip_s0") and "R2 / text A x512" in text  # '|' in a cell escaped
    assert "a note" in text


def test_pareto_front():
    points = [(60.0, 4.0), (55.0, 5.0), (70.0, 10.0), (60.0, 4.0), (70.0, 9.0), (50.0, 1.0)]
    assert runner.pareto_front(points) == [5, 0, 4]  # by GMACs; the duplicate and the dominated left out
    assert runner.pareto_front([]) == []


def test_compact_json_round_trips():
    import json

    obj = {"a": [1, 2.5, None], "b": [["x", 1.0, 2.0], None], "c": {"d": 1, "e": [{"f": [1, 2]}]}}
    text = report.compact_json(obj)
    assert json.loads(text) == obj
    assert '"a": [1, 2.5, null]' in text and '"b": [["x", 1.0, 2.0], null]' in text


def test_predictor_mode_scores_latency_with_this_machines_table(tmp_path):
    """`--latency predictor`: the study's latency objective is the table's predicted total ms (units
    it lacks are timed and kept), and the hypervolume box ends at the predictor's ms ceiling."""
    import optuna
    from test_latency_table import QUICK, TINY_SPACE

    from archsearch.latency.table import LatencyTable, build_table
    from archsearch.space.sampling import table_architectures
    from archsearch.space import load_space

    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    table = build_table(*table_architectures(space, 1, seed=0, include_presets=False), threads=1, cache_dir=tmp_path,
                        protocol=QUICK)
    run = runner.run_study("random", 3, 4, str(space), False, str(tmp_path / "costs.jsonl"), 0, "predictor",
                           str(tmp_path))
    assert run["pruned"] == 0 and len(run["trials"]) == 4
    grown = LatencyTable.load(table.path)
    assert run["units_measured"] == len(grown.units) - len(table.units)

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3), directions=["maximize", "minimize"])
    tiny = load_space(space)
    for _, _, latency in run["trials"]:
        trial = study.ask()
        spec = tiny.sample(trial)  # the same seed draws the same architectures the study scored
        study.tell(trial, (0.0, 0.0))
        assert latency == pytest.approx(grown.predict(spec, measure_missing=False)["total_ms"], abs=1e-4)
    assert run["hv"][-1] == pytest.approx(runner.hypervolume(
        [(acc, ms) for _, acc, ms in run["trials"]], latency_ref=standin.LATENCY_MODES["predictor"][0]))
