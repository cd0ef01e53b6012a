"""A trial's latency: measured once per architecture and device, quietly, then cached.

The cache lives under ``runs/latency/<device fingerprint>/`` keyed by the architecture's hash and
the batch, so presets and repeated samples are measured once per machine across studies; a
different CPU, thread count or library version has a different fingerprint and measures anew.
"""

from __future__ import annotations

import json
from pathlib import Path

from archsearch.latency.fingerprint import device_fingerprint
from archsearch.latency.measure import measure_latency
from archsearch.latency.table import spec_id
from archsearch.search.config import LatencySettings
from archsearch.search.quiet import QuietLock
from archsearch.spec.arch import ArchSpec


def measured_latency(spec: ArchSpec, settings: LatencySettings, lock: QuietLock,
                     cache_dir: str | Path) -> tuple[dict, bool]:
    """(`LatencyResult.to_dict()`, whether it came from the cache)."""
    fingerprint = device_fingerprint(settings.backend, settings.threads)
    path = Path(cache_dir) / fingerprint["id"] / f"{spec_id(spec)}-b{settings.batch}.json"
    if path.is_file():
        return json.loads(path.read_text()), True
    with lock.measuring():
        result = measure_latency(spec, settings.backend, settings.batch, settings.threads).to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{id(result)}.tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result, False
