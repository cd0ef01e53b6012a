"""Export: OpenCLIP configs that open_clip builds into archsearch's own modules (timm registration in
fresh processes included), train.yaml, Core ML packages and README; all or nothing on disk; the CLI
as a user runs it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import open_clip
import pytest
import timm
import torch
import yaml

import archsearch  # noqa: F401  (registers the presets' towers with timm)
from archsearch.errors import UserError
from archsearch.export.openclip import model_config, open_clip_state_dict
from archsearch.export.timm_registry import SPECS_ENV, register_spec, timm_name
from archsearch.export.writer import count_params, write_export
from archsearch.latency.coreml import package_io
from archsearch.models import build_clip
from archsearch.models.image import ImageTower
from archsearch.spec import ArchSpec, get_preset, load_spec, open_clip_reference, preset_names
from conftest import randomise_norm_statistics

ARCHSEARCH = shutil.which("archsearch", path=str(Path(sys.executable).parent)) or "archsearch"
OPEN_CLIP_PRESETS = [p for p in preset_names() if open_clip_reference(p)]
BIG = {"mobileclip_b", "mobileclip2_s3", "mobileclip2_s4", "vitamin_b", "vitamin_l", "vitamin_xl"}
TINY_TEXT = {"width": 32, "heads": 2, "context_length": 16}


def _tiny(preset: str) -> ArchSpec:
    """A preset's layout at toy size: resolution 32, a few channels, one block per stage."""
    data = get_preset(preset).to_dict()
    data.update(resolution=32, embed_dim=16)
    image = data["image"]
    if preset == "mobileclip_s1":
        image["stem"]["width"] = 8
        for stage, width in zip(image["stages"], (8, 16, 32, 64)):
            stage.update(width=width, depth=1)
        image["stages"][3]["head_dim"] = 32
    elif preset == "vitamin_s":
        image["stem"]["width"] = 8
        for stage, width in zip(image["stages"], (8, 16, 32)):
            stage.update(width=width, depth=1)
        image["stages"][2]["head_dim"] = 16
    elif preset == "mobileclip_b":
        image["stem"]["width"] = 32
        image["stages"][0].update(width=32, depth=1, head_dim=16)
    elif preset == "mobileclip_s0":
        image["stem"]["width"] = 8
        for stage, width in zip(image["stages"], (8, 16, 32, 64)):
            stage.update(width=width, depth=1)
        data["text"].update(layers=["repmixer1d", "attention", "repmixer1d"], conv_kernel=3)
    if preset != "mobileclip_s0":
        data["text"]["layers"] = ["attention", "attention"]
    data["text"].update(TINY_TEXT)
    return ArchSpec.from_dict(data)


TINY = {name: _tiny(name) for name in ("mobileclip_s1", "vitamin_s", "mobileclip_b", "mobileclip_s0")}


@pytest.fixture(autouse=True)
def _private_registry(tmp_path, monkeypatch):
    """Exports record their specs in a registry of this test's own, never the user's."""
    monkeypatch.setenv(SPECS_ENV, str(tmp_path / "registry"))


