"""Choosing the calibration gamma (subtracted from seen-class scores) on held-out data.

One pass over the data: for every image the model's uncalibrated scores ``(K, H, W)`` are turned into
one prediction per candidate gamma, each accumulated in its own confusion matrix; the gamma with the
best hIoU (ties: the smaller gamma) wins. Generalised zero-shot results depend strongly on gamma
(seen classes dominate uncalibrated scores), so it is chosen on a split that is not evaluated.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
import tqdm

from ..data.label_io import read_label
from ..evaluation.metrics import confusion_matrix, segmentation_metrics

logger = logging.getLogger(__name__)


@torch.no_grad()
def search_calibration_gamma(
    model: torch.nn.Module,
    data_loader,
    gammas: Sequence[float],
    seen: Sequence[int],
    unseen: Sequence[int],
    ignore_label: int,
) -> tuple[float, list[dict]]:
    """Best gamma by hIoU and the metrics of every candidate.

    ``model`` must expose a float attribute ``calibration_gamma`` and return ``[{"sem_seg": (K, H, W)}]``.
    """
    if not hasattr(model, "calibration_gamma"):
        raise TypeError(f"{type(model).__name__} has no calibration_gamma: it cannot be calibrated")
    num_classes = len(seen) + len(unseen)
    seen_mask = torch.zeros(num_classes, dtype=torch.bool)
    seen_mask[list(seen)] = True
    gamma_values = torch.tensor(list(gammas), dtype=torch.float32)
    confusions = np.zeros((len(gamma_values), num_classes, num_classes), dtype=np.int64)

    was_training, previous_gamma = model.training, model.calibration_gamma
    model.eval()
    model.calibration_gamma = 0.0
    try:
        for inputs in tqdm.tqdm(data_loader, desc="calibration", leave=False):
            outputs = model(inputs)
            for x, out in zip(inputs, outputs):
                gt = read_label(x["sem_seg_file_name"])
                scores = out["sem_seg"].float().cpu()
                offsets = seen_mask[:, None, None].float()
                for g, gamma in enumerate(gamma_values):
                    pred = (scores - gamma * offsets).argmax(0).numpy()
                    confusions[g] += confusion_matrix(gt, pred, num_classes, ignore_label)
    finally:
        model.calibration_gamma = previous_gamma
        model.train(was_training)

    table = []
    for gamma, conf in zip(gamma_values.tolist(), confusions):
        metrics = segmentation_metrics(conf, seen, unseen)
        table.append({"gamma": gamma, **{k: metrics[k] for k in ("seen_mIoU", "unseen_mIoU", "hIoU", "mIoU")}})
    scores = np.array([row["hIoU"] for row in table], dtype=np.float64)
    best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
    logger.info(
        f"calibration: gamma={table[best]['gamma']:.3g} gives hIoU {table[best]['hIoU']:.2f} "
        f"(seen {table[best]['seen_mIoU']:.2f}, unseen {table[best]['unseen_mIoU']:.2f})"
    )
    return table[best]["gamma"], table
