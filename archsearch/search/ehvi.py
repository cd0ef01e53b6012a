"""`KnownLatencySampler`: expected hypervolume improvement when latency is known before training.

Of a sweep's two objectives only accuracy costs a training run; latency can be predicted from the
device's latency table in about a millisecond. Generic multi-objective samplers (TPE, NSGA-II)
model both objectives from the trials alone. This sampler screens a pool of candidates before
every trial and picks the one whose expected hypervolume improvement (EHVI) is highest. The pool
holds random draws of the space and mutants of the current front. Only accuracy is uncertain in
the EHVI, so in two objectives it has a closed form: a sum of Gaussian expected improvements,
one per step of the front's staircase.

Accuracy comes from a Bayesian linear model over the encoded parameters plus the log latencies
of the two towers and of their sum (with its square, for saturation), fitted again at every
trial. Its prior and noise precisions are set by evidence maximisation (MacKay), so it needs no
tuning and stays honest about its uncertainty with ten observations.
Trials still running count at their predicted mean (kriging believer), so parallel workers
spread out. Candidates over a latency ceiling are never proposed, because their latency is
already known.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm

from archsearch.pareto import front_indices, staircase
from archsearch.search.optuna_private import record_constraints, set_user_attr
from archsearch.space.space import PrunedArchitecture, SearchSpace
from archsearch.spec.arch import ArchSpec

SCREENING_ATTR = "screening"  # trial user attribute: what the screening saw when it chose the trial
# (spec, whether to time units the table lacks) -> predicted (image ms, text ms), or None for a
# candidate with units the table lacks
LatencyOf = Callable[[ArchSpec, bool], Optional[tuple[float, float]]]
ConstraintsFunc = Callable[[FrozenTrial], Sequence[float]]


# --- the acquisition ------------------------------------------------------------------------------

def expected_improvement_over(level: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """E[max(0, A - level)] for A ~ N(mean, std²), elementwise."""
    std = np.maximum(std, 1e-12)
    z = (mean - level) / std
    return (mean - level) * norm.cdf(z) + std * norm.pdf(z)


def expected_hv_improvement(front: np.ndarray, latency: np.ndarray, mean: np.ndarray, std: np.ndarray,
                            acc_ref: float, latency_ref: float) -> np.ndarray:
    """EHVI of candidates with known `latency` and accuracy ~ N(`mean`, `std`²) over the points
    `front` ((accuracy, latency) rows), reference (acc_ref, latency_ref).

    A candidate at latency l with accuracy a adds the area between the staircase and a, over
    latencies from l to the reference: the sum over the staircase's steps [x_j, x_{j+1}) ∩ [l, ref)
    of width times max(0, a - level_j). Its expectation is the same sum of Gaussian expected
    improvements."""
    steps = staircase([(float(acc), float(lat)) for acc, lat in np.asarray(front, dtype=float).reshape(-1, 2)],
                      acc_ref, latency_ref)
    step_acc, step_lat = (np.array(v, dtype=float) for v in zip(*steps)) if steps else (np.empty(0), np.empty(0))
    edges = np.concatenate([step_lat, [latency_ref]])         # step j spans [edges[j], edges[j+1])
    levels = np.concatenate([[acc_ref], step_acc])            # level before the first step, then each step's
    starts = np.concatenate([[-np.inf], step_lat])
    total = np.zeros(len(latency))
    for start, end, level in zip(starts, edges, levels):
        width = np.clip(end - np.maximum(latency, start), 0.0, None)
        total += width * expected_improvement_over(level, mean, std)
    return np.where(latency < latency_ref, total, 0.0)


# --- the accuracy model ------------------------------------------------------------------------

class BayesianLinear:
    """Bayesian linear regression with evidence-maximised prior and noise precisions (MacKay's
    fixed-point updates), on centred targets: a predictive mean and std from few observations."""

    def fit(self, features: np.ndarray, targets: np.ndarray, iterations: int = 200) -> "BayesianLinear":
        self.x_mean = features.mean(axis=0)
        self.y_mean = float(targets.mean())
        phi, y = features - self.x_mean, targets - self.y_mean
        n = len(y)
        eigen, basis = np.linalg.eigh(phi.T @ phi)  # in this basis every posterior is diagonal
        eigen = np.clip(eigen, 0.0, None)
        projected = basis.T @ (phi.T @ y)
        alpha, beta = 1.0, 1.0 / max(float(y.var()), 1e-6)
        for _ in range(iterations):
            weights = basis @ (beta * projected / (alpha + beta * eigen))
            gamma = float(np.sum(beta * eigen / (alpha + beta * eigen)))
            residual = float(np.sum((y - phi @ weights) ** 2))
            new_alpha = float(np.clip(gamma / max(float(weights @ weights), 1e-12), 1e-6, 1e6))
            new_beta = float(np.clip(max(n - gamma, 1e-6) / max(residual, 1e-12), 1e-6, 1e8))
            converged = abs(new_alpha - alpha) <= 1e-6 * alpha and abs(new_beta - beta) <= 1e-6 * beta
            alpha, beta = new_alpha, new_beta
            if converged:
                break
        self.covariance = (basis / (alpha + beta * eigen)) @ basis.T
        self.weights = basis @ (beta * projected / (alpha + beta * eigen))
        self.alpha, self.beta = alpha, beta
        return self

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = features - self.x_mean
        mean = self.y_mean + phi @ self.weights
        variance = 1.0 / self.beta + np.einsum("ij,jk,ik->i", phi, self.covariance, phi)
        return mean, np.sqrt(variance)


class ParamEncoder:
    """Parameters to features: one column per categorical choice (one-hot), one per integer in
    [0, 1]; a parameter a trial does not have (conditional on another choice) is all zeros."""

    def __init__(self, distributions: dict[str, BaseDistribution]):
        self.columns: list[tuple[str, Any]] = []
        self.distributions = dict(sorted(distributions.items()))
        for name, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                self.columns += [(name, i) for i in range(len(dist.choices))]
            else:
                self.columns.append((name, None))

    def encode(self, params: dict[str, Any]) -> np.ndarray:
        row = np.zeros(len(self.columns))
        for j, (name, index) in enumerate(self.columns):
            if name not in params:
                continue
            dist = self.distributions[name]
            if index is not None:
                row[j] = float(dist.choices[index] == params[name])
            elif isinstance(dist, IntDistribution) and dist.high > dist.low:
                row[j] = (params[name] - dist.low) / (dist.high - dist.low)
        return row


# --- candidates ----------------------------------------------------------------------------------

class _PickingTrial:
    """Just enough of a trial for `SearchSpace.sample`: each suggestion is asked of `choose`, and
    the parameters and their distributions are kept."""

    def __init__(self, choose: Callable[[str, BaseDistribution], Any]):
        self.choose = choose
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def _suggest(self, name: str, dist: BaseDistribution) -> Any:
        value = self.choose(name, dist)
        self.params[name], self.distributions[name] = value, dist
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._suggest(name, CategoricalDistribution(choices))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._suggest(name, IntDistribution(low, high, step=step, log=log))


def _random_value(rng: np.random.RandomState, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[rng.randint(len(dist.choices))]
    if isinstance(dist, IntDistribution):
        return int(dist.low + dist.step * rng.randint((dist.high - dist.low) // dist.step + 1))
    raise TypeError(f"{type(dist).__name__}: the space suggests only categorical and integer parameters")


def _in(dist: BaseDistribution, value: Any) -> bool:
    try:
        return dist._contains(dist.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


class Candidate:
    def __init__(self, spec: ArchSpec, params: dict[str, Any], distributions: dict[str, BaseDistribution]):
        self.spec, self.params, self.distributions = spec, params, distributions


def draw_candidate(space: SearchSpace, rng: np.random.RandomState, parent: Optional[dict[str, Any]] = None,
                   rate: float = 0.0) -> Optional[Candidate]:
    """A random architecture of `space`, or a mutant of `parent`'s parameters (each kept with
    probability 1 - `rate`, and a new choice appearing under a changed one drawn at random);
    None when the combination is one the space does not build."""
    def choose(name: str, dist: BaseDistribution) -> Any:
        if parent is not None and name in parent and _in(dist, parent[name]) and rng.rand() >= rate:
            return parent[name]
        return _random_value(rng, dist)

    trial = _PickingTrial(choose)
    try:
        spec = space.sample(trial)
    except PrunedArchitecture:
        return None
    return Candidate(spec, trial.params, trial.distributions)


# --- the sampler ---------------------------------------------------------------------------------

class KnownLatencySampler(BaseSampler):
    """Picks each trial's architecture by EHVI over a screened pool (see the module docstring).

    `latency_of` must be cheap (the latency table's prediction). It is applied to every candidate
    without timing anything (a candidate with units the table lacks is left out of the pool) and,
    so that the front and the candidates compare on one scale, to every finished or running trial,
    timing what the table lacks.
    The study's objectives must be (accuracy: maximise, latency: minimise) in that order.
    The first `n_startup_trials` complete trials (enqueued presets included) come from random
    sampling; a trial with a fixed parameter set (an enqueued one) is never changed."""

    def __init__(self, space: SearchSpace, latency_of: LatencyOf, seed: Optional[int] = None,
                 n_startup_trials: int = 10, n_random: int = 256, n_mutants: int = 16,
                 constraints_func: Optional[ConstraintsFunc] = None, max_latency: Optional[float] = None):
        self.space = space
        self.latency_of = latency_of
        self.rng = np.random.RandomState(seed)
        self.n_startup_trials = n_startup_trials
        self.n_random = n_random
        self.n_mutants = n_mutants
        self.constraints_func = constraints_func
        self.max_latency = max_latency
        self._random = RandomSampler(seed=seed)
        self._chosen: dict[int, dict[str, Any]] = {}
        self._latency_cache: dict[tuple, np.ndarray] = {}
        self.last_choice: Optional[dict] = None  # what the last screening saw, for logs and tests
        self.screened: dict[int, dict] = {}  # the same, by trial number, until the trial ends

    def reseed_rng(self) -> None:
        self.rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}

    def sample_independent(self, study, trial, param_name: str, param_distribution: BaseDistribution) -> Any:
        chosen = self._chosen.get(trial.number, {})
        if param_name in chosen and _in(param_distribution, chosen[param_name]):
            return chosen[param_name]
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._chosen.pop(trial.number, None)
        self.screened.pop(trial.number, None)
        if self.constraints_func is not None:
            record_constraints(self.constraints_func, study, trial, state)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if "fixed_params" in trial.system_attrs:
            return
        directions = study.directions
        if len(directions) != 2 or directions[0] != StudyDirection.MAXIMIZE or \
                directions[1] != StudyDirection.MINIMIZE:
            raise ValueError("KnownLatencySampler: the study's objectives must be (accuracy: maximise, "
                             "latency: minimise)")
        trials = study.get_trials(deepcopy=False)
        scored = [t for t in trials if t.state == TrialState.COMPLETE and self._feasible(t)]
        if sum(t.state == TrialState.COMPLETE for t in trials) < self.n_startup_trials or len(scored) < 2:
            return
        running = [t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number]
        # Workers that started a moment earlier and have not suggested yet would pick the same
        # candidate: the k-th of them (by number) takes the k-th best instead.
        racing = sum(not t.params and t.number < trial.number for t in running)
        chosen = self._screen(scored, running, {_key(t.params) for t in trials if t.number != trial.number}, racing)
        if chosen is not None:
            self._chosen[trial.number] = chosen
            self.screened[trial.number] = self.last_choice
            set_user_attr(study, trial, SCREENING_ATTR, self.last_choice)

    def _feasible(self, trial: FrozenTrial) -> bool:
        if self.constraints_func is None:
            return True
        return all(c <= 0 for c in self.constraints_func(trial))

    def _latency(self, candidate: Candidate, measure_missing: bool = True) -> Optional[np.ndarray]:
        """(image ms, text ms), cached by parameters."""
        key = _key(candidate.params)
        if key not in self._latency_cache:
            towers = self.latency_of(candidate.spec, measure_missing)
            if towers is None:
                return None
            self._latency_cache[key] = np.asarray(towers, dtype=float)
        return self._latency_cache[key]

    def _rebuild(self, params: dict[str, Any]) -> Optional[Candidate]:
        def choose(name: str, dist: BaseDistribution) -> Any:
            if name not in params:
                raise KeyError(name)
            return params[name]

        trial = _PickingTrial(choose)
        try:
            return Candidate(self.space.sample(trial), trial.params, trial.distributions)
        except (KeyError, PrunedArchitecture):
            return None

    def _pool(self, parents: list[dict[str, Any]], seen: set[tuple]) -> list[Candidate]:
        pool, keys = [], set(seen)
        draws = [None] * self.n_random + [p for p in parents for _ in range(self.n_mutants)]
        for parent in draws:
            rate = 0.0 if parent is None else 1.5 / max(len(parent), 1)
            candidate = draw_candidate(self.space, self.rng, parent, rate)
            if candidate is None or _key(candidate.params) in keys:
                continue
            keys.add(_key(candidate.params))
            pool.append(candidate)
        return pool

    def _screen(self, scored: list[FrozenTrial], running: list[FrozenTrial], seen: set[tuple], rank: int = 0
                ) -> Optional[dict[str, Any]]:
        observed = [(t, self._rebuild(t.params)) for t in scored]
        observed = [(t, c) for t, c in observed if c is not None]
        if len(observed) < 2:
            return None
        distributions: dict[str, BaseDistribution] = {}
        for _, c in observed:
            distributions.update(c.distributions)
        accuracy = np.array([t.values[0] for t, _ in observed])
        towers = np.stack([self._latency(c) for _, c in observed])
        front = np.column_stack([accuracy, towers.sum(axis=1)])
        parents = [observed[i][1].params for i in sorted(front_indices([tuple(p) for p in front]))]
        pool = self._pool(parents, seen)
        for c in pool:
            distributions.update(c.distributions)
        encoder = ParamEncoder(distributions)

        logs = np.log(np.column_stack([towers, towers.sum(axis=1)]))
        centre, scale = logs.mean(axis=0), np.maximum(logs.std(axis=0), 1e-6)

        def features(candidates: list[Candidate], parts: np.ndarray) -> np.ndarray:
            z = (np.log(np.column_stack([parts, parts.sum(axis=1)])) - centre) / scale
            return np.column_stack([z, z[:, 2] ** 2, np.stack([encoder.encode(c.params) for c in candidates])])

        model = BayesianLinear().fit(features([c for _, c in observed], towers), accuracy)
        pending = [c for c in (self._rebuild(t.params) for t in running) if c is not None]
        if pending:  # kriging believer: a running trial counts at its predicted accuracy
            pending_towers = np.stack([self._latency(c) for c in pending])
            believed, _ = model.predict(features(pending, pending_towers))
            front = np.vstack([front, np.column_stack([believed, pending_towers.sum(axis=1)])])
        known = [(c, self._latency(c, measure_missing=False)) for c in pool]
        unknown = sum(latency is None for _, latency in known)
        known = [(c, parts) for c, parts in known
                 if parts is not None and (self.max_latency is None or parts.sum() <= self.max_latency)]
        if not known:
            return None
        pool, pool_towers = [c for c, _ in known], np.stack([parts for _, parts in known])
        pool_latency = pool_towers.sum(axis=1)
        mean, std = model.predict(features(pool, pool_towers))
        acc_ref = float(accuracy.min())
        latency_ref = float(max(front[:, 1].max(), pool_latency.max())) * 1.1
        score = expected_hv_improvement(front, pool_latency, mean, std, acc_ref, latency_ref)
        order = np.argsort(-(score + 1e-12 * self.rng.rand(len(score))), kind="stable")
        best = int(order[min(rank, len(order) - 1)])
        self.last_choice = {"rank": rank, "pool": len(pool), "unknown_latency": unknown, "ehvi": float(score[best]),
                            "mean": float(mean[best]), "std": float(std[best]), "latency": float(pool_latency[best])}
        return pool[best].params
