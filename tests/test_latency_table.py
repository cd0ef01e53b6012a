"""Latency lookup table: the unit decomposition covers the model exactly, units run what the model
runs (module, input shape and memory layout), keys are stable and shared, the table round-trips
keyed by device fingerprint, and predict measures missing units or says it would have to."""

from __future__ import annotations

import json

import pytest
import torch

from archsearch.errors import UserError
from archsearch.latency.cost import count_params, example_images, example_tokens
from archsearch.environment import device_fingerprint
from archsearch.latency.table import (
    LatencyTable, build_table, cold_copies, load_table, measure_unit, table_path,
)
from archsearch.latency.timing import TimingProtocol
from archsearch.space.sampling import sample_archs, table_architectures
from archsearch.latency.units import (
    Block, Head, PosEnc, TextIO, TextLayer, TokenIO, decompose, distinct_units, probe,
)
from archsearch.models import build_clip, reparameterize, unfolded_blocks
from archsearch.spec import ArchSpec, get_preset

QUICK = TimingProtocol(warmup=1, min_runs=2, round_size=2, max_runs=4, max_seconds=5)


def _spec(resolution, stem, stages, head, text, embed_dim=16) -> ArchSpec:
    return ArchSpec.from_dict({"resolution": resolution, "embed_dim": embed_dim,
                               "image": {"stem": stem, "stages": stages, "head": head},
                               "text": {"vocab_size": 100, "context_length": 8, **text}})


ATTN = {"mixer": "attention", "norm": "layernorm"}
TINY = {
    # MCi: RepMixer stages, FastViT attention with BatchNorm and LayerNorm2d, SE patch embedding, final conv
    "mci": _spec(64, {"kind": "mobileone", "width": 16}, [
        {"depth": 2, "width": 16, "mixer": "repmixer", "mlp": "convffn", "mlp_ratio": 3.0},
        {"depth": 1, "width": 32, "mixer": "repmixer", "mlp": "convffn", "mlp_ratio": 3.0, "downsample": "patch_embed"},
        {"depth": 1, "width": 32, "mixer": "attention", "mlp": "convffn", "mlp_ratio": 3.0, "pos": "repcpe",
         "downsample": "patch_embed_se", "head_dim": 16},
        {"depth": 2, "width": 32, "mlp": "convffn", "mlp_ratio": 2.0, "pos": "repcpe", "downsample": "patch_embed_se",
         "head_dim": 32, **ATTN},
    ], {"conv_expand": 2.0}, {"width": 16, "heads": 2, "conv_kernel": 5,
                              "layers": ["repmixer1d", "attention", "attention", "repmixer1d"]}),
    # ViTamin: MbConv-LN stages striding their first block, GeGLU transformer with learned positions
    "vitamin": _spec(64, {"kind": "vitamin", "width": 16}, [
        {"depth": 2, "width": 16, "mixer": "mbconv", "mlp": "none", "mlp_ratio": 4.0, "norm": "layernorm",
         "downsample": "strided_block"},
        {"depth": 2, "width": 32, "mixer": "mbconv", "mlp": "none", "mlp_ratio": 4.0, "norm": "layernorm",
         "downsample": "strided_block"},
        {"depth": 2, "width": 32, "mlp": "geglu", "mlp_ratio": 2.0, "pos": "learned", "downsample": "conv_ln",
         "head_dim": 16, **ATTN},
    ], {"norm": "layernorm", "proj_bias": False}, {"width": 32, "heads": 2, "causal_mask": True,
                                                    "layers": ["attention", "attention"]}),
    # ViT behind the ConvStem, class-token pooling
    "vit": _spec(64, {"kind": "convstem", "width": 32}, [
        {"depth": 2, "width": 32, "mlp": "mlp", "mlp_ratio": 2.0, "pos": "learned", "head_dim": 16, **ATTN},
    ], {"pool": "token", "norm": "layernorm"}, {"width": 16, "heads": 2, "layers": ["repmixer1d", "repmixer1d"]}),
    # a transformer stage that is not last (tokens back to a map), FastViT attention with head_dim != 32,
    # an MBConv stage after attention
    "mixed": _spec(32, {"kind": "mobileone", "width": 16}, [
        {"depth": 1, "width": 16, "mixer": "repmixer", "mlp": "convffn", "mlp_ratio": 2.0},
        {"depth": 2, "width": 32, "mlp": "mlp", "mlp_ratio": 2.0, "pos": "repcpe", "downsample": "patch_embed",
         "head_dim": 16, **ATTN},
        {"depth": 1, "width": 32, "mlp": "convffn", "mlp_ratio": 2.0, "head_dim": 16, **ATTN},
        {"depth": 1, "width": 32, "mixer": "mbconv", "mlp": "none", "mlp_ratio": 2.0, "norm": "layernorm",
         "downsample": "conv_ln"},
    ], {}, {"width": 16, "heads": 2, "causal_mask": True, "conv_kernel": 3,
            "layers": ["attention", "repmixer1d", "attention"]}),
}
# Presets at resolution 64 to keep the test fast: their modules and parameters are the same at any
# resolution (learned position tables follow the grid, in the model as in the units).
COVERAGE = [*TINY.items(), *((name, get_preset(name).model_copy(update={"resolution": 64}))
                             for name in ("mobileclip_s0", "vitamin_s"))]


