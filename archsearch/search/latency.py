"""A trial's latency: measured once per architecture and device, quietly, then cached.

Quietly means three things: no local worker trains while it runs (the quiet lock), it runs in a
fresh process pinned to the study's thread count of CPUs (no state of the worker's training
leaks in), and it is drift-corrected against the study's anchor model timed in the same window
(the host's slow phases cancel). The anchor's quiet figure (the lowest of 3 settled medians) is
measured once per device.

The cache lives under ``runs/latency/<device fingerprint>/`` keyed by the architecture's hash,
the batch and the method, so presets and repeated samples are measured once per machine across
studies; a different CPU, thread count or library version has a different fingerprint and
measures anew.
"""

from __future__ import annotations

import json
from pathlib import Path

from archsearch.files import write_json_atomic
from archsearch.environment import available_cpus, device_fingerprint
from archsearch.latency.measure import measure_latency
from archsearch.search.config import LatencySettings
from archsearch.search.quiet import QuietLock
from archsearch.spec.arch import ArchSpec


ANCHOR_REPEATS = 3  # the anchor's quiet figure: the lowest of this many settled medians


def measured_latency(spec: ArchSpec, settings: LatencySettings, lock: QuietLock,
                     cache_dir: str | Path) -> tuple[dict, bool]:
    """(`LatencyResult.to_dict()`, whether it came from the cache)."""
    directory = Path(cache_dir) / device_fingerprint(settings.backend, settings.threads)["id"]
    path = directory / f"{spec.digest()}-b{settings.batch}-{settings.method}.json"
    if path.is_file():
        return json.loads(path.read_text()), True
    pin = available_cpus()[-settings.threads:]
    with lock.measuring():
        anchor_quiet = anchor_quiet_ms(settings, pin, directory) if settings.anchor else None
        result = measure_latency(spec, settings.backend, settings.batch, settings.threads, pin, fresh_process=True,
                                 anchor=settings.anchor, anchor_quiet_ms=anchor_quiet).to_dict()
    write_json_atomic(path, result)
    return result, False


def anchor_quiet_ms(settings: LatencySettings, pin: list[int], directory: Path) -> dict[str, float]:
    """{"image_ms", "text_ms"} of the anchor on this device, measured at first need (the caller
    holds the quiet lock) and cached; the record keeps its CVs."""
    path = directory / f"anchor-{settings.anchor}-b{settings.batch}.json"
    if not path.is_file():
        from archsearch.spec import get_preset

        result = measure_latency(get_preset(settings.anchor), settings.backend, settings.batch, settings.threads,
                                 pin, fresh_process=True, repeats=ANCHOR_REPEATS)
        write_json_atomic(path, {**result.to_dict(), "anchor": settings.anchor, "repeats": ANCHOR_REPEATS})
    record = json.loads(path.read_text())
    return {"image_ms": record["image_ms"], "text_ms": record["text_ms"]}


def latency_table_dir(runs: str | Path) -> Path:
    """Where a sweep keeps its device tables (`archsearch latency build-table`'s default under runs/)."""
    return Path(runs) / "latency_tables"


def table_build_command(settings: LatencySettings, runs: str | Path) -> str:
    return (f"archsearch latency build-table --backend {settings.backend} --batch {settings.batch} "
            f"--threads {settings.threads} --cache-dir {latency_table_dir(runs)}")


def has_table(settings: LatencySettings, runs: str | Path) -> bool:
    from archsearch.latency.table import table_path

    fingerprint = device_fingerprint(settings.backend, settings.threads)
    return table_path(fingerprint["id"], settings.batch, latency_table_dir(runs)).is_file()


class ScreeningLatency:
    """This device's latency table as the cheap latency `ehvi` screens with: (image ms, text ms)
    of a spec in a millisecond, for the study's backend, batch and threads.

    A candidate with units the table lacks is unknown (None) unless `measure_missing`, in which
    case those units are timed under the quiet lock and saved. The table is read again inside
    the lock first, so local workers sharing it add to it rather than overwrite each other. It is
    loaded at first use: a study that never screens (a budget within the sampler's start-up)
    needs no table."""

    def __init__(self, settings: LatencySettings, lock: QuietLock, runs: str | Path):
        self.settings, self.lock, self.runs = settings, lock, Path(runs)
        self.table = None

    def _load(self):
        from archsearch.errors import UserError
        from archsearch.latency.table import load_table

        try:
            return load_table(self.settings.backend, self.settings.batch, self.settings.threads,
                              latency_table_dir(self.runs))
        except UserError as exc:
            raise UserError(f"--sampler ehvi: {exc}; build it with `{table_build_command(self.settings, self.runs)}`"
                            ) from None

    def __call__(self, spec: ArchSpec, measure_missing: bool) -> tuple[float, float] | None:
        if self.table is None:
            self.table = self._load()
        if self.table.missing_units(spec):
            if not measure_missing:
                return None
            with self.lock.measuring():
                self.table = self._load()
                self.table.predict(spec, measure_missing=True, save=True)
        predicted = self.table.predict(spec, measure_missing=False)
        return predicted["image_ms"], predicted["text_ms"]
