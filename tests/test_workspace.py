"""One workspace root (archsearch/workspace.py): runs/ in a recipe means the root, wherever it is."""

from pathlib import Path

from archsearch import workspace


def test_the_root_follows_the_environment_and_moves_runs_paths_only(monkeypatch, tmp_path):
    monkeypatch.delenv(workspace.ENV, raising=False)
    assert workspace.root() == Path("runs") and workspace.resolve("runs/teachers") == Path("runs/teachers")
    monkeypatch.setenv(workspace.ENV, str(tmp_path))
    assert workspace.resolve("runs/stores/embedded") == tmp_path / "stores" / "embedded"
    assert workspace.resolve("runs") == tmp_path and workspace.under("cache") == tmp_path / "cache"
    assert workspace.resolve("data/runs/x") == Path("data/runs/x")  # only a leading runs/ is the workspace
    assert workspace.resolve("/abs/runs/x") == Path("/abs/runs/x")
    assert workspace.use(None) == tmp_path  # no option: the environment's root stays
    assert workspace.use(tmp_path / "other") == tmp_path / "other"


def test_teachers_and_stores_of_a_recipe_land_under_the_root_with_the_same_names(monkeypatch, tmp_path):
    from archsearch.proxy.assets import store_path
    from archsearch.proxy.recipe import load_recipe
    from archsearch.proxy.teach import teacher_dirs

    recipe = load_recipe("cpu-tiny")
    monkeypatch.delenv(workspace.ENV, raising=False)
    here = [p.name for p in teacher_dirs(recipe)]
    monkeypatch.setenv(workspace.ENV, str(tmp_path))
    moved = teacher_dirs(recipe)
    assert [p.name for p in moved] == here and all(p.parent == tmp_path / "teachers" for p in moved)
    assert store_path(recipe, ["t0", "t1"]).parent == tmp_path / "stores" / "embedded"