def env(tmp_path: Path, **extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", SPECS_ENV: str(tmp_path / "registry"), **extra}


def run(*args, cwd: Path, **extra):
    return subprocess.run([ARCHSEARCH, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=env(cwd, **extra))


def _quietly_create(name: str, **kwargs):
    logging.disable(logging.WARNING)  # open_clip's "no pretrained weights" lines
    try:
        return open_clip.create_model(name, **kwargs)
    finally:
        logging.disable(logging.NOTSET)


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]


# --- OpenCLIP configs ----------------------------------------------------------------------------

@pytest.mark.parametrize("preset", OPEN_CLIP_PRESETS)
def test_preset_configs_build_in_open_clip_with_our_and_the_references_parameter_count(tmp_path, preset):
    """On the meta device (structure, no memory): the exported config, built by open_clip, has
    archsearch's parameter count, which is also open_clip's own config of the same name's."""
    spec = get_preset(preset)
    result = write_export(spec, tmp_path / "out", {"preset": preset}, fmt="openclip")
    assert result.files == ["arch.yaml", "open_clip_config.json"]
    config = json.loads((tmp_path / "out/open_clip_config.json").read_text())
    reference = open_clip.get_model_config(open_clip_reference(preset))
    ours = config["model_cfg"]
    assert ours["embed_dim"] == reference["embed_dim"]
    for key in ("context_length", "vocab_size", "width", "heads", "layers"):
        assert ours["text_cfg"][key] == reference["text_cfg"][key], key
    assert ours["text_cfg"]["no_causal_mask"] == reference["text_cfg"].get("no_causal_mask", False)
    assert ours["vision_cfg"] == {"timm_model_name": timm_name(spec), "timm_model_pretrained": False,
                                  "timm_pool": spec.image.head.pool, "timm_proj": None,
                                  "image_size": reference["vision_cfg"]["image_size"]}
    with torch.device("meta"):
        exported = count_params(_quietly_create(f"local-dir:{tmp_path / 'out'}", device="meta"))
        theirs = count_params(_quietly_create(open_clip_reference(preset), device="meta"))
        mine = count_params(build_clip(spec))
    assert exported == mine == theirs == result.params["open_clip"]


@pytest.mark.parametrize("preset", [pytest.param(p, marks=pytest.mark.slow) if p in BIG else p
                                    for p in OPEN_CLIP_PRESETS])
def test_preset_configs_build_for_real(tmp_path, preset):
    spec = get_preset(preset)
    write_export(spec, tmp_path / "out", {"preset": preset}, fmt="openclip")
    model = _quietly_create(f"local-dir:{tmp_path / 'out'}")
    assert type(model.visual.trunk).__name__ == "TimmImageTower"
    assert count_params(model) == count_params(build_clip(spec))


@pytest.mark.parametrize("name", ["mobileclip_s1", "vitamin_s", "mobileclip_b"])
def test_open_clip_model_computes_what_ours_computes(tmp_path, name):
    """Our weights load into the open_clip model strictly (visual. -> visual.trunk.) and both
    towers give the same outputs: avg pool + biased projection, GeGLU + bias-free, class token."""
    spec = TINY[name]
    write_export(spec, tmp_path / "out", {"test": name}, fmt="openclip")
    ours = build_clip(spec)
    randomise_norm_statistics(ours)
    theirs = _quietly_create(f"local-dir:{tmp_path / 'out'}")
    theirs.load_state_dict(open_clip_state_dict(ours.state_dict()))
    ours.eval(), theirs.eval()
    images = torch.rand(2, 3, 32, 32)
    tokens = torch.randint(1, 1000, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode_image(images), ours.encode_image(images))
        torch.testing.assert_close(theirs.encode_text(tokens), ours.encode_text(tokens))


def test_timm_tower_follows_timms_interface():
    spec = TINY["mobileclip_b"]
    name = register_spec(spec)
    assert name in timm.list_models("archsearch_*")
    model = timm.create_model(name).eval()
    assert model.num_classes == spec.embed_dim and model.num_features == spec.image.num_features
    assert model.pretrained_cfg["input_size"] == (3, 32, 32) and model.pretrained_cfg["fixed_input_size"]
    tower = ImageTower(spec.image, spec.resolution, spec.embed_dim).eval()
    tower.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tower(x))
        torch.testing.assert_close(model.forward_head(model.forward_features(x), pre_logits=True),
                                   tower.forward_features(x))
        assert model.forward_features(x).shape == (2, 1 + 4, 32)  # class token + 2x2 grid
        model.reset_classifier(0)
        assert model(x).shape == (2, 32)
        assert timm.create_model(name, num_classes=7)(x).shape == (2, 7)
    with pytest.raises(ValueError, match="pools by 'token'"):
        timm.create_model(name, global_pool="avg")
    with pytest.raises(RuntimeError, match="no pretrained weights"):
        timm.create_model(name, pretrained=True)


def test_names_are_content_addressed_and_survive_a_yaml_round_trip(tmp_path):
    spec = TINY["vitamin_s"]
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump(spec.to_dict()))
    assert timm_name(load_spec(path)) == timm_name(spec)
    other = ArchSpec.from_dict({**spec.to_dict(), "embed_dim": 24})
    assert timm_name(other) != timm_name(spec)
    assert len({timm_name(get_preset(p)) for p in preset_names()}) == len(preset_names())


FRESH_PROCESS = textwrap.dedent("""
    import json, logging, sys
    logging.disable(logging.WARNING)
    {imports}
    out = {{}}
    for ref in sys.argv[1:]:
        try:
            model = open_clip.create_model(ref, device="meta")
            out[ref] = sum(p.numel() for p in model.parameters())
        except RuntimeError as exc:
            out[ref] = str(exc)
    print(json.dumps(out))
""")


