"""Latency measurement: the timing protocol, backends, fresh-process runs and bad input."""

import itertools
import json
import platform
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from archsearch.errors import UserError
from archsearch.environment import available_cpus
from archsearch.latency.drift import DriftProtocol, corrected_stats, interleaved_ratio, median_ci95
from archsearch.latency.measure import measure_latency
from archsearch.latency.timing import TimingProtocol, summarise, time_until_settled
from archsearch.spec import ArchSpec

QUICK = TimingProtocol(warmup=1, min_runs=4, round_size=2, max_runs=8, max_seconds=30)
TINY = ArchSpec.from_dict({
    "resolution": 64, "embed_dim": 16,
    "image": {"stem": {"kind": "mobileone", "width": 16},
              "stages": [{"depth": 1, "width": 16, "mixer": "repmixer", "mlp": "convffn", "mlp_ratio": 3.0},
                         {"depth": 1, "width": 32, "mixer": "attention", "mlp": "convffn", "mlp_ratio": 3.0,
                          "downsample": "patch_embed", "pos": "repcpe", "head_dim": 16}],
              "head": {"conv_expand": 2.0}},
    "text": {"width": 32, "heads": 2, "layers": ["repmixer1d", "attention"], "vocab_size": 500,
             "context_length": 16},
})


def test_settles_when_a_round_no_longer_moves_the_median():
    samples = itertools.cycle([10.0, 10.2, 9.8, 10.0])
    stats = time_until_settled(lambda: next(samples), TimingProtocol(warmup=2, min_runs=8, round_size=4))
    assert stats.settled and stats.runs == 8 and stats.median_ms == pytest.approx(10.0)
    assert stats.warmup == 2


def test_gives_up_at_the_budget_and_says_so():
    drifting = itertools.count(1.0)  # every run slower than the last: never settles
    stats = time_until_settled(lambda: float(next(drifting)), TimingProtocol(warmup=0, min_runs=4, round_size=5,
                                                                             max_runs=20, rel_tol=0.001))
    assert not stats.settled and stats.runs == 20


def test_summary_statistics():
    stats = summarise([1.0, 2.0, 3.0, 4.0, 5.0], warmup=0, settled=True)
    assert stats.median_ms == 3.0 and stats.iqr_ms == 2.0
    assert stats.cv == pytest.approx(1.5811388 / 3.0)


@pytest.mark.parametrize("backend", ["torch-cpu", "onnxruntime-cpu"])
def test_measures_both_towers(backend):
    result = measure_latency(TINY, backend=backend, threads=1, protocol=QUICK).to_dict()
    assert result["image_ms"] > 0 and result["text_ms"] > 0
    assert result["total_ms"] == pytest.approx(result["image_ms"] + result["text_ms"])
    assert result["backend"] == backend and result["threads"] == 1 and result["batch"] == 1
    assert result["image"]["runs"] >= QUICK.min_runs
    fingerprint = result["fingerprint"]
    assert fingerprint["threads"] == 1 and fingerprint["backend"] == backend and len(fingerprint["id"]) == 12
    assert fingerprint["libraries"]["torch"].startswith("2.14")


def test_fresh_process_and_pinning():
    cpu = available_cpus()[0]
    result = measure_latency(TINY, batch=2, pin=[cpu], fresh_process=True, protocol=QUICK)
    assert result.pinned_cpus == (cpu,) and result.threads == 1 and result.batch == 2
    assert result.image.median_ms > 0


