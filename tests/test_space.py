"""Search spaces: bundled files load, presets round-trip through Optuna, size() is exact, bad files
fail with one-line errors that name the file, the field and the allowed values."""

from __future__ import annotations

import copy

import optuna
import pytest
import yaml
from optuna.trial import FixedTrial

from archsearch.errors import SpecError, UserError
from archsearch.space import OutsideSpace, PrunedArchitecture, SearchSpace, list_spaces, load_space
from archsearch.spec import ArchSpec, get_preset

optuna.logging.set_verbosity(optuna.logging.WARNING)

BUNDLED = {path.stem: load_space(path) for path in list_spaces()}
MEMBERS = [(name, preset) for name, space in BUNDLED.items() for preset in space.presets]


def test_bundled_spaces():
    assert set(BUNDLED) == {"mobileclip", "vitamin", "hybrid"}
    assert set(BUNDLED["mobileclip"].presets) == {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b",
                                                  "mobileclip2_s3", "mobileclip2_s4"}
    assert set(BUNDLED["vitamin"].presets) == {"vitamin_s", "vitamin_b", "vitamin_l", "vitamin_xl"}
    assert {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b", "vitamin_s", "vitamin_b"} <= set(
        BUNDLED["hybrid"].presets)
    for space in BUNDLED.values():
        assert space.size() > len(space.presets)


def test_load_space_by_name_or_path():
    assert load_space("hybrid").file == BUNDLED["hybrid"].file
    assert load_space(BUNDLED["vitamin"].source).name == "vitamin"
    with pytest.raises(UserError, match="nope: unknown space; allowed: hybrid, mobileclip, vitamin"):
        load_space("nope")


@pytest.mark.parametrize("space_name, preset", MEMBERS)
def test_preset_round_trips_through_enqueue_trial(space_name, preset):
    space, spec = BUNDLED[space_name], get_preset(preset)
    params = space.params_of(spec)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(params)
    trial = study.ask()
    assert space.sample(trial) == spec
    assert trial.params == params
    assert space.sample(FixedTrial(params)) == spec
    assert space.contains(spec)


def test_parameter_names():
    params = BUNDLED["hybrid"].params_of(get_preset("mobileclip_s0"))
    assert params["image.layout"] == "mci"
    assert params["mci.s2.block"] == "repmixer_convffn"
    assert params["mci.s3.attention_convffn.norm"] == "batchnorm"
    assert [params[f"text.layer{i}"] for i in range(params["text.depth"])] == [
        "repmixer1d", "attention", "attention", "attention", "attention", "repmixer1d"]
    assert "text.layer6" not in params
    assert "mci.s0.width" not in params  # `width: same` is no choice
    assert "mci.s0.block" not in params  # one block is no choice
    assert params["mci.s3.width_times"] == 2  # `width: {times: [2, 3]}`: the multiplier is the parameter
    assert "mci.s3.width" not in params
    assert "mci.s1.width_times" not in params  # `width: {times: 2}` is no choice
    assert "text.heads" not in params and "text.head_dim" not in params  # `heads: {head_dim: 64}` is no choice


def test_params_of_names_the_field_outside_the_space():
    vitamin = BUNDLED["vitamin"]
    deeper = get_preset("vitamin_s").to_dict()
    deeper["image"]["stages"][2]["depth"] = 40
    spec = ArchSpec.from_dict(deeper)
    assert not vitamin.contains(spec)
    with pytest.raises(OutsideSpace, match=r"^image\.stages\.2\.depth: 40 is outside space 'vitamin'; "
                                           r"allowed: 12\.\.32 step 1$"):
        vitamin.params_of(spec)
    with pytest.raises(OutsideSpace, match="image: a mobileone stem with 4 stages is outside space 'vitamin'; "
                                           "allowed: vitamin: vitamin stem with 3 stages"):
        vitamin.params_of(get_preset("mobileclip_s0"))


def _pruned(space: SearchSpace, preset: str, **changes) -> PrunedArchitecture:
    with pytest.raises(PrunedArchitecture) as info:
        space.sample(FixedTrial({**space.params_of(get_preset(preset)), **changes}))
    assert isinstance(info.value, optuna.TrialPruned)
    return info.value


