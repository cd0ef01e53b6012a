"""The reinforced store on disk: what a MobileCLIP-style (DataCompDR) build keeps per sample, and the
reader that refuses a store it cannot trust.

Layout (every build is sharded; an unsharded build is shard 0 of 1)::

    STORE/manifest.json                   settings + provenance, written once by the first shard
    STORE/shard-00000-of-00002/progress.json   this shard's range and committed sample count
    STORE/shard-00000-of-00002/keys.npy        |S128    [n]           source keys (sha1 if longer)
    STORE/shard-00000-of-00002/aug.npy         float32  [n, A, 5]     augmentation rows (augment.py)
    STORE/shard-00000-of-00002/captions.npy    |S512    [n, S]        synthetic captions, UTF-8 (cut at
                                                                       512 bytes, past a 77-token context)
    STORE/shard-00000-of-00002/teacher{k}_image.npy  float16 [n, A, D_k]    every view
    STORE/shard-00000-of-00002/teacher{k}_text.npy   float16 [n, 1+S, D_k]  real caption, then synthetic

Each shard's progress lives in its own file, written only by that shard's builder, so shards built
at once (or on different machines, copied together afterwards) never race on one manifest.
"""

from __future__ import annotations

import bisect
import datetime
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError

from archsearch.data.augment import NUM_PARAMS, AugmentConfig
from archsearch.environment import library_versions
from archsearch.errors import UserError
from archsearch.files import create_text_once, write_json_atomic
from archsearch.spec.io import format_validation_error

FORMAT = "archsearch-reinforced-store"
VERSION = 1
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
CAPTION_BYTES = 512
KEY_BYTES = 128


@dataclass(frozen=True)
class TeacherInfo:
    """What a store records of a teacher: enough to check a resume and to split embeddings."""

    id: str
    embed_dim: int
    image_size: int


@dataclass(frozen=True)
class StoreSettings:
    """Everything that determines a store's contents; a resumed or sibling shard must bring the same."""

    num_samples: int
    num_shards: int
    source: dict[str, Any]
    teachers: tuple[TeacherInfo, ...]
    captioner: str
    augmentations: int
    synthetic_captions: int
    seed: int
    augment: AugmentConfig
    caption_bytes: int = CAPTION_BYTES
    key_bytes: int = KEY_BYTES

    def __post_init__(self) -> None:
        # JSON round trip, so a source's tuples compare equal to what a manifest reads back.
        try:
            object.__setattr__(self, "source", json.loads(json.dumps(self.source)))
        except (TypeError, ValueError) as exc:
            raise UserError(f"the source's describe() is not JSON-able ({exc}): {self.source!r}") from None

    def shard_range(self, shard: int) -> tuple[int, int]:
        """Contiguous slice of the source order: shard i of N holds [i*n//N, (i+1)*n//N)."""
        return shard * self.num_samples // self.num_shards, (shard + 1) * self.num_samples // self.num_shards

    def shard_dir(self, shard: int) -> str:
        return f"shard-{shard:05d}-of-{self.num_shards:05d}"

    def arrays(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """Each array's dtype and per-sample shape (the files add a leading sample axis)."""
        specs = {
            "keys": (np.dtype(f"S{self.key_bytes}"), ()),
            "aug": (np.dtype(np.float32), (self.augmentations, NUM_PARAMS)),
            "captions": (np.dtype(f"S{self.caption_bytes}"), (self.synthetic_captions,)),
        }
        for k, teacher in enumerate(self.teachers):
            specs[f"teacher{k}_image"] = (np.dtype(np.float16), (self.augmentations, teacher.embed_dim))
            specs[f"teacher{k}_text"] = (np.dtype(np.float16), (1 + self.synthetic_captions, teacher.embed_dim))
        return specs

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_samples": self.num_samples, "num_shards": self.num_shards, "source": self.source,
            "teachers": [{"id": t.id, "embed_dim": t.embed_dim, "image_size": t.image_size} for t in self.teachers],
            "captioner": self.captioner, "augmentations": self.augmentations,
            "synthetic_captions": self.synthetic_captions, "seed": self.seed, "augment": self.augment.to_dict(),
            "caption_bytes": self.caption_bytes, "key_bytes": self.key_bytes,
        }

    def differences(self, other: "StoreSettings") -> list[str]:
        """'field: store X, now Y' for every setting that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: store {mine[k]!r}, now {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]

    def layout(self) -> dict[str, Any]:
        """The shard directories and array formats these settings imply (recorded for readers by eye)."""
        return {
            "shards": [{"dir": self.shard_dir(i), "start": a, "stop": b}
                       for i in range(self.num_shards) for a, b in [self.shard_range(i)]],
            "arrays": {name: {"dtype": dtype.str, "shape": list(shape)}
                       for name, (dtype, shape) in self.arrays().items()},
        }

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **self.to_dict(), **self.layout(),
                "created": _now(), "versions": library_versions()}

    @classmethod
    def from_manifest(cls, data: Any, where: str) -> "StoreSettings":
        """Parse and validate a manifest; every problem is a UserError naming `where` and the field."""
        if not isinstance(data, dict):
            raise UserError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise UserError(f"{where}: field 'format' is {data.get('format')!r}, expected {FORMAT!r}")
        if data.get("version") != VERSION:
            raise UserError(f"{where}: field 'version' is {data.get('version')!r}; "
                            f"this archsearch reads version {VERSION}")
        fields = _validated(_Manifest, data, where)
        if fields.num_shards > fields.num_samples:
            raise UserError(f"{where}: num_shards {fields.num_shards} exceeds num_samples {fields.num_samples}")
        settings = cls(
            num_samples=fields.num_samples, num_shards=fields.num_shards, source=fields.source,
            teachers=tuple(TeacherInfo(**t.model_dump()) for t in fields.teachers), captioner=fields.captioner,
            augmentations=fields.augmentations, synthetic_captions=fields.synthetic_captions, seed=fields.seed,
            augment=AugmentConfig.from_dict(fields.augment, f"{where}: augment"),
            caption_bytes=fields.caption_bytes, key_bytes=fields.key_bytes)
        expected = settings.layout()
        for field in ("shards", "arrays"):
            if data[field] != expected[field]:
                raise UserError(f"{where}: field {field!r} is {data[field]!r}, "
                                f"but the settings imply {expected[field]!r}")
        return settings


class _Strict(BaseModel):
    """A JSON record as a reader checks it: strict types (the string "3" is not a count); fields
    a newer writer adds are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _TeacherEntry(_Strict):
    id: str
    embed_dim: PositiveInt
    image_size: PositiveInt


