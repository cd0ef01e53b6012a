"""The notebooks: run top to bottom (nbclient) on a small study and small results, as `jupyter`
would run them from notebooks/; the ones committed with outputs must match the committed results."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from analysis_helpers import build_study

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
NAMES = ("pareto", "proxy_fidelity", "findings")


# Committed with outputs, from the committed results (pareto.ipynb from the committed reference
# study, benchmarks/results/default_study/: the default sweep of a fresh 2-core clone).
EXECUTED = ("findings", "proxy_fidelity", "pareto")


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_valid_and_read_their_parameters_first(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert set(nb.metadata) <= {"kernelspec", "language_info"}  # no widget state or other leftovers
    assert "os.environ.get(\"ARCHSEARCH_" in code[0].source  # the first code cell reads the parameters
    if name not in EXECUTED:
        assert all(c.outputs == [] and c.execution_count is None for c in code), \
            f"{name}.ipynb has outputs: clear them before committing"


def _visible(nb) -> list[list]:
    """What a reader sees of each code cell's outputs: text as printed, figures by kind (the PNG
    bytes differ between matplotlib builds)."""
    def one(o):
        if o.output_type == "stream":
            return ("stream", o.name, o.text)
        return (o.output_type, o.get("data", {}).get("text/plain"), sorted(o.get("data", {})))
    return [[one(o) for o in c.outputs] for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", EXECUTED)
def test_committed_outputs_are_what_the_committed_results_give(name, monkeypatch):
    """Stale outputs fail: the notebook is re-run on the committed results and compared."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("execute_notebooks", NOTEBOOKS / "execute.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    for var in ("ARCHSEARCH_FINDINGS_DIR", "ARCHSEARCH_FIDELITY_JSON", "ARCHSEARCH_RUN_DIR"):
        monkeypatch.delenv(var, raising=False)
    committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert any(c.outputs for c in committed.cells if c.cell_type == "code"), \
        f"{name}.ipynb is committed without outputs: run python notebooks/execute.py {name}"
    assert _visible(runner.execute(name)) == _visible(committed), \
        f"{name}.ipynb's outputs are stale: run python notebooks/execute.py {name} and commit it"


def execute(name: str) -> list:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"], "warnings leaked"
    return outputs


def _kinds(outputs) -> list[str]:
    return [kind for o in outputs for kind in o.get("data", {})]


