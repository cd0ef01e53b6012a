"""The machine and software a figure was produced on: one record for every room.

Latency figures, stores, sweeps, exports and final trainings all say where they came from. The
device fingerprint keys per-device caches (the latency table); library versions are recorded
beside stores, studies and exports; the CPUs this process may run on size worker pools and pin
measurements. Below every room, importing none.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional

# Distributions whose versions a record names (pip names; None where not installed).
LIBRARIES = ("archsearch", "torch", "torchvision", "timm", "open_clip_torch", "optuna", "lightning", "numpy",
             "pillow", "onnxruntime", "coremltools")
# The subset that changes latency: part of the device fingerprint's id (do not change: it keys tables).
FINGERPRINT_LIBRARIES = ("torch", "timm", "open_clip_torch", "onnxruntime", "coremltools", "numpy")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def available_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity), not the machine's count."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def _version(distribution: str) -> Optional[str]:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions(distributions: Iterable[str] = LIBRARIES) -> dict[str, Optional[str]]:
    """Installed versions by distribution name, None for one not installed; with the Python version."""
    return {name: _version(name) for name in distributions} | {"python": platform.python_version()}


def device_fingerprint(backend: str, threads: int) -> dict:
    """What identifies the measuring device. `id` hashes the fields that change latency, so
    per-device caches (the lookup table) are keyed by it."""
    import torch

    fields = {
        "backend": backend,
        "cpu": cpu_model(),
        "cpus_available": len(available_cpus()),
        "threads": threads,
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in FINGERPRINT_LIBRARIES},
    }
    if backend == "torch-cuda" and torch.cuda.is_available():
        fields["gpu"] = torch.cuda.get_device_name()
        fields["cuda"] = torch.version.cuda
    keyed = {k: v for k, v in fields.items() if k not in ("system", "python")}
    fields["id"] = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return fields
