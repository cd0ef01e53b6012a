"""benchmarks/latency_presets.py's report logic; nothing here times a model."""

from __future__ import annotations

import statistics

import pytest

from benchmarks import latency_presets as presets


def test_a_preset_over_the_cv_target_names_its_worst_repeat():
    row = {"preset": "p", "cv_total": 0.041, "total_ms_runs": [100.0, 98.0, 110.0, 100.0, 102.0]}
    line = presets.repeat_outlier(row)
    # repeat 3 (110 ms) lies furthest from the median; the other four's median is 100 ms, their CV ~1.6%
    others = [100.0, 98.0, 100.0, 102.0]
    off, cv = 110.0 / statistics.median(others) - 1, statistics.stdev(others) / statistics.fmean(others)
    assert line.startswith("- p:") and "100, 98, 110, 100, 102" in line
    assert off == pytest.approx(0.10)
    assert "repeat 3 " in line and f"{off:+.1%}" in line and f"{cv:.1%}" in line and "other 4" in line
    assert presets.repeat_outlier({**row, "cv_total": 0.03}) is None
