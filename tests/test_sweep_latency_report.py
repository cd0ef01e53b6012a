"""benchmarks/sweep_latency's summary: the settled and the provisional ms between sweeps, each sweep's scale."""

import pytest

import benchmarks.sweep_latency as bench

META = {"date": "2026-12-07", "commit": "abc1234", "command": "python -m benchmarks.sweep_latency",
        "machine": {"cpu": "test"}, "pinned_cpu": 1, "passes": 3, "sweep_args": ""}


def _trial(number, preset, recorded, provisional, quiet, ratio, scale=None):
    return {"trial": number, "preset": preset, "top1": 10.0 + number, "recorded_ms": recorded,
            "provisional_ms": provisional, "recorded_cv": 0.02, "quiet_ms": quiet, "quiet_passes_ms": [quiet] * 3,
            "quiet_ratio": ratio, "recorded_ratio": ratio, "scale": scale}


def _sweep(recorded_s1, provisional_s1, scale):
    return {"sweep_seconds": 900.0, "front_recorded": [1], "front_quiet": [1],
            "trials": [_trial(0, "mobileclip_s0", 100.0, provisional_s1 / 2, 110.0, 1.0, scale),
                       _trial(1, "mobileclip_s1", recorded_s1, provisional_s1, 220.0, recorded_s1 / 100.0, scale)]}


def test_the_summary_separates_the_settled_from_the_provisional_scale(tmp_path, monkeypatch):
    scale = {"anchor": "mobileclip_s0", "image_ms": 70.0, "text_ms": 30.0, "windows": 10,
             "quiet_ms": {"image_ms": 80.0, "text_ms": 35.0}}
    record = bench.summarise([_sweep(200.0, 230.0, scale), _sweep(202.0, 205.0, scale)], META)
    assert record["between_sweeps"]["mobileclip_s1"] == pytest.approx(0.01)
    assert record["between_sweeps_provisional"]["mobileclip_s1"] == pytest.approx(230 / 205 - 1)
    assert record["targets"]["max_between_sweeps <= 0.05"] and record["per_sweep"][0]["scale"] == scale
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    bench.write(record, "x")
    text = (tmp_path / "x.md").read_text()
    assert "sweep 0's settled S0 scale: image 70.0 + text 30.0 ms (lowest anchor median of 10 windows)" in text
    assert "what the sampler saw): 12.2%" in text and "-9.1% to -8.2%" in text


def test_records_from_before_the_settled_scale_still_summarise():
    old = [_sweep(200.0, 200.0, None), _sweep(210.0, 210.0, None)]
    for sweep in old:
        for t in sweep["trials"]:
            del t["provisional_ms"], t["scale"]
    record = bench.summarise(old, META)
    assert record["between_sweeps_provisional"] == record["between_sweeps"]
    assert record["per_sweep"][0]["scale"] is None
