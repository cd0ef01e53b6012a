"""The reinforced store: what it keeps equals what the teachers and captioner compute, interrupted
and sharded builds equal one straight build, damage is refused by name, and the training dataset
hands out embeddings of exactly the view it returns."""

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from typer.testing import CliRunner

from archsearch.cli.main import app
from archsearch.data.augment import AugmentConfig, replay, sample_params, sample_rng
from archsearch.data.dataset import ReinforcedDataset, ReinforcedIterableDataset, split_teachers
from archsearch.data.reinforce import caption_seed, parse_shard, reinforce
from archsearch.data.store import ReinforcedStore
from archsearch.errors import UserError
from archsearch.models.tokenizer import tokenize
from reinforce_helpers import DrawnSource, StreamOnly, TemplateCaptioner, teachers

N, A, S, BATCH, SEED = 8, 3, 2, 2, 5
SHARD = "shard-00000-of-00001"


def build(out, source=None, teacher_list=None, captioner=None, **overrides):
    settings = dict(augmentations=A, synthetic_captions=S, seed=SEED, batch_size=BATCH, progress=False)
    settings.update(overrides)
    return reinforce(source or DrawnSource(N), teacher_list or teachers(), captioner or TemplateCaptioner(),
                     out=out, **settings)


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_the_module():
    # Tiny models are latency-bound: a thread pool on a busy shared machine slows each op ~100x.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_thread(_deterministic_torch):
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_teachers():
    return teachers()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_teachers) -> Path:
    """One uninterrupted, unsharded build every other build is compared with."""
    out = tmp_path_factory.mktemp("reference") / "store"
    report = build(out, teacher_list=tiny_teachers)
    assert report.processed == report.completed == N
    return out


def assert_same_store(path, expected):
    got, want = ReinforcedStore.open(path), ReinforcedStore.open(expected)
    assert got.settings.to_dict() == want.settings.to_dict()
    for name in want.settings.arrays():
        np.testing.assert_array_equal(got.array(name), want.array(name), err_msg=name)


def test_store_holds_what_teachers_and_captioner_compute(reference, tiny_teachers):
    store, source, captioner = ReinforcedStore.open(reference), DrawnSource(N), TemplateCaptioner()
    assert len(store) == N and store.is_complete and [t.id for t in store.teachers] == ["tiny-a", "tiny-b"]
    manifest = store.manifest
    assert manifest["source"] == source.describe() and manifest["captioner"] == "template-v1"
    assert {"torch", "open_clip_torch", "numpy", "archsearch"} <= set(manifest["versions"])
    for i in (0, 5):
        stored, sample = store[i], source[i]
        assert stored.key == sample.key
        np.testing.assert_array_equal(stored.aug, sample_params(sample_rng(SEED, i), *sample.image.size,
                                                                AugmentConfig(), A))
        assert stored.captions == captioner.caption(sample, S, caption_seed(SEED, i))
        assert any("café" in c for j in range(N) for c in store[j].captions)  # UTF-8 survives the |S array
        for k, teacher in enumerate(tiny_teachers):
            views = torch.stack([replay(sample.image, row, teacher.image_size) for row in stored.aug])
            assert torch.equal(views, torch.stack([replay(sample.image, row, teacher.image_size)
                                                   for row in store[i].aug]))
            fresh = teacher.encode_image(views).numpy()
            kept = stored.image_embeddings[k].astype(np.float32)
            assert stored.image_embeddings[k].dtype == np.float16 and kept.shape == (A, teacher.embed_dim)
            np.testing.assert_allclose(kept, fresh, atol=1e-3, rtol=0)
            assert np.abs(kept[0] - fresh[1]).max() > 1e-2  # the views really differ, so the check can fail
            texts = teacher.encode_text([sample.caption, *stored.captions]).numpy()
            np.testing.assert_allclose(stored.text_embeddings[k].astype(np.float32), texts, atol=1e-3, rtol=0)


def test_build_interrupted_by_the_captioner_resumes_to_the_same_store(tmp_path, reference):
    out = tmp_path / "store"
    with pytest.raises(RuntimeError, match="captioner crashed"):
        build(out, captioner=TemplateCaptioner(fail_after=5))  # dies inside the third batch
    assert json.loads((out / SHARD / "progress.json").read_text())["completed"] == 4
    with pytest.raises(UserError, match=r"progress.json: incomplete build, shard 0/1 has 4 of 8 samples"):
        ReinforcedStore.open(out)
    partial = ReinforcedStore.open(out, allow_incomplete=True)
    assert partial[3].key == "drawn-0003"
    with pytest.raises(UserError, match="sample 4 is not built yet"):
        partial[4]
    captioner = TemplateCaptioner()
    report = build(out, captioner=captioner)
    assert report.processed == 4 and captioner.calls == 4  # committed samples are not redone
    assert_same_store(out, reference)