class _CheckingProbe:
    """`units.probe` that also checks each unit is folded as the model is; one build per unit."""

    def __init__(self):
        self.store = {}

    def __call__(self, unit):
        if unit.key not in self.store:
            folded = unit.build_folded()
            assert unfolded_blocks(folded) == [], unit.key  # timed as the model runs: folded
            self.store[unit.key] = probe(unit, 1, folded)
        return self.store[unit.key]


@pytest.mark.parametrize("name, spec", COVERAGE, ids=[name for name, _ in COVERAGE])
def test_units_cover_every_parameter_of_the_folded_model(name, spec):
    """A unit that builds the wrong module, or a piece of the model no unit times, shows up here."""
    model = reparameterize(build_clip(spec))
    checking = _CheckingProbe()
    parts = decompose(spec, checking)
    for tower, module in (("image", model.visual), ("text", model.text)):
        covered = sum(checking(unit)["params"] * count for unit, count in parts[tower])
        assert covered == count_params(module), f"{name} {tower}"
    depth = sum(count for unit, count in parts["image"] if isinstance(unit, Block))
    assert depth == sum(stage.depth for stage in spec.image.stages)
    assert sum(count for unit, count in parts["text"] if isinstance(unit, TextLayer)) == len(spec.text.layers)


def _core(unit, module):
    """The submodule of a unit that corresponds to one module of the tower, and whether its
    structure (not only its input) must match."""
    if isinstance(unit, Head):
        return module.final_conv, True
    if isinstance(unit, TextLayer):
        return module.layers.resblocks[0], True
    if isinstance(unit, TextIO):
        return module.token_embedding, True
    return module, not isinstance(unit, TokenIO)  # a TokenIO is a TokenStage without its blocks


def _input(module, args):
    return type(module).__name__, tuple(args[0].shape), args[0].stride()


@pytest.mark.parametrize("name", list(TINY))
def test_units_run_the_model_modules_on_the_inputs_they_see_there(name):
    """Same folded module, same input shape and memory layout (e.g. channels-last maps after a
    LayerNorm2d, the transposed token view of a transformer stage) as inside the model."""
    spec = TINY[name]
    model = reparameterize(build_clip(spec))
    seen: dict[tuple, list] = {}
    for module in model.modules():
        module.register_forward_pre_hook(lambda m, args: seen.setdefault(_input(m, args), []).append(m) and None)
    with torch.inference_mode():
        model.visual(example_images(spec, 2))
        model.text(example_tokens(spec, 2))
    for unit in distinct_units([spec], batch=2):
        module = unit.build_folded()
        core, structural = _core(unit, module)
        got = []
        core.register_forward_pre_hook(lambda m, args: got.append(_input(m, args)))
        with torch.inference_mode():
            module(unit.example(2))
        assert got[0] in seen, f"{unit.key} runs {got[0]}, which the model never runs"
        if structural:
            assert str(core) in {str(m) for m in seen[got[0]]}, f"{unit.key}: no such module in the model"