def test_tie_rule_violations_prune_and_name_the_rule():
    vitamin = BUNDLED["vitamin"]
    pruned = _pruned(vitamin, "vitamin_xl", **{"vitamin.s1.width": 128})
    assert pruned.rule == "widths_non_decreasing"
    assert str(pruned) == "tie rule widths_non_decreasing: image.stages.1.width 128 < image.stages.0.width 192"
    pruned = _pruned(vitamin, "vitamin_b", **{"vitamin.s2.attention_geglu.head_dim": 72})
    assert pruned.rule == "heads_divide_width"
    assert "image.stages.2.head_dim 72 does not divide width 768" in str(pruned)
    pruned = _pruned(vitamin, "vitamin_l", **{"text.heads": 6, "text.width": 1024})
    assert pruned.rule == "heads_divide_width"
    assert str(pruned) == "tie rule heads_divide_width: text.heads 6 does not divide text.width 1024"


def test_random_sampling_gives_valid_members_or_prunes():
    space = BUNDLED["hybrid"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    valid = 0
    for _ in range(200):
        trial = study.ask()
        try:
            spec = space.sample(trial)
        except PrunedArchitecture as exc:
            assert exc.rule in ("ArchSpec", "widths_non_decreasing", "heads_divide_width")
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        assert isinstance(spec, ArchSpec)
        assert space.params_of(spec) == trial.params
        valid += 1
        study.tell(trial, 0.0)
    assert valid >= 50
    assert {trial.params["image.layout"] for trial in study.trials} == set(space.file.image.layouts)


# --- size() against brute force on tiny spaces -----------------------------------------------------

IMAGE_HEAVY = """
ties: [widths_non_decreasing, heads_divide_width]
resolution: [12, 20, 224]      # 12 is below the vit stride, 12 and 20 break learned grids
embed_dim: 32
image:
  layouts:
    conv:
      stem: {kind: mobileone, width: [16, 24]}
      stages:
        - depth: {min: 1, max: 3, step: 2}
          width: same
          blocks: [{mixer: repmixer, mlp: convffn, mlp_ratio: 3.0}]
        - depth: 1
          downsample: [patch_embed, conv_ln]   # patch_embed needs a multiple of the input width
          width: [16, 32, 48]                  # 24 -> 16 shrinks
          blocks:
            - {mixer: repmixer, mlp: convffn, mlp_ratio: 3.0}
            - {mixer: attention, mlp: geglu, mlp_ratio: 2.0, pos: [learned, none], norm: layernorm,
               head_dim: [16, 32]}
      head: {pool: [avg, token], conv_expand: [0.0, 2.0], norm: [none, layernorm]}
    vit:
      stem: {kind: convstem, width: [32, 48]}
      stages:
        - depth: [1, 2]
          width: same
          blocks: [{mixer: attention, mlp: mlp, mlp_ratio: 4.0, pos: [learned, none], norm: layernorm,
                    head_dim: [16, 24]}]
      head: {pool: [token, avg], norm: layernorm}
text: {width: 32, heads: 2, depth: 1, mixer: attention}
"""

TEXT_HEAVY = """
resolution: 224
embed_dim: [32, 64]
image:
  layouts:
    vit:
      stem: {kind: convstem, width: 32}
      stages:
        - {depth: 1, width: same, blocks: [{mixer: attention, mlp: mlp, mlp_ratio: 4.0, norm: layernorm, head_dim: 16}]}
text:
  width: [32, 48]
  heads: [2, 3]
  conv_kernel: [3, 4]
  causal_mask: [false, true]
  depth: {min: 1, max: 3}
  mixer: [repmixer1d, attention]
"""


HEAD_DIM = """
ties: [heads_divide_width]
resolution: 224
embed_dim: 32
image:
  layouts:
    vit:
      stem: {kind: convstem, width: 32}
      stages:
        - {depth: 1, width: same, blocks: [{mixer: attention, mlp: mlp, mlp_ratio: 4.0, norm: layernorm, head_dim: 16}]}
text:
  width: [32, 48, 96]
  heads: {head_dim: [16, 24, 32]}   # 24 does not divide 32, 32 does not divide 48
  conv_kernel: [3, 4]
  depth: {min: 1, max: 2}
  mixer: [repmixer1d, attention]
"""

RELATIVE = """
resolution: 224
embed_dim: 32
image:
  layouts:
    fastvit:
      stem: {kind: mobileone, width: [16, 24]}
      stages:
        - depth: 1
          width: same
          blocks: [{mixer: repmixer, mlp: convffn, mlp_ratio: 3.0}]
        - depth: [1, 2]
          downsample: patch_embed
          width: {times: [1, 2, 3]}
          blocks:
            - {mixer: repmixer, mlp: convffn, mlp_ratio: 3.0}
            - {mixer: attention, mlp: convffn, mlp_ratio: 3.0, pos: repcpe, head_dim: 16}  # not 24 or 72 wide
        - depth: 1
          downsample: [patch_embed_se, conv_ln]
          width: {times: {min: 2, max: 3}}
          blocks: [{mixer: attention, mlp: geglu, mlp_ratio: 2.0, pos: [none, learned], norm: layernorm,
                    head_dim: 32}]
      head: {pool: token, norm: layernorm}
text: {width: 32, heads: 2, depth: 1, mixer: attention}
"""


def test_relative_widths_round_trip_as_multipliers(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(RELATIVE)
    space = SearchSpace.from_file(path)
    params = {"fastvit.stem.width": 16, "fastvit.s1.depth": 1, "fastvit.s1.width_times": 3,
              "fastvit.s1.block": "repmixer_convffn", "fastvit.s2.downsample": "conv_ln",
              "fastvit.s2.width_times": 2, "fastvit.s2.attention_geglu.pos": "none"}
    spec = space.sample(FixedTrial(params))
    assert [stage.width for stage in spec.image.stages] == [16, 48, 96]
    assert space.params_of(spec) == params

    def with_widths(*widths: int) -> ArchSpec:
        data = spec.to_dict()
        for stage, width in zip(data["image"]["stages"], widths):
            stage["width"] = width
        return ArchSpec.from_dict(data)

    with pytest.raises(OutsideSpace, match=r"^image\.stages\.1\.width: 64 is outside space 'tiny'; "
                                           r"allowed: 16, 32, 48 \(1, 2, 3 times the input width 16\)$"):
        space.params_of(with_widths(16, 64, 128))  # 4 times
    with pytest.raises(OutsideSpace, match=r"^image\.stages\.2\.width: 64 is outside space 'tiny'; "
                                           r"allowed: 96, 144 \(2\.\.3 step 1 times the input width 48\)$"):
        space.params_of(with_widths(16, 48, 64))  # 4/3 times, which conv_ln allows


def test_text_heads_round_trip_as_head_dims(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(HEAD_DIM)
    space = SearchSpace.from_file(path)
    params = {"text.width": 48, "text.head_dim": 24, "text.conv_kernel": 3, "text.depth": 1,
              "text.layer0": "attention"}
    spec = space.sample(FixedTrial(params))
    assert (spec.text.width, spec.text.heads) == (48, 2)
    assert space.params_of(spec) == params

    data = spec.to_dict()
    data["text"]["heads"] = 4  # head width 12
    with pytest.raises(OutsideSpace, match=r"^text\.heads: 4 is outside space 'tiny'; "
                                           r"allowed: 3, 2 \(text width 48 / head_dim 16, 24, 32\)$"):
        space.params_of(ArchSpec.from_dict(data))


def test_text_head_dim_that_does_not_divide_the_width_prunes(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(HEAD_DIM)
    params = {"text.width": 48, "text.head_dim": 32, "text.conv_kernel": 3, "text.depth": 1,
              "text.layer0": "attention"}
    with pytest.raises(PrunedArchitecture) as info:
        SearchSpace.from_file(path).sample(FixedTrial(params))
    assert info.value.rule == "heads_divide_width"
    assert str(info.value) == "tie rule heads_divide_width: text.head_dim 32 does not divide text.width 48"
    path.write_text(HEAD_DIM.replace("ties: [heads_divide_width]", "ties: []"))
    with pytest.raises(PrunedArchitecture) as info:  # not rounded to one 48-wide head
        SearchSpace.from_file(path).sample(FixedTrial(params))
    assert info.value.rule == "ArchSpec"
    assert str(info.value).startswith("ArchSpec: text.heads: ")


def test_times_one_is_same(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(BASE))
    same = SearchSpace.from_file(path).file
    _stage(BASE)["width"] = {"times": [1]}
    try:
        path.write_text(yaml.safe_dump(BASE))
    finally:
        _stage(BASE)["width"] = "same"
    assert SearchSpace.from_file(path).file == same


def test_arch_spec_violations_prune(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(IMAGE_HEAVY)
    params = {"resolution": 20, "image.layout": "vit", "vit.stem.width": 32, "vit.s0.depth": 1,
              "vit.s0.attention_mlp.pos": "learned", "vit.s0.attention_mlp.head_dim": 16, "vit.head.pool": "token"}
    with pytest.raises(PrunedArchitecture) as info:
        SearchSpace.from_file(path).sample(FixedTrial(params))
    assert info.value.rule == "ArchSpec"
    assert str(info.value).startswith("ArchSpec: resolution: 20 is not a multiple of stage 0's stride 16")


class _Unassigned(Exception):
    def __init__(self, name: str, values: list):
        self.name, self.values = name, values


class _Enumerating:
    """A trial answering from `assigned` that stops at the first parameter it lacks, so that a
    depth-first search visits every assignment of a define-by-run space."""

    def __init__(self, assigned: dict):
        self.assigned = assigned

    def suggest_categorical(self, name, choices):
        return self._value(name, list(choices))

    def suggest_int(self, name, low, high, step=1):
        return self._value(name, list(range(low, high + 1, step)))

    def _value(self, name, values):
        if name not in self.assigned:
            raise _Unassigned(name, values)
        return self.assigned[name]


def _every_sample(space: SearchSpace) -> tuple[list[ArchSpec], set[str]]:
    specs, pruned_by, todo = [], set(), [{}]
    while todo:
        assigned = todo.pop()
        try:
            specs.append(space.sample(_Enumerating(assigned)))
        except _Unassigned as branch:
            todo.extend({**assigned, branch.name: value} for value in branch.values)
        except PrunedArchitecture as exc:
            pruned_by.add(exc.rule)
    return specs, pruned_by


@pytest.mark.parametrize("text, rules", [
    (IMAGE_HEAVY, {"ArchSpec", "widths_non_decreasing", "heads_divide_width"}),
    (TEXT_HEAVY, {"ArchSpec"}),
    (RELATIVE, {"ArchSpec"}),
    (HEAD_DIM, {"ArchSpec", "heads_divide_width"}),
    (HEAD_DIM.replace("ties: [heads_divide_width]", "ties: []"), {"ArchSpec"}),
])
def test_size_matches_brute_force(tmp_path, text, rules):
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    space = SearchSpace.from_file(path)
    specs, pruned_by = _every_sample(space)
    assert pruned_by == rules  # the tiny space exercises every rule it should
    assert len(set(specs)) == len(specs) == space.size()
    assert all(space.sample(FixedTrial(space.params_of(spec))) == spec for spec in specs[::7])


# --- bad space files -------------------------------------------------------------------------------

BASE = {
    "presets": ["mobileclip_b"],
    "ties": ["widths_non_decreasing"],
    "resolution": 224,
    "embed_dim": 512,
    "image": {"layouts": {"vit": {
        "stem": {"kind": "convstem", "width": [512, 768]},
        "stages": [{"depth": {"min": 6, "max": 12, "step": 2}, "width": "same", "blocks": [
            {"mixer": "attention", "mlp": "mlp", "mlp_ratio": 4.0, "pos": "learned", "norm": "layernorm",
             "head_dim": 64}]}],
        "head": {"pool": "token", "norm": "layernorm"},
    }}},
    "text": {"width": 512, "heads": 8, "causal_mask": True, "depth": 12, "mixer": "attention"},
}


def _stage(data: dict) -> dict:
    return data["image"]["layouts"]["vit"]["stages"][0]


def _edit(change):
    def edited() -> dict:
        data = copy.deepcopy(BASE)
        change(data)
        return data
    return edited


BAD_FILES = {
    "unknown mixer": (
        _edit(lambda d: _stage(d)["blocks"][0].update(mixer="transformer")),
        "image.layouts.vit.stages.0.blocks.0.mixer: Input should be 'repmixer', 'mbconv' or 'attention'"),
    "negative depth": (
        _edit(lambda d: _stage(d).update(depth=-2)),
        "image.layouts.vit.stages.0.depth: -2 is not a positive integer"),
    "unknown choice": (
        _edit(lambda d: _stage(d)["blocks"][0].update(pos=["learned", "rope"])),
        "image.layouts.vit.stages.0.blocks.0.pos: unknown value rope; allowed: none, repcpe, learned"),
    "bad range": (
        _edit(lambda d: _stage(d).update(depth={"min": 6, "max": 11, "step": 2})),
        "image.layouts.vit.stages.0.depth: range 6..11 step 2: max must be min plus a multiple of step"),
    "range of strings": (
        _edit(lambda d: _stage(d).update(downsample={"min": 1, "max": 2})),
        "image.layouts.vit.stages.0.downsample: a {min, max, step} range applies to integer fields only"),
    "duplicate choice": (
        _edit(lambda d: d.update(resolution=[224, 256, 224])),
        "resolution: duplicate choice 224"),
    "zero multiplier": (
        _edit(lambda d: _stage(d).update(width={"times": [0, 2]})),
        "image.layouts.vit.stages.0.width: times: 0 is not a positive integer"),
    "fractional multiplier": (
        _edit(lambda d: _stage(d).update(width={"times": 1.5})),
        "image.layouts.vit.stages.0.width: times: 1.5 is not a positive integer"),
    "relative width with more keys": (
        _edit(lambda d: _stage(d).update(width={"times": 2, "max": 4})),
        "image.layouts.vit.stages.0.width: a relative width has the one key times; got max, times"),
    "zero head width": (
        _edit(lambda d: d["text"].update(heads={"head_dim": [0, 64]})),
        "text.heads: head_dim: 0 is not a positive integer"),
    "fractional head width": (
        _edit(lambda d: d["text"].update(heads={"head_dim": 42.5})),
        "text.heads: head_dim: 42.5 is not a positive integer"),
    "head width with more keys": (
        _edit(lambda d: d["text"].update(heads={"head_dim": 64, "max": 16})),
        "text.heads: a head width has the one key head_dim; got head_dim, max"),
    "relative width without downsampling": (
        _edit(lambda d: _stage(d).update(width={"times": [1, 2]})),
        "image.layouts.vit.stages.0.width: downsample 'none' keeps the input width; allowed: same"),
    "width changes without downsampling": (
        _edit(lambda d: _stage(d).update(width=[512, 768])),
        "image.layouts.vit.stages.0.width: downsample 'none' keeps the input width; allowed: same"),
    "block that never builds": (
        _edit(lambda d: _stage(d)["blocks"].append({"mixer": "repmixer", "mlp": "mlp", "mlp_ratio": 3.0})),
        "image.layouts.vit.stages.0.blocks: block 1 (repmixer_mlp) builds no valid stage with downsample none: "
        "mlp: 'mlp' cannot follow mixer 'repmixer'; allowed: convffn"),
    "attention without heads": (
        _edit(lambda d: _stage(d)["blocks"][0].pop("head_dim")),
        "image.layouts.vit.stages.0.blocks.0: head_dim: attention blocks need head_dim choices"),
    "overlapping layouts": (
        _edit(lambda d: d["image"]["layouts"].update(vit2=copy.deepcopy(d["image"]["layouts"]["vit"]))),
        "image.layouts: vit2: same stem kind (convstem) and stage count (1) as layout 'vit'"),
    "unknown tie rule": (
        _edit(lambda d: d.update(ties=["widths_increasing"])),
        "ties.0: Input should be 'widths_non_decreasing' or 'heads_divide_width'"),
    "unknown key in a stage": (
        _edit(lambda d: _stage(d).update(dept=6)),
        "image.layouts.vit.stages.0.dept: unknown field; allowed: "),
    "unknown key": (
        _edit(lambda d: d["text"].update(layers=6)),
        "text.layers: unknown field; allowed: vocab_size, context_length, width, heads, mlp_ratio, causal_mask, "
        "conv_kernel, depth, mixer"),
    "missing field": (
        _edit(lambda d: d.pop("embed_dim")),
        "embed_dim: required field is missing"),
    "unknown preset": (
        _edit(lambda d: d.update(presets=["mobileclip_b", "mobileclip_s9"])),
        "presets.1: unknown preset 'mobileclip_s9'; allowed: mobileclip_s0, mobileclip_s1"),
    "preset not a member": (
        _edit(lambda d: d.update(presets=["MobileCLIP-B", "vitamin_s"])),
        "presets.1: vitamin_s is not a member: image: a vitamin stem with 3 stages is outside space 'bad'; "
        "allowed: vit: convstem stem with 1 stage"),
    "preset head width not a member": (
        _edit(lambda d: d["text"].update(heads={"head_dim": [32, 128]})),
        "presets.0: mobileclip_b is not a member: text.heads: 8 is outside space 'bad'; "
        "allowed: 16, 4 (text width 512 / head_dim 32, 128)"),
    "preset field not a member": (
        _edit(lambda d: d["text"].update(causal_mask=False)),
        "presets.0: mobileclip_b is not a member: text.causal_mask: true is outside space 'bad'; allowed: false"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_space_file_fails_in_one_line(tmp_path, case):
    make, expected = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(make()))
    with pytest.raises(SpecError) as info:
        SearchSpace.from_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {expected}")


def test_the_base_of_the_bad_files_is_good(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert SearchSpace.from_file(path).presets == ("mobileclip_b",)


def test_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("image: [layouts\n")
    with pytest.raises(SpecError, match=f"^{path}: malformed YAML: "):
        SearchSpace.from_file(path)
