"""Image towers: every mixer/MLP/downsampling combination builds, runs and folds exactly."""

import pytest
import torch

from archsearch.models import build_image_tower, reparameterize, unfolded_blocks
from archsearch.spec import ArchSpec, get_preset
from conftest import randomise_norm_statistics


def _small(stages, stem="mobileone", stem_width=16, head=None, resolution=64):
    head = head or {"pool": "avg", "conv_expand": 2.0, "norm": "none", "proj_bias": True}
    return ArchSpec.from_dict({
        "resolution": resolution, "embed_dim": 24,
        "image": {"stem": {"kind": stem, "width": stem_width}, "stages": stages, "head": head},
        "text": {"width": 32, "heads": 2, "layers": ["attention"], "vocab_size": 100, "context_length": 8},
    })


REP = {"depth": 1, "width": 16, "mixer": "repmixer", "mlp": "convffn", "mlp_ratio": 3.0}
MIXES = {
    # RepMixer early stages, then a ViTamin-style GeGLU transformer stage behind a LayerNorm strided conv.
    "repmixer+geglu": _small([REP, {"depth": 2, "width": 32, "mixer": "attention", "mlp": "geglu", "mlp_ratio": 2.0,
                                    "downsample": "conv_ln", "pos": "learned", "norm": "layernorm", "head_dim": 16}],
                             head={"pool": "avg", "norm": "layernorm", "proj_bias": False}),
    # ViTamin MBConv stages followed by FastViT conv-attention with RepCPE and a 64-wide head.
    "mbconv+convattn": _small([{"depth": 2, "width": 16, "mixer": "mbconv", "mlp": "none", "mlp_ratio": 4.0,
                                "downsample": "strided_block", "norm": "layernorm"},
                               {"depth": 1, "width": 64, "mixer": "attention", "mlp": "convffn", "mlp_ratio": 3.0,
                                "downsample": "patch_embed_se", "pos": "repcpe", "norm": "batchnorm", "head_dim": 64}],
                              stem="vitamin"),
    # A token stage in the middle hands a feature map on to a RepMixer stage.
    "token-in-the-middle": _small([REP, {"depth": 1, "width": 32, "mixer": "attention", "mlp": "mlp", "mlp_ratio": 2.0,
                                         "downsample": "patch_embed", "pos": "repcpe", "norm": "layernorm", "head_dim": 8},
                                   dict(REP, width=64, downsample="patch_embed")]),
    # ViT with class-token pooling behind the patchifying conv stem.
    "vit-token-pool": _small([{"depth": 2, "width": 32, "mixer": "attention", "mlp": "mlp", "mlp_ratio": 4.0,
                               "pos": "learned", "norm": "layernorm", "head_dim": 8}], stem="convstem", stem_width=32,
                             head={"pool": "token", "norm": "layernorm", "proj_bias": True}),
}


@pytest.mark.parametrize("name", MIXES)
def test_mixes_build_run_and_fold_to_the_same_function(name):
    spec = MIXES[name]
    tower = build_image_tower(spec)
    randomise_norm_statistics(tower)
    tower.eval()
    x = torch.randn(2, 3, spec.resolution, spec.resolution)
    with torch.no_grad():
        y = tower(x)
        folded = reparameterize(tower)
        y_folded = folded(x)
    assert y.shape == (2, spec.embed_dim)
    assert not unfolded_blocks(folded)
    assert torch.linalg.norm(y - y_folded) / torch.linalg.norm(y) < 1e-4


def test_reparameterize_leaves_the_train_time_model_alone():
    tower = build_image_tower(MIXES["repmixer+geglu"]).train()
    before = len(unfolded_blocks(tower))
    reparameterize(tower)
    assert before > 0 and len(unfolded_blocks(tower)) == before and tower.training


def test_any_resolution_for_fastvit_layouts():
    spec = get_preset("mobileclip_s0").model_copy(update={"resolution": 192})
    tower = build_image_tower(spec).eval()
    with torch.no_grad():
        assert tower(torch.randn(1, 3, 192, 192)).shape == (1, 512)


def test_head_dim_other_than_timms_32_is_honoured():
    tower = build_image_tower(MIXES["mbconv+convattn"])
    attention = tower.stages[1][1].blocks[0].token_mixer
    assert attention.head_dim == 64 and attention.num_heads == 1
    # Widths that 32 does not divide build too (timm's block alone would assert).
    narrow = _small([dict(REP, width=24), {"depth": 1, "width": 48, "mixer": "attention", "mlp": "convffn",
                                           "mlp_ratio": 3.0, "downsample": "patch_embed", "pos": "repcpe",
                                           "head_dim": 24}], stem_width=24)
    block = build_image_tower(narrow).stages[1][1].blocks[0].token_mixer
    assert block.head_dim == 24 and block.num_heads == 2
