"""Per-device latency lookup table: predicted latency = sum of per-unit latencies + fixed overhead.

In the manner of Once-for-All and nn-Meter, but with units that cover every block kind the
towers are made of (RepMixer, FastViT attention, MbConv-LN, transformer blocks, Text-RepMixer;
see `archsearch.latency.units`). A table belongs to one device fingerprint (backend, CPU/GPU,
threads, library versions) and one batch size, and lives in
``<cache_dir>/<fingerprint id>-b<batch>.json``.

What keeps the sum faithful on a CPU:

- units and whole towers are timed by the same backend, `TimingProtocol` (warm-up, settled
  median) and thread count, in the same process; the thread count is part of the fingerprint;
- each unit is folded (`reparameterize`) and fed its real input: the shape *and* memory layout
  it has inside the tower (channels-last maps after a LayerNorm2d, transposed token views), so
  that the same kernels run and hidden copies happen where they happen in the model;
- the model glue (TokenStage flatten/position add/class token/reshape, the image head, text
  embedding and pooling) is timed too, through the model's own forward;
- cache state: a unit timed alone in a loop keeps its weights in the last-level cache, where a
  tower whose weights exceed that cache reads every layer's weights from memory while its
  activations, just written by the previous layer, stay cached. On CPU backends each unit is
  therefore timed *warm* (as is) and *cold*: k distinct copies of it, holding twice the cache in
  weights, run in turn on the same input, and the time is divided by k (`cold_copies`; units
  with weights under 1/16 of the cache, or over twice it, have cold = warm). A tower is predicted
  from cold timings when the weights it reads exceed the last-level cache, from warm ones
  otherwise (``cache_policy='auto'``; 'warm' and 'cold' force one);
- the rest (Python dispatch of containers, ...) is the fixed overhead per tower, the median of
  (whole tower - sum of its units) over the calibration architectures.

    table = build_table(*table_architectures("hybrid", 30, seed=0), threads=1)  # measures and saves
    table = load_table(threads=1)                                                # this device's table
    table.predict(spec)   # {'image_ms', 'text_ms', 'total_ms', 'missing_units', ...}
"""

from __future__ import annotations

import copy
import datetime
import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError
from torch import nn

from archsearch.choices import CACHE_POLICIES
from archsearch.errors import UserError
from archsearch.files import write_json_atomic
from archsearch import workspace
from archsearch.environment import device_fingerprint
from archsearch.latency.timing import TimingProtocol, TimingStats, time_until_settled
from archsearch.latency.units import TOWERS, UNITS_VERSION, ProbeCache, Unit, decompose, distinct_units
from archsearch.spec.arch import ArchSpec, layout_summary
from archsearch.spec.io import format_validation_error

DEFAULT_CACHE_DIR = Path("runs/latency_tables")
TABLE_FORMAT = 1
CPU_BACKENDS = ("torch-cpu", "onnxruntime-cpu")
_DEFAULT_LLC = 32 << 20

Progress = Optional[Callable[[str], None]]


def table_path(fingerprint_id: str, batch: int, cache_dir: str | Path = DEFAULT_CACHE_DIR) -> Path:
    return workspace.resolve(cache_dir) / f"{fingerprint_id}-b{batch}.json"


