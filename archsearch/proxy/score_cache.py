"""Proxy scores kept across studies, so a second sweep does not train the same proxy again.

A proxy run is deterministic on one machine and thread layout, so its score is a fact about
(proxy-size spec, recipe, reinforced store, device, training code). A study that meets a proxy
some earlier study trained (the presets, first of all) reads that score instead of spending
minutes to reproduce it. The key hashes everything that decides the result:

- the proxy-size spec, not the full one: full-size specs that scale down alike train alike;
- the recipe's settings (its name and description aside);
- the reinforced store's manifest: its teachers' checksums, settings and build;
- the device fingerprint (CPU, training threads, library versions);
- the source of archsearch's own training code (models, data, training, proxy, spec), so an edit misses.

Any change misses, so a stale score is never read. Entries are written whole (rename), so workers
sharing `runs/` can race on one without a torn file.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch

from archsearch.errors import UserError
from archsearch.files import write_json_atomic
from archsearch.environment import device_fingerprint
from archsearch.proxy.recipe import Recipe
from archsearch.proxy.scale import scale_down
from archsearch.proxy.training_data import json_digest
from archsearch.spec.arch import ArchSpec

PACKAGE = Path(__file__).resolve().parents[1]
TRAINING_CODE = ("data", "models", "proxy", "spec", "training")


@lru_cache(maxsize=1)
def training_code_digest() -> str:
    """sha256 over the source of every package that decides a proxy's score."""
    digest = hashlib.sha256()
    for path in sorted(p for room in TRAINING_CODE for p in (PACKAGE / room).rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def training_fingerprint(recipe: Recipe) -> dict:
    """The device a proxy of `recipe` trains on here, at the threads it trains with."""
    cuda = recipe.train.accelerator == "gpu" or (recipe.train.accelerator == "auto" and torch.cuda.is_available())
    return device_fingerprint("torch-cuda" if cuda else "torch-cpu", recipe.train.threads or torch.get_num_threads())


def proxy_key(spec: ArchSpec, recipe: Recipe, store_manifest: dict | None) -> str:
    """The cache key of training `spec`'s proxy under `recipe` on this device (see the module doc)."""
    settings = {k: v for k, v in recipe.to_dict().items() if k not in ("name", "description")}
    return json_digest({"proxy_arch": scale_down(spec, recipe.scale).to_dict(), "recipe": settings,
                 "store": store_manifest, "device": training_fingerprint(recipe)["id"],
                 "code": training_code_digest()})


class ProxyResultCache:
    """`<root>/<key>.json`: a proxy run's result and where it was trained."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
        except json.JSONDecodeError:
            entry = None
        if not (isinstance(entry, dict) and {"result", "source"} <= entry.keys()):
            raise UserError(f"{path}: not a proxy result archsearch wrote (expected the keys result and source); "
                            f"delete it and the proxy trains again")
        return entry

    def put(self, key: str, result: dict, source: dict) -> Path:
        path = self.path(key)
        return write_json_atomic(path, {"result": result, "source": source})
