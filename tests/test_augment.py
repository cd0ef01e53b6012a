"""Augmentation parameters: torchvision's crop sampler, seeded per sample, and exact replay."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import RandomResizedCrop

from archsearch.data.augment import AugmentConfig, _crop_box, replay, sample_params, sample_rng
from archsearch.data.pixels import to_tensor
from archsearch.errors import UserError
from reinforce_helpers import draw


class TorchDraws:
    """The draws torchvision's get_params makes, through the numpy Generator interface we use."""

    def uniform(self, low, high):
        return torch.empty(1).uniform_(low, high).item()

    def integers(self, low, high):
        return torch.randint(low, high, size=(1,)).item()


@pytest.mark.parametrize("config", [AugmentConfig(), AugmentConfig(scale=(0.08, 1.0)),
                                    AugmentConfig(scale=(0.9, 1.0), ratio=(2.0, 3.0))])
def test_crop_boxes_follow_torchvision_random_resized_crop(config):
    # (5, 100) with ratios (2, 3) never fits in 10 tries: torchvision's central-crop fallback.
    for width, height in [(40, 32), (32, 48), (5, 100)]:
        for seed in range(40):
            torch.manual_seed(seed)
            expected = RandomResizedCrop.get_params(torch.zeros(3, height, width), list(config.scale),
                                                    list(config.ratio))
            torch.manual_seed(seed)
            assert _crop_box(TorchDraws(), width, height, config) == tuple(expected)


def test_params_depend_on_seed_and_index_only():
    config = AugmentConfig(flip=0.5)
    first = sample_params(sample_rng(7, 123), 40, 32, config, 6)
    assert first.shape == (6, 5) and first.dtype == np.float32
    np.testing.assert_array_equal(first, sample_params(sample_rng(7, 123), 40, 32, config, 6))
    assert not np.array_equal(first, sample_params(sample_rng(7, 124), 40, 32, config, 6))
    assert not np.array_equal(first, sample_params(sample_rng(8, 123), 40, 32, config, 6))
    top, left, height, width, flip = first.T
    assert (top >= 0).all() and (left >= 0).all() and (top + height <= 32).all() and (left + width <= 40).all()
    area = height * width / (40 * 32)
    assert (area > 0.5 - 0.05).all() and (area <= 1.0).all()
    assert set(flip.tolist()) <= {0.0, 1.0}


def test_flip_probability_zero_and_one():
    rng = sample_rng(0, 0)
    assert (sample_params(rng, 40, 32, AugmentConfig(), 50)[:, 4] == 0).all()
    assert (sample_params(rng, 40, 32, AugmentConfig(flip=1.0), 50)[:, 4] == 1).all()


def test_replay_is_bit_identical_and_in_range():
    image, _ = draw(3)
    params = sample_params(sample_rng(0, 3), *image.size, AugmentConfig(flip=0.5), 8)
    for row in params:
        view = replay(image, row, 24)
        assert view.shape == (3, 24, 24) and view.dtype == torch.float32
        assert 0 <= view.min() and view.max() <= 1
        assert torch.equal(view, replay(image, row.copy(), 24))
        # Same crop unflipped, then mirrored: exactly the flipped view.
        unflipped = replay(image, np.concatenate([row[:4], [1.0 - row[4]]]), 24)
        assert torch.equal(view, unflipped.flip(-1))
    assert not torch.equal(replay(image, params[0], 24), replay(image, params[1], 24))


def test_replay_of_the_whole_image_at_its_size_is_the_image():
    image, _ = draw(2)  # 36 x 36
    whole = np.array([0, 0, 36, 36, 0], dtype=np.float32)
    assert torch.equal(replay(image, whole, 36), to_tensor(image))


def test_replay_crops_the_stated_box():
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[5:15, 10:20] = (255, 0, 0)
    view = replay(Image.fromarray(pixels), np.array([5, 10, 10, 10, 0], dtype=np.float32), 10)
    assert torch.equal(view, torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 10, 10))


def test_bad_params_and_configs_are_user_errors():
    image, _ = draw(0)  # 40 x 32
    with pytest.raises(UserError, match="does not fit a 40x32 image"):
        replay(image, np.array([0, 0, 33, 10, 0], dtype=np.float32), 16)
    with pytest.raises(UserError, match="5 finite numbers"):
        replay(image, np.array([0, 0, 10, 10], dtype=np.float32), 16)
    with pytest.raises(UserError, match="augment.scale"):
        AugmentConfig(scale=(0.5, 1.5))
    with pytest.raises(UserError, match="augment.flip"):
        AugmentConfig(flip=2.0)
    with pytest.raises(UserError, match="manifest.json: augment: augment.ratio"):
        AugmentConfig.from_dict({"scale": [0.5, 1], "ratio": [2, 1], "flip": 0}, "manifest.json: augment")
    with pytest.raises(UserError, match="exactly scale, ratio and flip"):
        AugmentConfig.from_dict({"scale": [0.5, 1]})
    config = AugmentConfig(scale=(0.25, 0.75), flip=0.5)
    assert AugmentConfig.from_dict(config.to_dict()) == config
