"""Fake label maps of the finetuning step: seen:unseen ratio, patch layout, PixelCNN mixed patches, bad input."""
from __future__ import annotations

import pytest
import torch

from zegcag.modeling.cagnet import FakeLabelSampler, PixelCNN
from zegcag.modeling.cagnet.fake_labels import count_classes, patch_centres, tile_patches

SEEN, UNSEEN = list(range(0, 16)), [16, 17, 18, 19, 20]


@pytest.mark.parametrize("ratio,unseen_fraction", [((1, 1), 0.5), ((3, 1), 0.25), ((1, 4), 0.8), ((1, 0), 0.0)])
def test_pixel_maps_honour_the_seen_unseen_ratio(ratio, unseen_fraction):
    sampler = FakeLabelSampler(SEEN, UNSEEN, 21, seen_unseen_ratio=ratio, map_size=10)
    labels, loss_labels = sampler.sample(3, generator=torch.Generator().manual_seed(0))
    assert labels.shape == (3, 10, 10) and torch.equal(labels, loss_labels)
    unseen = torch.isin(labels, torch.tensor(UNSEEN))
    assert unseen.sum().item() == round(300 * unseen_fraction)
    assert torch.isin(labels, torch.arange(21)).all()
    if 0 < unseen_fraction:
        assert set(labels[unseen].tolist()) == set(UNSEEN)  # every unseen class drawn (300 pixels)


def test_pixel_maps_are_shuffled():
    sampler = FakeLabelSampler(SEEN, UNSEEN, 21, map_size=10)
    labels, _ = sampler.sample(1, generator=torch.Generator().manual_seed(0))
    unseen_rows = torch.isin(labels[0], torch.tensor(UNSEEN)).sum(1)
    assert (unseen_rows > 0).sum() > 5  # not a block of unseen rows followed by seen ones


def test_tiling_and_patch_centres():
    patches = torch.arange(8).view(8, 1, 1).expand(-1, 3, 3)
    maps = tile_patches(patches, grid=2)
    assert maps.shape == (2, 6, 6)
    assert maps[0, :3, 3:].unique().tolist() == [1] and maps[1, 3:, :3].unique().tolist() == [6]
    centres = patch_centres(2, grid=2, k=3)
    assert centres.sum() == 8 and centres[0, 1, 1] and centres[0, 4, 4] and not centres[0, 0, 0]


def constant_pixelcnn(embed_dim: int, num_classes: int, favourite: int) -> PixelCNN:
    """A PixelCNN that always samples ``favourite``."""
    net = PixelCNN(embed_dim, num_classes, channels=4)
    head = net.layers[-1]
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.constant_(head.bias, -30.0)
    head.bias.data[favourite] = 30.0
    return net


def test_patch_maps_mix_pure_and_pixelcnn_patches():
    emb = torch.nn.functional.normalize(torch.randn(21, 8), dim=1)
    sampler = FakeLabelSampler(SEEN, UNSEEN, 21, map_size=12, patch_size=3, fill_unseen=5, pure_to_mixed=4.0)
    labels, loss_labels = sampler.sample(5, constant_pixelcnn(8, 21, favourite=3), emb,
                                         generator=torch.Generator().manual_seed(0))
    assert labels.shape == (5, 12, 12)
    centres = patch_centres(5, 4, 3)
    assert (loss_labels != 255).sum() == 5 * 16 and torch.equal(loss_labels[centres], labels[centres])
    patches = labels.view(5, 4, 3, 4, 3).permute(0, 1, 3, 2, 4).reshape(-1, 3, 3).flatten(1)
    mixed = patches[count_classes(patches.view(-1, 3, 3)) > 1]
    assert len(mixed) == 16  # 80 patches, 4 pure : 1 mixed
    # a mixed patch: 5 raster pixels of one unseen class, then what the PixelCNN sampled
    assert torch.isin(mixed[:, 0], torch.tensor(UNSEEN)).all()
    assert (mixed[:, :5] == mixed[:, :1]).all() and (mixed[:, 5:] == 3).all()
    pure_unseen = torch.isin(patches[count_classes(patches.view(-1, 3, 3)) == 1][:, 0], torch.tensor(UNSEEN))
    assert pure_unseen.sum() == 32  # the 64 pure patches follow the 1:1 ratio


def test_mixed_patches_from_an_untrained_pixelcnn_respect_max_classes():
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(21, 8), dim=1)
    pixelcnn = PixelCNN(8, 21, channels=8)
    sampler = FakeLabelSampler(SEEN, UNSEEN, 21, map_size=9, patch_size=3, fill_unseen=5, max_classes=3)
    mixed = sampler.sample_mixed(40, pixelcnn, emb, generator=torch.Generator().manual_seed(0))
    assert mixed.shape == (40, 3, 3) and count_classes(mixed).max() <= 3
    prefix = mixed.flatten(1)[:, :5]
    assert (prefix == prefix[:, :1]).all() and torch.isin(prefix[:, 0], torch.tensor(UNSEEN)).all()
    assert pixelcnn.training  # restored after sampling


def test_count_classes():
    p = torch.tensor([[[1, 1, 1], [1, 1, 1], [1, 1, 1]], [[1, 2, 3], [4, 1, 1], [1, 1, 1]]])
    assert count_classes(p).tolist() == [1, 4]


@pytest.mark.parametrize("seen,unseen,match", [
    (SEEN, [], "at least one unseen class"),
    ([], UNSEEN, "at least one seen class"),
    (SEEN + [16], UNSEEN, r"classes \[16\] are both seen and unseen"),
    (SEEN, [16, 30], r"class ids \[30\] are outside"),
])
def test_bad_class_lists_are_clear_errors(seen, unseen, match):
    with pytest.raises(ValueError, match=match):
        FakeLabelSampler(seen, unseen, 21)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="FAKE_SEEN_UNSEEN_RATIO"):
        FakeLabelSampler(SEEN, UNSEEN, 21, seen_unseen_ratio=(0, 0))
    with pytest.raises(ValueError, match="multiple of MODEL.CAGNET.PATCH_SIZE"):
        FakeLabelSampler(SEEN, UNSEEN, 21, map_size=10, patch_size=3)
    with pytest.raises(ValueError, match="FILL_UNSEEN"):
        FakeLabelSampler(SEEN, UNSEEN, 21, map_size=9, patch_size=3, fill_unseen=9)
    with pytest.raises(ValueError, match="need the PixelCNN"):
        FakeLabelSampler(SEEN, UNSEEN, 21, map_size=9, patch_size=3).sample(1)
