"""The device fingerprint stored with every latency figure: a number means nothing without the
machine, thread count and library versions that produced it."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from functools import lru_cache
from pathlib import Path

import torch

_LIBRARIES = ("torch", "timm", "open_clip_torch", "onnxruntime", "coremltools", "numpy")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def device_fingerprint(backend: str, threads: int) -> dict:
    """What identifies the measuring device. `id` hashes the fields that change latency, so
    per-device caches (the lookup table) are keyed by it."""
    fields = {
        "backend": backend,
        "cpu": cpu_model(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": threads,
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
    }
    if backend == "torch-cuda" and torch.cuda.is_available():
        fields["gpu"] = torch.cuda.get_device_name()
        fields["cuda"] = torch.version.cuda
    keyed = {k: v for k, v in fields.items() if k not in ("system", "python")}
    fields["id"] = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return fields