def last_level_cache_bytes() -> int:
    """Size of the CPU's largest cache (Linux sysfs), or 32 MiB where it cannot be read."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (entry / "size").read_text().strip()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
        try:
            sizes.append(int(text.rstrip("KMGkmg")) * unit)
        except ValueError:
            continue
    return max(sizes) if sizes else _DEFAULT_LLC


def _resolve_threads(batch: int, threads: Optional[int]) -> int:
    from archsearch.latency.measure import _check_options
    return _check_options(batch, threads, None)


def cold_copies(weights: int, llc_bytes: int) -> int:
    """How many distinct copies of a unit to run in turn so that its weights come from memory,
    as in a tower whose weights exceed the last-level cache: enough for twice the cache. One
    when the weights are too small to matter (under 1/16 of the cache) or exceed twice the
    cache anyway (they never stay cached)."""
    if weights * 16 < llc_bytes or weights >= 2 * llc_bytes:
        return 1
    return min(32, -(-2 * llc_bytes // weights))


class _Copies(nn.Module):
    """Distinct copies of a unit run in turn on the same (cache-hot) input."""

    def __init__(self, module: nn.Module, count: int):
        super().__init__()
        self.copies = nn.ModuleList([module, *(copy.deepcopy(module) for _ in range(count - 1))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.copies:
            out = module(x)
        return out


def measure_unit(unit: Unit, backend: str, batch: int, threads: int, protocol: TimingProtocol = TimingProtocol(),
                 copies: int = 1) -> TimingStats:
    """Time one unit, folded, on its real input, exactly as `measure_latency` times a tower.
    With `copies` > 1, that many distinct copies run in turn and the time is divided among them:
    the input stays in cache, the weights do not (see `cold_copies`)."""
    from archsearch.latency.backends import get_backend

    module = unit.build_folded()
    if copies > 1:
        module = _Copies(module, copies)
    inner = get_backend(backend).prepare(module, unit.example(batch), threads, "x")
    return time_until_settled(inner if copies == 1 else (lambda: inner() / copies), protocol)


class LatencyTable(BaseModel):
    """One device's table; its JSON is this model's fields plus the format and units version."""

    model_config = ConfigDict(extra="ignore")
    fingerprint: dict
    batch: PositiveInt
    protocol: dict
    units: dict[str, float] = Field(default_factory=dict)       # unit key -> median ms, warm cache
    units_cold: dict[str, float] = Field(default_factory=dict)  # unit key -> median ms, cold cache (CPU backends)
    unit_stats: dict[str, dict] = Field(default_factory=dict)   # unit key -> spread, runs, source
    probes: dict[str, dict] = Field(default_factory=dict)       # unit key -> output grid/layout, params (units.probe)
    overhead_ms: dict[str, float] = Field(default_factory=lambda: {t: 0.0 for t in TOWERS})
    calibration: list[dict] = Field(default_factory=list)       # per calibration arch: measured vs unit sums
    cache_policy: str = "auto"
    llc_bytes: int = Field(default_factory=last_level_cache_bytes)
    meta: dict = Field(default_factory=dict)
    path: Optional[Path] = Field(default=None, exclude=True)

    def __eq__(self, other: object) -> bool:  # where a table lives is not part of what it is
        return isinstance(other, LatencyTable) and self.model_dump() == other.model_dump()

    # --- identity -------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self.fingerprint["backend"]

    @property
    def threads(self) -> int:
        return self.fingerprint["threads"]

    @property
    def timing_protocol(self) -> TimingProtocol:
        return TimingProtocol(**self.protocol)

    @property
    def times_cold(self) -> bool:
        return self.backend in CPU_BACKENDS

    def calibration_ids(self) -> set[str]:
        return {record["id"] for record in self.calibration}

    # --- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = self.model_dump()
        for key in ("units", "units_cold", "unit_stats", "probes"):
            data[key] = dict(sorted(data[key].items()))
        return {"format": TABLE_FORMAT, "units_version": UNITS_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict, path: Optional[Path] = None) -> "LatencyTable":
        where = str(path or "latency table")
        if not isinstance(data, dict):
            raise UserError(f"{where}: not a latency table (expected a JSON object)")
        if data.get("format") != TABLE_FORMAT or data.get("units_version") != UNITS_VERSION:
            raise UserError(f"{where}: written by another version of archsearch "
                            f"(format {data.get('format')}, units {data.get('units_version')}; this one reads "
                            f"format {TABLE_FORMAT}, units {UNITS_VERSION}); rebuild it")
        try:  # a table from before llc_bytes was recorded was built with the default's assumption
            return cls.model_validate({"llc_bytes": _DEFAULT_LLC, **data, "path": path})
        except ValidationError as exc:
            raise UserError(format_validation_error(exc, where, cls)) from None

    def save(self, path: str | Path | None = None) -> Path:
        path = Path(path) if path is not None else self.path
        if path is None:
            raise ValueError("LatencyTable.save: no path given and the table has none")
        write_json_atomic(path, self.to_dict(), indent=1)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path}: no latency table there; "
                            "build one with `archsearch latency build-table`") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not a latency table (invalid JSON: {exc.msg}, line {exc.lineno})") from None
        return cls.from_dict(data, path)

    # --- measuring -------------------------------------------------------------------------------

    def check_device(self) -> None:
        """Units may only be added on the device the table belongs to."""
        here = device_fingerprint(self.backend, self.threads)["id"]
        if here != self.fingerprint["id"]:
            raise UserError(f"latency table {self.path or ''}: built on device {self.fingerprint['id']} "
                            f"({self.fingerprint.get('cpu')}), this is {here}; build a table on this device")

    def _has(self, key: str) -> bool:
        return key in self.units and (key in self.units_cold or not self.times_cold)

    def measure_units(self, units: Iterable[Unit], source: str, progress: Progress = None) -> list[str]:
        """Time every unit not yet in the table (warm, and cold on CPU backends); returns the keys added."""
        todo = [u for u in dict.fromkeys(units) if not self._has(u.key)]
        protocol = self.timing_protocol
        for i, unit in enumerate(todo, 1):
            self.probe(unit)
            warm = measure_unit(unit, self.backend, self.batch, self.threads, protocol)
            stats = {"warm_iqr_ms": warm.iqr_ms, "warm_cv": warm.cv, "warm_runs": warm.runs,
                     "warm_settled": warm.settled, "source": source}
            self.units[unit.key] = warm.median_ms
            line = f"warm {warm.median_ms:9.3f} ms"
            if self.times_cold:
                copies = cold_copies(4 * unit.params_read(self.probe(unit)["params"]), self.llc_bytes)
                cold = (measure_unit(unit, self.backend, self.batch, self.threads, protocol, copies=copies)
                        if copies > 1 else warm)
                self.units_cold[unit.key] = cold.median_ms
                stats.update(cold_copies=copies, cold_iqr_ms=cold.iqr_ms, cold_cv=cold.cv, cold_runs=cold.runs,
                             cold_settled=cold.settled)
                line += f", cold {cold.median_ms:9.3f} ms" + (f" (x{copies})" if copies > 1 else " (same)")
            self.unit_stats[unit.key] = stats
            if progress:
                progress(f"  unit {i}/{len(todo)} {line}  {unit.key}")
        return [u.key for u in todo]

    # --- predicting -----------------------------------------------------------------------------

    @property
    def probe(self) -> ProbeCache:
        """Unit output grids, layouts and parameter counts, run once at the table's batch size and
        kept in the table."""
        return ProbeCache(self.batch, self.probes)

    def decompose(self, spec: ArchSpec) -> dict:
        return decompose(spec, self.probe)

    def missing_units(self, spec: ArchSpec) -> list[Unit]:
        return [u for u in distinct_units([spec], self.probe) if not self._has(u.key)]

    def cache_state(self, placements, policy: Optional[str] = None) -> str:
        """'warm' or 'cold': the cache state a tower made of `placements` runs in ('auto': cold
        when the float32 weights its units read exceed the last-level cache)."""
        policy = policy or self.cache_policy
        if policy != "auto":
            return policy if self.times_cold else "warm"
        weights = 4 * sum(unit.params_read(self.probe(unit)["params"]) * count for unit, count in placements)
        return "cold" if self.times_cold and weights > self.llc_bytes else "warm"

    def unit_sums(self, spec: ArchSpec, policy: Optional[str] = None) -> dict[str, float]:
        """Per tower, the sum of unit latencies times their counts (every unit must be present),
        warm or cold as the cache policy says for that tower."""
        sums = {}
        for tower, placements in self.decompose(spec).items():
            times = self.units_cold if self.cache_state(placements, policy) == "cold" else self.units
            sums[tower] = sum(times[u.key] * n for u, n in placements)
        return sums

    def predict(self, spec: ArchSpec, measure_missing: bool = True, save: bool = True,
                progress: Progress = None) -> dict:
        """Predicted latency (ms) of `spec` on this table's device, batch and threads.

        Units not in the table are timed now and added (``missing_units`` says how many; the
        table is saved again when it has a path and `save`), or, with ``measure_missing=False``,
        a UserError names them."""
        missing = self.missing_units(spec)
        added: list[str] = []
        if missing:
            if not measure_missing:
                raise UserError(f"latency table {self.path or ''}: {len(missing)} unit(s) of this architecture are "
                                f"not in the table (first: {missing[0].key}); allow measuring them or build "
                                "the table from more architectures")
            self.check_device()
            added = self.measure_units(missing, source="on-demand", progress=progress)
            self.meta["added_on_demand"] = self.meta.get("added_on_demand", 0) + len(added)
            if save and self.path is not None:
                self.save()
        parts = self.decompose(spec)
        sums = self.unit_sums(spec)
        image = sums["image"] + self.overhead_ms["image"]
        text = sums["text"] + self.overhead_ms["text"]
        return {"image_ms": image, "text_ms": text, "total_ms": image + text, "missing_units": len(missing),
                "added_units": added, "image_units_ms": sums["image"], "text_units_ms": sums["text"],
                "image_cache": self.cache_state(parts["image"]), "text_cache": self.cache_state(parts["text"])}

    # --- calibration ----------------------------------------------------------------------------

    def calibrate(self, specs: list[ArchSpec], names: Optional[list[str]] = None, progress: Progress = None) -> None:
        """Measure each spec's towers whole (reusing measurements already recorded for the same
        spec) and set the fixed overhead per tower to the median of (measured - unit sum)."""
        from archsearch.latency.measure import measure_latency

        previous = {record["id"]: record for record in self.calibration}
        records = []
        for i, spec in enumerate(specs):
            sid = spec.digest()
            record = previous.get(sid)
            if record is None:
                result = measure_latency(spec, self.backend, self.batch, self.threads, protocol=self.timing_protocol)
                record = {"id": sid, "image_ms": result.image.median_ms, "text_ms": result.text.median_ms,
                          "image_cv": result.image.cv, "text_cv": result.text.cv}
            record.update(name=names[i] if names else layout_summary(spec), spec=spec.to_dict())
            records.append(record)
        self.calibration = records
        self.set_cache_policy(self.cache_policy)
        if progress:
            for i, r in enumerate(self.calibration, 1):
                progress(f"  calibration {i}/{len(specs)}: image {r['image_ms']:.2f} ms "
                         f"(units {r['image_units_ms']:.2f} {r['image_cache']}), text {r['text_ms']:.2f} ms "
                         f"(units {r['text_units_ms']:.2f} {r['text_cache']})  {r['name']}")

    def set_cache_policy(self, policy: str) -> None:
        """Switch between 'auto', 'warm' and 'cold' and refit the overheads from the calibration
        measurements already recorded (nothing is measured)."""
        if policy not in CACHE_POLICIES:
            raise UserError(f"cache policy: {policy!r} is unknown; allowed: {', '.join(CACHE_POLICIES)}")
        self.cache_policy = policy
        for record in self.calibration:
            spec = ArchSpec.from_dict(record["spec"])
            sums, parts = self.unit_sums(spec), self.decompose(spec)
            for tower in TOWERS:
                record[f"{tower}_units_ms"] = sums[tower]
                record[f"{tower}_cache"] = self.cache_state(parts[tower])
        if self.calibration:
            self.overhead_ms = {tower: statistics.median(r[f"{tower}_ms"] - r[f"{tower}_units_ms"]
                                                         for r in self.calibration) for tower in TOWERS}


# --- building and loading --------------------------------------------------------------------

def load_table(backend: str = "torch-cpu", batch: int = 1, threads: Optional[int] = None,
               cache_dir: str | Path = DEFAULT_CACHE_DIR) -> LatencyTable:
    """This device's table for `backend`, `batch` and `threads` (UserError if none was built)."""
    threads = _resolve_threads(batch, threads)
    fingerprint = device_fingerprint(backend, threads)
    path = table_path(fingerprint["id"], batch, cache_dir)
    if not path.is_file():
        raise UserError(f"{path}: no latency table for this device ({backend}, {threads} thread(s), batch {batch}); "
                        "build one with `archsearch latency build-table`")
    return LatencyTable.load(path)


