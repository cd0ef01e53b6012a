"""One trial: sample an architecture, count and time it, check constraints, train its proxy.

Cheap first: parameters, MACs and latency of the full-size reparameterized model are measured
before any training, and a trial that breaks a constraint is told to Optuna with its measured
latency, an accuracy of 0 and positive constraint values, never trained. Artifacts go to
``<run dir>/trials/<number>/``: ``arch.yaml``, ``latency.json``, ``metrics.json``, ``log.txt``
and the proxy's logs. A proxy some study on this machine already trained (same proxy-size spec,
recipe, store, device and code) is scored from `runs/proxy_results/` instead of trained again.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from functools import cached_property
from pathlib import Path

import optuna

from archsearch.latency.cost import measure_cost
from archsearch.proxy.score_cache import ProxyResultCache, proxy_key
from archsearch.training.module import NonFiniteLoss
from archsearch.proxy.run import run_proxy, store_manifest
from archsearch.search.config import SweepConfig
from archsearch.search.latency import measured_latency
from archsearch.search.quiet import QuietLock, YieldToMeasurements
from archsearch.space.space import PrunedArchitecture
from archsearch.spec.arch import MIXER_LETTER, ArchSpec, layout_summary
from archsearch.spec.io import save_spec

METRIC_KEYS = ("zeroshot_top1", "i2t_r1", "t2i_r1", "i2t_r5", "t2i_r5", "train_seconds", "images_per_second",
               "train_loss_tail")
INTERRUPTED = "interrupted"
WORKER_DIED = "worker died"  # the start of the reason a sweep's parent gives a killed worker's trial


def worker_label(pid: int) -> str:
    """How a trial names the process that runs it (its `worker` attribute): host and pid."""
    return f"{socket.gethostname()}:{pid}"


class TrialLog:
    """Timestamped lines in the trial's log.txt."""

    def __init__(self, path: Path):
        self.path = path
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        with self.path.open("a") as f:
            f.write(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - self.started:6.1f}s] {message}\n")


def mixer_mix(spec: ArchSpec) -> str:
    return ("".join(MIXER_LETTER[s.mixer] for s in spec.image.stages) + "|"
            + "".join(MIXER_LETTER[m] for m in spec.text.layers))


def constraint_values(config: SweepConfig, attrs: dict) -> list[float]:
    """One value per configured constraint, ≤ 0 when satisfied (Optuna's convention)."""
    values = []
    if config.max_latency_ms is not None:
        values.append(attrs["latency_ms"] - config.max_latency_ms)
    if config.max_params_m is not None:
        values.append(attrs["params_m"] - config.max_params_m)
    return values


def describe_violations(config: SweepConfig, attrs: dict) -> str:
    broken = []
    if config.max_latency_ms is not None and attrs["latency_ms"] > config.max_latency_ms:
        broken.append(f"latency {attrs['latency_ms']:.1f} ms > --max-latency-ms {config.max_latency_ms:g}")
    if config.max_params_m is not None and attrs["params_m"] > config.max_params_m:
        broken.append(f"params {attrs['params_m']:.1f} M > --max-params {config.max_params_m:g}")
    return "; ".join(broken)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


