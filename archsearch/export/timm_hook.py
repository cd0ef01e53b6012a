"""Register archsearch image towers with timm as soon as timm exists, without importing it.

`import archsearch` must make exported towers known to `timm.create_model` (which is how
`open_clip.create_model` builds a `timm_model_name` tower), but importing timm costs seconds that
every CLI call would pay. So: if timm is already imported, register now; otherwise put a one-shot
finder on `sys.meta_path` that lets timm import normally and registers right after its
``__init__`` has run, whoever imports it (open_clip, timm itself, a user's script). Standard
library only; a registration error is a warning, never a failed `import timm`.
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings

_TARGET = "timm"


def _register() -> None:
    try:
        from archsearch.export.timm_registry import register_known

        register_known()
    except Exception as exc:  # never break `import timm` for a registry problem
        warnings.warn(f"archsearch: timm models not registered: {exc}", stacklevel=2)


class _RegisterAfterExec(importlib.abc.Loader):
    """Wraps timm's own loader; once timm's module has executed, hands the original loader back."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        _uninstall()
        _register()

    def __getattr__(self, name):
        return getattr(self.loader, name)


class TimmImportHook(importlib.abc.MetaPathFinder):
    """Finds `timm` with the other finders and wraps its loader. It stays installed until timm has
    actually been executed: `importlib.util.find_spec("timm")` (availability checks, as Lightning
    makes) asks the finders too, without importing anything."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        for finder in list(sys.meta_path):
            if isinstance(finder, TimmImportHook):
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisterAfterExec(spec.loader)
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, TimmImportHook)]


def install() -> None:
    """Register now if timm is imported, else once it is (idempotent)."""
    if _TARGET in sys.modules:
        _register()
    elif not any(isinstance(f, TimmImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, TimmImportHook())
