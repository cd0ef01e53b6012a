"""Measured latency of an ArchSpec: build, fold, then time the image and text towers separately
at the spec's resolution and context length, on one backend with a fixed thread count.

`measure_latency(..., fresh_process=True)` runs the same measurement in a new Python process
(`python -m archsearch.latency.measure`), so allocator state, warmed caches and thread pools left
by earlier work in the caller cannot leak into the figure.
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
from archsearch.latency.timing import TimingProtocol, TimingStats, time_until_settled
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
        }

    @classmethod
    def from_dict(cls, data: dict) -> "LatencyResult":
        return cls(image=TimingStats(**data["image"]), text=TimingStats(**data["text"]), backend=data["backend"],
                   device=data["device"], batch=data["batch"], threads=data["threads"],
                   pinned_cpus=tuple(data["pinned_cpus"]) if data["pinned_cpus"] is not None else None,
                   fingerprint=data["fingerprint"])


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
                    protocol: TimingProtocol = TimingProtocol()) -> LatencyResult:
    """Median latency of both folded towers (ms). `threads` defaults to every CPU available (or
    pinned); `pin` restricts the process to those CPUs."""
    threads = _check_options(batch, threads, pin)
    backend_impl = get_backend(backend)
    if fresh_process:
        return _measure_in_subprocess(spec, backend, batch, threads, pin, protocol)
    if pin is not None:
        os.sched_setaffinity(0, pin)

    from archsearch.latency.cost import example_images, example_tokens
    from archsearch.models import build_clip, reparameterize

    try:
        model = reparameterize(build_clip(spec))
    except Exception as exc:  # a spec that validates but cannot be built is bad input, not a crash
        raise UserError(f"the architecture does not build: {type(exc).__name__}: {exc}") from None
    image_run = backend_impl.prepare(model.visual, example_images(spec, batch), threads, "image")
    image = time_until_settled(image_run, protocol)
    text_run = backend_impl.prepare(model.text, example_tokens(spec, batch), threads, "tokens")
    text = time_until_settled(text_run, protocol)
    return LatencyResult(image=image, text=text, backend=backend, device=backend_impl.device(), batch=batch,
                         threads=threads, pinned_cpus=tuple(pin) if pin is not None else None,
                         fingerprint=device_fingerprint(backend, threads))


def _measure_in_subprocess(spec, backend, batch, threads, pin, protocol) -> LatencyResult:
    with tempfile.TemporaryDirectory(prefix="archsearch-latency-") as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({
            "spec": spec.to_dict(), "backend": backend, "batch": batch, "threads": threads, "pin": pin,
            "protocol": protocol.__dict__,
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
                             request["threads"], request["pin"], protocol=TimingProtocol(**request["protocol"]))
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    _subprocess_main(sys.argv[1])
