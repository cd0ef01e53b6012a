"""Real image-caption data as `CaptionSource`s: WebDataset shards and image folders, plus `open_source`.

WebDataset shards are what img2dataset and DataComp write and what real CLIP pipelines read, so
they are the format for large data; a folder with a caption table is the quick way to bring a few
thousand images of one's own. Sources are opened from a short reference string (the CLI's
`--data`) and re-opened from the `describe()` dict a store records, so that a store always knows
which samples its positions refer to.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import parse_qsl

from braceexpand import braceexpand
from PIL import Image, UnidentifiedImageError

from archsearch.data.source import CaptionedImage, CaptionSource
from archsearch.errors import UserError

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
IMAGE_COLUMNS = ("filepath", "file", "image")
CAPTION_COLUMNS = ("caption", "text")
TABLE_NAMES = ("captions.csv", "captions.tsv")
SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")
EMBEDDED_OPTIONS = ("n", "seed", "image_size")

ACCEPTED_REFS = ("embedded[:SPLIT][?n=N&seed=S&image_size=PX]",
                 "a WebDataset shard (.tar), a brace pattern (shards/{00000..00009}.tar) or a folder of .tar shards",
                 "a folder with captions.csv/captions.tsv, or a .csv/.tsv caption table")


def _decode_image(data: bytes, where: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{where}: not a readable image ({exc})") from None
    return image.convert("RGB")


# --- WebDataset shards ----------------------------------------------------------------------------

def _expand_urls(urls: str | Sequence[str]) -> list[str]:
    """Brace patterns and webdataset's '::'-joined lists -> the shard list, in order."""
    patterns = urls.split("::") if isinstance(urls, str) else list(urls)
    return [url for pattern in patterns for url in braceexpand(str(pattern))]