class _Manifest(_Strict):
    num_samples: PositiveInt
    num_shards: PositiveInt
    source: dict
    teachers: list[_TeacherEntry] = Field(min_length=1)
    captioner: str
    augmentations: PositiveInt
    synthetic_captions: PositiveInt
    seed: NonNegativeInt
    augment: dict
    caption_bytes: PositiveInt
    key_bytes: PositiveInt
    shards: list
    arrays: dict


class _Progress(_Strict):
    shard: NonNegativeInt
    num_shards: PositiveInt
    start: NonNegativeInt
    stop: NonNegativeInt
    completed: NonNegativeInt


def _validated(model: type[_Strict], data: Any, where: str):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, where, model)) from None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def encode_text(text: str, nbytes: int) -> bytes:
    """UTF-8, cut to `nbytes` at a character boundary (NULs dropped: numpy's |S strips them)."""
    data = text.replace("\x00", "").encode("utf-8")
    return data if len(data) <= nbytes else data[:nbytes].decode("utf-8", errors="ignore").encode("utf-8")


def key_token(key: str, nbytes: int = KEY_BYTES) -> bytes:
    """What the store keeps of a source key: the key, or its sha1 when it does not fit."""
    data = key.encode("utf-8")
    if len(data) <= nbytes and b"\x00" not in data:
        return data
    return b"sha1:" + hashlib.sha1(data).hexdigest().encode()


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise UserError(f"{path}: missing {what}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable {what} ({exc})") from None


def _check_array(path: Path, dtype: np.dtype, shape: tuple[int, ...], mode: str) -> np.memmap:
    """Open one .npy as a memmap after checking its header and size against what the manifest implies."""
    if not path.is_file():
        raise UserError(f"{path}: missing array file")
    try:
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            file_shape, fortran, file_dtype = read_header(f)
            offset = f.tell()
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable .npy file ({exc})") from None
    if file_dtype != dtype or tuple(file_shape) != shape or fortran:
        raise UserError(f"{path}: array is {file_dtype.str} {tuple(file_shape)}, but the manifest implies "
                        f"{dtype.str} {shape}")
    expected = offset + math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise UserError(f"{path}: file is {size} bytes, expected {expected} for {dtype.str} {shape} "
                        f"({'truncated' if size < expected else 'trailing data'})")
    try:
        return np.lib.format.open_memmap(path, mode=mode)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot memory-map ({exc})") from None


