"""Teachers: archsearch checkpoints round-trip and fold; open_clip models load from local files only."""

import argparse
import json
import os

import pytest
import torch

from archsearch.data.teacher import Teacher
from archsearch.data.teachers import (
    ArchsearchTeacher, OpenClipTeacher, load_teacher, load_teachers, save_teacher,
)
from archsearch.errors import SpecError, UserError
from archsearch.models import build_clip, reparameterize
from archsearch.models.tokenizer import tokenize
from archsearch.spec import ArchSpec, load_spec
from conftest import randomise_norm_statistics

# RepMixer + conv-attention image tower and a Text-RepMixer layer: both towers have branches to fold.
TINY = ArchSpec.from_dict({
    "resolution": 32, "embed_dim": 16,
    "image": {"stem": {"kind": "mobileone", "width": 16},
              "stages": [{"depth": 1, "width": 16, "mixer": "repmixer", "mlp": "convffn", "mlp_ratio": 2.0},
                         {"depth": 1, "width": 32, "mixer": "attention", "mlp": "convffn", "mlp_ratio": 2.0,
                          "downsample": "patch_embed", "pos": "repcpe", "head_dim": 16}],
              "head": {"conv_expand": 2.0}},
    "text": {"width": 32, "heads": 2, "layers": ["repmixer1d", "attention"], "context_length": 16},
})
TEXTS = ["a large red star left of a blue circle", "two small green squares", "abstract art"]


def _relative_error(a, b):
    return (torch.linalg.norm(a - b) / torch.linalg.norm(b)).item()


@pytest.fixture(scope="module")
def trained():
    """A randomly initialised tiny CLIP with non-trivial BatchNorm statistics and layer scales."""
    torch.manual_seed(0)
    model = build_clip(TINY)
    randomise_norm_statistics(model)
    for name, p in model.named_parameters():
        if "layer_scale" in name or name.endswith("gamma"):
            p.data.uniform_(0.5, 1.5)
    return model.eval()


