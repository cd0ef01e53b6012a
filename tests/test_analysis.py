"""The analysis room: the front and its hypervolume (checked against Optuna's own), the plots and
their labels, and `archsearch pareto` run as a user runs it, on hand-built studies."""

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume
from rich.console import Console

from analysis_helpers import (KNOWN_FRONT, KNOWN_HYPERVOLUME, KNOWN_REFERENCE, build_study, crowded_rows,
                              trial_set)
from archsearch.analysis.colours import colouring
from archsearch.analysis.fidelity import load_fidelity
from archsearch.analysis.front import Point
from archsearch.analysis.hypervolume import hypervolume, reference_point
from archsearch.analysis.labels import overlapping_pairs, text_bbox
from archsearch.analysis.mixers import mixer_breakdown
from archsearch.analysis.plots import pareto_figure, save_png
from archsearch.analysis.report import build_report
from archsearch.analysis.open_study import open_source
from archsearch.analysis.front_rows import front_rows, front_table
from archsearch.analysis.trial_sets import TrialSet
from archsearch.errors import UserError
from archsearch.spec.presets import paper_name, preset_names

ARCHSEARCH = shutil.which("archsearch", path=str(Path(sys.executable).parent)) or "archsearch"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def run(*args, cwd):
    return subprocess.run([ARCHSEARCH, "pareto", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> Path:
    """runs/known/: a study whose front (0, 3, 1, 7) and hypervolume (830) are worked out by hand."""
    return build_study(tmp_path_factory.mktemp("runs") / "known", "known")


# --- the front, the hypervolume and its reference point ----------------------------------------

def test_known_front_and_what_is_left_off_it(known):
    trials = TrialSet.of_source(open_source(known))
    assert [p.number for p in trials.front] == KNOWN_FRONT
    assert [t.number for t in trials.infeasible] == [4] and [t.number for t in trials.failed] == [5]
    assert trials.counts() == {"total": 9, "complete": 7, "pruned": 1, "fail": 1, "scored": 6, "infeasible": 1,
                               "front": 4}


def test_hypervolume_matches_optunas_own(known):
    study = open_source(known).study
    trials = TrialSet.of_source(open_source(known))
    reference = reference_point(trials.scored)
    assert reference.latency_ms == pytest.approx(KNOWN_REFERENCE) and reference.zeroshot_top1 == 0
    assert hypervolume(trials.front, reference) == pytest.approx(KNOWN_HYPERVOLUME)
    # Optuna's history plot computes it over the study in the study's directions (maximise, minimise)
    history = optuna.visualization.plot_hypervolume_history(study, reference_point=[0.0, KNOWN_REFERENCE])
    assert history.data[0].y[-1] == pytest.approx(KNOWN_HYPERVOLUME)
    # ... and its hypervolume module in minimisation form, over every scored point
    losses = np.array([[-p.zeroshot_top1, p.latency_ms] for p in trials.scored])
    assert compute_hypervolume(losses, np.array([0.0, KNOWN_REFERENCE])) == pytest.approx(KNOWN_HYPERVOLUME)


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches_optuna_on_random_points_and_a_cutting_reference(seed):
    rng = random.Random(seed)
    points = [Point(i, rng.uniform(1, 100), rng.uniform(0, 60), None, None) for i in range(40)]
    for latency in (None, 50.0):  # 50 ms leaves the slower points out, as Optuna does
        reference = reference_point(points, latency)
        inside = [p for p in points if p.latency_ms <= reference.latency_ms]
        expected = compute_hypervolume(np.array([[-p.zeroshot_top1, p.latency_ms] for p in inside]),
                                       np.array([0.0, reference.latency_ms]))
        assert hypervolume(points, reference) == pytest.approx(expected)


def test_reference_point_rules():
    points = [Point(0, 4.0, 30.0, None, None), Point(1, 8.0, 40.0, None, None)]
    assert str(reference_point(points)) == "zero-shot top-1 0 %, latency 8.8 ms (1.1 x the slowest scored trial)"
    assert reference_point(points, 20.0).to_dict() == {"zeroshot_top1": 0.0, "latency_ms": 20.0, "rule": "given"}
    with pytest.raises(UserError, match="--ref-latency-ms: -1.0 is not a positive latency"):
        reference_point(points, -1.0)


def test_vs_shares_one_reference_point(known, tmp_path):
    slower = [(None, 40.0, 55.0, "vitamin", "MAA|AA", "ok"), (None, 4.0, 20.0, "mci", "RRRA|R", "ok")]
    other = build_study(tmp_path / "other", "other", slower)
    report = build_report(open_source(known), open_source(other))
    assert report.reference.latency_ms == pytest.approx(44.0)
    # (44-2)*30 + (44-6)*10 + (44-10)*5 + (44-20)*5, and (44-4)*20 + (44-40)*35
    assert report.main.hypervolume == pytest.approx(1260 + 380 + 170 + 120)
    assert report.vs.hypervolume == pytest.approx(800 + 140)


# --- the table, colours and mixers ---------------------------------------------------------------

def test_presets_have_their_papers_names():
    assert [paper_name(n) for n in preset_names()] == [
        "MobileCLIP-S0", "MobileCLIP-S1", "MobileCLIP-S2", "MobileCLIP-B", "MobileCLIP2-S3", "MobileCLIP2-S4",
        "ViTamin-S", "ViTamin-B", "ViTamin-L", "ViTamin-XL"]


def test_front_table_fits_110_columns(known):
    trials = TrialSet.of_source(open_source(known))
    rows = front_rows(trials.front)
    assert rows[0]["preset"] == "mobileclip_s0" and rows[0]["paper_name"] == "MobileCLIP-S0"
    console = Console(width=110, record=True, file=open("/dev/null", "w"))
    console.print(front_table(rows, "front"))
    text = console.export_text()
    assert "MobileCLIP-S0" in text and "ViTamin-S" in text and "4+21" in text and "…" not in text


def test_colours_by_mix_then_by_family_when_too_many():
    trials = trial_set("mixes", crowded_rows(count=20))
    few = colouring([p.trial for p in trials.scored])
    assert few.title == "family, mixers image|text" and "mci RA|RA" in few.colours
    mixes = ["R|R", "A|A", "M|M", "RA|R", "MA|A", "RM|M", "R|A", "A|R", "M|R", "RMA|RA", "RA|RA", "MA|R"]
    many = [(None, 1.0 + i, 30.0, f"family{i % 3}", mix, "ok") for i, mix in enumerate(mixes)]
    by_family = colouring([p.trial for p in trial_set("many", many).scored])
    assert by_family.title == "family" and set(by_family.colours) == {"family0", "family1", "family2"}


def test_mixer_breakdown_counts_stages_and_the_text_mix(known):
    groups = {(g.part, g.mixer): g for g in mixer_breakdown(TrialSet.of_source(open_source(known)))}
    assert groups["stage 4", "attention"].trials == 2 and groups["stage 4", "attention"].on_front == 2
    assert groups["stage 1", "MBConv"].trials == 3 and groups["stage 1", "MBConv"].best_top1 == 50.0
    assert groups["text", "RepMixer+attention"].trials == 2 and groups["text", "RepMixer"].on_front == 0
    assert list(groups)[-1][0] == "text"


# --- the PNG ----------------------------------------------------------------------------------

def test_png_has_title_units_legend_and_labels_that_do_not_overlap(tmp_path):
    trials = trial_set("crowded", crowded_rows())
    reference = reference_point(trials.scored)
    fig, placement = pareto_figure(trials, reference, hypervolume(trials.front, reference), "subtitle")
    path = save_png(fig, tmp_path / "pareto.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 50_000

    ax = fig.axes[0]
    assert fig._suptitle.get_text() == "Pareto front of crowded: zero-shot top-1 vs latency"
    assert fig._suptitle.get_fontsize() >= 12
    assert ax.get_xlabel() == "latency, image + text (ms)" and ax.get_ylabel() == "proxy zero-shot top-1 (%)"
    entries = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "preset (paper name)" in entries and any(e.startswith("Pareto front of crowded") for e in entries)
    assert any(e.startswith("broke a constraint") for e in entries) and any(e.startswith("failed") for e in entries)

    renderer = fig.canvas.get_renderer()
    texts = [a.get_text() for a in placement.annotations]
    assert {paper_name(n) for n in preset_names()} <= set(texts)  # every preset named, none dropped
    boxes = [text_bbox(a, renderer) for a in placement.annotations]
    assert overlapping_pairs(boxes) == []
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    legend = ax.get_legend().get_window_extent(renderer)
    assert not any(legend.overlaps(b) for b in boxes)


# --- archsearch pareto, as a user runs it --------------------------------------------------------

def test_pareto_json_plots_and_files(known, tmp_path):
    result = run(str(known), "--json", "--out", str(tmp_path / "plots"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # one JSON object
    assert [t["number"] for t in data["front"]] == KNOWN_FRONT
    assert [t["preset"] for t in data["front"]] == ["mobileclip_s0", None, "vitamin_s", None]
    assert [(t["latency_ms"], t["zeroshot_top1"]) for t in data["front"]] == [(2, 30), (6, 40), (10, 45), (20, 50)]
    assert data["front"][2]["paper_name"] == "ViTamin-S" and data["front"][0]["i2t_r1"] == 15.0
    assert data["hypervolume"] == pytest.approx(KNOWN_HYPERVOLUME)
    assert data["reference_point"]["zeroshot_top1"] == 0 and data["reference_point"]["latency_ms"] == pytest.approx(22)
    assert "1.1 x the slowest" in data["reference_point"]["rule"]
    png, html = Path(data["plots"]["png"]), Path(data["plots"]["html"])
    assert png.parent == tmp_path / "plots" and png.stat().st_size > 30_000
    page = html.read_text()
    assert len(page) > 1_000_000 and "plotly" in page and "MobileCLIP-S0" in page and "trial #7" in page
    assert json.loads(Path(data["plots"]["json"]).read_text())["front"] == data["front"]


def test_pareto_by_storage_with_vs_prints_both_fronts(known, tmp_path):
    other = build_study(tmp_path / "other", "other", [(None, 40.0, 55.0, "vitamin", "MAA|AA", "ok")])
    url = f"sqlite:///{known / 'study.db'}"
    result = run("--storage", url, "--study", "known", "--vs", str(other), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Pareto front of known: 4 of 6 scored trials" in result.stdout
    assert "Pareto front of other: 1 of 1 scored trials" in result.stdout
    assert "reference point: zero-shot top-1 0 %, latency 44 ms" in result.stdout
    assert (tmp_path / "runs" / "known" / "pareto" / "pareto.png").is_file()  # runs/<study>/pareto by default


@pytest.fixture
def empty(tmp_path) -> Path:
    return build_study(tmp_path / "empty", "empty", [(None, 3.0, None, "mci", "R|R", "failed")])


@pytest.mark.parametrize("args, message", [
    (lambda tmp, _: [str(tmp)], "not a study run directory (no study.json)"),
    (lambda _, empty: [str(empty)], "study 'empty' in sqlite:///"),
    (lambda _, __: ["--storage", "postgresql+psycopg://u:pw@127.0.0.1:9/db", "--study", "s"],
     "--storage: cannot open postgresql+psycopg://u:***@127.0.0.1:9/db"),
    (lambda tmp, _: ["--storage", f"sqlite:///{tmp}/none.db", "--study", "s"], "names no file"),
    (lambda tmp, empty: [str(empty), "--study", "x"], "give either RUN_DIR or --storage URL --study NAME"),
    (lambda _, __: [], "name the study"),
], ids=["not-a-study", "no-completed-trial", "unreachable", "missing-sqlite", "both-ways", "neither-way"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, empty, args, message):
    result = run(*args(tmp_path, empty), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "none.db").exists()  # a read-only command creates no storage


def test_no_completed_trial_names_the_states(empty):
    with pytest.raises(UserError, match=r"no completed trial yet \(1 fail\); run `archsearch sweep`"):
        TrialSet.of_source(open_source(empty))


def test_only_infeasible_trials_is_refused(tmp_path):
    run_dir = build_study(tmp_path / "infeasible", "infeasible", [(None, 3.0, 0.0, "mci", "R|R", "infeasible")])
    with pytest.raises(UserError, match=r"no scored trial \(completed, feasible and trained\)"):
        build_report(open_source(run_dir))


# --- the fidelity results -------------------------------------------------------------------------

def test_fidelity_file_errors_name_the_file_and_the_producer(tmp_path):
    with pytest.raises(UserError, match=r"no proxy-fidelity results there; produce them with "
                                        r"`python -m benchmarks.proxy_scores fidelity`"):
        load_fidelity(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"summary": {"architectures": ["a", "b"]}}))  # the first protocol's format
    with pytest.raises(UserError, match=r"bad.json: not a result of .*: meta: Field required; architectures: "):
        load_fidelity(bad)
    bad.write_text("[]")
    with pytest.raises(UserError, match=r"bad.json: not a result of .*a JSON object is expected"):
        load_fidelity(bad)
    bad.write_text("{")
    with pytest.raises(UserError, match=r"bad.json: not JSON"):
        load_fidelity(bad)