def build_table(archs: Sequence[tuple[str, ArchSpec]], source: Optional[dict] = None, backend: str = "torch-cpu",
                batch: int = 1, threads: Optional[int] = None, cache_dir: str | Path = DEFAULT_CACHE_DIR,
                protocol: TimingProtocol = TimingProtocol(), rebuild: bool = False, cache_policy: str = "auto",
                progress: Progress = None) -> LatencyTable:
    """Build (or extend) this device's table and save it to ``<cache_dir>/<fingerprint id>-b<batch>.json``.

    Times every distinct unit of the (name, spec) pairs `archs` once, then measures those same
    architectures whole to calibrate the fixed overhead per tower; `source` (where the specs came
    from, `space.sampling.table_architectures`) is recorded in the table. An existing table for this
    device with the same protocol is extended, not re-measured, unless `rebuild`."""
    from archsearch.latency.backends import get_backend

    get_backend(backend)  # a UserError now rather than after sampling
    if cache_policy not in CACHE_POLICIES:
        raise UserError(f"--cache-policy: {cache_policy!r} is unknown; allowed: {', '.join(CACHE_POLICIES)}")
    threads = _resolve_threads(batch, threads)
    fingerprint = device_fingerprint(backend, threads)
    path = table_path(fingerprint["id"], batch, cache_dir)
    protocol_dict = asdict(protocol)

    table = None
    if path.is_file() and not rebuild:
        try:
            table = LatencyTable.load(path)
        except UserError as exc:
            if progress:
                progress(f"not reusing {path}: {exc}")
        if table is not None and table.protocol != protocol_dict:
            if progress:
                progress(f"not reusing {path}: built with another timing protocol")
            table = None
    if table is None:
        table = LatencyTable(fingerprint=fingerprint, batch=batch, protocol=protocol_dict, path=path)
    table.fingerprint, table.path, table.cache_policy = fingerprint, path, cache_policy

    names, specs = [name for name, _ in archs], [spec for _, spec in archs]
    if not specs:
        raise UserError("build-table: no architectures to build from; ask for at least one (--archs) or presets")

    units = distinct_units(specs, table.probe)
    if progress:
        progress(f"{len(specs)} architectures, {len(units)} distinct units "
                 f"({sum(not table._has(u.key) for u in units)} to measure) -> {path}")
    table.measure_units(units, source="build", progress=progress)
    table.save()  # units are the expensive part: keep them even if calibration is interrupted
    table.calibrate(specs, names, progress=progress)
    table.meta.update(**(source or {}), built=datetime.datetime.now().isoformat(timespec="seconds"),
                      build_units=len(units))
    table.save()
    return table


def predict_latency(spec: ArchSpec, backend: str = "torch-cpu", batch: int = 1, threads: Optional[int] = None,
                    cache_dir: str | Path = DEFAULT_CACHE_DIR, measure_missing: bool = True) -> dict:
    """`load_table(...).predict(spec)`: predicted image/text/total ms on this device."""
    return load_table(backend, batch, threads, cache_dir).predict(spec, measure_missing=measure_missing)
