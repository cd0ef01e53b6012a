"""Captioners: stored and procedural captions, and a CoCa loaded from a local checkpoint."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from archsearch.data.captioner import Captioner
from archsearch.data.captioners import (
    CocaCaptioner, ProceduralCaptioner, StoredCaptioner, _nucleus, load_captioner,
)
from archsearch.data.source import CaptionedImage
from archsearch.errors import UserError

TINY_COCA = "archsearch-test-captioner-coca"
TINY_CLIP = "archsearch-test-captioner-clip"


def _sample(seed=0, meta=None) -> CaptionedImage:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    return CaptionedImage(key=f"img-{seed}", image=Image.fromarray(pixels), caption="alt text", meta=meta or {})


def test_stored_captions_come_back_as_stored():
    captioner = load_captioner("stored")
    assert isinstance(captioner, StoredCaptioner) and isinstance(captioner, Captioner) and captioner.id == "stored"
    sample = _sample(meta={"synthetic": ["a dog on grass", "a brown dog", "a dog running"]})
    assert captioner.caption(sample, 2, seed=0) == ["a dog on grass", "a brown dog"]
    assert captioner.caption(sample, 3, seed=7) == sample.meta["synthetic"]
    with pytest.raises(UserError, match=r"img-0: 4 synthetic captions asked for, 3 stored; allowed: at most 3"):
        captioner.caption(sample, 4, seed=0)
    with pytest.raises(UserError, match=r"img-1: no stored synthetic captions"):
        captioner.caption(_sample(1), 1, seed=0)


def test_procedural_captioner_needs_a_scene():
    captioner = load_captioner()
    assert isinstance(captioner, ProceduralCaptioner) and captioner.id == "procedural"
    with pytest.raises(UserError, match=r"img-0: no scene description; .*embedded data only"):
        captioner.caption(_sample(), 2, seed=0)


def test_procedural_captions_describe_the_scene():
    embedded = pytest.importorskip("archsearch.data.embedded")
    sample = embedded.EmbeddedScenes("train", n=3, seed=0, image_size=32)[1]
    captioner = load_captioner("procedural")
    captions = captioner.caption(sample, 4, seed=5)
    assert len(captions) == 4 and all(isinstance(c, str) and c for c in captions)
    assert captions == captioner.caption(sample, 4, seed=5)
    main = sample.meta["objects"][0]
    assert any(main["shape"] in c for c in captions)


def test_unknown_captioner_references():
    with pytest.raises(UserError, match=r"'blip': unknown; accepted: procedural .*stored .*coca:<model-name>"):
        load_captioner("blip")
    with pytest.raises(UserError, match=r"expected coca:<model-name>:<path/to/checkpoint>"):
        load_captioner("coca:coca_ViT-L-14")


def test_nucleus_keeps_the_smallest_set_reaching_top_p():
    logits = torch.log(torch.tensor([[0.1, 0.5, 0.3, 0.1]]))
    kept = lambda p: torch.isfinite(_nucleus(logits, p))[0].tolist()  # noqa: E731
    assert kept(0.0) == [False, True, False, False]  # greedy
    assert kept(0.5) == [False, True, False, False]
    assert kept(0.6) == [False, True, True, False]
    assert sum(kept(0.85)) == 3 and kept(0.85)[1:3] == [True, True]  # one of the tied 0.1s reaches 0.9
    assert kept(0.95) == [True, True, True, True]
    assert kept(1.0) == [True, True, True, True]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """open_clip's coca_ViT-B-32 shrunk to one 32-wide layer per tower, and a plain tiny CLIP, with
    random weights saved the way a user's checkpoint would be."""
    import open_clip

    folder = tmp_path_factory.mktemp("coca")
    coca = {"embed_dim": 32,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8,
                           "attentional_pool": True, "attn_pooler_heads": 2, "attn_pooler_queries": 8,
                           "output_tokens": True},
            "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                         "embed_cls": True, "output_tokens": True},
            "multimodal_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                               "attn_pooler_heads": 2},
            "custom_text": True}
    clip = {"embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
            "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    for name, config in ((TINY_COCA, coca), (TINY_CLIP, clip)):
        (folder / f"{name}.json").write_text(json.dumps(config))
        open_clip.add_model_config(folder / f"{name}.json")
    torch.manual_seed(2)
    paths = {}
    for name in (TINY_COCA, TINY_CLIP):
        model = open_clip.create_model(name)
        if name == TINY_COCA:
            # open_clip 3.3 never initialises the decoder's output projection (torch.empty: whatever the
            # allocator held), which real checkpoints overwrite; give the random model a real one.
            with torch.no_grad():
                model.text_decoder.text_projection.normal_(std=32 ** -0.5)
        paths[name] = folder / f"{name}.pt"
        torch.save(model.state_dict(), paths[name])
    return paths


def test_coca_writes_n_seeded_captions(checkpoints):
    path = checkpoints[TINY_COCA]
    captioner = load_captioner(f"coca:{TINY_COCA}:{path}?seq_len=8&top_p=1.0")
    assert isinstance(captioner, CocaCaptioner) and isinstance(captioner, Captioner)
    sha = captioner.id.split(":")[2].split("?")[0]
    assert captioner.id == f"coca:{TINY_COCA}:{sha}?top_p=1.0&seq_len=8" and len(sha) == 12
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in captioner.model.state_dict().items())  # the user's weights

    sample = _sample(3)
    captions = captioner.caption(sample, 3, seed=11)
    assert len(captions) == 3 and all(isinstance(c, str) and c for c in captions)
    assert len(set(captions)) == 3  # sampled separately
    assert not any("start_of_text" in c or "end_of_text" in c for c in captions)
    tokens = captioner.generate(captioner.preprocess(sample.image).unsqueeze(0), 3, seed=11)
    assert [captioner._decode(row) for row in tokens] == captions  # the same seed, the same captions
    assert all(row[0] == captioner.sot and len(row) == 8 and row[-1] == captioner.eot for row in tokens)
    assert all(captioner.eot not in row[1:5] for row in tokens)  # no end before min_seq_len
    assert captioner.caption(sample, 2, seed=12) != captions[:2]

    greedy = CocaCaptioner(TINY_COCA, path, seq_len=6, top_p=0.0)
    assert len(set(greedy.caption(sample, 3, seed=0))) == 1  # every row's generator, one argmax path


