"""Proxy room: the cache of proxy scores a later study reads instead of training again."""

import json

import pytest

from archsearch.errors import UserError
from archsearch.proxy import score_cache as cache
from archsearch.proxy.score_cache import ProxyResultCache, proxy_key
from archsearch.proxy.recipe import load_recipe
from archsearch.spec import get_preset

MANIFEST = {"settings": {"teachers": [{"id": "archsearch:t0:abc"}]}, "created": "2026-11-24T10:00:00"}


@pytest.fixture
def recipe():
    return load_recipe("cpu-tiny")


def _with(recipe, **changes):
    data = recipe.to_dict()
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = data
        for part in path:
            node = node[part]
        node[last] = value
    return type(recipe).model_validate(data)


def test_the_key_is_stable_and_depends_on_the_proxy_not_the_full_size_spec(recipe):
    s0 = get_preset("mobileclip_s0")
    assert proxy_key(s0, recipe, MANIFEST) == proxy_key(s0, recipe, json.loads(json.dumps(MANIFEST)))
    # the recipe trains every spec at 64 px: full-size resolution does not reach the proxy
    assert proxy_key(s0.model_copy(update={"resolution": 224}), recipe, MANIFEST) == proxy_key(s0, recipe, MANIFEST)
    assert proxy_key(get_preset("mobileclip_s1"), recipe, MANIFEST) != proxy_key(s0, recipe, MANIFEST)


def test_every_determinant_of_the_score_changes_the_key(recipe, monkeypatch):
    s0 = get_preset("mobileclip_s0")
    base = proxy_key(s0, recipe, MANIFEST)
    assert proxy_key(s0, _with(recipe, **{"name": "renamed", "description": "same settings"}), MANIFEST) == base
    for change in ({"train.steps": 81}, {"seed": 1}, {"loss.kd_lambda": 0.5}, {"eval.classify": 640},
                   {"train.threads": 2}, {"scale.resolution": 32}):
        assert proxy_key(s0, _with(recipe, **change), MANIFEST) != base, change
    assert proxy_key(s0, recipe, {**MANIFEST, "created": "2026-11-25T10:00:00"}) != base  # a rebuilt store
    assert proxy_key(s0, recipe, None) != base
    monkeypatch.setattr(cache, "training_code_digest", lambda: "edited")
    assert proxy_key(s0, recipe, MANIFEST) != base


def test_the_code_digest_covers_the_training_rooms_and_nothing_else(tmp_path, monkeypatch):
    for room in ("models", "proxy", "search"):
        (tmp_path / room).mkdir()
        (tmp_path / room / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(cache, "PACKAGE", tmp_path)

    def digest():
        cache.training_code_digest.cache_clear()
        return cache.training_code_digest()

    first = digest()
    (tmp_path / "search" / "a.py").write_text("x = 2\n")  # the search room does not train
    assert digest() == first
    (tmp_path / "models" / "a.py").write_text("x = 2\n")
    assert digest() != first
    cache.training_code_digest.cache_clear()


def test_an_entry_round_trips_and_a_foreign_file_is_named(tmp_path):
    store = ProxyResultCache(tmp_path / "proxy_results")
    assert store.get("k1") is None
    result = {"zeroshot_top1": 12.5, "train_seconds": 61.0, "steps": 80, "recipe": "cpu-tiny"}
    path = store.put("k1", result, {"study": "s", "trial": 3, "date": "2026-11-24 10:00"})
    assert store.get("k1") == {"result": result, "source": {"study": "s", "trial": 3, "date": "2026-11-24 10:00"}}
    assert [p.name for p in path.parent.iterdir()] == ["k1.json"]  # no temporary file left behind
    path.write_text('{"zeroshot_top1": 12.5}')
    with pytest.raises(UserError, match=r"k1\.json: not a proxy result.*delete it"):
        store.get("k1")
