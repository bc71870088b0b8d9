"""The demo picture: display scale, statistics, label placement, colours and legend layout."""
from __future__ import annotations

import numpy as np
import pytest

from zegcag.utils.visualization import class_colors, display_scale, draw_prediction, interior_point, label_statistics


@pytest.mark.parametrize("size, scale", [((32, 48), 8), ((64, 64), 4), ((100, 300), 3), ((300, 400), 1),
                                         ((10, 2000), 1), ((1, 1), 256)])
def test_display_scale(size, scale):
    assert display_scale(*size) == scale


def test_label_statistics():
    labels = np.array([[0, 0, 2, 2], [2, 2, 2, 9]])  # 9: low confidence with 3 classes
    confidence = np.array([[0.5, 0.7, 0.2, 0.4], [0.6, 0.8, 1.0, 0.1]])
    stats = label_statistics(labels, confidence, num_classes=3)
    assert [s["id"] for s in stats] == [2, 0]
    assert stats[0]["share"] == pytest.approx(5 / 8) and stats[1]["share"] == pytest.approx(2 / 8)
    assert stats[0]["mean_confidence"] == pytest.approx(0.6) and stats[1]["mean_confidence"] == pytest.approx(0.6)


def test_interior_point_of_a_ring_is_on_the_ring():
    yy, xx = np.mgrid[:41, :41]
    radius = np.hypot(yy - 20, xx - 20)
    ring = (radius > 10) & (radius < 18)
    x, y = interior_point(ring)
    assert ring[int(y), int(x)]  # the centroid (20, 20) is in the hole


def test_overlay_colours_legend_and_size():
    image = np.full((32, 48, 3), 128, np.uint8)
    labels = np.zeros((32, 48), np.int64)
    labels[:, 24:] = 1
    labels[:4, :4] = 3  # low confidence (K = 3)
    names = ["sky", "grass", "a class name far longer than the legend shows"]
    picture = draw_prediction(image, labels, np.ones((32, 48)), names)
    scale = display_scale(32, 48)
    assert picture.shape[0] == 32 * scale and picture.shape[1] > 48 * scale
    # region interiors: the image blended half-half with the class colour
    for class_id, (y, x) in ((0, (28, 4)), (1, (28, 44))):
        expected = 0.5 * 128 + 0.5 * np.asarray(class_colors(3)[class_id])
        assert np.abs(picture[y * scale, x * scale].astype(float) - expected).max() <= 3
    other = draw_prediction(image, np.full((32, 48), 2), np.ones((32, 48)), names)
    assert other.shape == picture.shape  # the legend width depends on the vocabulary only (video frames)


def test_many_classes_fit_the_legend():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 200, (32, 48))
    picture = draw_prediction(np.zeros((32, 48, 3), np.uint8), labels, rng.random((32, 48)),
                              [f"class {i}" for i in range(200)])
    assert picture.shape[0] == 32 * display_scale(32, 48)
