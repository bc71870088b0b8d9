"""Boundary maps, exact matching (against brute force) and P/R/F conventions."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from zegcag.evaluation.boundary import (
    BoundaryCounts,
    boundary_counts,
    boundary_map,
    match_boundary_maps,
    maximum_matching_size,
)


def halves(h: int, w: int, col: int, left: int = 0, right: int = 1) -> np.ndarray:
    lab = np.full((h, w), right, dtype=np.int64)
    lab[:, :col] = left
    return lab


def test_boundary_map_right_bottom_bottom_right():
    lab = np.array([[0, 0, 1], [0, 0, 1], [2, 2, 2]])
    expected = np.array([[0, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(boundary_map(lab), expected)
    # (0, 0) differs from its bottom-right neighbour only; the last row/column compare along the edge
    np.testing.assert_array_equal(boundary_map(np.array([[0, 0], [0, 1]])), [[1, 1], [1, 0]])


def test_boundary_map_ignores_pairs_touching_invalid_pixels():
    lab = np.array([[0, 1, 1], [0, 1, 1]])
    valid = np.array([[1, 0, 1], [1, 1, 1]], dtype=bool)
    # (0,0)-(0,1) touches an invalid pixel; (0,0)-(1,1) still differs; (1,0)-(1,1) differs
    np.testing.assert_array_equal(boundary_map(lab, valid), [[1, 0, 0], [1, 0, 0]])


def test_identical_maps_score_one():
    gt = halves(40, 60, 25)
    gt[5:15, 40:50] = 2
    c = boundary_counts(gt, gt.copy())
    assert c.num_gt > 0 and c.matched_gt == c.num_gt == c.num_pred == c.matched_pred
    assert (c.precision, c.recall, c.f) == (1.0, 1.0, 1.0)


def test_per_image_conventions_without_boundaries():
    flat, split = np.zeros((20, 30), int), halves(20, 30, 10)
    both = boundary_counts(flat, flat + 3)
    assert both == BoundaryCounts(0, 0, 0, 0) and (both.precision, both.recall, both.f) == (1.0, 1.0, 1.0)
    no_gt = boundary_counts(flat, split)
    assert (no_gt.precision, no_gt.recall, no_gt.f) == (0.0, 1.0, 0.0)
    no_pred = boundary_counts(split, flat)
    assert (no_pred.precision, no_pred.recall, no_pred.f) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize("shift, matched", [(1, True), (2, True), (3, False)])
def test_shift_within_and_beyond_tolerance(shift, matched):
    # 100x100: diagonal 141.42; ratio 0.02 -> max_dist 2.83 px
    gt, pred = halves(100, 100, 50), halves(100, 100, 50 + shift)
    c = boundary_counts(gt, pred, max_dist_ratio=0.02)
    assert c.num_gt == c.num_pred == 100
    assert c.matched_gt == (100 if matched else 0)
    assert c.f == (1.0 if matched else 0.0)


def test_default_tolerance_is_fraction_of_diagonal():
    # 300x400: diagonal 500 -> 0.0075 * 500 = 3.75 px
    gt = halves(300, 400, 200)
    assert boundary_counts(gt, halves(300, 400, 203)).f == 1.0
    assert boundary_counts(gt, halves(300, 400, 204)).f == 0.0


def test_distance_is_euclidean_and_inclusive():
    pred, gt = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    pred[5, 5], gt[6, 6] = True, True  # distance sqrt(2)
    assert match_boundary_maps(pred, gt, 1.41) == 0
    assert match_boundary_maps(pred, gt, 1.42) == 1
    gt[6, 6], gt[5, 8] = False, True  # distance exactly 3
    assert match_boundary_maps(pred, gt, 3.0) == 1
    assert match_boundary_maps(pred, gt, 2.99) == 0


def test_one_to_one_matching_and_partial_scores():
    gt = halves(50, 50, 25)
    pred = gt.copy()
    pred[:, 40:] = 2  # a second, unmatched predicted edge
    c = boundary_counts(gt, pred)
    assert c.num_pred == 100 and c.num_gt == 50 and c.matched_pred == 50
    assert c.precision == 0.5 and c.recall == 1.0 and c.f == pytest.approx(2 / 3)
    # two predicted edges 1 px apart around one GT edge: each GT pixel is used once
    two = halves(50, 50, 25)
    two[:, 26:] = 2
    c = boundary_counts(gt, two, max_dist_ratio=0.05)
    assert c.num_pred == 100 and c.matched_gt == 50


def test_ignore_regions():
    gt = np.zeros((40, 100), int)
    gt[:, 40:60] = 255
    gt[:, 60:] = 1  # class 0 | ignore band | class 1: no GT boundary at all
    assert boundary_counts(gt, gt.copy(), ignore_label=255).num_gt == 0
    # predicted edge inside the band, or drawn against the band only: left out
    for col in (50, 40, 60):
        c = boundary_counts(gt, halves(40, 100, col), ignore_label=255)
        assert c.num_pred == 0 and c.f == 1.0
    # a predicted edge on labelled pixels counts (and is unmatched)
    c = boundary_counts(gt, halves(40, 100, 20), ignore_label=255)
    assert c.num_pred == 40 and (c.precision, c.recall) == (0.0, 1.0)
    # an ignore blob inside a region creates no GT boundary; without ignore_label it would
    blob = np.zeros((30, 30), int)
    blob[10:20, 10:20] = 255
    assert boundary_counts(blob, np.zeros((30, 30), int), ignore_label=255).num_gt == 0
    assert boundary_counts(blob, np.zeros((30, 30), int)).num_gt > 0


def test_empty_and_degenerate_maps():
    for shape in [(0, 0), (0, 5), (1, 1), (1, 7)]:
        c = boundary_counts(np.zeros(shape, int), np.zeros(shape, int))
        assert c == BoundaryCounts() and c.f == 1.0
    row = np.array([[0, 0, 1, 1]])
    assert boundary_counts(row, row).num_gt == 1


def test_dataset_figures_sum_counts():
    total = BoundaryCounts(3, 4, 3, 6) + BoundaryCounts(1, 4, 1, 2)
    assert total == BoundaryCounts(4, 8, 4, 8)
    assert total.precision == 0.5 and total.recall == 0.5


def _brute_force(pred_b: np.ndarray, gt_b: np.ndarray, max_dist: float) -> int:
    py, px = np.nonzero(pred_b)
    gy, gx = np.nonzero(gt_b)
    if not len(py) or not len(gy):
        return 0
    adj = np.hypot(py[:, None] - gy[None], px[:, None] - gx[None]) <= max_dist + 1e-9
    rows, cols = linear_sum_assignment(adj.astype(float), maximize=True)
    return int(adj[rows, cols].sum())


def test_exact_matching_equals_brute_force_on_random_maps():
    rng = np.random.default_rng(0)
    for trial in range(150):
        h, w = rng.integers(2, 16, size=2)
        k = int(rng.integers(2, 5))
        gt, pred = rng.integers(0, k, size=(h, w)), rng.integers(0, k, size=(h, w))
        if trial % 2:  # smoother maps: fewer, clustered boundary pixels
            gt, pred = np.sort(gt, axis=1), np.sort(pred, axis=0)
        if trial % 3 == 0:
            gt[rng.random((h, w)) < 0.2] = 255
        ratio = float(rng.uniform(0.0, 0.3))
        c = boundary_counts(gt, pred, ignore_label=255, max_dist_ratio=ratio)
        valid = gt != 255
        expected = _brute_force(boundary_map(pred, valid), boundary_map(gt, valid), ratio * np.hypot(h, w))
        assert c.matched_gt == c.matched_pred == expected, (trial, h, w, ratio)


def test_maximum_matching_size_against_brute_force_and_on_layered_graphs():
    rng = np.random.default_rng(1)
    for _ in range(50):
        nl, nr = rng.integers(1, 12, size=2)
        adj = rng.random((nl, nr)) < rng.uniform(0.05, 0.5)
        left, right = np.nonzero(adj)
        rows, cols = linear_sum_assignment(adj.astype(float), maximize=True)
        assert maximum_matching_size(nl, nr, left, right) == int(adj[rows, cols].sum())
    # layered "ladder" graphs make a Hopcroft-Karp without dead-end marking exponential (scipy issue 26147)
    levels = 2000
    lvl = np.arange(2 * levels) // 2  # left vertices 2l, 2l+1 see right vertices 2l .. 2l+3
    left = np.repeat(np.arange(2 * levels), 4)
    right = np.stack([2 * lvl, 2 * lvl + 1, 2 * lvl + 2, 2 * lvl + 3], axis=1).ravel()
    keep = right < 2 * levels - 1  # drop the last right vertex: a perfect matching is impossible
    assert maximum_matching_size(2 * levels, 2 * levels - 1, left[keep], right[keep]) == 2 * levels - 1