def test_pareto_notebook_runs_on_a_small_study(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_RUN_DIR", str(build_study(tmp_path / "known", "known")))
    outputs = execute("pareto")
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "hypervolume 830 % x ms" in printed and "stage 4  attention" in printed
    assert _kinds(outputs).count("image/png") == 3  # Pareto, cost, mixers
    assert "application/vnd.plotly.v1+json" in _kinds(outputs)  # Optuna's importance plot


def fidelity_result(path: Path) -> Path:
    """A small result in the format `benchmarks/proxy_scores.py fidelity` writes (proxy_fidelity.summarise)."""
    names = ["mobileclip_s0", "mobileclip_s1", "mobileclip_b", "vitamin_s", "hybrid-s0-0", "hybrid-s0-3"]
    short = [[20, 21], [25, 24], [31, 30], [28, 29], [22, 23], [24, 22]]
    reference = [[30, 31], [36, 37], [45, 44], [40, 41], [31, 33], [None, None]]
    table = [{"arch": n, "kind": "preset" if i < 4 else "vit", "layout": "R2 @64 | text R x64", "params_m": 10.0 + i,
              "gmacs": 1.0 + i, "short": s, "reference": r, "reference_mean": None if r[0] is None else sum(r) / 2,
              "multiple_of_chance": min(s) / (100 / 64)}
             for i, (n, s, r) in enumerate(zip(names, short, reference))]
    targets = {"tau_short_seeds": {"target": ">= 0.8", "value": 0.733, "met": False},
               "tau_short_reference": {"target": ">= 0.8", "value": 0.8, "met": None}}
    path.write_text(json.dumps({
        "meta": {"date": "2026-01-02", "command": "python benchmarks/proxy_scores.py fidelity",
                 "machine": {"cpu": "test", "threads": 1, "libraries": {"torch": "2.14.1"}}},
        "architectures": names, "table": table, "tau_short_seeds": 0.733, "tau_reference_seeds": 0.9,
        "tau_short_reference": 0.8, "tau_short_reference_ci": [0.2, 1.0], "tau_params": 0.6, "tau_gmacs": 0.6,
        "reference_complete": 5, "min_multiple_of_chance": 12.8, "preset_order_swaps_total": {"seed0": 1.0},
        "median_trial_seconds": 70.0, "teachers_top1": [86.8, 94.4], "recipe": {"name": "cpu-tiny"},
        "reference_recipe": {"name": "cpu-small"}, "targets": targets}, indent=2))
    return path


def test_proxy_fidelity_notebook_runs_on_a_small_result(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_FIDELITY_JSON", str(fidelity_result(tmp_path / "proxy_fidelity.json")))
    outputs = execute("proxy_fidelity")
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "short recipe cpu-tiny, reference cpu-small, 6 architectures, reference run for 5" in printed
    assert "tau short seed 0 vs seed 1: 0.73" in printed
    assert "tau short vs reference: 0.80 [0.20, 1.00]; params 0.60, GMACs 0.60" in printed
    assert "tau_short_reference: 0.8 (target >= 0.8): not measured yet" in printed
    assert _kinds(outputs).count("image/png") == 1


def findings_results(directory: Path) -> Path:
    """Small results in the format the five `benchmarks/finding_*.py` write (`findings_common.write_finding`)."""
    seeds = lambda *v: {"mean": sum(v) / len(v), "sd": 0.5, "values": list(v)}  # noqa: E731
    ours = {n: {"image_ms": 10.0 * (i + 1), "text_ms": 5.0} for i, n in enumerate(
        ["mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b", "vitamin_s", "vitamin_b", "vitamin_l",
         "vitamin_xl"])}
    summaries = {
        "reinforcement": {"budget_steps": 80, "archs": {"mobileclip_s0": {
            "curves": {"reinforced": [[20, 4.0], [40, 6.0], [80, 9.0]], "plain": [[20, 3.0], [80, 7.0], [320, 10.0]]},
            "reinforced_at_budget": 9.0}}},
        "mlp_ratio": {"scores": {"ratio 3 (MCi)": seeds(9.0, 10.0, 11.0), "ratio 4": seeds(8.0, 9.0, 9.5)}},
        "text_encoder": {"scores": {"pure conv": seeds(6.0, 7.0), "hybrid (S0)": seeds(9.0, 9.5)},
                         "costs": {"pure conv": {"text_ms": 30.0}, "hybrid (S0)": {"text_ms": 40.0}}},
        "vitamin_hybrid": {"scores": {"ViTamin-S (hybrid)": seeds(12.0, 13.0), "ViT-S/16": seeds(10.0, 11.0)}},
        "latency_order": {"ours": ours,
                          "MobileCLIP": {"paper": {"mobileclip_s0": 3.1, "mobileclip_s1": 5.8, "mobileclip_s2": 6.9,
                                                   "mobileclip_b": 13.7}, "paper_unit": "paper ms", "spearman": 1.0},
                          "ViTamin": {"paper": {"vitamin_s": 5.5, "vitamin_b": 21.84, "vitamin_l": 72.6,
                                                "vitamin_xl": 125.3}, "paper_unit": "paper GMACs", "spearman": 1.0}},
    }
    for key, summary in summaries.items():
        (directory / f"finding_{key}.json").write_text(json.dumps({
            "finding": key, "title": f"title of {key}", "paper": "paper says", "seeds": 2,
            "reproduced": key != "mlp_ratio", "verdict": f"verdict of {key}", "tried": "t", "summary": summary,
            "meta": {"date": "2026-01-02", "command": f"python benchmarks/finding_{key}.py"}, "runs": []}))
    return directory


def test_findings_notebook_runs_on_small_results(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_FINDINGS_DIR", str(findings_results(tmp_path)))
    outputs = execute("findings")
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "title of mlp_ratio" in printed and "NOT reproduced" in printed
    assert all(f"verdict of {key}" in printed for key in
               ("reinforcement", "mlp_ratio", "text_encoder", "vitamin_hybrid", "latency_order"))
    assert _kinds(outputs).count("image/png") == 5
