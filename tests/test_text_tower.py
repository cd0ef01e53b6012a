"""Text tower: open_clip parity, Text-RepMixer reparameterization, parameter and MAC counts, tokenizer."""

from __future__ import annotations

import pytest
import torch
from open_clip import get_model_config
from open_clip.model import _build_text_tower
from open_clip.transformer import TextTransformer
from timm.utils.model import reparameterize_model
from torch import nn

from archsearch.latency.flops import flop_count_analysis
from archsearch.models.text import TextTower
from archsearch.models.text_repmixer import ConvBN1d, RepDepthwiseConv1d, SeqBatchNorm, SeqConv, TextRepMixerBlock
from archsearch.models.tokenizer import get_tokenizer, tokenize
from archsearch.spec.arch import TextTowerSpec
from archsearch.spec.presets import get_preset, open_clip_reference

SMALL = dict(vocab_size=500, context_length=16, width=64, heads=4)


def small_spec(layers: tuple[str, ...], causal: bool = False, **overrides) -> TextTowerSpec:
    return TextTowerSpec(**{**SMALL, "layers": layers, "causal_mask": causal, "conv_kernel": 5, **overrides})


def random_tokens(batch: int, length: int, vocab: int, eot_at: list[int]) -> torch.Tensor:
    """Token rows whose largest id (the end-of-text token) sits at `eot_at[i]`, like tokenizer output."""
    tokens = torch.randint(1, vocab - 1, (batch, length))
    tokens[torch.arange(batch), torch.tensor(eot_at)] = vocab - 1
    return tokens


