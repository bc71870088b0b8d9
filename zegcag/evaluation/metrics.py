"""Semantic-segmentation metrics of a confusion matrix, with seen/unseen splits (pure NumPy).

Shapes: C = number of classes, H x W = one label map.

The confusion matrix ``conf`` is (C, C) int64, rows ground truth, columns prediction. A predicted id outside
``0..C-1`` has no column, so it is counted apart, per ground-truth class, in ``invalid`` (C,): such a pixel
adds to its ground-truth class's pixel count (so it lowers that class's IoU and accuracy, and pAcc) but is
a false positive of no class. ``segmentation_metrics(conf, ..., invalid_pred_per_class=invalid)`` needs it to
keep each row's total right; without it, invalid predictions would be silently dropped.

NaN rules: a class with neither ground-truth nor predicted pixels has IoU NaN; a class absent from the
ground truth has accuracy NaN (and IoU 0 if predicted). NaN values are left out of every mean; a mean of
nothing is NaN. ``hIoU = 2 s u / (s + u)`` of the seen and unseen mIoU, 0 when both are 0, NaN when either is.
All returned values are percentages.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np

__all__ = ["confusion_matrix", "confusion_matrix_with_invalid", "harmonic_mean", "segmentation_metrics"]


def confusion_matrix_with_invalid(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_label: int
) -> tuple[np.ndarray, np.ndarray]:
    """gt, pred: (H, W) integer maps -> conf (C, C) int64, invalid (C,) int64.

    ``invalid[c]`` counts pixels of ground-truth class c whose predicted id is outside ``0..C-1``.
    Pixels whose ground truth is ``ignore_label`` are skipped. Raises ValueError if the ground truth holds
    an id that is neither a class nor the ignore label, or if the shapes differ.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    c = int(num_classes)
    gt = gt.astype(np.int64, copy=False).ravel()
    pred = pred.astype(np.int64, copy=False).ravel()
    keep = gt != ignore_label
    bad = keep & ((gt < 0) | (gt >= c))
    if bad.any():
        ids = np.unique(gt[bad])
        raise ValueError(
            f"ground-truth ids {ids[:10].tolist()} are neither a class id (0..{c - 1}) "
            f"nor the ignore label {ignore_label}"
        )
    gt = gt[keep]
    pred = pred[keep]
    pred = np.where((pred >= 0) & (pred < c), pred, c)  # column c collects invalid predictions
    counts = np.bincount(gt * (c + 1) + pred, minlength=c * (c + 1)).reshape(c, c + 1)
    return counts[:, :c].astype(np.int64), counts[:, c].astype(np.int64)


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_label: int) -> np.ndarray:
    """gt, pred: (H, W) -> (C, C) int64, rows ground truth, columns prediction; ignore pixels skipped.

    Pixels predicted with an id outside the classes are not in the matrix; use
    ``confusion_matrix_with_invalid`` to count them (and pass them to ``segmentation_metrics``).
    """
    return confusion_matrix_with_invalid(gt, pred, num_classes, ignore_label)[0]


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def harmonic_mean(seen: float, unseen: float) -> float:
    """2 s u / (s + u); 0 when both are 0; NaN when either is NaN."""
    if np.isnan(seen) or np.isnan(unseen):
        return float("nan")
    if seen + unseen == 0:
        return 0.0
    return 2.0 * seen * unseen / (seen + unseen)


def _check_ids(ids: Sequence[int], num_classes: int, what: str) -> np.ndarray:
    ids = np.asarray(list(ids), dtype=np.int64)
    bad = ids[(ids < 0) | (ids >= num_classes)]
    if bad.size:
        raise ValueError(f"{what} class ids {bad.tolist()} outside 0..{num_classes - 1}")
    return ids


def segmentation_metrics(
    conf: np.ndarray,
    seen: Sequence[int],
    unseen: Sequence[int],
    class_names: Sequence[str] | None = None,
    invalid_pred_per_class: np.ndarray | None = None,
) -> dict[str, float]:
    """conf: (C, C) counts (rows GT) -> metrics in percent.

    Keys: mIoU, seen_mIoU, unseen_mIoU, hIoU, pAcc, mAcc, fwIoU, seen_mAcc, unseen_mAcc, seen_pAcc,
    unseen_pAcc, then ``IoU-<name>`` per class (name = ``class_names[i]``, or ``i`` without names).
    ``invalid_pred_per_class`` (C,): pixels of each GT class predicted with an id outside the classes.
    """
    conf = np.asarray(conf, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got shape {conf.shape}")
    c = conf.shape[0]
    seen_ids = _check_ids(seen, c, "seen")
    unseen_ids = _check_ids(unseen, c, "unseen")
    overlap = np.intersect1d(seen_ids, unseen_ids)
    if overlap.size:
        raise ValueError(f"class ids {overlap.tolist()} are both seen and unseen")
    names = [str(i) for i in range(c)] if class_names is None else [str(n) for n in class_names]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for a {c}x{c} confusion matrix")
    invalid = np.zeros(c) if invalid_pred_per_class is None else np.asarray(invalid_pred_per_class, np.float64)
    if invalid.shape != (c,):
        raise ValueError(f"invalid_pred_per_class must have shape ({c},), got {invalid.shape}")

    tp = np.diag(conf)
    gt_count = conf.sum(axis=1) + invalid
    pred_count = conf.sum(axis=0)
    union = gt_count + pred_count - tp
    iou = np.full(c, np.nan)
    np.divide(tp, union, out=iou, where=union > 0)
    acc = np.full(c, np.nan)
    np.divide(tp, gt_count, out=acc, where=gt_count > 0)
    total = gt_count.sum()
    present = gt_count > 0

    res: dict[str, float] = OrderedDict()
    res["mIoU"] = _nanmean(iou)
    res["seen_mIoU"] = _nanmean(iou[seen_ids])
    res["unseen_mIoU"] = _nanmean(iou[unseen_ids])
    res["hIoU"] = harmonic_mean(res["seen_mIoU"], res["unseen_mIoU"])
    res["pAcc"] = _ratio(tp.sum(), total)
    res["mAcc"] = _nanmean(acc)
    res["fwIoU"] = float((gt_count[present] * iou[present]).sum() / total) if total > 0 else float("nan")
    res["seen_mAcc"] = _nanmean(acc[seen_ids])
    res["unseen_mAcc"] = _nanmean(acc[unseen_ids])
    res["seen_pAcc"] = _ratio(tp[seen_ids].sum(), gt_count[seen_ids].sum())
    res["unseen_pAcc"] = _ratio(tp[unseen_ids].sum(), gt_count[unseen_ids].sum())
    for name, value in zip(names, iou):
        res[f"IoU-{name}"] = float(value)
    return OrderedDict((k, 100.0 * v) for k, v in res.items())
