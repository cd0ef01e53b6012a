"""Core ML export: every block kind converts to an ML program with the right IO (everywhere), and
the packages compute what torch computes (macOS only, where Core ML runs)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.errors import UserError
from archsearch.latency.cost import example_images, example_tokens
from archsearch.latency.coreml import (
    export_clip, export_tower, exported_program, package_io, predict, predict_callable,
)
from archsearch.models import build_clip, build_image_tower, reparameterize
from archsearch.spec import ArchSpec, get_preset, preset_names
from conftest import randomise_norm_statistics

ON_MACOS = sys.platform == "darwin"
NEEDS_MACOS = pytest.mark.skipif(not ON_MACOS, reason="Core ML runs .mlpackage models only on macOS; "
                                                      "elsewhere only conversion and package IO are checked")

TINY_TEXT = {"width": 32, "heads": 2, "layers": ["attention"], "vocab_size": 100, "context_length": 8}


def _spec(image: dict, resolution: int = 64, embed_dim: int = 24, text: dict | None = None) -> ArchSpec:
    return ArchSpec.from_dict({"resolution": resolution, "embed_dim": embed_dim, "image": image,
                               "text": text or TINY_TEXT})


IMAGE_SPECS = {
    # MCi-like: MobileOne stem, RepMixer stage, conv-attention stages with RepCPE (BatchNorm and
    # LayerNorm2d, SE patch embedding) and the final MobileOne conv. Conv-attention widths are
    # multiples of 32: the builder first makes timm's AttentionBlock, whose head width is fixed at 32.
    "fastvit": _spec({
        "stem": {"kind": "mobileone", "width": 8},
        "stages": [
            {"depth": 1, "width": 8, "mixer": "repmixer", "mlp": "convffn", "mlp_ratio": 2.0},
            {"depth": 1, "width": 32, "mixer": "attention", "mlp": "convffn", "mlp_ratio": 2.0,
             "downsample": "patch_embed_se", "pos": "repcpe", "norm": "batchnorm", "head_dim": 16},
            {"depth": 1, "width": 64, "mixer": "attention", "mlp": "convffn", "mlp_ratio": 2.0,
             "downsample": "patch_embed", "pos": "repcpe", "norm": "layernorm", "head_dim": 32},
        ],
        "head": {"pool": "avg", "conv_expand": 2.0, "norm": "none", "proj_bias": True},
    }),
    # ViTamin-like: conv stem, strided MbConv-LN stages, LayerNorm strided conv, GeGLU transformer
    # with a learned position embedding, average pooling + LayerNorm, projection without bias.
    "vitamin": _spec({
        "stem": {"kind": "vitamin", "width": 8},
        "stages": [
            {"depth": 1, "width": 8, "mixer": "mbconv", "mlp": "none", "mlp_ratio": 2.0,
             "downsample": "strided_block", "norm": "layernorm"},
            {"depth": 1, "width": 16, "mixer": "mbconv", "mlp": "none", "mlp_ratio": 2.0,
             "downsample": "strided_block", "norm": "layernorm"},
            {"depth": 2, "width": 32, "mixer": "attention", "mlp": "geglu", "mlp_ratio": 2.0,
             "downsample": "conv_ln", "pos": "learned", "norm": "layernorm", "head_dim": 16},
        ],
        "head": {"pool": "avg", "conv_expand": 0.0, "norm": "layernorm", "proj_bias": False},
    }),
    # MobileCLIP-B-like: patchifying ConvStem, ViT blocks, class-token pooling after a LayerNorm.
    "vit": _spec({
        "stem": {"kind": "convstem", "width": 32},
        "stages": [{"depth": 2, "width": 32, "mixer": "attention", "mlp": "mlp", "mlp_ratio": 2.0,
                    "pos": "learned", "norm": "layernorm", "head_dim": 16}],
        "head": {"pool": "token", "conv_expand": 0.0, "norm": "layernorm", "proj_bias": True},
    }, resolution=48),
}

_VIT_IMAGE = IMAGE_SPECS["vit"].image.model_dump(mode="json")
TEXT_SPECS = {
    # MobileCLIP-S0-like layer mix: Text-RepMixer, attention, Text-RepMixer.
    "mixed": _spec(_VIT_IMAGE, resolution=48, embed_dim=16, text={
        "width": 32, "heads": 2, "layers": ["repmixer1d", "attention", "repmixer1d"], "vocab_size": 100,
        "context_length": 12, "causal_mask": False, "conv_kernel": 5}),
    "mixed-causal": _spec(_VIT_IMAGE, resolution=48, embed_dim=16, text={
        "width": 32, "heads": 2, "layers": ["attention", "repmixer1d", "attention"], "vocab_size": 100,
        "context_length": 12, "causal_mask": True, "conv_kernel": 3}),
}


def assert_tower_io(path, name: str, shape: tuple, dtype: str, out_name: str, embed_dim: int, precision: str):
    io = package_io(path)
    assert io["model_type"] == "mlProgram"
    assert io["inputs"] == {name: {"shape": shape, "dtype": dtype}}
    out_dtype = "float16" if precision == "fp16" else "float32"
    assert io["outputs"] == {out_name: {"shape": (1, embed_dim), "dtype": out_dtype}}
    assert io["metadata"]["precision"] == precision
    assert io["metadata"]["compute_units"] == "ALL"
    assert io["metadata"]["batch"] == "1"
    return io


def _ops(path) -> list:
    """The operations of a package's main function (protobuf), for checks that need no runtime."""
    import coremltools as ct

    main = ct.utils.load_spec(str(path)).mlProgram.functions["main"]
    return list(main.block_specializations[main.opset].operations)