def test_fingerprint_id_keys_on_what_changes_latency():
    from archsearch.environment import device_fingerprint
    assert device_fingerprint("torch-cpu", 1)["id"] == device_fingerprint("torch-cpu", 1)["id"]
    assert device_fingerprint("torch-cpu", 1)["id"] != device_fingerprint("torch-cpu", 2)["id"]
    assert device_fingerprint("torch-cpu", 1)["id"] != device_fingerprint("onnxruntime-cpu", 1)["id"]


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "tpu"}, "--backend: unknown backend 'tpu'; allowed: torch-cpu, torch-cuda, onnxruntime-cpu, coreml"),
    ({"batch": 0}, "--batch: 0 is not a positive integer"),
    ({"threads": 999}, "--threads: 999 is outside 1.."),
    ({"pin": [999]}, "--pin: CPUs [999] are not available"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(UserError, match=__import__("re").escape(message)):
        measure_latency(TINY, **kwargs)


@pytest.mark.skipif(platform.system() == "Darwin", reason="Core ML runs on macOS")
def test_coreml_needs_macos_elsewhere():
    with pytest.raises(UserError, match="coreml needs macOS"):
        measure_latency(TINY, backend="coreml")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU is present")
def test_cuda_needs_a_gpu():
    with pytest.raises(UserError, match="torch-cuda needs a CUDA GPU"):
        measure_latency(TINY, backend="torch-cuda")


ARCHSEARCH = shutil.which("archsearch", path=str(Path(sys.executable).parent)) or "archsearch"


@pytest.mark.slow
def test_cli_json_and_bad_input(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY.to_dict()))
    ok = subprocess.run([ARCHSEARCH, "latency", "tiny.yaml", "--threads", "1", "--json"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert {"image_ms", "text_ms", "total_ms", "cv", "backend", "device", "image_gmacs", "text_params"} <= set(data)
    for args, message in [(["--backend", "coreml"], "coreml needs macOS"), (["--batch", "-1"], "--batch: -1"),
                          (["--pin", "x"], "--pin: 'x' is not a comma-separated list"),
                          (["--anchor", "mobileclip_s9"], "--anchor: unknown preset 'mobileclip_s9'; allowed: "),
                          (["--repeats", "0"], "--repeats: 0 is not a positive integer")]:
        if "coreml" in args and platform.system() == "Darwin":
            continue
        bad = subprocess.run([ARCHSEARCH, "latency", "tiny.yaml", *args], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr


def test_cli_build_table_on_a_tiny_space(tmp_path):
    import test_latency_table

    (tmp_path / "tiny.yaml").write_text(test_latency_table.TINY_SPACE)
    done = subprocess.run([ARCHSEARCH, "latency", "build-table", "--space", "tiny.yaml", "--archs", "1",
                           "--threads", "1", "--cache-dir", "tables", "--json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    table = json.loads(Path(summary["path"]).read_text())
    assert Path(summary["path"]).parent == tmp_path / "tables"
    assert summary["units"] == len(table["units"]) > 0
    assert Path(summary["path"]).name.startswith(summary["fingerprint"])


# --- drift correction -----------------------------------------------------------------------------

def test_interleaved_ratio_cancels_slow_phases_that_a_plain_median_records():

    calls = itertools.count()

    def slowed(ms, clock=calls):  # the machine runs at a third of its speed for 25 calls in every 50
        return lambda: ms * (3.0 if next(clock) % 50 >= 25 else 1.0)

    candidate, anchor = slowed(20.0), slowed(10.0)
    ratio = interleaved_ratio(candidate, anchor, DriftProtocol(warmup=1, round_size=5, min_rounds=10, max_rounds=20))
    assert ratio.ratio == pytest.approx(2.0) and ratio.rounds >= 10 and ratio.runs == 5 * ratio.rounds
    assert ratio.anchor_runs == 10 * ratio.rounds  # the faster anchor runs as long as the candidate, not as often
    corrected = corrected_stats(ratio, anchor_quiet_ms=10.0)
    assert corrected.median_ms == pytest.approx(20.0) and corrected.runs == ratio.runs
    # A plain median taken in a slow phase reads the phase, not the model.
    plain = time_until_settled(slowed(20.0, itertools.count(25)), TimingProtocol(warmup=0, min_runs=20, round_size=20))
    assert plain.median_ms == pytest.approx(60.0)


def test_median_interval_is_the_order_statistic_interval_and_needs_six_rounds():
    assert median_ci95([1.0] * 5) is None  # 2 x (1/2)^5 > 5%: no interval of five values covers 95%
    assert median_ci95([6.0, 1.0, 5.0, 2.0, 4.0, 3.0]) == (1.0, 6.0)  # n = 6: the range (96.9%)
    assert median_ci95([float(v) for v in range(10)]) == (1.0, 8.0)  # n = 10: x_(2), x_(9) (97.9%)


def test_interleaved_ratio_stops_when_its_interval_is_tight_and_runs_on_while_rounds_scatter():
    def fixed(ms):
        return lambda: ms

    clean = interleaved_ratio(fixed(30.0), fixed(10.0), DriftProtocol(warmup=1, min_rounds=8, max_rounds=40))
    assert clean.settled and clean.rounds == 8 and clean.ratio == pytest.approx(3.0) and clean.ci95 == (3.0, 3.0)
    rng = random.Random(0)  # the candidate's runs scatter with a CV of 20% around 30 ms
    noisy = interleaved_ratio(lambda: rng.gauss(30.0, 6.0), fixed(10.0),
                              DriftProtocol(warmup=1, round_size=1, min_rounds=8, max_rounds=40))
    assert not noisy.settled and noisy.rounds == 40 and noisy.ci95[1] - noisy.ci95[0] > 0.04 * noisy.ratio


@pytest.mark.slow
def test_drift_corrected_result_records_its_anchor_and_ratios_in_a_fresh_process():
    result = measure_latency(TINY, threads=1, fresh_process=True, protocol=QUICK, anchor="mobileclip_s0",
                             anchor_quiet_ms={"image_ms": 100.0, "text_ms": 50.0},
                             drift=DriftProtocol(warmup=1, round_size=2, min_rounds=2, max_rounds=4))
    record = result.to_dict()
    assert record["method"] == "drift_corrected" and record["correction"]["anchor"] == "mobileclip_s0"
    assert record["image_ms"] == pytest.approx(100.0 * record["correction"]["image"]["ratio"])
    assert record["text_ms"] == pytest.approx(50.0 * record["correction"]["text"]["ratio"])
    assert 0 < record["correction"]["image"]["ratio"] < 1  # the tiny tower is faster than MobileCLIP-S0's
    assert measure_latency(TINY, threads=1, protocol=QUICK).to_dict()["method"] == "direct"


@pytest.mark.slow
def test_drift_correction_holds_while_another_process_takes_half_of_the_measured_cpu():
    """Two real processes on one CPU: a busy loop (a slow phase of a shared host, made to order)
    and the measurement. Full-size presets, as a sweep times them: a tower of tiny-space size runs
    for less than one scheduler slice, so it is either not slowed at all or slowed by a whole slice,
    which is not what a host's slow phase does to a model."""
    from archsearch.spec import get_preset

    cpu = available_cpus()[-1]
    quick = TimingProtocol(warmup=2, min_runs=10, round_size=5, max_runs=40, max_seconds=15)
    drift = DriftProtocol(warmup=2, round_size=3, min_rounds=6, max_rounds=12, max_seconds=20)
    candidate = get_preset("mobileclip_s1")

    def measure(**kw):
        return measure_latency(candidate, threads=1, pin=[cpu], fresh_process=True, protocol=quick, **kw)

    anchor_quiet = measure_latency(get_preset("mobileclip_s0"), threads=1, pin=[cpu], fresh_process=True,
                                   protocol=quick, repeats=2)
    quiet_ms = {"image_ms": anchor_quiet.image.median_ms, "text_ms": anchor_quiet.text.median_ms}
    direct_quiet = measure()
    corrected_quiet = measure(anchor="mobileclip_s0", anchor_quiet_ms=quiet_ms, drift=drift)
    hog = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, [{cpu}])\nwhile True: pass"])
    try:
        direct_hogged = measure()
        corrected_hogged = measure(anchor="mobileclip_s0", anchor_quiet_ms=quiet_ms, drift=drift)
    finally:
        hog.kill()
        hog.wait()
    assert direct_hogged.total_ms > 1.4 * direct_quiet.total_ms  # the slow phase is real
    assert corrected_hogged.total_ms == pytest.approx(corrected_quiet.total_ms, rel=0.1)  # and cancels
    assert corrected_quiet.total_ms == pytest.approx(direct_quiet.total_ms, rel=0.15)
