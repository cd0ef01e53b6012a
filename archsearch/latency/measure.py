"""Measured latency of an ArchSpec: build, fold, then time the image and text towers separately
at the spec's resolution and context length, on one backend with a fixed thread count.

`measure_latency(..., fresh_process=True)` runs the same measurement in a new Python process
(`python -m archsearch.latency.measure`), so allocator state, warmed caches and thread pools left
by earlier work in the caller cannot leak into the figure. `anchor=` times each tower against an
anchor model's in the same window and reports it on the anchor's quiet scale
(`archsearch.latency.drift`), so a slow phase of the machine cancels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from archsearch.errors import UserError
from archsearch.latency.backends import get_backend
from archsearch.environment import available_cpus, device_fingerprint
from archsearch.latency.drift import DRIFT_PROTOCOL, DriftProtocol, corrected_stats, interleaved_ratio, quiet_median
from archsearch.latency.timing import TimingProtocol, TimingStats
from archsearch.spec.arch import ArchSpec


@dataclass(frozen=True)
class LatencyResult:
    image: TimingStats
    text: TimingStats
    backend: str
    device: str
    batch: int
    threads: int
    pinned_cpus: tuple[int, ...] | None
    fingerprint: dict = field(repr=False)
    # how a drift-corrected figure was taken: the anchor, its quiet ms, each tower's ratio to it
    correction: dict | None = None

    @property
    def method(self) -> str:
        return "drift_corrected" if self.correction else "direct"

    @property
    def total_ms(self) -> float:
        return self.image.median_ms + self.text.median_ms

    def to_dict(self) -> dict:
        return {
            "image_ms": self.image.median_ms, "text_ms": self.text.median_ms, "total_ms": self.total_ms,
            "cv": max(self.image.cv, self.text.cv), "backend": self.backend, "device": self.device,
            "batch": self.batch, "threads": self.threads,
            "pinned_cpus": list(self.pinned_cpus) if self.pinned_cpus is not None else None,
            "image": self.image.to_dict(), "text": self.text.to_dict(), "fingerprint": self.fingerprint,
            "method": self.method, "correction": self.correction,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "LatencyResult":
        return cls(image=TimingStats(**data["image"]), text=TimingStats(**data["text"]), backend=data["backend"],
                   device=data["device"], batch=data["batch"], threads=data["threads"],
                   pinned_cpus=tuple(data["pinned_cpus"]) if data["pinned_cpus"] is not None else None,
                   fingerprint=data["fingerprint"], correction=data.get("correction"))


def _check_options(batch: int, threads: int | None, pin: list[int] | None) -> int:
    if batch <= 0:
        raise UserError(f"--batch: {batch} is not a positive integer; allowed: 1, 2, ...")
    cpus = available_cpus()
    if pin is not None and not set(pin) <= set(cpus):
        raise UserError(f"--pin: CPUs {sorted(set(pin) - set(cpus))} are not available; allowed: {cpus}")
    limit = len(pin) if pin else len(cpus)
    threads = limit if threads is None else threads
    if not 1 <= threads <= limit:
        raise UserError(f"--threads: {threads} is outside 1..{limit} (the CPUs available to this measurement)")
    return threads


def measure_latency(spec: ArchSpec, backend: str = "torch-cpu", batch: int = 1, threads: int | None = None,
                    pin: list[int] | None = None, fresh_process: bool = False,
                    protocol: TimingProtocol = TimingProtocol(), repeats: int = 1,
                    anchor: str | None = None, anchor_quiet_ms: dict[str, float] | None = None,
                    drift: DriftProtocol = DRIFT_PROTOCOL) -> LatencyResult:
    """Median latency of both folded towers (ms). `threads` defaults to every CPU available (or
    pinned); `pin` restricts the process to those CPUs. `repeats` > 1 reports the lowest of that
    many settled medians. With `anchor` (a preset's name), each tower is timed against the anchor's in alternating
    rounds and reported as ratio x the anchor's quiet ms (`anchor_quiet_ms`, {"image_ms",
    "text_ms"}; measured here with `repeats` when not given)."""
    threads = _check_options(batch, threads, pin)
    if repeats < 1:
        raise UserError(f"--repeats: {repeats} is not a positive integer; allowed: 1, 2, ...")
    backend_impl = get_backend(backend)
    if fresh_process:
        return _measure_in_subprocess(spec, backend, batch, threads, pin, protocol, repeats, anchor,
                                      anchor_quiet_ms, drift)
    if pin is not None:
        os.sched_setaffinity(0, pin)
    image_run, text_run = timed_runs(spec, backend_impl, batch, threads)
    correction = None
    if anchor is None:
        image, text = quiet_median(image_run, repeats, protocol), quiet_median(text_run, repeats, protocol)
    else:
        from archsearch.spec import get_preset

        anchor_spec = get_preset(anchor)
        anchor_image, anchor_text = timed_runs(anchor_spec, backend_impl, batch, threads)
        if anchor_quiet_ms is None:
            anchor_quiet_ms = {"image_ms": quiet_median(anchor_image, repeats, protocol).median_ms,
                               "text_ms": quiet_median(anchor_text, repeats, protocol).median_ms}
        ratios = {"image": interleaved_ratio(image_run, anchor_image, drift),
                  "text": interleaved_ratio(text_run, anchor_text, drift)}
        image = corrected_stats(ratios["image"], anchor_quiet_ms["image_ms"])
        text = corrected_stats(ratios["text"], anchor_quiet_ms["text_ms"])
        correction = {"anchor": anchor, "anchor_digest": anchor_spec.digest(),
                      "anchor_quiet_ms": dict(anchor_quiet_ms), **{k: r.to_dict() for k, r in ratios.items()}}
    return LatencyResult(image=image, text=text, backend=backend, device=backend_impl.device(), batch=batch,
                         threads=threads, pinned_cpus=tuple(pin) if pin is not None else None,
                         fingerprint=device_fingerprint(backend, threads), correction=correction)


def timed_runs(spec: ArchSpec, backend_impl, batch: int, threads: int):
    """(image run, text run) of the folded full-size towers, each one timed inference."""
    from archsearch.latency.cost import example_images, example_tokens
    from archsearch.models import build_clip, reparameterize

    try:
        model = reparameterize(build_clip(spec))
    except Exception as exc:  # a spec that validates but cannot be built is bad input, not a crash
        raise UserError(f"the architecture does not build: {type(exc).__name__}: {exc}") from None
    return (backend_impl.prepare(model.visual, example_images(spec, batch), threads, "image"),
            backend_impl.prepare(model.text, example_tokens(spec, batch), threads, "tokens"))


def _measure_in_subprocess(spec, backend, batch, threads, pin, protocol, repeats, anchor, anchor_quiet_ms,
                           drift) -> LatencyResult:
    with tempfile.TemporaryDirectory(prefix="archsearch-latency-") as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({
            "spec": spec.to_dict(), "backend": backend, "batch": batch, "threads": threads, "pin": pin,
            "protocol": protocol.__dict__, "repeats": repeats, "anchor": anchor,
            "anchor_quiet_ms": anchor_quiet_ms, "drift": drift.__dict__,
        }))
        done = subprocess.run([sys.executable, "-m", "archsearch.latency.measure", str(request)],
                              capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"latency subprocess failed: {last}")
    return LatencyResult.from_dict(json.loads(done.stdout))


def _subprocess_main(request_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    result = measure_latency(ArchSpec.from_dict(request["spec"]), request["backend"], request["batch"],
                             request["threads"], request["pin"], protocol=TimingProtocol(**request["protocol"]),
                             repeats=request["repeats"], anchor=request["anchor"],
                             anchor_quiet_ms=request["anchor_quiet_ms"], drift=DriftProtocol(**request["drift"]))
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    _subprocess_main(sys.argv[1])
