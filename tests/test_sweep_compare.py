"""benchmarks/sweep_compare.py on hand-made trials: hypervolume by trial count, the screened
trials' predictions against their scores, and the report (no study is run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from archsearch.analysis.hypervolume import ReferencePoint

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "sweep_compare.py"
_SPEC = importlib.util.spec_from_file_location("sweep_compare", _PATH)
sc = importlib.util.module_from_spec(_SPEC)
sys.modules["sweep_compare"] = sc
_SPEC.loader.exec_module(sc)


def _trial(number, acc, ms, screening=None, state=TrialState.COMPLETE):
    attrs = {"zeroshot_top1": acc, "latency_ms": ms, "trained": True, "layout": f"A{number} | text A"}
    if screening:
        attrs["screening"] = screening
    trial = create_trial(state=state, values=[acc, ms] if state == TrialState.COMPLETE else None,
                         params={"x": number}, distributions={"x": CategoricalDistribution(list(range(10)))},
                         user_attrs=attrs)
    trial.number = number
    return trial


def test_hypervolume_grows_with_the_trials_counted_in_order():
    trials = [_trial(0, 10.0, 100.0), _trial(1, 20.0, 300.0), _trial(2, 5.0, 50.0),
              _trial(3, 0.0, 0.0, state=TrialState.FAIL)]
    hv = sc.hv_by_trials(trials, ReferencePoint(0.0, 400.0, "given"), [1, 2, 3, 4, 5])
    assert hv[1] == pytest.approx(10 * 300)
    assert hv[2] == pytest.approx(10 * 300 + 10 * 100)
    assert hv[3] == pytest.approx(5 * 350 + 5 * 300 + 10 * 100)
    assert hv[4] == hv[3] and 5 not in hv  # a failed trial counts as a trial, adds nothing


def test_screened_trials_are_set_against_their_predictions():
    seen = {"mean": 12.0, "std": 2.0, "latency": 140.0, "pool": 300, "ehvi": 1.0, "rank": 0, "unknown_latency": 0}
    rows = sc.screened_predictions([_trial(0, 9.0, 120.0), _trial(1, 15.0, 150.0, seen),
                                    _trial(2, 1.0, 1.0, seen, state=TrialState.FAIL)])
    assert len(rows) == 1 and rows[0]["trial"] == 1
    assert rows[0]["z"] == pytest.approx(1.5) and rows[0]["table_ms"] == 140.0 and rows[0]["measured_ms"] == 150.0
    assert sc.spearman([1.0, 2.0, 3.0], [10.0, 30.0, 20.0]) == pytest.approx(0.5)


def test_the_report_names_each_study_and_escapes_layouts():
    seen = {"mean": 12.0, "std": 2.0, "latency": 140.0}
    trials = [_trial(0, 9.0, 120.0), _trial(1, 15.0, 150.0, seen), _trial(2, 11.0, 90.0, seen), _trial(3, 8.0, 60.0, seen)]
    reference = ReferencePoint(0.0, 400.0, "given")
    result = {"date": "2026-11-24", "machine": "cpu", "command": "python benchmarks/sweep_compare.py a b",
              "reference": reference.to_dict(),
              "studies": {"a": {"sampler": "ehvi", "seed": 0, "hv": sc.hv_by_trials(trials, reference, [2, 4, 6]),
                                "screened": sc.screened_predictions(trials)}}}
    # the figures: HV of the first 2 and 4 trials against (0 %, 400 ms), none at 6 (only 4 ran)
    study = result["studies"]["a"]
    assert study["hv"] == pytest.approx({2: 15 * 250 + 9 * 30, 4: 8 * 30 + 11 * 60 + 15 * 250})
    assert [(r["trial"], r["z"]) for r in study["screened"]] == [(1, 1.5), (2, -0.5), (3, -2.0)]

    text = sc.report(result, [2, 4, 6])
    study_rows = [line for line in text.splitlines() if line.startswith("| a |")]
    assert len(study_rows) == 1 and "ehvi" in study_rows[0]
    assert "4020" in study_rows[0] and "4650" in study_rows[0] and "–" in study_rows[0]  # no 6th trial
    # a row per screened trial, its layout's '|' escaped; trial 0 was not screened
    assert all(rf"A{n} \| text A" in text for n in (1, 2, 3)) and "A0" not in text
