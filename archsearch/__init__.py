"""archsearch: neural-architecture search for CLIP-style image-text models."""

__version__ = "0.1.0"

# Exported image towers become timm models (`archsearch_<hash>`) once timm is imported, so that
# `open_clip.create_model` builds exported configs; see archsearch/export/timm_hook.py.
from archsearch.export.timm_hook import install as _install_timm_hook  # noqa: E402

_install_timm_hook()
