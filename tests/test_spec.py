"""ArchSpec: validation with precise errors, exact YAML/JSON round-trip, presets and aliases."""

import pytest

from archsearch.errors import SpecError, UserError
from archsearch.spec import (
    ArchSpec, dump_spec, get_preset, load_spec, preset_names, preset_of, resolve_arch, resolve_preset_name, save_spec,
)
from archsearch.spec.arch import layout_summary

PRESETS = preset_names()


def test_all_ten_presets_are_registered():
    assert PRESETS == ["mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b", "mobileclip2_s3",
                       "mobileclip2_s4", "vitamin_s", "vitamin_b", "vitamin_l", "vitamin_xl"]


@pytest.mark.parametrize("alias, name", [
    ("MobileCLIP-S0", "mobileclip_s0"), ("mobileclip-b", "mobileclip_b"), ("MobileCLIP2-S4", "mobileclip2_s4"),
    ("ViTamin-XL", "vitamin_xl"), ("vitamin_s", "vitamin_s"), ("ViTamin-B", "vitamin_b"),
])
def test_paper_spellings_are_aliases(alias, name):
    assert resolve_preset_name(alias) == name


def test_unknown_preset_names_the_allowed_values():
    with pytest.raises(UserError, match=r"unknown preset 'mobileclip_s9'; allowed: mobileclip_s0, .*vitamin_xl"):
        resolve_preset_name("mobileclip_s9")


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_is_exact(tmp_path, name, suffix):
    spec = get_preset(name)
    path = save_spec(spec, tmp_path / f"arch{suffix}")
    again = load_spec(path)
    assert again == spec
    assert dump_spec(again, suffix[1:]) == path.read_text()
    assert preset_of(again) == name


def test_spec_is_frozen():
    spec = get_preset("mobileclip_s0")
    with pytest.raises(Exception):
        spec.resolution = 128
    assert hash(spec) == hash(get_preset("mobileclip_s0"))


def test_layout_summary_reads_like_the_paper():
    assert layout_summary(get_preset("mobileclip_s0")) == "R2-R6-R10-A2 @256 | text R-A4-R x512"
    assert layout_summary(get_preset("vitamin_s")) == "M2-M4-Ag14 @224 | text A12 x384"


def _mutate(path, name, edit):
    data = get_preset(name).to_dict()
    edit(data)
    import yaml
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["image"]["stages"][0].update(mixer="conv"),
     r"image\.stages\.0\.mixer: Input should be 'repmixer', 'mbconv' or 'attention'"),
    (lambda d: d["image"]["stages"][1].update(depth=-2), r"image\.stages\.1\.depth: Input should be greater than 0"),
    (lambda d: d["text"].update(heads=7), r"text: heads: 7 does not divide width 512; allowed: divisors of 512"),
    (lambda d: d["image"]["stages"][3].update(head_dim=48),
     r"image\.stages\.3: head_dim: 48 does not divide width 512"),
    (lambda d: d["image"]["stages"][0].update(mlp="geglu"),
     r"image\.stages\.0: mlp: 'geglu' cannot follow mixer 'repmixer'; allowed: convffn"),
    (lambda d: d["text"].update(layers=["attention", "mamba"]),
     r"text\.layers\.1: Input should be 'repmixer1d' or 'attention'"),
    (lambda d: d["image"]["stages"][1].update(downsample="none"),
     r"image: stages\.1\.downsample: 'none' keeps the width \(64\) but width is 128; allowed: patch_embed"),
    (lambda d: d["image"]["stages"][2].update(width=320),
     r"image: stages\.2\.width: patch_embed_se is a depthwise \(grouped\) conv from width 128, so width 320 must be "
     r"a multiple of 128; allowed: 128, 256, 384"),
    (lambda d: d["image"].update(colour="red"), r"image\.colour: unknown field; allowed: stem, stages, head"),
    (lambda d: d.pop("embed_dim"), r"embed_dim: required field is missing"),
])
def test_invalid_specs_name_file_field_and_allowed_values(tmp_path, edit, expected):
    path = _mutate(tmp_path / "arch.yaml", "mobileclip_s0", edit)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert __import__("re").search(expected, message), message


def test_malformed_yaml_is_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("resolution: [256\nembed_dim: 512\n")
    with pytest.raises(SpecError, match=rf"^{path}: malformed YAML: ") as info:
        load_spec(path)
    assert "\n" not in str(info.value)


def test_resolve_arch_accepts_presets_aliases_and_files(tmp_path):
    path = save_spec(get_preset("vitamin_s"), tmp_path / "a.yaml")
    assert resolve_arch("ViTamin-S") == (get_preset("vitamin_s"), "vitamin_s")
    assert resolve_arch(str(path)) == (get_preset("vitamin_s"), "vitamin_s")
    with pytest.raises(SpecError, match="no such file"):
        resolve_arch(str(tmp_path / "missing.yaml"))


def test_learned_position_embedding_needs_a_whole_grid():
    data = get_preset("vitamin_s").to_dict()
    data["resolution"] = 232  # not a multiple of the transformer stage's stride 16
    with pytest.raises(ValueError, match="resolution: 232 is not a multiple of stage 2's stride 16"):
        ArchSpec.from_dict(data)


def test_one_digest_names_a_spec_for_timm_and_the_latency_caches():
    from archsearch.export.timm_registry import timm_name

    spec = get_preset("mobileclip_s0")
    assert timm_name(spec) == "archsearch_" + spec.digest() and len(spec.digest()) == 12
    assert ArchSpec.from_dict(spec.to_dict()).digest() == spec.digest()
    assert get_preset("mobileclip_s1").digest() != spec.digest()
