"""Exact boundary precision / recall / F of a predicted label map (BSDS / seism boundary benchmark).

Shapes: H x W = one label map; N_p, N_g = numbers of predicted and ground-truth boundary pixels.

Boundary pixels. A pixel p is a boundary pixel of a label map when its label differs from that of its
right, bottom or bottom-right neighbour q (pixels of the last row or column compare with the neighbours
they have; this is seism's ``seg2bmap``). With an ignore label, a pair (p, q) is compared only when
neither p nor q is an ignore pixel of the ground truth, in both maps. Hence a ground-truth boundary that
exists only because of an ignore region does not count, a predicted boundary pixel lying on an ignore pixel
is left out, and so is a predicted boundary drawn only against an ignore pixel (its side of the edge is
unknown). Without ignore pixels this is exactly ``seg2bmap`` of each map.

Matching. A predicted and a ground-truth boundary pixel may be paired when the Euclidean distance between
their pixel coordinates is at most ``max_dist = max_dist_ratio * sqrt(H^2 + W^2)`` (default ratio 0.0075,
BSDS's ``maxDist``; no rounding of ``max_dist``, BSDS rounds only its search window; a 1e-9 slack absorbs
floating-point error). Each pixel is used at most once, and the number of pairs is the maximum possible: an
exact maximum-cardinality bipartite matching, found as a maximum flow with Dinic's algorithm (the
``scipy.sparse.csgraph.maximum_flow`` default; ``maximum_bipartite_matching`` is avoided because it can take
exponential time, scipy issue 26147). BSDS's correspondPixels solves a min-cost assignment that makes an
unpaired pixel far costlier than any pair; here the number of pairs, which is all P and R count, is
maximised exactly.

Scores. precision P = matched predicted / predicted boundary pixels, recall R = matched ground-truth /
ground-truth boundary pixels, F = 2PR / (P + R) (0 when P = R = 0). With no predicted boundary P = 1; with no
ground-truth boundary R = 1; so two maps without boundary score P = R = F = 1, a prediction with boundaries
against a ground truth without any scores P = 0, R = 1, and the reverse P = 1, R = 0. A dataset's figures
come from the summed per-image counts (``BoundaryCounts`` adds up), as in BSDS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import maximum_flow

__all__ = [
    "BoundaryCounts",
    "boundary_counts",
    "boundary_map",
    "match_boundary_maps",
    "maximum_matching_size",
    "precision_recall_f",
]

_GATHER_BLOCK = 1 << 22  # candidate indices gathered at once (32 MiB of int64), whatever the image size


@dataclass(frozen=True)
class BoundaryCounts:
    """Pixel counts of one image or a sum of images; ``a + b`` adds them."""

    matched_pred: int = 0
    num_pred: int = 0
    matched_gt: int = 0
    num_gt: int = 0

    def __add__(self, other: "BoundaryCounts") -> "BoundaryCounts":
        return BoundaryCounts(
            self.matched_pred + other.matched_pred,
            self.num_pred + other.num_pred,
            self.matched_gt + other.matched_gt,
            self.num_gt + other.num_gt,
        )

    @property
    def precision(self) -> float:
        return self.matched_pred / self.num_pred if self.num_pred else 1.0

    @property
    def recall(self) -> float:
        return self.matched_gt / self.num_gt if self.num_gt else 1.0

    @property
    def f(self) -> float:
        p, r = self.precision, self.recall
        return 2.0 * p * r / (p + r) if p + r > 0 else 0.0


def precision_recall_f(counts: BoundaryCounts) -> tuple[float, float, float]:
    """(P, R, F) in [0, 1] with the conventions of the module docstring."""
    return counts.precision, counts.recall, counts.f


def boundary_map(labels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """labels: (H, W) -> (H, W) bool; pairs touching a pixel where ``valid`` (H, W) is False are not compared."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected an (H, W) label map, got shape {labels.shape}")
    h, w = labels.shape
    out = np.zeros((h, w), dtype=bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        differs = labels[: h - dy, : w - dx] != labels[dy:, dx:]
        if valid is not None:
            differs &= valid[: h - dy, : w - dx] & valid[dy:, dx:]
        out[: h - dy, : w - dx] |= differs
    return out


def _offsets(max_dist: float) -> np.ndarray:
    """(K, 2) integer (dy, dx) with dy^2 + dx^2 <= max_dist^2."""
    r = int(np.floor(max_dist + 1e-9))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dy * dy + dx * dx <= max_dist * max_dist + 1e-9
    return np.stack([dy[keep], dx[keep]], axis=1)


def _candidate_pairs(src: np.ndarray, dst: np.ndarray, max_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """src, dst: (H, W) bool -> (src index, dst index) of every pair within ``max_dist`` (indices in nonzero order)."""
    h, w = src.shape
    off = _offsets(max_dist)
    r = int(np.abs(off).max()) if off.size else 0
    wp = w + 2 * r
    dst_index = np.full((h + 2 * r, wp), -1, dtype=np.int64)
    dst_index[r : r + h, r : r + w][dst] = np.arange(int(dst.sum()))
    flat = dst_index.ravel()
    sy, sx = np.nonzero(src)
    base = (sy + r) * wp + (sx + r)
    shift = off[:, 0] * wp + off[:, 1]
    chunk = max(1, _GATHER_BLOCK // len(shift))
    src_ids, dst_ids = [], []
    for start in range(0, len(base), chunk):
        hits = flat[base[start : start + chunk, None] + shift[None, :]]  # (chunk, K)
        rows, cols = np.nonzero(hits >= 0)
        src_ids.append(rows + start)
        dst_ids.append(hits[rows, cols])
    if not src_ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(src_ids), np.concatenate(dst_ids)


def maximum_matching_size(num_left: int, num_right: int, left: np.ndarray, right: np.ndarray) -> int:
    """Size of a maximum matching of the bipartite graph with edges ``(left[e], right[e])`` (E,) each.

    Solved exactly as a unit-capacity maximum flow source -> left -> right -> sink (Dinic, O(E sqrt(V))).
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    if left.size == 0:
        return 0
    n = num_left + num_right + 2
    source, sink = n - 2, n - 1
    used_left = np.unique(left)
    used_right = np.unique(right)
    rows = np.concatenate([np.full(len(used_left), source), left, num_left + used_right])
    cols = np.concatenate([used_left, num_left + right, np.full(len(used_right), sink)])
    graph = csr_array((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(n, n))
    return int(maximum_flow(graph, source, sink, method="dinic").flow_value)


def match_boundary_maps(pred_b: np.ndarray, gt_b: np.ndarray, max_dist: float) -> int:
    """pred_b, gt_b: (H, W) bool boundary maps -> number of one-to-one pairs within ``max_dist`` (maximum)."""
    if pred_b.shape != gt_b.shape:
        raise ValueError(f"boundary maps differ in shape: {pred_b.shape} vs {gt_b.shape}")
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 or n_gt == 0:
        return 0
    if n_pred <= n_gt:  # gather from the smaller side
        p, g = _candidate_pairs(pred_b, gt_b, max_dist)
    else:
        g, p = _candidate_pairs(gt_b, pred_b, max_dist)
    return maximum_matching_size(n_pred, n_gt, p, g)


def boundary_counts(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    ignore_label: int | None = None,
    max_dist_ratio: float = 0.0075,
) -> BoundaryCounts:
    """gt, pred: (H, W) label maps -> BoundaryCounts of one image (see the module docstring)."""
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"expected two (H, W) maps of the same shape, got {gt.shape} and {pred.shape}")
    if max_dist_ratio < 0:
        raise ValueError(f"max_dist_ratio must be >= 0, got {max_dist_ratio}")
    valid = None if ignore_label is None else gt != ignore_label
    gt_b = boundary_map(gt, valid)
    pred_b = boundary_map(pred, valid)
    max_dist = max_dist_ratio * float(np.hypot(*gt.shape))
    matched = match_boundary_maps(pred_b, gt_b, max_dist)
    return BoundaryCounts(matched, int(pred_b.sum()), matched, int(gt_b.sum()))