def _fresh(tmp_path: Path, imports: str, registry: Path, refs: list[str]) -> dict:
    """Build `refs` with open_clip in a new interpreter; {ref: parameter count or error}."""
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS.format(imports=imports), *refs], capture_output=True,
                            text=True, timeout=300, env=env(tmp_path, **{SPECS_ENV: str(registry)}))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _custom_and_preset_exports(tmp_path: Path) -> tuple[list[str], list[int], ArchSpec]:
    custom, preset = TINY["mobileclip_s1"], get_preset("vitamin_s")
    write_export(custom, tmp_path / "custom", {"test": "custom"}, fmt="openclip")
    write_export(preset, tmp_path / "preset", {"preset": "vitamin_s"}, fmt="openclip")
    with torch.device("meta"):
        counts = [count_params(build_clip(custom)), count_params(build_clip(preset))]
    return [f"local-dir:{tmp_path / 'custom'}", f"local-dir:{tmp_path / 'preset'}"], counts, custom


@pytest.mark.parametrize("imports", [
    "import archsearch, open_clip",
    "import open_clip, archsearch",
    # An availability check before the import (as Lightning makes) must not use the hook up.
    "import archsearch, importlib.util; importlib.util.find_spec('timm'); import open_clip",
])
@pytest.mark.slow
def test_a_fresh_process_builds_exported_configs_after_import_archsearch(tmp_path, imports):
    """In a new interpreter, whichever of open_clip and archsearch comes first: a preset export and
    a custom one (found through the registry the export recorded it in) both build."""
    refs, counts, custom = _custom_and_preset_exports(tmp_path)
    assert [p.name for p in (tmp_path / "registry").iterdir()] == [f"{timm_name(custom)}.yaml"]
    assert list(_fresh(tmp_path, imports, tmp_path / "registry", refs).values()) == counts


@pytest.mark.slow
def test_the_export_directory_serves_as_registry_and_without_one_only_presets_build(tmp_path):
    refs, counts, custom = _custom_and_preset_exports(tmp_path)
    # The export directory itself (it holds arch.yaml), e.g. on another machine:
    assert list(_fresh(tmp_path, "import archsearch, open_clip", tmp_path / "custom", refs).values()) == counts
    # Without the record only presets are known: the registry is what makes custom towers build.
    unknown = _fresh(tmp_path, "import archsearch, open_clip", tmp_path / "empty", refs)
    assert f"Unknown model ({timm_name(custom)})" in unknown[refs[0]] and unknown[refs[1]] == counts[1]


def test_a_hybrid_text_tower_gets_no_open_clip_config_and_the_export_says_so(tmp_path):
    spec = TINY["mobileclip_s0"]
    result = write_export(spec, tmp_path / "out", {"test": "s0"}, fmt="all")
    assert "open_clip_config.json" not in result.files
    assert result.files == ["arch.yaml", "train.yaml", "image.mlpackage", "text.mlpackage"]
    assert any("OpenCLIP's text tower is transformer blocks only" in note for note in result.notes)
    readme = (tmp_path / "out/README.md").read_text()
    assert "**not written**" in readme and "repmixer1d" in readme
    assert json.loads((tmp_path / "out/export.json").read_text())["notes"] == result.notes
    with pytest.raises(UserError, match="allowed: text.layers all 'attention'"):
        model_config(spec)
    with pytest.raises(UserError, match="--format openclip: .*allowed here: all, lightning, coreml"):
        write_export(spec, tmp_path / "other", {"test": "s0"}, fmt="openclip")
    assert not (tmp_path / "other").exists()


