"""Real-data readers: WebDataset shards round-trip, img2dataset/DataCompDR layouts, image folders."""

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from archsearch.data import readers
from archsearch.data.readers import (
    FolderSource, WebDatasetSource, open_source, source_from_description, write_webdataset,
)
from archsearch.data.source import CaptionedImage, CaptionSource
from archsearch.errors import UserError


def _image(seed: int, size=(20, 16)) -> Image.Image:
    """A small picture: a noisy gradient with a filled rectangle, different for every seed."""
    rng = np.random.default_rng(seed)
    h, w = size
    pixels = (np.linspace(0, 255, w)[None, :, None] * rng.random(3)).repeat(h, 0)
    pixels = pixels + rng.integers(0, 40, (h, w, 3))
    y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
    pixels[y:y + h // 3, x:x + w // 3] = rng.integers(0, 256, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


class ListSource:
    """A tiny in-memory CaptionSource."""

    def __init__(self, samples):
        self.samples = list(samples)

    def __len__(self):
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def iter_from(self, start):
        return iter(self.samples[start:])

    def describe(self):
        return {"kind": "list", "length": len(self.samples)}


def _samples(n=7):
    out = []
    for i in range(n):
        meta = {"index": i, "colour": ["red", "blue"][i % 2], "xy": [i * 0.5, 1.25]}
        if i % 3 == 0:
            meta["synthetic"] = [f"synthetic {i} a", f"synthetic {i} b"]
        out.append(CaptionedImage(key=f"sample-{i:04d}", image=_image(i), caption=f"caption number {i}, ünïcode",
                                  meta=meta))
    return out


def _same(a: CaptionedImage, b: CaptionedImage):
    assert a.key == b.key and a.caption == b.caption and a.meta == b.meta
    assert a.image.size == b.image.size
    assert np.array_equal(np.asarray(a.image.convert("RGB")), np.asarray(b.image))


def test_webdataset_round_trip_is_exact_for_png(tmp_path):
    samples = _samples(7)
    shards = write_webdataset(ListSource(samples), tmp_path / "shards", samples_per_shard=3)
    assert [p.name for p in shards] == ["00000.tar", "00001.tar", "00002.tar"]
    source = WebDatasetSource(str(tmp_path / "shards" / "{00000..00002}.tar"))
    assert isinstance(source, CaptionSource)
    assert source.shard_counts == [3, 3, 1] and len(source) == 7
    read = list(source)
    assert len(read) == 7
    for original, back in zip(samples, read):
        _same(original, back)
    assert read[0].meta["synthetic"] == ["synthetic 0 a", "synthetic 0 b"] and "synthetic" not in read[1].meta


@pytest.mark.parametrize("start", [0, 2, 3, 4, 6, 7, 50])
def test_iter_from_skips_to_the_same_samples(tmp_path, start):
    samples = _samples(7)
    write_webdataset(ListSource(samples), tmp_path, samples_per_shard=3)
    source = open_source(str(tmp_path))  # a folder of .tar shards
    assert [s.key for s in source.iter_from(start)] == [s.key for s in samples[start:]]


def test_jpg_shards_decode_close_to_the_original(tmp_path):
    samples = _samples(3)
    write_webdataset(ListSource(samples), tmp_path, samples_per_shard=10, image_format="jpg")
    names = tarfile.open(tmp_path / "00000.tar").getnames()
    assert "sample-0000.jpg" in names and "sample-0000.txt" in names and "sample-0000.syn.json" in names
    for original, back in zip(samples, open_source(str(tmp_path / "00000.tar"))):
        error = np.abs(np.asarray(original.image, dtype=float) - np.asarray(back.image, dtype=float)).mean()
        unrelated = np.abs(np.asarray(_image(99), dtype=float) - np.asarray(back.image, dtype=float)).mean()
        assert back.key == original.key and error < 15 and error < unrelated / 3


def _add(tar: tarfile.TarFile, name: str, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_reads_img2dataset_and_datacompdr_layouts(tmp_path):
    """img2dataset writes jpg/txt/json per success (json alone for failures); DataCompDR adds syn.json."""
    shard = tmp_path / "00000.tar"
    with tarfile.open(shard, "w") as tar:
        _add(tar, "000000000.jpg", _encoded(_image(0), "JPEG"))
        _add(tar, "000000000.txt", b"a photo of a dog")
        _add(tar, "000000000.json", json.dumps({"url": "http://x/0.jpg", "caption": "a photo of a dog",
                                                "width": 16}).encode())
        _add(tar, "000000001.json", json.dumps({"url": "http://x/1.jpg", "status": "failed"}).encode())
        _add(tar, "000000002.webp", _encoded(_image(2), "WEBP"))
        _add(tar, "000000002.json", json.dumps({"uid": "abc", "caption": "caption only in json"}).encode())
        _add(tar, "000000002.syn.json", json.dumps({"syn_text": ["one", "two", "three"]}).encode())
        _add(tar, "000000003.PNG", _encoded(_image(3), "PNG"))
        _add(tar, "000000003.txt", b"  upper-case extension  ")
    source = WebDatasetSource(str(shard))
    assert len(source) == 3  # the failed download (json only) is not a sample
    first, second, third = source
    assert (first.key, first.caption, first.meta["width"]) == ("000000000", "a photo of a dog", 16)
    assert (second.key, second.caption, second.meta["uid"]) == ("000000002", "caption only in json", "abc")
    assert second.meta["synthetic"] == ["one", "two", "three"] and second.image.size == (16, 20)
    assert (third.caption, third.meta) == ("upper-case extension", {})
    assert np.array_equal(np.asarray(third.image), np.asarray(_image(3)))
    assert [s.key for s in source.iter_from(1)] == ["000000002", "000000003"]


def test_webdataset_errors_name_the_shard_or_sample(tmp_path):
    with pytest.raises(UserError, match=r"missing-00001\.tar: no such shard \(\+1 more\)"):
        WebDatasetSource(str(tmp_path / "missing-{00001..00002}.tar"))
    not_a_tar = tmp_path / "broken.tar"
    not_a_tar.write_bytes(b"this is not a tar archive" * 40)
    with pytest.raises(UserError, match=r"broken\.tar: not a readable tar shard"):
        len(WebDatasetSource(str(not_a_tar)))
    shard = tmp_path / "nocaption.tar"
    with tarfile.open(shard, "w") as tar:
        _add(tar, "k1.png", _encoded(_image(1), "PNG"))
        _add(tar, "k1.json", b'{"uid": "u"}')
    with pytest.raises(UserError, match=r"nocaption\.tar: k1: no caption; accepted: a \.txt file, or 'caption'"):
        list(WebDatasetSource(str(shard)))
    shard = tmp_path / "badsyn.tar"
    with tarfile.open(shard, "w") as tar:
        _add(tar, "k1.png", _encoded(_image(1), "PNG"))
        _add(tar, "k1.txt", b"c")
        _add(tar, "k1.syn.json", b'{"other": 1}')
    with pytest.raises(UserError, match=r"k1\.syn\.json: expected \{\"syn_text\""):
        list(WebDatasetSource(str(shard)))


def test_description_reopens_without_rescanning(tmp_path, monkeypatch):
    write_webdataset(ListSource(_samples(5)), tmp_path / "wds", samples_per_shard=2)
    source = open_source(str(tmp_path / "wds" / "{00000..00002}.tar"))
    description = json.loads(json.dumps(source.describe()))
    assert description["kind"] == "webdataset" and description["length"] == 5
    assert description["shard_counts"] == [2, 2, 1]

    def no_scan(url):
        raise AssertionError(f"rescanned {url}")

    monkeypatch.setattr(readers, "count_shard", no_scan)
    again = source_from_description(description)
    assert len(again) == 5 and [s.key for s in again.iter_from(3)] == ["sample-0003", "sample-0004"]
    description["length"] = 6
    with pytest.raises(UserError, match="5 samples, but 6 were recorded"):
        source_from_description(description)


# --- image folders --------------------------------------------------------------------------------

def _folder(tmp_path, table_name, header, delimiter):
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(4):
        _image(i).save(tmp_path / "images" / f"{i}.png")
        rows.append([f"images/{i}.png", f"picture {i}, with a comma" if i == 1 else f"picture {i}"])
    rows.append(["images/0.png", "the first picture again"])
    import csv
    with open(tmp_path / table_name, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return rows


@pytest.mark.parametrize("table_name, header, delimiter", [
    ("captions.csv", ["filepath", "caption"], ","),
    ("captions.tsv", ["Image", "text"], "\t"),
])
def test_folder_source_reads_csv_and_tsv(tmp_path, table_name, header, delimiter):
    rows = _folder(tmp_path, table_name, header, delimiter)
    source = open_source(str(tmp_path))
    assert isinstance(source, FolderSource) and isinstance(source, CaptionSource) and len(source) == 5
    assert [s.caption for s in source] == [caption for _, caption in rows]
    assert [s.key for s in source] == ["images/0.png", "images/1.png", "images/2.png", "images/3.png",
                                       "images/0.png#1"]
    assert np.array_equal(np.asarray(source[2].image), np.asarray(_image(2)))
    assert source[-1].caption == "the first picture again"
    assert [s.key for s in source.iter_from(3)] == ["images/3.png", "images/0.png#1"]
    by_table = open_source(str(tmp_path / table_name))
    assert by_table.describe() == source.describe()
    again = source_from_description(json.loads(json.dumps(source.describe())))
    assert [s.caption for s in again] == [s.caption for s in source]
    with pytest.raises(IndexError):
        source[5]


def test_folder_source_errors_name_file_column_and_accepted_names(tmp_path):
    _folder(tmp_path, "captions.csv", ["path", "caption"], ",")
    with pytest.raises(UserError, match=r"captions\.csv: no image column; accepted: filepath, file, image "
                                        r"\(found: path, caption\)"):
        FolderSource(tmp_path)
    (tmp_path / "captions.csv").write_text("file,description\nimages/0.png,x\n")
    with pytest.raises(UserError, match=r"captions\.csv: no caption column; accepted: caption, text"):
        open_source(str(tmp_path))
    (tmp_path / "captions.csv").write_text("file,caption\nimages/0.png,ok\nimages/9.png,missing\n")
    source = FolderSource(tmp_path)
    assert source[0].caption == "ok"
    with pytest.raises(UserError, match=r"row 1: image 'images/9\.png' not found"):
        source[1]
    (tmp_path / "captions.csv").write_text("file,caption\nimages/0.png\tok\n")
    with pytest.raises(UserError, match=r"captions\.csv:2: 1 fields, expected 2 \(is the delimiter comma\?\)"):
        FolderSource(tmp_path)
    (tmp_path / "captions.csv").unlink()
    with pytest.raises(UserError, match=r"neither captions\.csv nor captions\.tsv nor \.tar shards"):
        open_source(str(tmp_path))
    with pytest.raises(UserError, match=r"no caption table; accepted: captions\.csv, captions\.tsv"):
        FolderSource(tmp_path)


def test_unknown_references_list_the_accepted_forms(tmp_path):
    with pytest.raises(UserError, match=r"no such file or folder; accepted: embedded\[:SPLIT\].*\.tar.*captions\.csv"):
        open_source(str(tmp_path / "nothing-here"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match=r"not a data source; accepted:"):
        open_source(str(tmp_path / "notes.txt"))
    with pytest.raises(UserError, match=r"unknown option 'size'; allowed: n, seed, image_size"):
        open_source("embedded:train?size=3")
    with pytest.raises(UserError, match=r"option n='many' is not an integer"):
        open_source("embedded?n=many")
    with pytest.raises(UserError, match=r"unknown kind 'parquet'; allowed: embedded, webdataset, folder"):
        source_from_description({"kind": "parquet"})
    with pytest.raises(UserError, match=r"image_format: 'gif'; allowed: png, jpg"):
        write_webdataset(ListSource([]), tmp_path / "x", image_format="gif")


# --- the embedded data (written by others; skipped where it is missing) ---------------------------

def test_embedded_references_and_export(tmp_path):
    embedded = pytest.importorskip("archsearch.data.embedded")
    source = open_source("embedded:train?n=5&seed=3&image_size=32")
    assert isinstance(source, embedded.EmbeddedScenes) and len(source) == 5
    again = source_from_description(json.loads(json.dumps(source.describe())))
    assert again.describe() == source.describe()
    write_webdataset(source, tmp_path, samples_per_shard=2)
    exported = open_source(str(tmp_path))
    assert len(exported) == 5
    for original, back in zip(source, exported):
        assert back.key == original.key and back.caption == original.caption
        assert back.meta == json.loads(json.dumps(original.meta))
        assert np.array_equal(np.asarray(back.image), np.asarray(original.image.convert("RGB")))
