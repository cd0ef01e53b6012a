"""`ehvi`, the default sampler: its closed-form EHVI, its accuracy model, its candidates, the
sampler in a study, and the latency table it screens with in a sweep."""

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume
from optuna.trial import TrialState

from archsearch.errors import UserError
from archsearch.latency.table import build_table
from archsearch.space.sampling import table_architectures
from archsearch.latency.timing import TimingProtocol
from archsearch.search.config import LatencySettings
from archsearch.search.ehvi import (BayesianLinear, KnownLatencySampler, ParamEncoder, draw_candidate,
                                    expected_hv_improvement)
from archsearch.search.latency import ScreeningLatency, has_table, latency_table_dir
from archsearch.search.quiet import QuietLock
from archsearch.search.samplers import EHVI_STARTUP, make_sampler
from archsearch.space import PrunedArchitecture, SearchSpace

DATA = Path(__file__).parent / "data"
QUICK = TimingProtocol(warmup=1, min_runs=2, round_size=2, max_runs=4, max_seconds=5)


def _hv(points, acc_ref, latency_ref):
    inside = [(-a, lat) for a, lat in points if a > acc_ref and lat < latency_ref]
    if not inside:
        return 0.0
    return float(compute_hypervolume(np.array(inside, dtype=float), np.array([-acc_ref, latency_ref])))


@pytest.fixture(scope="module")
def space():
    return SearchSpace.from_file(DATA / "tiny_space.yaml")


# --- the acquisition ------------------------------------------------------------------------------

def test_ehvi_of_a_certain_candidate_is_the_hypervolume_it_adds():
    rng = np.random.default_rng(0)
    front = np.column_stack([rng.uniform(40, 80, 12), rng.uniform(50, 900, 12)])
    latency, accuracy = rng.uniform(20, 1100, 200), rng.uniform(30, 90, 200)
    ehvi = expected_hv_improvement(front, latency, accuracy, np.full(200, 1e-9), 35.0, 1000.0)
    base = _hv(front, 35.0, 1000.0)
    gain = [_hv(np.vstack([front, [a, lat]]), 35.0, 1000.0) - base for a, lat in zip(accuracy, latency)]
    np.testing.assert_allclose(ehvi, gain, atol=1e-6)
    assert (ehvi > 0).sum() > 20 and (ehvi == 0).sum() > 20  # both cases were exercised


def test_ehvi_of_an_uncertain_candidate_is_the_expected_gain():
    rng = np.random.default_rng(1)
    front = np.array([[50.0, 100.0], [60.0, 300.0], [70.0, 700.0]])
    base = _hv(front, 40.0, 1000.0)
    for latency, mean, std in [(200.0, 58.0, 5.0), (50.0, 45.0, 3.0), (800.0, 69.0, 4.0)]:
        draws = rng.normal(mean, std, 20000)
        monte_carlo = np.mean([_hv(np.vstack([front, [a, latency]]), 40.0, 1000.0) - base for a in draws])
        exact = expected_hv_improvement(front, np.array([latency]), np.array([mean]), np.array([std]), 40.0, 1000.0)
        assert exact[0] == pytest.approx(monte_carlo, rel=0.03)


# --- the accuracy model ------------------------------------------------------------------------

def test_bayesian_linear_recovers_a_linear_law_and_is_unsure_far_from_its_data():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (40, 3))
    y = 60 + x @ np.array([5.0, -3.0, 0.0]) + rng.normal(0, 0.5, 40)
    model = BayesianLinear().fit(x, y)
    np.testing.assert_allclose(model.weights, [5.0, -3.0, 0.0], atol=0.4)
    assert 1 / np.sqrt(model.beta) == pytest.approx(0.5, rel=0.35)
    mean, std = model.predict(np.array([[0.2, 0.1, 0.0], [8.0, 8.0, 8.0]]))
    assert mean[0] == pytest.approx(60 + 1.0 - 0.3, abs=0.5)
    assert std[1] > 2 * std[0]


def test_the_encoder_one_hots_choices_scales_integers_and_zeroes_absent_parameters():
    encoder = ParamEncoder({"b": optuna.distributions.IntDistribution(1, 3),
                            "a": optuna.distributions.CategoricalDistribution(["x", "y"])})
    assert encoder.encode({"a": "y", "b": 3}).tolist() == [0.0, 1.0, 1.0]
    assert encoder.encode({"b": 2}).tolist() == [0.0, 0.0, 0.5]


# --- candidates ----------------------------------------------------------------------------------

def test_candidates_are_members_of_the_space_and_mutants_stay_near_their_parent(space):
    rng = np.random.RandomState(0)
    drawn = [c for c in (draw_candidate(space, rng) for _ in range(30)) if c is not None]
    assert len(drawn) >= 20 and all(space.contains(c.spec) for c in drawn)
    assert all(space.params_of(c.spec) == c.params for c in drawn)
    parent = drawn[0].params
    assert draw_candidate(space, rng, parent, rate=0.0).params == parent
    mutants = [draw_candidate(space, rng, parent, rate=0.2) for _ in range(40)]
    changed = [sum(m.params.get(k) != v for k, v in parent.items()) for m in mutants if m is not None]
    assert 0 < np.mean(changed) < len(parent) / 2