def _read_progress(path: Path, settings: StoreSettings, shard: int) -> dict[str, Any]:
    data = _read_json(path, "shard progress")
    progress = _validated(_Progress, data, str(path))
    start, stop = settings.shard_range(shard)
    for name, expected in (("shard", shard), ("num_shards", settings.num_shards), ("start", start), ("stop", stop)):
        if getattr(progress, name) != expected:
            raise UserError(f"{path}: field {name!r} is {getattr(progress, name)}, the manifest implies {expected}")
    if progress.completed > stop - start:
        raise UserError(f"{path}: field 'completed' is {progress.completed}, outside 0..{stop - start}")
    return data


def _open_shard_arrays(directory: Path, settings: StoreSettings, shard: int, mode: str) -> dict[str, np.memmap]:
    start, stop = settings.shard_range(shard)
    return {name: _check_array(directory / f"{name}.npy", dtype, (stop - start, *shape), mode)
            for name, (dtype, shape) in settings.arrays().items()}


class ShardWriter:
    """One shard's arrays, open for writing, and the commit that makes written rows count."""

    def __init__(self, root: Path, settings: StoreSettings, shard: int, arrays: dict[str, np.memmap],
                 progress: dict[str, Any]):
        self.root, self.settings, self.shard, self.arrays, self.progress = root, settings, shard, arrays, progress
        self.start, self.stop = settings.shard_range(shard)
        self.directory = root / settings.shard_dir(shard)

    @property
    def completed(self) -> int:
        """Samples committed so far, counted from the shard's start."""
        return self.progress["completed"]

    @classmethod
    def open(cls, root: str | Path, settings: StoreSettings, shard: int, batch_size: int) -> "ShardWriter":
        """Start shard `shard` of a new store, or reopen it to resume; refuse a store built otherwise."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise UserError(f"{root}: exists and is not a directory")
        root.mkdir(parents=True, exist_ok=True)
        _ensure_manifest(root, settings)
        directory = root / settings.shard_dir(shard)
        directory.mkdir(exist_ok=True)
        progress_path = directory / PROGRESS
        if progress_path.exists():
            progress = _read_progress(progress_path, settings, shard)
            arrays = _open_shard_arrays(directory, settings, shard, "r+")
            progress.update(batch_size=batch_size, versions=library_versions())
            return cls(root, settings, shard, arrays, progress)
        # No progress file: nothing was ever committed, so (re)create the arrays from scratch.
        start, stop = settings.shard_range(shard)
        arrays = {name: np.lib.format.open_memmap(directory / f"{name}.npy", mode="w+", dtype=dtype,
                                                  shape=(stop - start, *shape))
                  for name, (dtype, shape) in settings.arrays().items()}
        progress = {"shard": shard, "num_shards": settings.num_shards, "start": start, "stop": stop, "completed": 0,
                    "created": _now(), "updated": _now(), "batch_size": batch_size, "versions": library_versions()}
        writer = cls(root, settings, shard, arrays, progress)
        writer.commit(0)
        return writer

    def commit(self, completed: int) -> None:
        """Flush every array to disk, then atomically record `completed`: a kill at any point leaves
        the last committed count describing rows that are really on disk."""
        for array in self.arrays.values():
            array.flush()
        self.progress.update(completed=completed, updated=_now())
        write_json_atomic(self.directory / PROGRESS, self.progress)


def _ensure_manifest(root: Path, settings: StoreSettings) -> None:
    """Create the manifest if this is the first shard to start; otherwise insist on the same settings."""
    path = root / MANIFEST
    if not path.exists():  # concurrent shards agree on one manifest: the first to create it
        create_text_once(path, json.dumps(settings.manifest(), indent=2) + "\n")
    stored = StoreSettings.from_manifest(_read_json(path, "store manifest"), str(path))
    diff = stored.differences(settings)
    if diff:
        raise UserError(f"{path}: this store was built with different settings; refusing to resume or extend it "
                        f"({'; '.join(diff)}). Use another --out, or the store's settings.")


@dataclass(frozen=True)
class StoredSample:
    """One sample's reinforcement: its views, its synthetic captions, and every teacher's embeddings."""

    index: int
    key: str  # as `key_token` stores it
    aug: np.ndarray  # float32 [A, 5]
    captions: list[str]  # S synthetic captions
    image_embeddings: tuple[np.ndarray, ...]  # per teacher, float16 [A, D_k]
    text_embeddings: tuple[np.ndarray, ...]  # per teacher, float16 [1+S, D_k]: real caption first


class ReinforcedStore:
    """Read access to a store, validated on open (manifest, shards, array headers and sizes) and on
    every sample read (committed, finite, crop boxes well-formed)."""

    def __init__(self, path: Path, settings: StoreSettings, manifest: dict[str, Any],
                 shards: list[dict[str, np.memmap]], completed: list[int], allow_incomplete: bool):
        self.path, self.settings, self.manifest = path, settings, manifest
        self._shards, self._completed, self._allow_incomplete = shards, completed, allow_incomplete
        self._starts = [settings.shard_range(i)[0] for i in range(settings.num_shards)]

    def __reduce__(self):
        # DataLoader workers started by spawn get the path and reopen, instead of a pickled copy of every array.
        return ReinforcedStore.open, (self.path, self._allow_incomplete)

    @classmethod
    def open(cls, path: str | Path, allow_incomplete: bool = False) -> "ReinforcedStore":
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"{path}: no such store directory")
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise UserError(f"{manifest_path}: missing; {path} is not a reinforced store (or its build never started)")
        manifest = _read_json(manifest_path, "store manifest")
        settings = StoreSettings.from_manifest(manifest, str(manifest_path))
        shards, completed = [], []
        for i in range(settings.num_shards):
            directory = path / settings.shard_dir(i)
            if not directory.is_dir():
                raise UserError(f"{directory}: missing shard {i}/{settings.num_shards} of {path}; build it with "
                                f"--shard {i}/{settings.num_shards} (or copy it here)")
            progress = _read_progress(directory / PROGRESS, settings, i)
            start, stop = settings.shard_range(i)
            if progress["completed"] < stop - start and not allow_incomplete:
                raise UserError(f"{directory / PROGRESS}: incomplete build, shard {i}/{settings.num_shards} has "
                                f"{progress['completed']} of {stop - start} samples; resume it with "
                                f"--shard {i}/{settings.num_shards}")
            shards.append(_open_shard_arrays(directory, settings, i, "r"))
            completed.append(progress["completed"])
        return cls(path, settings, manifest, shards, completed, allow_incomplete)

    def __len__(self) -> int:
        return self.settings.num_samples

    @property
    def teachers(self) -> tuple[TeacherInfo, ...]:
        return self.settings.teachers

    @property
    def completed(self) -> int:
        return sum(self._completed)

    @property
    def is_complete(self) -> bool:
        return self.completed == self.settings.num_samples

    def locate(self, index: int) -> tuple[int, int]:
        """(shard, row within the shard) of global sample `index`, which must be committed."""
        if not 0 <= index < self.settings.num_samples:
            raise IndexError(f"sample {index} out of range for a store of {self.settings.num_samples}")
        shard = bisect.bisect_right(self._starts, index) - 1
        row = index - self._starts[shard]
        if row >= self._completed[shard]:
            raise UserError(f"{self.path / self.settings.shard_dir(shard)}: sample {index} is not built yet (shard "
                            f"{shard}/{self.settings.num_shards} has {self._completed[shard]} samples committed)")
        return shard, row

    def key(self, index: int) -> str:
        shard, row = self.locate(index)
        return bytes(self._shards[shard]["keys"][row]).decode("utf-8", errors="replace")

    def shard_progress(self) -> list[dict[str, Any]]:
        """Per shard: its directory, range of the source, and samples committed."""
        return [{"dir": self.settings.shard_dir(i), "start": start, "stop": stop, "completed": done}
                for i, (start, done) in enumerate(zip(self._starts, self._completed))
                for stop in [self.settings.shard_range(i)[1]]]

    def __getitem__(self, index: int) -> StoredSample:
        shard, row = self.locate(index)
        arrays = self._shards[shard]
        where = f"{self.path / self.settings.shard_dir(shard)}, sample {index}"
        aug = np.array(arrays["aug"][row])
        if not np.isfinite(aug).all() or (aug[:, 2:4] < 1).any() or (aug[:, :2] < 0).any():
            raise UserError(f"{where}: aug.npy holds malformed crop boxes {aug.tolist()}")
        try:
            captions = [bytes(c).decode("utf-8") for c in arrays["captions"][row]]
        except UnicodeDecodeError:
            raise UserError(f"{where}: captions.npy holds bytes that are not UTF-8") from None
        images, texts = [], []
        for k in range(len(self.settings.teachers)):
            for name, out in ((f"teacher{k}_image", images), (f"teacher{k}_text", texts)):
                embedding = np.array(arrays[name][row])
                if not np.isfinite(embedding).all():
                    raise UserError(f"{where}: {name}.npy holds non-finite embeddings")
                out.append(embedding)
        key = bytes(arrays["keys"][row]).decode("utf-8", errors="replace")
        return StoredSample(index, key, aug, captions, tuple(images), tuple(texts))

    def array(self, name: str) -> np.ndarray:
        """One array over all committed samples of all shards, in memory (for checks and small stores)."""
        if name not in self.settings.arrays():
            raise UserError(f"{self.path}: no array {name!r}; arrays: {', '.join(self.settings.arrays())}")
        return np.concatenate([np.asarray(s[name][:n]) for s, n in zip(self._shards, self._completed)])
