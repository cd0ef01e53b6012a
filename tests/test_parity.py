"""Presets reproduce the published models: timm trunks tensor for tensor, paper parameter
tables, fvcore MACs, and open_clip's whole-model parameter counts."""

import pytest
import timm
import torch
from torch import nn

from archsearch.latency.cost import count_macs, count_params
from archsearch.models import build_image_tower, load_timm_image_weights, reparameterize
from archsearch.spec import get_preset, preset_names, timm_reference

LARGE = {"mobileclip2_s3", "mobileclip2_s4", "vitamin_l", "vitamin_xl"}
PRESETS = [pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n for n in preset_names()]

# Image tower with its projection, reparameterized, as the papers' tables count it (millions):
# MobileCLIP Table (S0-B) and ViTamin's table. The MobileCLIP2 towers have no such figure at hand;
# they are held to open_clip's MobileCLIP2-S3/S4 models in test_open_clip_parity.py instead.
PAPER_IMAGE_PARAMS_M = {
    "mobileclip_s0": 11.4, "mobileclip_s1": 21.5, "mobileclip_s2": 35.7, "mobileclip_b": 86.3,
    "vitamin_s": 22.0, "vitamin_b": 87.5, "vitamin_l": 333.3, "vitamin_xl": 436.1,
}


class _Trunk(nn.Module):
    """Our tower without its projection: the counterpart of a timm model with num_classes=0."""

    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def forward(self, x):
        return self.tower.forward_features(x)


@pytest.mark.parametrize("name", PRESETS)
def test_image_trunk_is_timms_reference(name):
    spec = get_preset(name)
    ours = build_image_tower(spec).eval()
    reference = timm.create_model(timm_reference(name), num_classes=0).eval()

    # 1. Exactly the reference's parameters, tensor for tensor.
    assert count_params(ours) - count_params(ours.proj) == count_params(reference)
    load_timm_image_weights(ours, reference.state_dict(), source=timm_reference(name))
    x = torch.randn(1, 3, spec.resolution, spec.resolution)
    with torch.no_grad():
        assert torch.equal(ours.forward_features(x), reference(x))

    # 2. fvcore MACs of the folded trunks: the issue asks for 1%; the same ops give the same count.
    assert count_macs(_Trunk(reparameterize(ours)), x) == count_macs(reparameterize(reference), x)

    # 3. With the projection and folded, the paper tables' figure (to their rounding).
    if name not in PAPER_IMAGE_PARAMS_M:
        return
    folded_params = count_params(reparameterize(ours))
    assert round(folded_params / 1e6, 1) == pytest.approx(PAPER_IMAGE_PARAMS_M[name], abs=0.051)
