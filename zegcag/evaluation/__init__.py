"""Generalized zero-shot evaluation: confusion-matrix metrics, exact boundary F, the Detectron2 evaluator."""
from __future__ import annotations

from .boundary import BoundaryCounts, boundary_counts, boundary_map, precision_recall_f
from .generalized_sem_seg_evaluation import (
    GeneralizedSemSegEvaluator,
    SegmentationCounts,
    evaluate_label_map,
    read_label_png,
)
from .metrics import confusion_matrix, confusion_matrix_with_invalid, harmonic_mean, segmentation_metrics

__all__ = [
    "BoundaryCounts",
    "GeneralizedSemSegEvaluator",
    "SegmentationCounts",
    "boundary_counts",
    "boundary_map",
    "confusion_matrix",
    "confusion_matrix_with_invalid",
    "evaluate_label_map",
    "harmonic_mean",
    "precision_recall_f",
    "read_label_png",
    "segmentation_metrics",
]