def test_coca_errors(checkpoints, tmp_path):
    with pytest.raises(UserError, match=rf"open_clip model '{TINY_CLIP}' is not a CoCa; allowed: coca_"):
        load_captioner(f"coca:{TINY_CLIP}:{checkpoints[TINY_CLIP]}")
    with pytest.raises(UserError, match=r"unknown option 'beams'; allowed: top_p, temperature, seq_len"):
        load_captioner(f"coca:{TINY_COCA}:{checkpoints[TINY_COCA]}?beams=4")
    with pytest.raises(UserError, match=r"option top_p='high' is not a float"):
        load_captioner(f"coca:{TINY_COCA}:{checkpoints[TINY_COCA]}?top_p=high")
    with pytest.raises(UserError, match=r"allowed: 0 <= top_p <= 1, temperature > 0, 1 <= min_seq_len < seq_len"):
        CocaCaptioner(TINY_COCA, checkpoints[TINY_COCA], seq_len=4, min_seq_len=5)
    with pytest.raises(UserError, match=r"missing\.pt: no such checkpoint file"):
        load_captioner(f"coca:{TINY_COCA}:{tmp_path / 'missing.pt'}")
    with pytest.raises(UserError, match=r"does not fit open_clip model"):
        load_captioner(f"coca:{TINY_COCA}:{checkpoints[TINY_CLIP]}")
