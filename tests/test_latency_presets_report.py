"""benchmarks/latency_presets.py's report logic; nothing here times a model."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
presets = importlib.import_module("latency_presets")


def test_a_preset_over_the_cv_target_names_its_worst_repeat():
    row = {"preset": "p", "cv_total": 0.041, "total_ms_runs": [100.0, 98.0, 110.0, 100.0, 102.0]}
    line = presets.repeat_outlier(row)
    assert line.startswith("- p: totals 100, 98, 110, 100, 102 ms; repeat 3 lies +10.0% from the median of the other 4")
    assert presets.repeat_outlier({**row, "cv_total": 0.03}) is None


def test_a_repeat_is_retaken_while_the_probe_says_the_machine_runs_slow():
    probes = iter([100.0, 90.0, 99.0, 98.0])  # first repeat: the probe after it is 10 % slow
    taken = []
    result, record = presets.quiet_repeat(lambda: taken.append(len(taken)) or len(taken), lambda: next(probes),
                                          reference=100.0, tolerance=0.03, max_retakes=3)
    assert (result, record) == (2, {"probes_gflops": [99.0, 98.0], "retakes": 1, "quiet": True})


def test_the_last_retake_is_kept_and_marked_when_the_machine_stays_slow():
    result, record = presets.quiet_repeat(lambda: "m", lambda: 80.0, reference=100.0, tolerance=0.03, max_retakes=2)
    assert (result, record["retakes"], record["quiet"]) == ("m", 2, False)
