"""benchmarks/latency_presets.py's report logic; nothing here times a model."""

from __future__ import annotations

from benchmarks import latency_presets as presets


def test_a_preset_over_the_cv_target_names_its_worst_repeat():
    row = {"preset": "p", "cv_total": 0.041, "total_ms_runs": [100.0, 98.0, 110.0, 100.0, 102.0]}
    line = presets.repeat_outlier(row)
    assert line.startswith("- p: totals 100, 98, 110, 100, 102 ms; repeat 3 lies +10.0% from the median of the other 4")
    assert presets.repeat_outlier({**row, "cv_total": 0.03}) is None