def test_archsearch_teacher_round_trip(tmp_path, trained):
    path = save_teacher(trained, TINY, tmp_path / "tiny", meta={"epochs": 3, "data": "embedded:train"})
    assert path == tmp_path / "tiny" / "teacher.pt"
    checkpoint = torch.load(path, weights_only=True)
    assert set(checkpoint) == {"arch", "state_dict", "meta"} and checkpoint["meta"]["epochs"] == 3
    assert ArchSpec.model_validate(checkpoint["arch"]) == TINY and load_spec(tmp_path / "tiny" / "arch.yaml") == TINY

    teacher = load_teacher(str(tmp_path / "tiny"))
    assert isinstance(teacher, ArchsearchTeacher) and isinstance(teacher, Teacher)
    assert teacher.id.startswith("archsearch:tiny:") and len(teacher.id.split(":")[2]) == 12
    assert (teacher.embed_dim, teacher.image_size, teacher.meta["data"]) == (16, 32, "embedded:train")

    images = torch.rand(3, 3, 32, 32)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    folded = reparameterize(trained)
    with torch.no_grad():
        want_image = torch.nn.functional.normalize(folded.encode_image((images - mean) / std), dim=-1)
        want_text = torch.nn.functional.normalize(folded.encode_text(tokenize(TEXTS, 16)), dim=-1)
        unfolded_image = torch.nn.functional.normalize(trained.encode_image((images - mean) / std), dim=-1)
    got_image, got_text = teacher.encode_image(images), teacher.encode_text(TEXTS)
    assert got_image.dtype == got_text.dtype == torch.float32
    assert got_image.shape == (3, 16) and got_text.shape == (3, 16)
    assert torch.allclose(got_image, want_image, atol=1e-6) and torch.allclose(got_text, want_text, atol=1e-6)
    assert torch.allclose(got_image.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert _relative_error(got_image, unfolded_image) < 1e-4  # folding kept the trained function
    with pytest.raises(ValueError, match=r"expected images \[B, 3, 32, 32\]"):
        teacher.encode_image(torch.rand(1, 3, 64, 64))

    # The same checkpoint by file, and by name under runs/teachers/ from the working directory.
    assert load_teacher(str(path)).id == teacher.id
    (tmp_path / "runs" / "teachers").mkdir(parents=True)
    (tmp_path / "tiny").rename(tmp_path / "runs" / "teachers" / "tiny")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert load_teacher("tiny").id == teacher.id
    finally:
        os.chdir(cwd)


def test_teacher_id_follows_the_weights(tmp_path, trained):
    first = load_teacher(str(save_teacher(trained, TINY, tmp_path / "a")))
    other = build_clip(TINY).eval()
    second = load_teacher(str(save_teacher(other, TINY, tmp_path / "b")))
    assert first.id.split(":")[2] != second.id.split(":")[2]
    assert [t.id for t in load_teachers([str(tmp_path / "a"), str(tmp_path / "b")])] == [first.id, second.id]
    with pytest.raises(UserError, match="is named twice"):
        load_teachers([str(tmp_path / "a"), str(tmp_path / "a" / "teacher.pt")])


def test_save_teacher_refuses_what_would_not_load(tmp_path, trained):
    with pytest.raises(ValueError, match="pass the model before reparameterization"):
        save_teacher(reparameterize(trained), TINY, tmp_path / "folded")
    with pytest.raises(ValueError, match="meta must be JSON-serialisable"):
        save_teacher(trained, TINY, tmp_path / "meta", meta={"tensor": torch.zeros(1)})
    assert not (tmp_path / "folded").exists() and not (tmp_path / "meta").exists()


def test_archsearch_teacher_errors(tmp_path, trained):
    with pytest.raises(UserError, match=r"no such file or folder; accepted: a teacher directory"):
        load_teacher(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: folder has no teacher\.pt"):
        load_teacher(str(tmp_path / "empty"))

    pickled = {"arch": TINY.to_dict(), "state_dict": {}, "meta": argparse.Namespace(epochs=1)}
    torch.save(pickled, tmp_path / "pickled.pt")
    with pytest.raises(UserError, match=r"pickled\.pt: not a teacher checkpoint loadable with weights_only=True"):
        load_teacher(str(tmp_path / "pickled.pt"))
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(UserError, match=r"other\.pt: not an archsearch teacher; expected keys arch, state_dict, meta"):
        load_teacher(str(tmp_path / "other.pt"))
    path = save_teacher(trained, TINY, tmp_path / "wide")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["arch"]["embed_dim"] = 24
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match=r"teacher\.pt: state_dict does not fit its arch: .*size mismatch"):
        ArchsearchTeacher(path)
    checkpoint["arch"]["embed_dim"] = "wide"
    torch.save(checkpoint, path)
    with pytest.raises(SpecError, match=r"teacher\.pt: arch: embed_dim"):
        ArchsearchTeacher(path)


# --- open_clip ------------------------------------------------------------------------------------

TINY_OPEN_CLIP = "archsearch-test-teacher-vit"


@pytest.fixture(scope="module")
def open_clip_checkpoint(tmp_path_factory):
    """A tiny ViT CLIP config registered with open_clip, and its random weights saved to a file."""
    import open_clip

    folder = tmp_path_factory.mktemp("open_clip")
    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
              "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (folder / f"{TINY_OPEN_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{TINY_OPEN_CLIP}.json")
    torch.manual_seed(1)
    model = open_clip.create_model(TINY_OPEN_CLIP)
    with torch.no_grad():  # open_clip zero-initialises no projections, but make the text path non-trivial too
        model.text_projection.normal_(std=0.2)
    path = folder / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return path


def test_open_clip_teacher_matches_open_clip(open_clip_checkpoint):
    import open_clip

    teacher = load_teacher(f"open_clip:{TINY_OPEN_CLIP}:{open_clip_checkpoint}")
    assert isinstance(teacher, OpenClipTeacher) and isinstance(teacher, Teacher)
    assert (teacher.embed_dim, teacher.image_size) == (16, 32)
    assert teacher.id.startswith(f"open_clip:{TINY_OPEN_CLIP}:") and len(teacher.id.split(":")[2]) == 12

    reference = open_clip.create_model(TINY_OPEN_CLIP)
    reference.load_state_dict(torch.load(open_clip_checkpoint, weights_only=True))
    reference.eval()
    images = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        want_image = reference.encode_image((images - mean) / std, normalize=True)
        want_text = reference.encode_text(open_clip.tokenize(TEXTS, context_length=16), normalize=True)
    assert torch.allclose(teacher.encode_image(images), want_image, atol=1e-6)
    assert torch.allclose(teacher.encode_text(TEXTS), want_text, atol=1e-6)
    assert not torch.allclose(want_image[0], want_image[1], atol=1e-3)  # the images were told apart


def test_open_clip_teacher_errors(tmp_path, open_clip_checkpoint, monkeypatch):
    with pytest.raises(UserError, match=r"open_clip model 'ViT-Q-99' unknown"):
        load_teacher(f"open_clip:ViT-Q-99:{open_clip_checkpoint}")
    with pytest.raises(UserError, match=r"absent\.pt: no such checkpoint file \(for open_clip model"):
        load_teacher(f"open_clip:{TINY_OPEN_CLIP}:{tmp_path / 'absent.pt'}")
    with pytest.raises(UserError, match=r"expected open_clip:<model-name>:<path/to/checkpoint>"):
        load_teacher("open_clip:ViT-L-14")
    with pytest.raises(UserError, match=r"unknown tag 'openai'; allowed: none"):
        OpenClipTeacher(TINY_OPEN_CLIP, open_clip_checkpoint, tag="openai")
    with pytest.raises(UserError, match=r"unknown option 'pretrained'; allowed: tag"):
        load_teacher(f"open_clip:{TINY_OPEN_CLIP}:{open_clip_checkpoint}?pretrained=x")

    state = torch.load(open_clip_checkpoint, weights_only=True)
    state.pop("text_projection")
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(UserError, match=r"partial\.pt: does not fit open_clip model .*text_projection"):
        load_teacher(f"open_clip:{TINY_OPEN_CLIP}:{tmp_path / 'partial.pt'}")

    torch.save({"state_dict": state, "args": argparse.Namespace(lr=0.1)}, tmp_path / "pickled.pt")
    with pytest.raises(UserError, match=r"pickled\.pt: not loadable with weights_only=True"):
        load_teacher(f"open_clip:{TINY_OPEN_CLIP}:{tmp_path / 'pickled.pt'}")

    # SigLIP's tokenizer comes from Hugging Face: refused before anything could try to download it.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(UserError, match=r"needs Hugging Face files \(timm/ViT-B-16-SigLIP\)"):
        load_teacher(f"open_clip:ViT-B-16-SigLIP:{open_clip_checkpoint}")


# ---- shipped teachers: fp16 safetensors with a sha256 manifest -------------------------------------

def _ship_tiny(tmp_path, trained, names=("tiny-s0",)):
    from archsearch.proxy.shipped import ship_teachers

    dirs = []
    for name in names:
        save_teacher(trained, TINY, tmp_path / "local" / name, meta={"seed": 0, "metrics": {"zeroshot_top1": 50.0}})
        (tmp_path / "local" / name / "curve.jsonl").write_text('{"step": 2, "zeroshot_top1": 40.0}\n')
        dirs.append(tmp_path / "local" / name)
    root = tmp_path / "shipped"
    ship_teachers(dirs, "tiny-recipe", root=root, machine={"cpu": "test"})
    return root


def test_shipped_teacher_is_fp16_and_embeds_as_the_checkpoint_does(tmp_path, trained):
    from archsearch.proxy.shipped import read_manifest, shipped_teacher

    root = _ship_tiny(tmp_path, trained)
    manifest = read_manifest(root)
    entry = manifest["teachers"][0]
    assert manifest["command"] == "archsearch teach --recipe tiny-recipe --force --ship"
    assert entry["name"] == "tiny-s0" and entry["dtype"] == "float16"
    assert entry["curve"] == [{"step": 2, "zeroshot_top1": 40.0}]
    path = shipped_teacher("tiny-s0", root)
    assert path == root / "tiny-s0.safetensors" and shipped_teacher("other", root) is None
    full, half = load_teacher(str(tmp_path / "local" / "tiny-s0")), load_teacher(str(path))
    assert half.id.startswith("archsearch:tiny-s0:") and half.id != full.id  # the store knows which weights
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert _relative_error(half.encode_image(images), full.encode_image(images)) < 5e-3
    assert _relative_error(half.encode_text(TEXTS), full.encode_text(TEXTS)) < 5e-3
    assert path.stat().st_size < 0.6 * (tmp_path / "local" / "tiny-s0" / "teacher.pt").stat().st_size
    from archsearch.data.teachers import teacher_meta

    assert teacher_meta(path) == teacher_meta(tmp_path / "local" / "tiny-s0") == full.meta == half.meta


def test_a_shipped_teacher_with_a_wrong_hash_is_a_clear_error(tmp_path, trained):
    from archsearch.proxy.shipped import shipped_teacher

    root = _ship_tiny(tmp_path, trained)
    path = root / "tiny-s0.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"tiny-s0\.safetensors: sha256 [0-9a-f]{64} does not match the manifest's "
                                        r"[0-9a-f]{64}.*archsearch teach --force"):
        shipped_teacher("tiny-s0", root)
    path.unlink()
    with pytest.raises(UserError, match="listed in .*manifest.json but missing"):
        shipped_teacher("tiny-s0", root)


def test_shipping_needs_local_teachers(tmp_path):
    from archsearch.proxy.shipped import ship_teachers

    with pytest.raises(UserError, match="no local teacher to ship; train it first with `archsearch teach --recipe r "
                                        "--force --ship`"):
        ship_teachers([tmp_path / "missing"], "r", root=tmp_path / "shipped")


def test_the_default_recipes_teachers_are_shipped_and_a_first_run_trains_none(tmp_path, monkeypatch):
    """cpu-tiny's teachers come with the package: on a fresh runs/ tree, `teach` returns the
    shipped files (sha256 checked) and never starts a training."""
    import archsearch.proxy.teach as teach_module
    from archsearch.proxy.recipe import load_recipe
    from archsearch.proxy.shipped import SHIPPED_DIR, read_manifest

    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("a teacher was trained")

    monkeypatch.setattr(teach_module, "_train_teacher", refuse)
    monkeypatch.setattr(teach_module, "training_source", refuse)
    recipe = load_recipe("cpu-tiny")
    found = teach_module.teach(recipe, progress=False)
    assert [p.parent for p in found] == [SHIPPED_DIR] * recipe.data.teacher_training.count
    assert [p.stem for p in found] == [d.name for d in teach_module.teacher_dirs(recipe)]
    assert not (tmp_path / "runs").exists()
    manifest = read_manifest()
    assert sum(e["bytes"] for e in manifest["teachers"]) <= 25 * 2**20
    assert manifest["command"] == "archsearch teach --recipe cpu-tiny --force --ship"
    for teacher in (load_teacher(str(p)) for p in found):
        # clearly stronger than any student: the point of training them once, long
        assert teacher.meta["metrics"]["zeroshot_top1"] >= 40.0