def _is_local(url: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", url) or url.startswith("file:")


def _sample_prefixes(url: str) -> Iterator[tuple[str, str]]:
    """(key, suffix) of every file in a shard, in tar order, skipping what webdataset skips.

    A local shard is scanned by its headers only (tarfile seeks over the data), which is what makes
    counting a large dataset cheap; remote shards (pipe:, http:) are streamed.
    """
    from webdataset import gopen
    from webdataset.tariterators import base_plus_ext, meta_prefix, meta_suffix

    path = url.removeprefix("file:")
    stream = tarfile.open(path, "r:*") if _is_local(url) else tarfile.open(fileobj=gopen.gopen(url), mode="r|*")
    with stream:
        for info in stream:
            name = info.name
            if not info.isreg() or ("/" not in name and name.startswith(meta_prefix) and name.endswith(meta_suffix)):
                continue
            if re.match(r"__[^/]*__($|/)", name):
                continue
            prefix, suffix = base_plus_ext(name)
            if prefix is not None:
                yield prefix, suffix.lower()


def count_shard(url: str) -> int:
    """Samples in one shard that `WebDatasetSource` yields: runs of files sharing a key, with an image."""
    count, current, has_image = 0, None, False
    try:
        for prefix, suffix in _sample_prefixes(url):
            if prefix != current:
                count += has_image
                current, has_image = prefix, False
            has_image |= suffix in IMAGE_EXTENSIONS
    except (OSError, tarfile.TarError) as exc:
        raise UserError(f"{url}: not a readable tar shard ({exc})") from None
    return count + has_image


class WebDatasetSource:
    """WebDataset tar shards as img2dataset/DataComp write them, read in order with `webdataset`.

    Each sample is an image (`jpg`, `jpeg`, `png` or `webp`) with its caption in `.txt`, or in
    `.json` under `caption`; its key is the webdataset `__key__`. The `.json` fields become the
    sample's `meta`, and DataCompDR's `syn.json` (`{"syn_text": [...]}`) becomes
    `meta["synthetic"]`. Files of a key without an image are skipped (as in the counts).
    Shards are read sequentially, so there is no random access; `iter_from` skips whole shards by
    their counts, which are taken once (a tar header scan) and kept.
    """

    def __init__(self, urls: str | Sequence[str], shard_counts: Sequence[int] | None = None):
        self.patterns = urls.split("::") if isinstance(urls, str) else [str(u) for u in urls]
        self.urls = _expand_urls(self.patterns)
        if not self.urls:
            raise UserError(f"webdataset {urls!r}: the pattern names no shards")
        missing = [u for u in self.urls if _is_local(u) and not Path(u.removeprefix("file:")).is_file()]
        if missing:
            more = f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
            raise UserError(f"{missing[0]}: no such shard{more}")
        if shard_counts is not None:
            if len(shard_counts) != len(self.urls):
                raise UserError(f"webdataset {urls!r}: {len(shard_counts)} shard counts for {len(self.urls)} shards")
            self.__dict__["shard_counts"] = [int(c) for c in shard_counts]

    @cached_property
    def shard_counts(self) -> list[int]:
        return [count_shard(url) for url in self.urls]

    def __len__(self) -> int:
        return sum(self.shard_counts)

    def describe(self) -> dict[str, Any]:
        urls = [str(Path(p.removeprefix("file:")).absolute()) if _is_local(p) else p for p in self.patterns]
        return {"kind": "webdataset", "urls": urls, "shard_counts": self.shard_counts, "length": len(self)}

    def __iter__(self) -> Iterator[CaptionedImage]:
        return self._iterate(self.urls, skip=0)

    def iter_from(self, start: int) -> Iterator[CaptionedImage]:
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if start == 0:
            return iter(self)
        shard, skip = 0, start
        while shard < len(self.urls) and skip >= self.shard_counts[shard]:
            skip -= self.shard_counts[shard]
            shard += 1
        return self._iterate(self.urls[shard:], skip) if shard < len(self.urls) else iter(())

    def _iterate(self, urls: list[str], skip: int) -> Iterator[CaptionedImage]:
        import webdataset as wds

        # One ordered stream: no shuffling, and no splitting by node or DataLoader worker.
        dataset = wds.WebDataset(urls, shardshuffle=False, nodesplitter=None, workersplitter=None,
                                 empty_check=False)
        for raw in dataset:
            image_ext = next((ext for ext in IMAGE_EXTENSIONS if ext in raw), None)
            if image_ext is None:
                continue
            if skip:
                skip -= 1
                continue
            yield self._sample(raw, image_ext)

    @staticmethod
    def _sample(raw: dict[str, Any], image_ext: str) -> CaptionedImage:
        key, url = raw["__key__"], raw.get("__url__", "?")
        where = f"{url}: {key}"
        meta: dict[str, Any] = {}
        if "json" in raw:
            meta = _parse_json(raw["json"], f"{where}.json")
            if not isinstance(meta, dict):
                raise UserError(f"{where}.json: expected an object, got {type(meta).__name__}")
        if "txt" in raw:
            caption = raw["txt"].decode("utf-8")
        elif isinstance(meta.get("caption"), str):
            caption = meta["caption"]
        else:
            raise UserError(f"{where}: no caption; accepted: a .txt file, or 'caption' in the .json")
        if "syn.json" in raw:
            meta["synthetic"] = _synthetic(_parse_json(raw["syn.json"], f"{where}.syn.json"), f"{where}.syn.json")
        return CaptionedImage(key=key, image=_decode_image(raw[image_ext], f"{where}.{image_ext}"),
                              caption=caption.strip(), meta=meta)


def _parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{where}: malformed JSON ({exc})") from None


def _synthetic(value: Any, where: str) -> list[str]:
    """DataCompDR's `{"syn_text": [...]}`, or a plain list of captions."""
    captions = value.get("syn_text") if isinstance(value, dict) else value
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise UserError(f"{where}: expected {{\"syn_text\": [captions]}} or a list of captions")
    return captions


def write_webdataset(source: Iterable[CaptionedImage], out_dir: str | Path, samples_per_shard: int = 1000,
                     image_format: str = "png", jpeg_quality: int = 95) -> list[Path]:
    """Write `source` as WebDataset shards `out_dir/00000.tar, ...`, the layout img2dataset writes.

    Each sample becomes `KEY.png` (or `.jpg`), `KEY.txt` (the caption), `KEY.json` (its `meta`, less
    `synthetic`) and, where `meta["synthetic"]` exists, DataCompDR's `KEY.syn.json`. Dots and slashes
    in keys become '_' (webdataset splits a file name at its first dot). Returns the shard paths.
    """
    import webdataset as wds

    if image_format not in ("png", "jpg"):
        raise UserError(f"image_format: {image_format!r}; allowed: png, jpg")
    if samples_per_shard < 1:
        raise UserError(f"samples_per_shard: {samples_per_shard}; allowed: 1 or more")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards: list[str] = []
    with wds.ShardWriter(str(out_dir / "%05d.tar"), maxcount=samples_per_shard, verbose=0,
                         post=shards.append) as writer:
        for sample in source:
            buffer = io.BytesIO()
            if image_format == "png":
                sample.image.convert("RGB").save(buffer, format="PNG")
            else:
                sample.image.convert("RGB").save(buffer, format="JPEG", quality=jpeg_quality)
            meta = {k: v for k, v in sample.meta.items() if k != "synthetic"}
            record = {"__key__": re.sub(r"[./\\]", "_", sample.key), image_format: buffer.getvalue(),
                      "txt": sample.caption, "json": json.dumps(meta, default=_jsonable).encode("utf-8")}
            if "synthetic" in sample.meta:
                record["syn.json"] = json.dumps({"syn_text": list(sample.meta["synthetic"])}).encode("utf-8")
            writer.write(record)
    return [Path(s) for s in shards]


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays in `meta` (json.dumps calls this for what it cannot encode)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"meta value of type {type(value).__name__} is not JSON-serialisable")