class TrialRunner:
    """The Optuna objective of a sweep (one per worker process)."""

    def __init__(self, config: SweepConfig, run_dir: str | Path, wandb: str = "offline"):
        self.config = config
        self.space = config.space()
        self.recipe = config.proxy_recipe()
        self.run_dir = Path(run_dir)
        self.runs_root = self.run_dir.parent
        self.lock = QuietLock(self.runs_root / ".quiet")
        self.proxy_cache = ProxyResultCache(self.runs_root / "proxy_results")
        self.wandb = wandb

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        directory = self.run_dir / "trials" / str(trial.number)
        directory.mkdir(parents=True, exist_ok=True)
        log = TrialLog(directory / "log.txt")
        trial.set_user_attr("worker", worker_label(os.getpid()))
        trial.set_user_attr("dir", f"trials/{trial.number}")
        try:
            return self._run(trial, directory, log)
        except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit(1)
            trial.set_user_attr("fail_reason", INTERRUPTED)
            log("interrupted")
            raise KeyboardInterrupt from None  # the one Optuna records as FAIL rather than leaving RUNNING
        except PrunedArchitecture as exc:
            trial.set_user_attr("pruned_reason", str(exc))
            log(f"pruned: {exc}")
            raise
        except Exception as exc:
            reason = f"non-finite loss: {exc}" if isinstance(exc, NonFiniteLoss) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            _write_json(directory / "metrics.json", {"status": "failed", "reason": reason})
            log(f"failed: {reason}\n{traceback.format_exc()}")
            raise

    def _run(self, trial: optuna.Trial, directory: Path, log: TrialLog) -> tuple[float, ...]:
        spec = self.space.sample(trial)
        save_spec(spec, directory / "arch.yaml")
        preset = trial.user_attrs.get("preset")
        attrs = {"arch": spec.to_dict(), "layout": layout_summary(spec), "family": self.space.layout_of(spec),
                 "mixers": mixer_mix(spec)}
        log(f"start ({preset or 'sampled'}): {attrs['layout']}")
        # what ehvi saw (also its user attribute `screening`, which this Trial's cached copy predates)
        screening = getattr(trial.study.sampler, "screened", {}).get(trial.number)
        if screening:
            log(f"chosen by ehvi from {screening['pool']} candidates ({screening['unknown_latency']} left out, units "
                f"not in the latency table): EHVI {screening['ehvi']:.4g}, predicted accuracy "
                f"{screening['mean']:.1f} ± {screening['std']:.1f} at {screening['latency']:.1f} ms (table)")

        with self.lock.working():  # tracing and counting is compute a measurement must not share
            cost = measure_cost(spec).to_dict()
        attrs.update({k: cost[k] for k in ("image_params", "text_params", "image_gmacs", "text_gmacs")})
        attrs["params_m"] = (cost["image_params"] + cost["text_params"]) / 1e6
        attrs["gmacs"] = cost["image_gmacs"] + cost["text_gmacs"]
        latency, cached = measured_latency(spec, self.config.latency, self.lock, self.runs_root / "latency")
        taken = ("from this device's latency cache: measured by an earlier trial" if cached
                 else "measured in this trial")
        _write_json(directory / "latency.json", {**latency, "cached": cached, "taken": taken, **cost})
        attrs.update(image_ms=latency["image_ms"], text_ms=latency["text_ms"], latency_ms=latency["total_ms"],
                     latency_cv=latency["cv"])
        if latency.get("correction"):  # what analysis settles the study's ms scale from
            attrs["latency_correction"] = {**latency["correction"], "device": latency["fingerprint"]["id"]}
        log(f"{attrs['params_m']:.1f} M params, {attrs['gmacs']:.2f} GMACs, "
            f"{attrs['latency_ms']:.2f} ms ({'cached' if cached else 'measured'})")

        constraints = constraint_values(self.config, attrs)
        attrs["constraints"] = constraints
        infeasible = any(c > 0 for c in constraints)
        if infeasible:
            attrs.update(trained=False, infeasible=describe_violations(self.config, attrs), zeroshot_top1=0.0)
            _write_json(directory / "metrics.json", {"status": "infeasible", "reason": attrs["infeasible"]})
            log(f"infeasible, not trained: {attrs['infeasible']}")
        else:
            result, source = self._score(spec, trial, directory)
            attrs.update({k: result[k] for k in METRIC_KEYS}, trained=True)
            provenance = {"cached_from": source} if source else {}
            _write_json(directory / "metrics.json", {"status": "ok", **result, **provenance})
            if source:
                attrs["proxy_from"] = f"{source['study']}/{source['trial']}"
                log(f"zero-shot top-1 {attrs['zeroshot_top1']:.1f}%, from the proxy cache: trained by study "
                    f"{source['study']}, trial {source['trial']} ({source['date']})")
            else:
                log(f"zero-shot top-1 {attrs['zeroshot_top1']:.1f}%, trained in {attrs['train_seconds']:.0f} s")
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return tuple(float(attrs[name]) for name in self.config.objectives)

    @cached_property
    def _store_manifest(self) -> dict | None:
        """The recipe's store, part of every proxy's cache key: opened once per worker rather than
        per trial (opening loads the teachers); a store does not change once built."""
        return store_manifest(self.recipe, progress=False)

    def _score(self, spec: ArchSpec, trial: optuna.Trial, directory: Path) -> tuple[dict, dict | None]:
        """(the proxy's metrics, where they were trained if they came from the cache, else None)."""
        key = proxy_key(spec, self.recipe, self._store_manifest)
        cached = self.proxy_cache.get(key)
        if cached:
            return cached["result"], cached["source"]
        yielding = YieldToMeasurements(self.lock)
        with yielding.setup_held():
            result = run_proxy(spec, self.recipe, wandb=self.wandb, out_dir=directory / "logs", progress=False,
                               callbacks=[yielding], eval_guard=self.lock.working)
        kept = {**{k: result[k] for k in METRIC_KEYS}, "steps": result["steps"], "recipe": result["recipe"]}
        self.proxy_cache.put(key, kept, {"study": trial.study.study_name, "trial": trial.number,
                                         "date": time.strftime("%Y-%m-%d %H:%M")})
        return kept, None