def test_build_interrupted_by_a_teacher_resumes_to_the_same_store(tmp_path, reference):
    out = tmp_path / "store"
    with pytest.raises(RuntimeError, match="teacher crashed"):
        build(out, teacher_list=teachers(fail_after_calls=3))
    assert json.loads((out / SHARD / "progress.json").read_text())["completed"] == 6
    assert build(out).processed == 2
    assert build(out).processed == 0  # a finished shard is left alone
    assert_same_store(out, reference)


def test_build_killed_in_a_subprocess_resumes_to_the_same_store(tmp_path, reference):
    out = tmp_path / "store"
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from reinforce_helpers import DrawnSource, TemplateCaptioner, teachers\n"
            "from archsearch.data.reinforce import reinforce\n"
            f"reinforce(DrawnSource({N}), teachers(), TemplateCaptioner(delay=0.4), {A}, {S}, {str(out)!r}, "
            f"seed={SEED}, batch_size={BATCH}, progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"})
    progress, completed, deadline = out / SHARD / "progress.json", 0, time.monotonic() + 120
    try:
        while completed < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            if progress.exists():
                completed = json.loads(progress.read_text())["completed"]
    finally:
        proc.kill()
        proc.wait()
    assert 2 <= json.loads(progress.read_text())["completed"] < N, "killed before or after the build, not during"
    build(out)
    assert_same_store(out, reference)


def test_two_shards_read_back_as_the_unsharded_store(tmp_path, reference, tiny_teachers):
    out = tmp_path / "store"
    build(out, teacher_list=tiny_teachers, shard=(1, 2))
    with pytest.raises(UserError, match=r"shard-00000-of-00002: missing shard 0/2"):
        ReinforcedStore.open(out)
    build(out, teacher_list=tiny_teachers, shard=(0, 2))
    store = ReinforcedStore.open(out)
    assert store.locate(5) == (1, 1) and store[5].key == store.key(5) == "drawn-0005"
    assert [(s["start"], s["stop"], s["completed"]) for s in store.shard_progress()] == [(0, 4, 4), (4, 8, 4)]
    for name in store.settings.arrays():
        np.testing.assert_array_equal(store.array(name), ReinforcedStore.open(reference).array(name), err_msg=name)


def test_resuming_with_other_settings_is_refused(tmp_path, tiny_teachers):
    out = tmp_path / "store"
    build(out, source=DrawnSource(2), teacher_list=tiny_teachers)
    for overrides, message in [
        (dict(augmentations=4), "augmentations: store 3, now 4"),
        (dict(seed=6), "seed: store 5, now 6"),
        (dict(shard=(0, 2)), "num_shards: store 1, now 2"),
        (dict(source=DrawnSource(2, order=[1, 0])), "source: store"),
        (dict(teacher_list=tiny_teachers[:1]), "teachers: store"),
        (dict(augment=AugmentConfig(flip=0.5)), "augment: store"),
    ]:
        with pytest.raises(UserError, match=rf"manifest.json: this store was built with different settings.*{message}"):
            build(out, **{"teacher_list": tiny_teachers, "source": DrawnSource(2), **overrides})


def test_bad_arguments_are_user_errors(tmp_path, tiny_teachers):
    with pytest.raises(UserError, match="each teacher must appear once"):
        build(tmp_path / "a", teacher_list=[tiny_teachers[0], tiny_teachers[0]])
    with pytest.raises(UserError, match="--augmentations: 0"):
        build(tmp_path / "b", teacher_list=tiny_teachers, augmentations=0)
    with pytest.raises(UserError, match="--shard 2/3: the source has only 2 samples"):
        build(tmp_path / "c", source=DrawnSource(2), teacher_list=tiny_teachers, shard=(2, 3))
    assert parse_shard("3/8") == (3, 8) and parse_shard(" 0 / 1 ") == (0, 1)
    for bad in ("1", "2/2", "-1/2", "a/b", "1/2/3"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)


def test_cli_bad_shard_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["reinforce", "--data", "embedded", "--teachers", "t", "--out",
                                      str(tmp_path / "s"), "--shard", "2of4"])
    assert result.exit_code == 2
    assert "archsearch: error: --shard: '2of4' is not i/N" in result.output and "Traceback" not in result.output