# --- image folder + caption table -----------------------------------------------------------------

def _pick_column(header: list[str], accepted: tuple[str, ...], what: str, table: Path) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in accepted:
        if name in lowered:
            return lowered.index(name)
    raise UserError(f"{table}: no {what} column; accepted: {', '.join(accepted)} "
                    f"(found: {', '.join(h.strip() for h in header) or 'no header'})")


class FolderSource:
    """Images in a folder, captioned by a CSV or TSV table (random access).

    The table needs a header row with an image column (`filepath`, `file` or `image`; paths
    relative to `root` or absolute) and a caption column (`caption` or `text`); the delimiter
    follows the extension (.csv comma, .tsv tab). Keys are the image paths as written in the
    table ('#n' is appended to the n-th repeat of a path).
    """

    def __init__(self, root: str | Path, captions: str | Path | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise UserError(f"{root}: no such image folder")
        if captions is None:
            found = [self.root / name for name in TABLE_NAMES if (self.root / name).is_file()]
            if not found:
                raise UserError(f"{root}: no caption table; accepted: {', '.join(TABLE_NAMES)} in the folder")
            captions = found[0]
        self.table = Path(captions).resolve()
        if not self.table.is_file():
            raise UserError(f"{captions}: no such caption table")
        if self.table.suffix.lower() not in (".csv", ".tsv"):
            raise UserError(f"{captions}: unknown table format {self.table.suffix!r}; allowed: .csv, .tsv")
        self.rows = self._read_table()

    def _read_table(self) -> list[tuple[str, str, str]]:
        delimiter = "\t" if self.table.suffix.lower() == ".tsv" else ","
        with open(self.table, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, [])
            image_col = _pick_column(header, IMAGE_COLUMNS, "image", self.table)
            caption_col = _pick_column(header, CAPTION_COLUMNS, "caption", self.table)
            rows, seen = [], {}
            for line, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= max(image_col, caption_col):
                    raise UserError(f"{self.table}:{line}: {len(row)} fields, expected {len(header)} "
                                    f"(is the delimiter {'tab' if delimiter == chr(9) else 'comma'}?)")
                path = row[image_col].strip()
                if not path:
                    raise UserError(f"{self.table}:{line}: empty {header[image_col].strip()!r}")
                repeat = seen.get(path, 0)
                seen[path] = repeat + 1
                rows.append((path if not repeat else f"{path}#{repeat}", path, row[caption_col].strip()))
        return rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> CaptionedImage:
        if not -len(self.rows) <= index < len(self.rows):
            raise IndexError(index)
        key, path, caption = self.rows[index]
        file = self.root / path
        if not file.is_file():
            raise UserError(f"{self.table}: row {index}: image {path!r} not found under {self.root}")
        return CaptionedImage(key=key, image=_decode_image(file.read_bytes(), str(file)), caption=caption)

    def __iter__(self) -> Iterator[CaptionedImage]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[CaptionedImage]:
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        return (self[i] for i in range(start, len(self.rows)))

    def describe(self) -> dict[str, Any]:
        return {"kind": "folder", "root": str(self.root), "captions": str(self.table), "length": len(self)}


# --- opening sources by reference and by description ----------------------------------------------

def _open_embedded(ref: str) -> CaptionSource:
    head, _, query = ref.partition("?")
    _, _, split = head.partition(":")
    options: dict[str, int] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name not in EMBEDDED_OPTIONS:
            raise UserError(f"data {ref!r}: unknown option {name!r}; allowed: {', '.join(EMBEDDED_OPTIONS)}")
        try:
            options[name] = int(value)
        except ValueError:
            raise UserError(f"data {ref!r}: option {name}={value!r} is not an integer") from None
    from archsearch.data.embedded import EmbeddedScenes

    return EmbeddedScenes(split or "train", **options)


def _is_shard(path: str) -> bool:
    return path.lower().endswith(SHARD_SUFFIXES)


def open_source(ref: str) -> CaptionSource:
    """The source a reference names; see `ACCEPTED_REFS`."""
    ref = ref.strip()
    if ref == "embedded" or ref.startswith(("embedded:", "embedded?")):
        return _open_embedded(ref)
    if "{" in ref or "::" in ref or _is_shard(ref):
        return WebDatasetSource(ref)
    path = Path(ref)
    if path.is_dir():
        if any((path / name).is_file() for name in TABLE_NAMES):
            return FolderSource(path)
        shards = sorted(p for p in path.iterdir() if p.is_file() and _is_shard(p.name))
        if shards:
            return WebDatasetSource([str(p) for p in shards])
        raise UserError(f"{ref}: folder has neither {' nor '.join(TABLE_NAMES)} nor .tar shards")
    if path.suffix.lower() in (".csv", ".tsv"):
        if not path.is_file():
            raise UserError(f"{ref}: no such caption table")
        return FolderSource(path.parent, path)
    what = "no such file or folder" if not path.exists() else "not a data source"
    raise UserError(f"data {ref!r}: {what}; accepted: {'; '.join(ACCEPTED_REFS)}")


SOURCE_KINDS = ("embedded", "webdataset", "folder")


def source_from_description(description: dict[str, Any]) -> CaptionSource:
    """Re-open the source a store recorded with `describe()`; its length must not have changed."""
    kind = description.get("kind")
    if kind == "embedded":
        from archsearch.data.embedded import EmbeddedScenes

        source: CaptionSource = EmbeddedScenes.from_description(description)
    elif kind == "webdataset":
        source = WebDatasetSource(description["urls"], description.get("shard_counts"))
    elif kind == "folder":
        source = FolderSource(description["root"], description["captions"])
    else:
        raise UserError(f"data description: unknown kind {kind!r}; allowed: {', '.join(SOURCE_KINDS)}")
    recorded = description.get("length")
    if recorded is not None and len(source) != recorded:
        raise UserError(f"data {source.describe().get('urls') or source.describe().get('root') or kind}: "
                        f"{len(source)} samples, but {recorded} were recorded; the data changed since")
    return source