def randomise_foldable_state(module: nn.Module) -> None:
    """Move BatchNorm statistics/affines and layer scales off their init, where a wrong fold
    would hide (identity BN, layer scale 1e-5)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-1.0, 1.0)
            m.running_var.uniform_(0.3, 2.0)
            nn.init.uniform_(m.weight, 0.3, 1.5)
            nn.init.uniform_(m.bias, -1.0, 1.0)
    for name, p in module.named_parameters():
        if name.endswith("layer_scale"):
            nn.init.uniform_(p, 0.2, 1.0)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def has_unfolded_branches(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.BatchNorm1d, ConvBN1d)) for m in module.modules())


# --- open_clip parity ---------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
def test_transformer_tower_loads_open_clip_weights_and_matches(causal):
    torch.manual_seed(0)
    spec = small_spec(("attention",) * 3, causal=causal)
    reference = TextTransformer(spec.context_length, spec.vocab_size, spec.width, spec.heads, len(spec.layers),
                                spec.mlp_ratio, output_dim=32, no_causal_mask=not causal).eval()
    tower = TextTower(spec, embed_dim=32).eval()
    tower.load_state_dict(reference.state_dict())  # strict: same names and shapes
    tokens = random_tokens(3, spec.context_length, spec.vocab_size, eot_at=[4, 9, 15])
    with torch.no_grad():
        assert torch.equal(tower(tokens), reference(tokens))


def test_causal_tower_ignores_tokens_after_end_of_text():
    torch.manual_seed(0)
    tower = TextTower(small_spec(("attention",) * 2, causal=True), embed_dim=32).eval()
    tokens = random_tokens(2, 16, 500, eot_at=[3, 7])
    altered = tokens.clone()
    altered[:, 8:] = torch.randint(1, 400, (2, 8))
    with torch.no_grad():
        full = tower(tokens)
        torch.testing.assert_close(tower(altered), full)
        bidirectional = TextTower(small_spec(("attention",) * 2), embed_dim=32).eval()
        bidirectional.load_state_dict(tower.state_dict())
        assert not torch.allclose(bidirectional(altered), bidirectional(tokens))


@pytest.mark.parametrize("preset, expected", [("mobileclip_s1", 63_428_096), ("vitamin_s", 40_444_032)])
def test_preset_text_tower_matches_open_clip_config(preset, expected):
    arch = get_preset(preset)
    config = get_model_config(open_clip_reference(preset))
    reference = _build_text_tower(config["embed_dim"], config["text_cfg"])
    tower = TextTower(arch.text, arch.embed_dim)
    assert n_params(tower) == n_params(reference) == expected
    tower.load_state_dict(reference.state_dict())
    assert (tower.attn_mask is None) == (reference.attn_mask is None)


# --- Text-RepMixer ------------------------------------------------------------------------------

@pytest.mark.parametrize("in_channels, out_channels, kernel_size, groups, bias",
                         [(8, 8, 7, 8, False), (8, 8, 5, 8, True), (8, 24, 1, 1, True)],
                         ids=["depthwise", "depthwise_bias", "pointwise"])
def test_seq_conv_is_conv1d_on_tokens(in_channels, out_channels, kernel_size, groups, bias):
    """Same parameters and same values and gradients as ``Conv1d`` on ``(B, C, L)``, through the
    channels-last ``(1, k)`` conv, leaving the tokens contiguous (no copy back to ``(B, C, L)``)."""
    torch.manual_seed(0)
    conv = SeqConv(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=bias)
    plain = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=bias)
    plain.load_state_dict(conv.state_dict())
    tokens = torch.randn(3, 20, in_channels, requires_grad=True)
    reference_tokens = tokens.detach().clone().requires_grad_()
    out, expected = conv(tokens), plain(reference_tokens.transpose(1, 2)).transpose(1, 2)
    assert out.shape == (3, 20, out_channels) and out.is_contiguous()
    torch.testing.assert_close(out, expected)
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(tokens.grad, reference_tokens.grad)
    torch.testing.assert_close(conv.weight.grad, plain.weight.grad)


def test_seq_batch_norm_is_batch_norm1d_on_tokens():
    torch.manual_seed(0)
    bn, plain = SeqBatchNorm(8), nn.BatchNorm1d(8)
    tokens = torch.randn(4, 10, 8) * 3 + 1
    out = bn(tokens)  # training: batch statistics, running statistics updated
    torch.testing.assert_close(out, plain(tokens.transpose(1, 2)).transpose(1, 2))
    assert out.is_contiguous()
    for name, buffer in plain.state_dict().items():
        torch.testing.assert_close(bn.state_dict()[name], buffer)
    bn.eval(), plain.eval()
    torch.testing.assert_close(bn(tokens), plain(tokens.transpose(1, 2)).transpose(1, 2))


def test_rep_depthwise_conv_folds_every_branch_into_one_conv():
    torch.manual_seed(0)
    unit = RepDepthwiseConv1d(8, kernel_size=7, conv_branches=2, scale_branch=True, identity=True)
    randomise_foldable_state(unit)
    unit.eval()
    x = torch.randn(2, 20, 8)
    with torch.no_grad():
        expected = unit(x)
        unit.reparameterize()
        assert [type(m) for m in unit.children()] == [SeqConv]
        assert relative_error(unit(x), expected) < 1e-5


def test_text_repmixer_block_is_the_channels_first_formulation():
    """The block on tokens computes the reference's ``(B, C, L)`` formulation, written out here
    with plain ``Conv1d``/``BatchNorm1d`` calls on its parameters, in training and at inference."""
    torch.manual_seed(0)
    block = TextRepMixerBlock(16, kernel_size=5, mlp_ratio=2.0)
    randomise_foldable_state(block)
    p = dict(block.named_parameters())
    buffers = dict(block.named_buffers())

    def bn(x, name):
        return nn.functional.batch_norm(x, buffers[f"{name}.running_mean"].clone(),
                                        buffers[f"{name}.running_var"].clone(), p[f"{name}.weight"],
                                        p[f"{name}.bias"], block.training)

    def dw(x, name):
        return nn.functional.conv1d(x, p[name], padding=2, groups=16)

    def reference(x):  # (B, C, L)
        mixer = bn(dw(x, "token_mixer.mixer.rbr_conv.0.conv.weight"), "token_mixer.mixer.rbr_conv.0.bn")
        mixer = mixer + bn(x, "token_mixer.mixer.rbr_skip")
        x = x + p["token_mixer.layer_scale"] * (mixer - bn(x, "token_mixer.norm.rbr_skip"))
        h = bn(dw(x, "convffn.conv.conv.weight"), "convffn.conv.bn")
        h = nn.functional.conv1d(h, p["convffn.fc1.weight"], p["convffn.fc1.bias"])
        h = nn.functional.conv1d(nn.functional.gelu(h), p["convffn.fc2.weight"], p["convffn.fc2.bias"])
        return x + p["layer_scale"] * h

    tokens = torch.randn(3, 12, 16)
    for training in (True, False):
        block.train(training)
        expected = reference(tokens.transpose(1, 2)).transpose(1, 2)
        torch.testing.assert_close(block(tokens), expected)
    with torch.no_grad():
        folded = reparameterize_model(block)
        assert not has_unfolded_branches(folded)
        assert relative_error(folded(tokens), expected) < 1e-5


def test_text_repmixer_block_matches_reference_structure():
    block = TextRepMixerBlock(512, kernel_size=11, mlp_ratio=4.0)
    shapes = {name: tuple(p.shape) for name, p in block.named_parameters()}
    assert shapes["token_mixer.mixer.rbr_conv.0.conv.weight"] == (512, 1, 11)
    assert shapes["convffn.conv.conv.weight"] == (512, 1, 11)
    assert shapes["convffn.fc1.weight"] == (2048, 512, 1)
    assert shapes["layer_scale"] == shapes["token_mixer.layer_scale"] == (512, 1)
    assert torch.all(block.layer_scale == 1e-5)
    assert not any(isinstance(m, nn.LayerNorm) for m in block.modules())
    # norm is the identity BatchNorm alone; the mixer has no 1-wide scale branch (as in the reference)
    assert {n.split(".")[2] for n in shapes if n.startswith("token_mixer.norm.")} == {"rbr_skip"}
    assert {n.split(".")[2] for n in shapes if n.startswith("token_mixer.mixer.")} == {"rbr_conv", "rbr_skip"}


def _children_first_reparameterize(model: nn.Module) -> nn.Module:
    for module in reversed(list(model.modules())):
        if hasattr(module, "reparameterize"):
            module.reparameterize()
    return model


@pytest.mark.parametrize("fold", [reparameterize_model, _children_first_reparameterize],
                         ids=["timm_parents_first", "children_first"])
def test_reparameterized_hybrid_tower_matches_train_time_tower(fold):
    torch.manual_seed(0)
    spec = small_spec(("repmixer1d", "attention", "repmixer1d", "repmixer1d"))
    tower = TextTower(spec, embed_dim=32)
    randomise_foldable_state(tower)
    tower.eval()
    tokens = random_tokens(4, 16, spec.vocab_size, eot_at=[2, 5, 11, 15])
    with torch.no_grad():
        expected = tower(tokens)
        folded = fold(tower)
        assert not has_unfolded_branches(folded)
        assert relative_error(folded(tokens), expected) < 1e-4


# --- full-size counts ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s0_text_tower() -> TextTower:
    torch.manual_seed(0)
    arch = get_preset("mobileclip_s0")
    return TextTower(arch.text, arch.embed_dim).eval()


def test_mobileclip_s0_text_tower_parameter_count(s0_text_tower):
    # embeddings 49408*512 + 77*512, ln_final 1024, projection 512*512            = 25,599,488
    # attention block: ln 2*1024, qkv 3*512*512+1536, out 512*512+512, MLP 4x      =  3,152,384 (x4)
    # Text-RepMixer: token mixer (norm BN 1024; mixer 11-conv 5632 + BN 1024 + BN 1024; scale 512)
    #   + ConvFFN (11-conv 5632 + BN 1024, fc1 512*2048+2048, fc2 2048*512+512) + scale 512 = 2,116,096 (x2)
    assert n_params(s0_text_tower) == 42_441_216
    assert round(n_params(s0_text_tower) / 1e6, 1) == 42.4  # the paper's 42.4M
    folded = reparameterize_model(s0_text_tower)
    # token mixer -> one 11-conv with bias (6144), ConvFFN BN -> conv bias (5632 + 512)
    assert n_params(folded) == 42_434_048
    assert not has_unfolded_branches(folded)


def test_mac_counts_are_complete(s0_text_tower):
    tokens = tokenize(["a photo of a cat"])
    analysis = flop_count_analysis(s0_text_tower, (tokens,))
    assert analysis.total() == 1_320_532_480  # ~1.32 GMACs
    assert not analysis.unsupported_ops()
    twelve_layers = TextTower(get_preset("mobileclip_s1").text, 512).eval()
    assert flop_count_analysis(twelve_layers, (tokens,)).total() == 2_984_698_368  # ~2.98 GMACs


def test_attention_handles_agree_on_both_multihead_attention_paths():
    torch.manual_seed(0)
    spec = small_spec(("attention",) * 2)
    tower = TextTower(spec, embed_dim=32).eval()
    tokens = random_tokens(3, 16, spec.vocab_size, eot_at=[5, 6, 7])
    slow = flop_count_analysis(tower, (tokens,))  # grad enabled: MHA calls scaled_dot_product_attention
    attention_macs = 2 * 3 * 2 * 16 * 16 * spec.width  # layers * batch * (QK^T + AV) * L * L * width
    assert slow.by_operator()["scaled_dot_product_attention"] == attention_macs
    with torch.no_grad():  # eval + no grad: MHA's fused fast path hides its projections too
        fast = flop_count_analysis(tower, (tokens,))
        assert "_native_multi_head_attention" in fast.by_operator()
        assert fast.total() == slow.total()
    assert not slow.unsupported_ops() and not fast.unsupported_ops()


# --- tokenizer ----------------------------------------------------------------------------------

def test_tokenizer_is_clip_bpe():
    assert len(get_tokenizer().encoder) == 49408 == TextTowerSpec(width=8, heads=1, layers=("attention",)).vocab_size
    tokens = tokenize(["a photo of a cat", "dog"], context_length=16)
    assert tokens.dtype == torch.long and tokens.shape == (2, 16)
    start, end = get_tokenizer().sot_token_id, get_tokenizer().eot_token_id
    assert tokens[:, 0].tolist() == [start, start]
    assert tokens.argmax(dim=-1).tolist() == [6, 2]  # end-of-text: the pooled position
    assert tokens[1, 2].item() == end and tokens[1, 3:].eq(0).all()
    assert tokenize("a photo of a cat").shape == (1, 77)