def _edit_json(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _truncate(path, n=10):
    path.write_bytes(path.read_bytes()[:-n])


def _resave(path, dtype):
    np.save(path, np.load(path).astype(dtype))


def _widen_teacher(manifest):
    manifest["teachers"][0]["embed_dim"] = 32
    manifest["arrays"]["teacher0_image"]["shape"][1] = 32
    manifest["arrays"]["teacher0_text"]["shape"][1] = 32


CORRUPTIONS = {
    "truncated npy": (lambda s: _truncate(s / SHARD / "teacher1_image.npy"),
                      rf"{SHARD}/teacher1_image.npy: file is \d+ bytes, expected \d+ .*\(truncated\)"),
    "not an npy": (lambda s: (s / SHARD / "aug.npy").write_bytes(b"not numpy at all"),
                   rf"{SHARD}/aug.npy: not a readable .npy file"),
    "wrong dtype": (lambda s: _resave(s / SHARD / "aug.npy", np.float64),
                    rf"{SHARD}/aug.npy: array is <f8 \(8, 3, 5\), but the manifest implies <f4 \(8, 3, 5\)"),
    "manifest dims differ from arrays": (lambda s: _edit_json(s / "manifest.json", _widen_teacher),
                                         rf"{SHARD}/teacher0_image.npy: array is <f2 \(8, 3, 16\), but the "
                                         rf"manifest implies <f2 \(8, 3, 32\)"),
    "manifest inconsistent": (lambda s: _edit_json(s / "manifest.json",
                                                   lambda m: m["teachers"][1].update(embed_dim=8)),
                              r"manifest.json: field 'arrays' is .* but the settings imply"),
    "manifest field missing": (lambda s: _edit_json(s / "manifest.json", lambda m: m.pop("seed")),
                               r"manifest.json: seed: required field is missing"),
    "manifest field wrong type": (lambda s: _edit_json(s / "manifest.json", lambda m: m.update(augmentations="3")),
                                  r"manifest.json: augmentations: Input should be a valid integer"),
    "manifest other version": (lambda s: _edit_json(s / "manifest.json", lambda m: m.update(version=99)),
                               r"manifest.json: field 'version' is 99"),
    "manifest not json": (lambda s: (s / "manifest.json").write_text("{"), r"manifest.json: unreadable store manifest"),
    "manifest missing": (lambda s: (s / "manifest.json").unlink(),
                         r"manifest.json: missing; .* not a reinforced store"),
    "shard missing": (lambda s: shutil.rmtree(s / SHARD), rf"{SHARD}: missing shard 0/1"),
    "array missing": (lambda s: (s / SHARD / "captions.npy").unlink(), rf"{SHARD}/captions.npy: missing array file"),
    "progress missing": (lambda s: (s / SHARD / "progress.json").unlink(), rf"{SHARD}/progress.json: missing"),
    "progress disagrees": (lambda s: _edit_json(s / SHARD / "progress.json", lambda p: p.update(stop=7)),
                           rf"{SHARD}/progress.json: field 'stop' is 7, the manifest implies 8"),
    "progress field wrong type": (lambda s: _edit_json(s / SHARD / "progress.json", lambda p: p.update(completed=True)),
                                  rf"{SHARD}/progress.json: completed: Input should be a valid integer"),
    "manifest teacher entry": (lambda s: _edit_json(s / "manifest.json", lambda m: m["teachers"][0].pop("id")),
                               r"manifest.json: teachers.0.id: required field is missing"),
    "incomplete": (lambda s: _edit_json(s / SHARD / "progress.json", lambda p: p.update(completed=5)),
                   rf"{SHARD}/progress.json: incomplete build, shard 0/1 has 5 of 8 samples"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_damaged_store_is_refused_naming_the_problem(case, reference, tmp_path):
    damage, message = CORRUPTIONS[case]
    store = shutil.copytree(reference, tmp_path / "store")
    damage(store)
    with pytest.raises(UserError, match=message) as error:
        ReinforcedStore.open(store)
    assert str(store) in str(error.value)


def test_damaged_rows_are_refused_on_access(reference, tmp_path):
    store = shutil.copytree(reference, tmp_path / "store")
    text = np.lib.format.open_memmap(store / SHARD / "teacher0_text.npy", mode="r+")
    text[2, 1, 3] = np.nan
    text.flush()
    aug = np.lib.format.open_memmap(store / SHARD / "aug.npy", mode="r+")
    aug[6, 0, 2] = 0  # a crop of height 0
    aug.flush()
    opened = ReinforcedStore.open(store)
    assert opened[1].key == "drawn-0001"
    with pytest.raises(UserError, match=rf"{SHARD}, sample 2: teacher0_text.npy holds non-finite embeddings"):
        opened[2]
    with pytest.raises(UserError, match=rf"{SHARD}, sample 6: aug.npy holds malformed crop boxes"):
        opened[6]
    with pytest.raises(IndexError):
        opened[N]


def test_store_pickles_as_its_path(reference):
    store = ReinforcedStore.open(reference)
    data = pickle.dumps(store)
    assert len(data) < 2000  # the path, not the arrays (which spawned DataLoader workers would copy)
    np.testing.assert_array_equal(pickle.loads(data)[4].aug, store[4].aug)


def test_dataset_returns_the_chosen_view_and_its_embeddings(reference, tiny_teachers):
    source = DrawnSource(N)
    dataset = ReinforcedDataset(reference, source, resolution=40, context_length=16, seed=0)
    assert len(dataset) == N and dataset.teacher_dims == (16, 24)
    store = dataset.store
    for i in (1, 6):
        item, stored, sample = dataset[i], store[i], source[i]
        view, syn = item["view"], item["synthetic"]
        assert item["image"].shape == (3, 40, 40) and item["image"].dtype == torch.float32
        assert torch.equal(item["image"], replay(sample.image, stored.aug[view], 40))
        assert item["text"].shape == item["syn_text"].shape == (16,) and item["text"].dtype == torch.long
        assert torch.equal(item["text"], tokenize(sample.caption, 16)[0])
        assert torch.equal(item["syn_text"], tokenize(stored.captions[syn], 16)[0])
        for key in ("teacher_image", "teacher_text", "teacher_syn_text"):
            assert item[key].shape == (40,) and item[key].dtype == torch.float32
        for k, (teacher, image, text, syn_text) in enumerate(zip(
                tiny_teachers, *(split_teachers(item[key], dataset.teacher_dims)
                                 for key in ("teacher_image", "teacher_text", "teacher_syn_text")))):
            # The teacher, run now on the returned view (at its own input size), agrees with the store.
            fresh = teacher.encode_image(replay(sample.image, stored.aug[view], teacher.image_size)[None])[0]
            torch.testing.assert_close(image, fresh, atol=1e-3, rtol=0)
            fresh_text = teacher.encode_text([sample.caption, stored.captions[syn]])
            torch.testing.assert_close(text, fresh_text[0], atol=1e-3, rtol=0)
            torch.testing.assert_close(syn_text, fresh_text[1], atol=1e-3, rtol=0)


def test_dataset_choices_are_seeded_fixed_or_random(reference):
    def choices(dataset):
        return [(dataset[i]["view"], dataset[i]["synthetic"]) for i in range(N)]

    seeded = ReinforcedDataset(reference, DrawnSource(N), resolution=24, context_length=16, seed=3)
    first = choices(seeded)
    assert first == choices(ReinforcedDataset(reference, DrawnSource(N), 24, 16, seed=3))
    seeded.set_epoch(1)
    assert choices(seeded) != first
    fixed = ReinforcedDataset(reference, DrawnSource(N), 24, 16, view=2, synthetic=1)
    assert set(choices(fixed)) == {(2, 1)}
    unseeded = ReinforcedDataset(reference, DrawnSource(N), 24, 16)
    drawn = {(unseeded[0]["view"], unseeded[0]["synthetic"]) for _ in range(30)}
    assert len(drawn) > 1 and drawn <= {(v, s) for v in range(A) for s in range(S)}
    batch = next(iter(DataLoader(seeded, batch_size=4)))
    assert batch["image"].shape == (4, 3, 24, 24) and batch["teacher_image"].shape == (4, 40)
    assert batch["text"].shape == (4, 16)


def test_streaming_dataset_matches_the_indexed_one(reference):
    streamed = list(ReinforcedIterableDataset(reference, StreamOnly(DrawnSource(N)), 24, 16, view=1, synthetic=0))
    indexed = ReinforcedDataset(reference, DrawnSource(N), 24, 16, view=1, synthetic=0)
    assert [item["index"] for item in streamed] == list(range(N))
    for item in streamed:
        for key, value in indexed[item["index"]].items():
            assert torch.equal(torch.as_tensor(item[key]), torch.as_tensor(value)), key


def test_dataset_refuses_a_source_that_does_not_match(reference):
    with pytest.raises(UserError, match="cannot be indexed; read it in order with ReinforcedIterableDataset"):
        ReinforcedDataset(reference, StreamOnly(DrawnSource(N)), 24)
    with pytest.raises(UserError, match="the store has 8 samples but the source"):
        ReinforcedDataset(reference, DrawnSource(7), 24)
    reordered = ReinforcedDataset(reference, DrawnSource(N, order=[1, 0, 2, 3, 4, 5, 6, 7]), 24)
    with pytest.raises(UserError, match="sample 0 of the source has key 'drawn-0001', the store has 'drawn-0000'"):
        reordered[0]
    with pytest.raises(UserError, match="view: 3 is out of range; the store has 3 per sample"):
        ReinforcedDataset(reference, DrawnSource(N), 24, view=3)
