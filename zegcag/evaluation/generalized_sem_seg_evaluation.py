"""Generalized zero-shot semantic-segmentation evaluation: seen / unseen / harmonic mIoU and boundary F.

Shapes: C = number of classes, K = channels of a score map, H x W = the ground-truth label's full resolution.

``evaluate_label_map`` scores one (ground truth, prediction) pair; ``SegmentationCounts`` sums pairs in
constant memory and turns the sums into metrics. ``GeneralizedSemSegEvaluator`` (the Detectron2 evaluator)
and ``tools/evaluate_predictions.py`` (PNG folders) both go through these two, so they report identical numbers.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm
from PIL import Image

from .boundary import BoundaryCounts, boundary_counts
from .metrics import confusion_matrix_with_invalid, segmentation_metrics

logger = logging.getLogger(__name__)

__all__ = [
    "GeneralizedSemSegEvaluator",
    "ImageCounts",
    "SegmentationCounts",
    "evaluate_label_map",
    "json_safe",
    "read_label_png",
    "write_metrics",
]

_F_UNITS = 10**12  # per-image F summed as integers in these units: the mean is independent of summation order


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """A single-channel PNG of ids -> (H, W) integer array; ValueError naming the file otherwise."""
    with Image.open(path) as img:
        mode = img.mode
        arr = np.asarray(img)
    if arr.ndim != 2:
        raise ValueError(
            f"{path}: expected a single-channel PNG of class ids, got {arr.shape[2]} channels (PIL mode {mode})"
        )
    return arr.astype(np.int64) if arr.dtype == bool else arr


@dataclass
class ImageCounts:
    """One image: confusion (C, C), invalid predictions per GT class (C,), boundary counts (or None)."""

    conf: np.ndarray
    invalid: np.ndarray
    boundary: BoundaryCounts | None = None


def evaluate_label_map(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    num_classes: int,
    ignore_label: int,
    boundary: bool = False,
    max_dist_ratio: float = 0.0075,
) -> ImageCounts:
    """gt, pred: (H, W) ids -> ImageCounts. ValueError on a shape mismatch or a GT id outside classes/ignore."""
    if gt.shape != pred.shape:
        raise ValueError(f"prediction size {pred.shape} differs from the ground truth's {gt.shape} (H, W)")
    conf, invalid = confusion_matrix_with_invalid(gt, pred, num_classes, ignore_label)
    counts = boundary_counts(gt, pred, ignore_label=ignore_label, max_dist_ratio=max_dist_ratio) if boundary else None
    return ImageCounts(conf, invalid, counts)


@dataclass
class SegmentationCounts:
    """Running sums over images (memory constant in their number); ``merge`` adds another process's sums."""

    num_classes: int
    conf: np.ndarray = field(init=False)
    invalid: np.ndarray = field(init=False)
    boundary: BoundaryCounts = field(default_factory=BoundaryCounts)
    f_units: int = 0
    num_images: int = 0
    zsl_conf: np.ndarray | None = None  # (U, U) unseen GT x argmax over the unseen scores only; None: no scores

    def __post_init__(self) -> None:
        self.conf = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.invalid = np.zeros(self.num_classes, dtype=np.int64)

    def add(self, image: ImageCounts) -> None:
        self.conf += image.conf
        self.invalid += image.invalid
        if image.boundary is not None:
            self.boundary = self.boundary + image.boundary
            self.f_units += round(image.boundary.f * _F_UNITS)
        self.num_images += 1

    def merge(self, other: "SegmentationCounts") -> None:
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge counts of {other.num_classes} and {self.num_classes} classes")
        self.conf += other.conf
        self.invalid += other.invalid
        self.boundary = self.boundary + other.boundary
        self.f_units += other.f_units
        self.num_images += other.num_images
        if other.zsl_conf is not None:
            self.add_zsl(other.zsl_conf)

    def add_zsl(self, conf: np.ndarray) -> None:
        self.zsl_conf = conf.copy() if self.zsl_conf is None else self.zsl_conf + conf

    def metrics(
        self,
        seen: Sequence[int],
        unseen: Sequence[int],
        class_names: Sequence[str] | None = None,
        boundary: bool = False,
    ) -> "OrderedDict[str, float]":
        """Percent metrics of ``segmentation_metrics``, then boundary_P/R/F and boundary_F_mean_per_image."""
        res = segmentation_metrics(self.conf, seen, unseen, class_names, invalid_pred_per_class=self.invalid)
        if boundary:
            res["boundary_P"] = 100.0 * self.boundary.precision
            res["boundary_R"] = 100.0 * self.boundary.recall
            res["boundary_F"] = 100.0 * self.boundary.f
            mean_f = self.f_units / _F_UNITS / self.num_images if self.num_images else float("nan")
            res["boundary_F_mean_per_image"] = 100.0 * mean_f
        if self.zsl_conf is not None:
            res.update(zsl_metrics(self.zsl_conf))
        return res