# --- conversion and package IO, on every platform ----------------------------------------------

@pytest.mark.parametrize("name", IMAGE_SPECS)
def test_image_tower_converts_with_image_io(name, tmp_path):
    spec = IMAGE_SPECS[name]
    paths = export_clip(spec, tmp_path, towers=("image",))
    assert set(paths) == {"image"} and paths["image"] == tmp_path / "image.mlpackage"
    assert_tower_io(paths["image"], "image", (1, 3, spec.resolution, spec.resolution), "float32",
                    "image_embedding", spec.embed_dim, "fp16")
    assert package_io(paths["image"])["metadata"]["tower"] == "image"


@pytest.mark.parametrize("name, precision", [("mixed", "fp16"), ("mixed-causal", "fp16"), ("mixed-causal", "fp32")])
def test_text_tower_converts_with_int32_tokens(name, precision, tmp_path):
    spec = TEXT_SPECS[name]
    paths = export_clip(spec, tmp_path, precision=precision, towers=("text",))
    assert set(paths) == {"text"}
    assert_tower_io(paths["text"], "tokens", (1, spec.text.context_length), "int32", "text_embedding",
                    spec.embed_dim, precision)


def test_export_clip_writes_both_packages(tmp_path):
    spec = _spec(IMAGE_SPECS["vit"].image.model_dump(mode="json"), resolution=32, embed_dim=8, text=TINY_TEXT)
    paths = export_clip(spec, tmp_path / "out", precision="fp32")
    assert paths == {"image": tmp_path / "out" / "image.mlpackage", "text": tmp_path / "out" / "text.mlpackage"}
    assert_tower_io(paths["image"], "image", (1, 3, 32, 32), "float32", "image_embedding", 8, "fp32")
    assert_tower_io(paths["text"], "tokens", (1, 8), "int32", "text_embedding", 8, "fp32")
    # Exporting again replaces the packages.
    again = export_clip(spec, tmp_path / "out", towers="text")
    assert package_io(again["text"])["metadata"]["precision"] == "fp16"


