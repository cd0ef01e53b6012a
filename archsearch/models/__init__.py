"""Models built from ArchSpecs: timm/open_clip blocks composed into image and text towers."""

from archsearch.models.clip import CLIP, build_clip
from archsearch.models.image import ImageTower, build_image_tower
from archsearch.models.reparam import reparameterize, unfolded_blocks
from archsearch.models.text import TextTower
from archsearch.models.timm_weights import load_timm_image_weights

__all__ = [
    "CLIP", "build_clip", "ImageTower", "build_image_tower", "TextTower", "reparameterize", "unfolded_blocks",
    "load_timm_image_weights",
]
