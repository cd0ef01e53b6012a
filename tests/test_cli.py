"""The real `archsearch` command, run as a user would: a subprocess in a temporary directory."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from archsearch.spec import get_preset

ARCHSEARCH = shutil.which("archsearch", path=str(Path(sys.executable).parent)) or "archsearch"


def run(*args, cwd):
    return subprocess.run([ARCHSEARCH, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_describe_json_is_one_object_with_the_papers_counts(tmp_path):
    result = run("describe", "MobileCLIP-S0", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # exactly one JSON object: anything else fails to parse
    assert data["preset"] == "mobileclip_s0"
    assert data["resolution"] == 256 and data["embed_dim"] == 512
    assert round(data["image_params"] / 1e6, 1) == 11.4 and round(data["text_params"] / 1e6, 1) == 42.4
    assert data["image_gmacs"] == pytest.approx(2.39, abs=0.01)
    assert data["text_gmacs"] == pytest.approx(1.32, abs=0.01)
    assert data["spec"] == get_preset("mobileclip_s0").to_dict()


@pytest.mark.slow
def test_describe_table_and_arch_files(tmp_path):
    spec = get_preset("vitamin_s").to_dict()
    spec["image"]["stages"][2]["depth"] = 4  # a user's edit of a preset
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump(spec))
    result = run("describe", "arch.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "M2-M4-Ag4 @224 | text A12 x384" in result.stdout
    assert "attention+geglu x2, 6 heads" in result.stdout
    assert "Traceback" not in result.stderr


def test_spaces_lists_sizes_and_presets(tmp_path):
    result = run("spaces", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spaces = {s["name"]: s for s in json.loads(result.stdout)["spaces"]}
    assert set(spaces) == {"hybrid", "mobileclip", "vitamin"}
    assert spaces["vitamin"]["presets"] == ["vitamin_s", "vitamin_b", "vitamin_l", "vitamin_xl"]
    assert all(s["size"] > len(s["presets"]) for s in spaces.values())


def _edited(tmp_path, edit):
    data = get_preset("mobileclip_s0").to_dict()
    edit(data)
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump(data))
    return "arch.yaml"


BAD_INPUT = {
    "unknown mixer": (lambda p: ["describe", _edited(p, lambda d: d["image"]["stages"][0].update(mixer="mamba"))],
                      "arch.yaml: image.stages.0.mixer: Input should be 'repmixer', 'mbconv' or 'attention'"),
    "negative depth": (lambda p: ["describe", _edited(p, lambda d: d["image"]["stages"][2].update(depth=-1))],
                       "arch.yaml: image.stages.2.depth: Input should be greater than 0"),
    "heads do not divide width": (lambda p: ["describe", _edited(p, lambda d: d["text"].update(heads=3))],
                                  "arch.yaml: text: heads: 3 does not divide width 512; allowed: divisors of 512"),
    "unknown preset": (lambda p: ["describe", "MobileCLIP-S7"], "unknown preset 'MobileCLIP-S7'; allowed: mobileclip_s0"),
    "malformed YAML": (lambda p: (p / "arch.yaml").write_text("image: {stem: [\n") and ["describe", "arch.yaml"],
                       "arch.yaml: malformed YAML"),
    "bad space file": (lambda p: (p / "space.yaml").write_text("presets: [mobileclip_s0]\nresolution: [256]\n")
                       and ["spaces", "space.yaml"], "space.yaml: "),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, case):
    make_args, expected = BAD_INPUT[case]
    result = run(*make_args(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("archsearch: error: ") and expected in lines[0], lines[0]


PARSER_REFUSALS = {
    "value outside a choice": (["sweep", "--sampler", "annealing"],
                               "Invalid value for '--sampler': 'annealing' is not one of 'ehvi', 'tpe', 'nsga2', "
                               "'gp', 'random'. (try 'archsearch sweep --help')"),
    "unknown option": (["export", "vitamin_s", "--fromat", "coreml"], "No such option: --fromat"),
    "missing argument": (["latency", "measure"], "Missing argument 'arch'."),
    "not an integer": (["sweep", "--trials", "many"], "Invalid value for '--trials'"),
    "unknown command": (["serch"], "No such command 'serch'."),
}


@pytest.mark.parametrize("case", PARSER_REFUSALS)
def test_what_the_parser_refuses_is_one_line_and_exit_2_like_every_other_error(tmp_path, case):
    args, expected = PARSER_REFUSALS[case]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archsearch: error: ") and expected in lines[0], result.stderr


def test_a_bare_archsearch_prints_its_help_and_exits_2(tmp_path):
    result = run(cwd=tmp_path)
    assert result.returncode == 2 and "sweep" in result.stdout and "Usage" in result.stdout and result.stderr == ""