def test_keys_are_stable_and_identical_blocks_share_one():
    block = Block("attention", "geglu", 2.0, 384, 14, 64, "layernorm", False, 384, 1, "nlc")
    assert block.key == ("image.block(mixer=attention,mlp=geglu,mlp_ratio=2,width=384,grid=14,head_dim=64,"
                         "norm=layernorm,class_token=0,in_width=384,stride=1,layout=nlc)")
    assert PosEnc("repcpe", 64, 8, "nhwc").key == "image.pos(kind=repcpe,width=64,grid=8,layout=nhwc)"
    assert decompose(TINY["vitamin"]) == decompose(TINY["vitamin"])
    # the same spec with a deeper stage changes counts, not keys
    deeper = TINY["mci"].model_copy(update={"image": TINY["mci"].image.model_copy(update={"stages": (
        TINY["mci"].image.stages[0].model_copy(update={"depth": 4}), *TINY["mci"].image.stages[1:])})})
    base, deep = dict(decompose(TINY["mci"])["image"]), dict(decompose(deeper)["image"])
    assert set(u.key for u in base) == set(u.key for u in deep)
    assert sum(deep.values()) == sum(base.values()) + 2
    # text layers: repeats are one key with a count; fields a mixer ignores do not split keys
    text = dict(decompose(TINY["mci"])["text"])
    # io, 2 repmixer, 2 attention: every text layer takes and leaves contiguous (B, L, C) tokens
    assert sorted(text.values()) == [1, 2, 2]
    assert {u.layout for u in text if isinstance(u, TextLayer)} == {"nlc"}
    repmixer = [u for u in text if isinstance(u, TextLayer) and u.mixer == "repmixer1d"]
    assert {u.heads for u in repmixer} == {None} and {u.causal for u in repmixer} == {False}


def _table(tmp_path, fingerprint) -> LatencyTable:
    return LatencyTable(fingerprint=fingerprint, batch=1, protocol=QUICK.__dict__, units={"image.x()": 1.5},
                        unit_stats={"image.x()": {"runs": 4}}, overhead_ms={"image": 0.25, "text": -0.1},
                        meta={"space": "tiny"}, path=table_path(fingerprint["id"], 1, tmp_path))


def test_table_round_trips_keyed_by_device_fingerprint(tmp_path):
    fingerprint = device_fingerprint("torch-cpu", 1)
    table = _table(tmp_path, fingerprint)
    path = table.save()
    assert path == tmp_path / f"{fingerprint['id']}-b1.json"
    loaded = load_table("torch-cpu", batch=1, threads=1, cache_dir=tmp_path)
    assert loaded == table and loaded.path == path and loaded.timing_protocol == QUICK
    with pytest.raises(UserError, match=r"-b2\.json: no latency table for this device \(torch-cpu, 1 thread"):
        load_table("torch-cpu", batch=2, threads=1, cache_dir=tmp_path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "units_version": 0}))
    with pytest.raises(UserError, match="another version of archsearch.*rebuild it"):
        LatencyTable.load(path)
    path.write_text(json.dumps({**data, "units": {"image.x()": "fast"}}))
    with pytest.raises(UserError, match=r"-b1\.json: units\.image\.x\(\): Input should be a valid number"):
        LatencyTable.load(path)
    other = _table(tmp_path, {**fingerprint, "id": "000000000000"})
    with pytest.raises(UserError, match="built on device 000000000000"):
        other.check_device()


TINY_SPACE = """
resolution: 32
embed_dim: 16
image:
  layouts:
    tiny:
      stem: {kind: mobileone, width: 16}
      stages:
        - depth: [1, 2]
          width: same
          blocks:
            - {mixer: repmixer, mlp: convffn, mlp_ratio: 2.0}
        - depth: 1
          downsample: patch_embed
          width: {times: 2}
          blocks:
            - {mixer: attention, mlp: convffn, mlp_ratio: 2.0, pos: repcpe, head_dim: 16}
            - {mixer: attention, mlp: mlp, mlp_ratio: 2.0, pos: [learned, none], norm: layernorm, head_dim: 16}
text:
  vocab_size: 100
  context_length: 8
  width: 16
  heads: 2
  depth: [1, 2]
  mixer: [repmixer1d, attention]
"""