# --- the sampler -----------------------------------------------------------------------------------

def _towers(spec):
    """A deterministic latency of the right shape for a study without a device (the table's role)."""
    image = sum(s.depth * s.width for s in spec.image.stages) / 10.0 + spec.image.stem.width
    text = len(spec.text.layers) * 5.0 + 10.0 * sum(m == "attention" for m in spec.text.layers)
    return image, text


def _study(space, **kw):
    sampler = KnownLatencySampler(space, lambda spec, measure: _towers(spec), seed=0, n_startup_trials=4, **kw)
    return optuna.create_study(directions=["maximize", "minimize"], sampler=sampler), sampler


def _run(study, space, n):
    for _ in range(n):
        trial = study.ask()
        try:
            spec = space.sample(trial)
        except PrunedArchitecture:
            study.tell(trial, state=TrialState.PRUNED)
            continue
        image, text = _towers(spec)
        accuracy = 40 + 5 * np.log(image + text) + 3 * (spec.text.layers[0] == "attention")
        study.tell(trial, (accuracy, image + text))


def test_the_sampler_keeps_enqueued_trials_then_screens_new_architectures_within_the_ceiling(space):
    study, sampler = _study(space, max_latency=45.0)
    rng = np.random.RandomState(5)
    enqueued = next(c for c in (draw_candidate(space, rng) for _ in range(20)) if c is not None and
                    sum(_towers(c.spec)) > 45)  # over the ceiling: an enqueued trial is run as given
    study.enqueue_trial(enqueued.params)
    _run(study, space, 4)
    assert study.trials[0].params == enqueued.params and sampler.last_choice is None
    seen = set()
    for _ in range(8):
        _run(study, space, 1)
        trial = study.trials[-1]
        assert sampler.last_choice is not None and sampler.last_choice["pool"] > 0
        if trial.state == TrialState.COMPLETE:
            assert trial.values[1] <= 45.0 and trial.values[1] == pytest.approx(sampler.last_choice["latency"])
        key = tuple(sorted(trial.params.items()))
        assert key not in seen
        seen.add(key)


def test_a_worker_racing_one_that_has_not_suggested_yet_takes_the_next_best(space):
    study, sampler = _study(space)
    _run(study, space, 6)
    first = study.ask()  # screened and running, but no parameter suggested yet
    second = study.ask()
    assert second.number == first.number + 1
    assert sampler.screened[first.number]["rank"] == 0 and sampler.screened[second.number]["rank"] == 1
    assert study.trials[second.number].user_attrs["screening"] == sampler.screened[second.number]
    assert space.sample(first).to_dict() != space.sample(second).to_dict()


def test_the_sampler_refuses_a_study_whose_objectives_are_not_accuracy_then_latency(space):
    sampler = KnownLatencySampler(space, lambda spec, measure: _towers(spec), seed=0, n_startup_trials=0)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    with pytest.raises(ValueError, match="accuracy: maximise, latency: minimise"):
        study.ask()


def test_make_sampler_ehvi_needs_the_space_and_a_latency(space):
    with pytest.raises(UserError, match="--sampler ehvi: needs the space"):
        make_sampler("ehvi", 0)
    sampler = make_sampler("ehvi", 0, space=space, latency_of=lambda spec, measure: _towers(spec))
    assert isinstance(sampler, KnownLatencySampler) and sampler.n_startup_trials == EHVI_STARTUP


# --- the table it screens with in a sweep ----------------------------------------------------------

def test_table_latency_leaves_unknown_candidates_out_and_times_finished_trials(tmp_path, space):
    settings = LatencySettings(threads=1)
    latency = ScreeningLatency(settings, QuietLock(tmp_path / ".quiet"), tmp_path)
    assert not has_table(settings, tmp_path)
    with pytest.raises(UserError, match="archsearch latency build-table .*--threads 1 --cache-dir"):
        latency(space.sample(optuna.trial.FixedTrial(_params(space, 0))), False)
    build_table(*table_architectures(space, 1, seed=0, include_presets=False), threads=1,
                cache_dir=latency_table_dir(tmp_path), protocol=QUICK)
    assert has_table(settings, tmp_path)
    latency = ScreeningLatency(settings, QuietLock(tmp_path / ".quiet"), tmp_path)
    rng = np.random.RandomState(3)
    candidates = [c for c in (draw_candidate(space, rng) for _ in range(40)) if c is not None]
    unknown = next(c for c in candidates if latency(c.spec, False) is None)
    units = len(latency.table.units)
    image, text = latency(unknown.spec, True)  # a finished trial: its units are timed and kept
    assert image > 0 and text > 0 and len(latency.table.units) > units
    assert latency(unknown.spec, False) == (image, text)


def _params(space, seed):
    rng = np.random.RandomState(seed)
    return next(c for c in (draw_candidate(space, rng) for _ in range(20)) if c is not None).params