def zsl_confusion(unseen_scores: np.ndarray, gt: np.ndarray, unseen: Sequence[int]) -> np.ndarray:
    """Calibration-free transfer: ``unseen_scores: (U, H, W)``, the score maps of the classes ``unseen`` (in that
    order), arg-maxed on the pixels whose ground truth ``gt: (H, W)`` is unseen -> (U, U) confusion (rows:
    ground truth)."""
    unseen = np.asarray(unseen, dtype=np.int64)
    lookup = np.full(max(int(gt.max(initial=0)), int(unseen.max())) + 1, -1, dtype=np.int64)
    lookup[unseen] = np.arange(len(unseen))
    gt_index = lookup[gt]  # -1: not an unseen class (seen, ignore)
    mask = gt_index >= 0
    pred_index = unseen_scores[:, mask].argmax(axis=0)
    u = len(unseen)
    return np.bincount(gt_index[mask] * u + pred_index, minlength=u * u).reshape(u, u)


def zsl_metrics(conf: np.ndarray) -> dict[str, float]:
    """``unseen_zsl_pAcc`` / ``unseen_zsl_mAcc``: accuracy of choosing among the unseen classes only (chance
    100/U), pooled over pixels / averaged over the unseen classes present."""
    per_class = conf.sum(axis=1)
    present = per_class > 0
    p_acc = 100.0 * np.trace(conf) / per_class.sum() if per_class.sum() else float("nan")
    m_acc = 100.0 * float(np.mean(np.diag(conf)[present] / per_class[present])) if present.any() else float("nan")
    return {"unseen_zsl_pAcc": float(p_acc), "unseen_zsl_mAcc": m_acc}