# --- the CLI -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_export_all_of_a_tiny_arch_writes_every_file(tmp_path):
    spec = TINY["mobileclip_s1"]
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump(spec.to_dict()))
    result = run("export", "arch.yaml", "--out", "exports/tiny", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "exports/tiny"
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "arch.yaml", "open_clip_config.json", "train.yaml", "image.mlpackage", "text.mlpackage", "README.md",
        "export.json"])
    assert _leftovers(out.parent) == []
    assert load_spec(out / "arch.yaml") == spec
    train = yaml.safe_load((out / "train.yaml").read_text())
    assert ArchSpec.from_dict(train["model"]["arch"]) == spec
    assert train["trainer"]["strategy"] == "ddp" and train["trainer"]["logger"]["init_args"]["offline"] is True
    assert [c["class_path"].rsplit(".", 1)[-1] for c in train["trainer"]["callbacks"]] == [
        "ModelCheckpoint", "LearningRateMonitor", "FinalWeights"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["provenance"] == {"file": str((tmp_path / "arch.yaml").resolve())}
    assert manifest["timm_model_name"] == timm_name(spec)
    image, text = package_io(out / "image.mlpackage"), package_io(out / "text.mlpackage")
    assert image["inputs"]["image"]["shape"] == (1, 3, 32, 32)
    assert image["outputs"]["image_embedding"]["shape"] == (1, 16)
    assert text["inputs"]["tokens"]["shape"] == (1, 16)
    readme = (out / "README.md").read_text()
    for command in ("archsearch train --config exports/tiny/train.yaml",
                    "--ckpt_path runs/train/tiny/checkpoints/last.ckpt",
                    "archsearch train validate --config exports/tiny/train.yaml",
                    'open_clip.create_model_and_transforms("local-dir:exports/tiny")'):
        assert command in readme
    assert f"registered {timm_name(spec)}" in result.stdout
    assert (tmp_path / "registry" / f"{timm_name(spec)}.yaml").is_file()


@pytest.mark.slow
def test_export_of_a_preset_by_its_paper_name(tmp_path):
    result = run("export", "MobileCLIP-S1", "--out", "s1", "--format", "openclip", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "s1").iterdir()) == [
        "README.md", "arch.yaml", "export.json", "open_clip_config.json"]
    assert "84,969,729 parameters, as archsearch's" in result.stdout
    assert not (tmp_path / "registry").exists()  # presets are always registered: nothing to record
    result = run("export", "mobileclip_s0", "--out", "s0", "--format", "lightning", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "s0").iterdir()) == [
        "README.md", "arch.yaml", "export.json", "train.yaml"]


BAD_EXPORTS = {
    "unknown preset": (["export", "MobileCLIP-S7", "--out", "new"],
                       "unknown preset 'MobileCLIP-S7'; allowed: mobileclip_s0"),
    "hybrid text as openclip": (["export", "mobileclip_s0", "--out", "new", "--format", "openclip"],
                                "OpenCLIP's text tower is transformer blocks only"),
    "non-empty out": (["export", "vitamin_s", "--out", "full", "--format", "openclip"],
                      "full: exists and is not empty; pass --force to replace an earlier export"),
    "force on a folder that is no export": (["export", "vitamin_s", "--out", "full", "--format", "openclip", "--force"],
                                            "full: not an archsearch export (no export.json)"),
    "out is a file": (["export", "vitamin_s", "--out", "full/notes.txt", "--format", "openclip"],
                      "notes.txt: exists and is not a directory"),
    "unwritable place": (["export", "mobileclip_s0", "--out", "/proc/nope", "--format", "lightning"],
                         "--out /proc/nope: cannot write there"),
}