def test_full_slice_alias_is_removed_before_conversion():
    """`t[:n, :n]` at full size is recorded as aten.alias (what stopped ViTamin's causal text
    tower); the exported program handed to coremltools has none and computes the same."""

    class FullSlice(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", torch.randn(6, 6), persistent=False)

        def forward(self, x):
            n = x.shape[1]
            return x + self.mask[:n, :n]

    module, x = FullSlice(), torch.randn(6, 6)
    raw = torch.export.export(module, (x,))
    assert torch.ops.aten.alias.default in {n.target for n in raw.graph.nodes}
    program = exported_program(module, x)
    targets = {n.target for n in program.graph.nodes if n.op == "call_function"}
    assert torch.ops.aten.alias.default not in targets
    assert torch.equal(program.module()(x), module(x))


def test_causal_text_tower_program_has_no_alias():
    spec = TEXT_SPECS["mixed-causal"]
    tower = reparameterize(build_clip(spec)).text
    tokens = example_tokens(spec)
    program = exported_program(tower, tokens)
    assert "aten.alias.default" not in {str(n.target) for n in program.graph.nodes}
    inputs = program.graph_signature.user_inputs  # the token ids (open_clip names them `text`)
    assert [n.meta["val"].dtype for n in program.graph.nodes if n.op == "placeholder" and n.name in inputs] \
        == [torch.int32]
    with torch.no_grad():
        assert torch.allclose(program.module()(tokens.int()), tower(tokens), atol=1e-6)


def test_token_ids_stay_32_bit_for_a_clip_sized_vocabulary(tmp_path):
    """coremltools narrows gather indices to 16 bits where it can; token ids up to 49407 must not
    be (int16 stops at 32767), or the embedding lookup would read the wrong rows on device."""
    import coremltools as ct

    spec = _spec(_VIT_IMAGE, resolution=48, embed_dim=8,
                 text={"width": 16, "heads": 2, "layers": ["attention"], "vocab_size": 49408, "context_length": 8})
    path = export_clip(spec, tmp_path, towers=("text",))["text"]
    narrow = {ct.proto.MIL_pb2.DataType.Value(t) for t in ("INT16", "UINT16", "INT8", "UINT8")}
    reads_tokens = [op for op in _ops(path)
                    if any(arg.name == "tokens" for binding in op.inputs.values() for arg in binding.arguments)]
    assert reads_tokens, "no op reads the tokens input"
    assert all(out.type.tensorType.dataType not in narrow for op in reads_tokens for out in op.outputs), \
        [(op.type, [out.name for out in op.outputs]) for op in reads_tokens]


def test_bad_arguments_are_user_errors(tmp_path):
    spec = IMAGE_SPECS["fastvit"]
    with pytest.raises(UserError, match="precision"):
        export_clip(spec, tmp_path, precision="int8")
    with pytest.raises(UserError, match="towers"):
        export_clip(spec, tmp_path, towers=("audio",))
    tower = build_image_tower(spec).eval()  # not reparameterized
    with pytest.raises(UserError, match="train-time branches"):
        export_tower(tower, example_images(spec), tmp_path / "image.mlpackage", input_name="image",
                     output_name="image_embedding")
    with pytest.raises(UserError, match=r"\.mlpackage"):
        export_tower(reparameterize(tower), example_images(spec), tmp_path / "image.mlmodel", input_name="image",
                     output_name="image_embedding")
    with pytest.raises(UserError, match="target"):
        export_tower(reparameterize(tower), example_images(spec), tmp_path / "image.mlpackage", input_name="image",
                     output_name="image_embedding", target="iOS99")
    with pytest.raises(UserError, match="not a Core ML package"):
        package_io(tmp_path / "missing.mlpackage")


@pytest.mark.skipif(ON_MACOS, reason="checks the error raised where Core ML cannot run")
def test_predict_needs_macos(tmp_path):
    for run in (predict, predict_callable):
        with pytest.raises(UserError, match="Core ML prediction needs macOS"):
            run(tmp_path / "image.mlpackage", {"image": np.zeros((1, 3, 8, 8), np.float32)})


# --- outputs against torch: macOS only ----------------------------------------------------------

def _relative_error(a: np.ndarray, b: torch.Tensor) -> float:
    b = b.detach().numpy().astype(np.float64)
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


@NEEDS_MACOS
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("fp16", 3e-2)])
@pytest.mark.parametrize("name", [*IMAGE_SPECS, *TEXT_SPECS])
def test_core_ml_outputs_match_torch(name, precision, tolerance, tmp_path):
    spec = IMAGE_SPECS.get(name) or TEXT_SPECS[name]
    tower = "image" if name in IMAGE_SPECS else "text"
    torch.manual_seed(0)
    model = build_clip(spec)
    randomise_norm_statistics(model)  # folds that leave BatchNorms at identity would hide errors
    path = export_clip(spec, tmp_path, precision, model=model, towers=(tower,))[tower]
    folded = reparameterize(model)
    if tower == "image":
        x = torch.randn(1, 3, spec.resolution, spec.resolution)
        inputs, module, out = {"image": x}, folded.visual, "image_embedding"
    else:
        x = torch.randint(1, spec.text.vocab_size - 1, (1, spec.text.context_length))
        x[0, spec.text.context_length // 2] = spec.text.vocab_size - 1  # end of text mid-sequence
        inputs, module, out = {"tokens": x}, folded.text, "text_embedding"
    with torch.no_grad():
        expected = module(x)
    got = predict(path, inputs)[out]
    assert got.shape == tuple(expected.shape)
    assert _relative_error(got, expected) < tolerance


# --- every preset, both towers (slow: minutes, GBs of memory for the largest) ----------------

@pytest.mark.exhaustive
@pytest.mark.parametrize("tower", ["image", "text"])
@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_converts(preset, tower, tmp_path):
    spec = get_preset(preset)
    path = export_clip(preset, tmp_path, towers=(tower,))[tower]
    if tower == "image":
        assert_tower_io(path, "image", (1, 3, spec.resolution, spec.resolution), "float32", "image_embedding",
                        spec.embed_dim, "fp16")
    else:
        assert_tower_io(path, "tokens", (1, spec.text.context_length), "int32", "text_embedding",
                        spec.embed_dim, "fp16")
