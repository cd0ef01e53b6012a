"""The one atomic write (archsearch.files): whole files or none, no temporary left behind, one
winner when processes race to create a file."""

import json
import multiprocessing
import os
import stat

import pytest
import torch

from archsearch.files import create_text_once, replacing, write_json_atomic, write_text_atomic


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "record.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2, "b": [1, 2]})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1, 2]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.json"]


def test_the_written_file_has_the_usual_permissions_not_mkstemps_0600(tmp_path):
    path = write_text_atomic(tmp_path / "x.txt", "hello")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_failed_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "weights.pt"
    with replacing(path) as tmp:
        torch.save({"w": torch.ones(2)}, tmp)
    with pytest.raises(RuntimeError, match="interrupted"):
        with replacing(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert torch.equal(torch.load(path)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pt"]


def _race(args):
    path, text = args
    return create_text_once(path, text)


def test_of_processes_racing_to_create_a_file_exactly_one_wins_and_it_is_whole(tmp_path):
    path = tmp_path / "manifest.json"
    texts = [json.dumps({"writer": k, "pad": "x" * 100_000}) for k in range(8)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        won = pool.map(_race, [(path, t) for t in texts])
    assert sum(won) == 1
    assert path.read_text() == texts[won.index(True)]
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
    assert create_text_once(path, "later") is False and path.read_text() == texts[won.index(True)]