def test_an_unknown_format_is_refused_by_the_option_itself_with_the_choices(tmp_path):
    result = run("export", "vitamin_s", "--out", "new", "--format", "onnx", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("archsearch: error: Invalid value for '--format': 'onnx' is not one of 'all', "
                                    "'openclip', 'lightning', 'coreml'")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("case", BAD_EXPORTS)
def test_bad_export_input_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    args, expected = BAD_EXPORTS[case]
    (tmp_path / "full").mkdir()
    (tmp_path / "full/notes.txt").write_text("mine")
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("archsearch: error: ") and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_force_replaces_an_earlier_export_whole(tmp_path):
    assert run("export", "vitamin_s", "--out", "out", "--format", "lightning", cwd=tmp_path).returncode == 0
    (tmp_path / "out/stale.txt").write_text("from before")
    assert run("export", "vitamin_s", "--out", "out", "--format", "openclip", cwd=tmp_path).returncode == 2
    result = run("export", "vitamin_s", "--out", "out", "--format", "openclip", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "README.md", "arch.yaml", "export.json", "open_clip_config.json"]
    assert _leftovers(tmp_path) == []


def test_an_interrupted_export_leaves_nothing_behind(tmp_path):
    """Ctrl-C during the Core ML conversion: no export directory, no temporary one."""
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump(TINY["vitamin_s"].to_dict()))
    process = subprocess.Popen([ARCHSEARCH, "export", "arch.yaml", "--out", "out", "--format", "coreml"],
                               cwd=tmp_path, env=env(tmp_path), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not _leftovers(tmp_path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the export finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert _leftovers(tmp_path) == []
    if process.returncode == 0:
        # The interrupt landed where a library swallows KeyboardInterrupt (seen once in CI inside
        # the Core ML conversion): then the export must be whole, never half-written.
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
            "README.md", "arch.yaml", "export.json", "image.mlpackage", "text.mlpackage"]
    else:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["arch.yaml"]


@pytest.mark.exhaustive
@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_exports_every_file(tmp_path, preset):
    """Full-size Core ML conversions: minutes per preset."""
    result = write_export(get_preset(preset), tmp_path / "out", {"preset": preset})
    expected = {"arch.yaml", "train.yaml", "image.mlpackage", "text.mlpackage"}
    expected |= {"open_clip_config.json"} if open_clip_reference(preset) else set()
    assert set(result.files) == expected


# --- exporting a sweep trial ----------------------------------------------------------------------

def _hand_built_study(tmp_path: Path) -> tuple[Path, str, ArchSpec]:
    """A study as `archsearch sweep` leaves it, without training: one completed trial, one failed."""
    import optuna

    from archsearch.search.storage import write_study_file
    from archsearch.space import load_space

    space = load_space(Path(__file__).parent / "data" / "tiny_space.yaml")
    spec = None
    sampler_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    while spec is None:
        try:
            spec = space.sample(sampler_study.ask())
        except optuna.TrialPruned:
            pass
    run_dir = tmp_path / "runs" / "toy"
    run_dir.mkdir(parents=True)
    url = f"sqlite:///{run_dir / 'study.db'}"
    study = optuna.create_study(study_name="toy", storage=url, directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[12.5, 3.0], user_attrs={
        "arch": spec.to_dict(), "zeroshot_top1": 12.5, "latency_ms": 3.0}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={
        "arch": spec.to_dict(), "fail_reason": "non-finite loss: nan at step 2"}))
    write_study_file(run_dir, {"study": "toy", "storage": url, "local_db": "study.db"})
    return run_dir, url, spec


@pytest.mark.slow
def test_export_of_a_sweep_trial_writes_every_file_and_refuses_bad_trials(tmp_path):
    run_dir, url, spec = _hand_built_study(tmp_path)
    done = subprocess.run([ARCHSEARCH, "export", str(run_dir), "--trial", "0", "--out", str(tmp_path / "exp")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    files = {p.name for p in (tmp_path / "exp").iterdir()}
    assert {"arch.yaml", "train.yaml", "image.mlpackage", "text.mlpackage", "README.md", "export.json"} <= files
    assert load_spec(tmp_path / "exp" / "arch.yaml") == spec
    provenance = json.loads((tmp_path / "exp" / "export.json").read_text())["provenance"]
    assert provenance["study"] == "toy" and provenance["trial"] == 0 and provenance["zeroshot_top1"] == 12.5
    assert "trial 0" in (tmp_path / "exp" / "README.md").read_text()

    by_storage = subprocess.run([ARCHSEARCH, "export", "--storage", url, "--study", "toy", "--trial", "0",
                                 "--out", str(tmp_path / "exp2"), "--format", "lightning"], capture_output=True, text=True)
    assert by_storage.returncode == 0, by_storage.stderr
    for trial, message in ((1, "trial 1 of study 'toy' is fail: non-finite loss: nan at step 2; allowed: "
                               "completed trials 0"),
                           (7, "study 'toy' has no trial 7; allowed: completed trials 0")):
        bad = subprocess.run([ARCHSEARCH, "export", str(run_dir), "--trial", str(trial), "--out",
                              str(tmp_path / f"bad{trial}")], capture_output=True, text=True)
        assert bad.returncode == 2 and message in bad.stderr and bad.stderr.count("\n") == 1
        assert not (tmp_path / f"bad{trial}").exists()  # nothing half-written
    not_a_study = subprocess.run([ARCHSEARCH, "export", str(tmp_path), "--trial", "0", "--out", str(tmp_path / "x")],
                                 capture_output=True, text=True)
    assert not_a_study.returncode == 2 and "not a study run directory" in not_a_study.stderr
