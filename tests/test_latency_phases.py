"""The analysis behind benchmarks/latency_phases: phases, their length and the ratio within them."""

import pytest

from benchmarks.latency_phases import analyse, report


def two_phase_cycles(phase_cycles: int, cycles: int, candidate_slowdown: float) -> list:
    """Phases of `phase_cycles` cycles alternate between speed 1 and a slow phase (x1.3 on the anchor)."""
    out = []
    for i in range(cycles):
        slow = (i // phase_cycles) % 2 == 1
        out.append((i * 0.5, 300.0 * (candidate_slowdown if slow else 1.0), [100.0 * (1.3 if slow else 1.0)] * 3))
    return out


def test_a_phase_that_slows_both_models_alike_leaves_the_ratio_and_is_long_lived():
    a = analyse(two_phase_cycles(phase_cycles=20, cycles=200, candidate_slowdown=1.3))
    assert a["slow_cycles"] == 100 and a["ratio_fast"] == pytest.approx(3.0) and a["ratio_slow"] == pytest.approx(3.0)
    assert a["slowdown_anchor"] == pytest.approx(1.3) and a["autocorrelation"]["1"] > 0.8
    assert all(r["median"] == pytest.approx(3.0) for r in a["round_ratios"])


def test_a_phase_that_slows_the_candidate_less_shows_as_a_ratio_gap_in_the_report():
    a = analyse(two_phase_cycles(phase_cycles=20, cycles=200, candidate_slowdown=1.1))
    assert a["ratio_slow"] == pytest.approx(3.0 * 1.1 / 1.3)
    text = report({"meta": {"date": "2026-12-06", "command": "x", "machine": {"cpu": "cpu", "cpus_available": 2},
                             "cpu": 1}, "analysis": a})
    assert f"{(1.1 / 1.3 - 1) * 100:+.1f}%" in text
