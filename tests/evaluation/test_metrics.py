"""Confusion matrix and segmentation metrics on hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from zegcag.evaluation.metrics import (
    confusion_matrix,
    confusion_matrix_with_invalid,
    harmonic_mean,
    segmentation_metrics,
)


def test_confusion_rows_gt_cols_pred_and_ignore_skipped():
    gt = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [2, 2, 0]])
    expected = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]])
    conf = confusion_matrix(gt, pred, 3, 255)
    assert conf.dtype == np.int64
    np.testing.assert_array_equal(conf, expected)


def test_invalid_predictions_are_counted_per_gt_class():
    gt = np.array([[0, 0, 1, 1], [255, 255, 1, 0]], dtype=np.uint8)
    pred = np.array([[0, 7, 255, 1], [9, 0, 1, 0]], dtype=np.uint8)  # 7, 9, 255 are not classes
    conf, invalid = confusion_matrix_with_invalid(gt, pred, 2, 255)
    np.testing.assert_array_equal(conf, [[2, 0], [0, 2]])
    np.testing.assert_array_equal(invalid, [1, 1])  # the 9 lies on an ignore pixel
    np.testing.assert_array_equal(confusion_matrix(gt, pred, 2, 255), conf)


def test_negative_predicted_ids_are_invalid():
    conf, invalid = confusion_matrix_with_invalid(np.zeros((1, 3), int), np.array([[-1, 0, 2]]), 2, 255)
    np.testing.assert_array_equal(conf, [[1, 0], [0, 0]])
    np.testing.assert_array_equal(invalid, [2, 0])


def test_gt_id_outside_classes_raises_with_the_id():
    with pytest.raises(ValueError, match=r"\[5\].*0\.\.2.*255"):
        confusion_matrix(np.array([[0, 5]]), np.array([[0, 0]]), 3, 255)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 3, 255)


# 4 classes, seen {0, 1}, unseen {2, 3}: class 2 is predicted but absent from GT, class 3 absent from both.
CONF = np.array([[4, 1, 0, 0], [1, 2, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_hand_computed_metrics():
    m = segmentation_metrics(CONF, seen=[0, 1], unseen=[2, 3], class_names=["a", "b", "c", "d"])
    iou_a, iou_b = 4 / 6, 2 / 5  # tp / (gt + pred - tp)
    assert m["IoU-a"] == pytest.approx(100 * iou_a)
    assert m["IoU-b"] == pytest.approx(100 * iou_b)
    assert m["IoU-c"] == 0.0  # predicted, absent from GT
    assert math.isnan(m["IoU-d"])  # neither: left out of every mean
    assert m["mIoU"] == pytest.approx(100 * (iou_a + iou_b + 0) / 3)
    assert m["seen_mIoU"] == pytest.approx(100 * (iou_a + iou_b) / 2)
    assert m["unseen_mIoU"] == 0.0
    assert m["hIoU"] == 0.0
    assert m["pAcc"] == pytest.approx(100 * 6 / 9)
    assert m["mAcc"] == pytest.approx(100 * (4 / 5 + 2 / 4) / 2)  # classes absent from GT have no accuracy
    assert m["fwIoU"] == pytest.approx(100 * (5 * iou_a + 4 * iou_b) / 9)
    assert m["seen_mAcc"] == pytest.approx(100 * 0.65)
    assert m["seen_pAcc"] == pytest.approx(100 * 6 / 9)
    assert math.isnan(m["unseen_mAcc"]) and math.isnan(m["unseen_pAcc"])
    assert list(m)[:7] == ["mIoU", "seen_mIoU", "unseen_mIoU", "hIoU", "pAcc", "mAcc", "fwIoU"]


def test_hiou_is_harmonic_mean_of_seen_and_unseen():
    conf = np.diag([3, 1, 1]).astype(np.int64)
    conf[1, 2] = 1  # class 1: IoU 1/2; class 2: IoU 1/2
    m = segmentation_metrics(conf, seen=[0], unseen=[1, 2])
    s, u = 1.0, 0.5
    assert m["seen_mIoU"] == pytest.approx(100 * s)
    assert m["unseen_mIoU"] == pytest.approx(100 * u)
    assert m["hIoU"] == pytest.approx(100 * 2 * s * u / (s + u))
    assert "IoU-0" in m and "IoU-2" in m


def test_hiou_edge_cases():
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(0.5, 0.0) == 0.0
    assert math.isnan(harmonic_mean(float("nan"), 0.3))
    assert math.isnan(harmonic_mean(0.3, float("nan")))
    # unseen classes with neither GT nor prediction: unseen mean undefined -> hIoU NaN
    m = segmentation_metrics(np.diag([2, 2, 0, 0]), seen=[0, 1], unseen=[2, 3])
    assert m["seen_mIoU"] == 100.0 and math.isnan(m["unseen_mIoU"]) and math.isnan(m["hIoU"])
    # both means 0: hIoU 0, not NaN
    m = segmentation_metrics(np.array([[0, 1], [1, 0]]), seen=[0], unseen=[1])
    assert m["seen_mIoU"] == 0.0 and m["unseen_mIoU"] == 0.0 and m["hIoU"] == 0.0


def test_invalid_predictions_lower_iou_and_accuracy():
    gt = np.zeros((2, 2), int)
    pred = np.array([[0, 0], [9, 9]])
    conf, invalid = confusion_matrix_with_invalid(gt, pred, 2, 255)
    with_invalid = segmentation_metrics(conf, [0], [1], invalid_pred_per_class=invalid)
    assert with_invalid["IoU-0"] == 50.0 and with_invalid["pAcc"] == 50.0 and with_invalid["mAcc"] == 50.0
    assert math.isnan(with_invalid["IoU-1"])  # invalid ids are nobody's false positive
    assert segmentation_metrics(conf, [0], [1])["IoU-0"] == 100.0  # what dropping them would wrongly give


def test_empty_confusion_gives_nan_everywhere():
    m = segmentation_metrics(np.zeros((3, 3), np.int64), seen=[0, 1], unseen=[2])
    assert all(math.isnan(v) for v in m.values())


def test_classes_outside_seen_and_unseen_count_in_overall_means_only():
    m = segmentation_metrics(np.diag([1, 1, 1]), seen=[0], unseen=[1])  # class 2 in neither list
    assert m["mIoU"] == 100.0 and m["seen_mIoU"] == 100.0 and m["unseen_mIoU"] == 100.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(conf=np.zeros((2, 3)), seen=[0], unseen=[1]), "square"),
        (dict(conf=np.zeros((2, 2)), seen=[0, 1], unseen=[1]), "both seen and unseen"),
        (dict(conf=np.zeros((2, 2)), seen=[0], unseen=[2]), r"unseen class ids \[2\]"),
        (dict(conf=np.zeros((2, 2)), seen=[0], unseen=[1], class_names=["x"]), "1 class names"),
        (dict(conf=np.zeros((2, 2)), seen=[0], unseen=[1], invalid_pred_per_class=np.zeros(3)), r"shape \(2,\)"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        segmentation_metrics(**kwargs)