def test_build_table_then_predict_measures_only_missing_units(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    lines = []
    table = build_table(*table_architectures(space, 2, seed=0, include_presets=False), threads=1, cache_dir=tmp_path,
                        protocol=QUICK, progress=lines.append)
    assert table.path == tmp_path / f"{device_fingerprint('torch-cpu', 1)['id']}-b1.json" and table.path.is_file()
    calibration = [ArchSpec.from_dict(record["spec"]) for record in table.calibration]
    assert len(calibration) == 2 and set(table.overhead_ms) == {"image", "text"}
    assert {u.key for u in distinct_units(calibration)} == set(table.units)
    assert all(ms > 0 for ms in table.units.values())

    known = table.predict(calibration[0])
    assert known["missing_units"] == 0 and known["added_units"] == []
    assert known["total_ms"] == pytest.approx(known["image_ms"] + known["text_ms"])
    record = table.calibration[0]
    residual = record["image_ms"] - record["image_units_ms"]
    assert known["image_ms"] - record["image_ms"] == pytest.approx(table.overhead_ms["image"] - residual)

    new = TINY["mixed"]  # resolution 32 like the space, but blocks the tiny space never samples
    with pytest.raises(UserError, match=r"unit\(s\) of this architecture are not in the table \(first: image\."):
        table.predict(new, measure_missing=False)
    first = table.predict(new)
    assert first["missing_units"] == len(first["added_units"]) > 0 and first["image_ms"] > 0
    on_disk = LatencyTable.load(table.path)
    assert set(first["added_units"]) <= set(on_disk.units)
    assert {on_disk.unit_stats[k]["source"] for k in first["added_units"]} == {"on-demand"}
    again = on_disk.predict(new, measure_missing=False)
    assert again["missing_units"] == 0 and again["total_ms"] == pytest.approx(first["total_ms"])

    # cold timings exist for every unit; tiny towers fit in the cache, so 'auto' predicts them warm
    assert set(on_disk.units_cold) == set(on_disk.units)
    assert again["image_cache"] == again["text_cache"] == "warm"
    on_disk.set_cache_policy("cold")
    cold = on_disk.predict(new, measure_missing=False)
    assert cold["image_cache"] == "cold" and cold["image_units_ms"] == pytest.approx(
        sum(on_disk.units_cold[u.key] * n for u, n in on_disk.decompose(new)["image"]))
    with pytest.raises(UserError, match="cache policy: 'hot' is unknown; allowed: auto, warm, cold"):
        on_disk.set_cache_policy("hot")

    # building again with the same arguments reuses every unit and calibration measurement
    lines.clear()
    rebuilt = build_table(*table_architectures(space, 2, seed=0, include_presets=False), threads=1,
                          cache_dir=tmp_path, protocol=QUICK, progress=lines.append)
    assert "(0 to measure)" in lines[0] and rebuilt.overhead_ms == table.overhead_ms


def test_sampled_architectures_are_distinct_reproducible_and_exclude():
    first = sample_archs("hybrid", 4, seed=3)
    assert [s.digest() for s in sample_archs("hybrid", 4, seed=3)] == [s.digest() for s in first]
    assert len({s.digest() for s in first}) == 4
    others = sample_archs("hybrid", 4, seed=3, exclude={s.digest() for s in first})
    assert not {s.digest() for s in others} & {s.digest() for s in first}


def test_cold_timing_runs_distinct_copies_holding_twice_the_cache():
    mib = 1 << 20
    assert [cold_copies(w * mib, 32 * mib) for w in (1, 2, 4, 24, 64, 100)] == [1, 32, 16, 3, 1, 1]
    unit = TextLayer("attention", 16, 2, 2.0, 8, None, False, "nlc")
    assert measure_unit(unit, "torch-cpu", 1, 1, QUICK, copies=3).median_ms > 0


def _benchmark():
    from benchmarks import latency_predictor

    return latency_predictor


def test_benchmark_statistics():
    bench = _benchmark()
    assert bench.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert bench.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert bench.kendall_tau([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(0.6)  # scipy's tau-b
    assert bench.kendall_tau([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)       # ties: tau-b
    assert bench.within_share([100, 100, 100], [109, 111, 91]) == pytest.approx(2 / 3)