def json_safe(value: Any) -> Any:
    """NaN floats -> None (``null`` in JSON), NumPy scalars -> Python numbers, recursively through dicts."""
    if isinstance(value, dict):
        return {key: json_safe(v) for key, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_metrics(metrics: dict[str, Any], output_dir: str | os.PathLike, stem: str = "sem_seg_metrics") -> None:
    """``<stem>.json`` (NaN as null) and ``<stem>.csv`` (metric,value; NaN as ``nan``) in ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n")
    with open(out / f"{stem}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", "value"])
        writer.writerows((key, repr(float(value))) for key, value in metrics.items())


class GeneralizedSemSegEvaluator(DatasetEvaluator):
    """Confusion-matrix metrics over all / seen / unseen classes, hIoU, and optionally boundary P/R/F.
    With score maps it also reports ``unseen_zsl_pAcc``/``_mAcc`` (see ``zsl_metrics``): whether the model
    tells the unseen classes apart, independent of calibration (GZSL mIoU can be far above the 20-class
    chance level with no transfer at all, by detecting "not seen" and guessing among the unseen classes).

    Each output's ``sem_seg`` (K, H, W) scores are arg-maxed and compared with the label PNG at full
    resolution (``input["sem_seg_file_name"]``, else the dataset's record for ``input["file_name"]``).
    """

    def __init__(
        self,
        dataset_name: str,
        distributed: bool = True,
        output_dir: str | None = None,
        *,
        seen_classes: Sequence[int] | None = None,
        unseen_classes: Sequence[int] | None = None,
        boundary: bool = False,
        boundary_max_dist_ratio: float = 0.0075,
        write_predictions: bool = False,
    ) -> None:
        """seen/unseen default to the dataset metadata's ``seen_classes`` / ``unseen_classes``."""
        meta = MetadataCatalog.get(dataset_name)
        if not hasattr(meta, "stuff_classes"):
            raise ValueError(f"dataset '{dataset_name}' has no 'stuff_classes' metadata; is it registered?")
        self._dataset_name = dataset_name
        self._class_names = list(meta.stuff_classes)
        self._num_classes = len(self._class_names)
        self._ignore_label = int(getattr(meta, "ignore_label", 255))
        unseen = getattr(meta, "unseen_classes", []) if unseen_classes is None else unseen_classes
        default_seen = [i for i in range(self._num_classes) if i not in set(unseen)]
        seen = getattr(meta, "seen_classes", default_seen) if seen_classes is None else seen_classes
        self._seen, self._unseen = [int(i) for i in seen], [int(i) for i in unseen]
        # validates the ids now rather than after a whole inference run
        segmentation_metrics(np.zeros((self._num_classes,) * 2), self._seen, self._unseen, self._class_names)
        self._distributed = distributed
        self._output_dir = output_dir
        self._boundary = boundary
        self._max_dist_ratio = float(boundary_max_dist_ratio)
        if write_predictions and not output_dir:
            raise ValueError("write_predictions=True needs an output_dir")
        self._write_predictions = write_predictions
        self._gt_files: dict[str, str] | None = None
        self.reset()

    def reset(self) -> None:
        self._counts = SegmentationCounts(self._num_classes)

    def _gt_file(self, inp: dict) -> str:
        if "sem_seg_file_name" in inp:
            return inp["sem_seg_file_name"]
        if self._gt_files is None:  # Detectron2's test-time DatasetMapper drops the key
            self._gt_files = {d["file_name"]: d["sem_seg_file_name"] for d in DatasetCatalog.get(self._dataset_name)}
        if inp.get("file_name") not in self._gt_files:
            raise KeyError(f"input {inp.get('file_name')!r} has no ground truth in dataset '{self._dataset_name}'")
        return self._gt_files[inp["file_name"]]

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """outputs[i]["sem_seg"]: (K, H, W) scores (or (H, W) ids) of inputs[i] at the label's resolution."""
        for inp, out in zip(inputs, outputs):
            gt_file = self._gt_file(inp)
            gt = read_label_png(gt_file)
            sem_seg = out["sem_seg"]
            pred = (sem_seg.argmax(dim=0) if sem_seg.dim() == 3 else sem_seg).to("cpu").numpy()
            try:
                image = evaluate_label_map(
                    gt,
                    pred,
                    num_classes=self._num_classes,
                    ignore_label=self._ignore_label,
                    boundary=self._boundary,
                    max_dist_ratio=self._max_dist_ratio,
                )
            except ValueError as e:
                raise ValueError(f"{gt_file}: {e}") from None
            self._counts.add(image)
            if sem_seg.dim() == 3 and sem_seg.shape[0] == self._num_classes and self._unseen:
                unseen_scores = sem_seg[self._unseen].to("cpu").float().numpy()  # U channels, not all K
                self._counts.add_zsl(zsl_confusion(unseen_scores, gt, self._unseen))
            if self._write_predictions:
                self._save_prediction(pred, gt_file)

    def _save_prediction(self, pred: np.ndarray, gt_file: str) -> None:
        folder = Path(self._output_dir) / "predictions"
        folder.mkdir(parents=True, exist_ok=True)
        dtype = np.uint8 if self._num_classes <= 256 and pred.max(initial=0) <= 255 else np.uint16
        Image.fromarray(pred.astype(dtype)).save(folder / f"{Path(gt_file).stem}.png")

    def evaluate(self) -> "OrderedDict[str, dict[str, float]] | None":
        counts = self._counts
        if self._distributed:
            comm.synchronize()
            gathered = comm.all_gather(self._counts)
            if not comm.is_main_process():
                return None
            counts = SegmentationCounts(self._num_classes)
            for part in gathered:
                counts.merge(part)
        if counts.num_images == 0:
            logger.warning("GeneralizedSemSegEvaluator on '%s' received no predictions", self._dataset_name)
            return OrderedDict()
        res = counts.metrics(self._seen, self._unseen, self._class_names, boundary=self._boundary)
        if counts.invalid.sum():
            logger.warning("%d evaluated pixels had a predicted id outside the classes", int(counts.invalid.sum()))
        if self._output_dir:
            write_metrics(res, self._output_dir)
        logger.info("GZS3 evaluation of '%s' on %d images: %s", self._dataset_name, counts.num_images, dict(res))
        return OrderedDict({"sem_seg": res})
