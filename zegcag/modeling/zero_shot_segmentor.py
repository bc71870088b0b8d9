"""What every zegcag meta-architecture shares: input normalisation, its device, and seen-class calibration.

Shapes: B batch, K vocabulary size, h/w score-map size, H/W image size.
"""
from __future__ import annotations

from typing import Sequence

import torch
from detectron2.modeling.postprocessing import sem_seg_postprocess
from detectron2.structures import ImageList
from torch import nn
from torch.nn import functional as F


def calibrate_scores(scores: torch.Tensor, seen: torch.Tensor, gamma: float) -> torch.Tensor:
    """``scores: (K, H, W)`` -> the same with ``gamma`` subtracted from the seen classes ``seen: (K,)`` bool.

    Generalised zero-shot calibration (Chao et al., ECCV'16): seen classes dominate uncalibrated scores.
    A no-op for gamma 0.
    """
    if not gamma:
        return scores
    return scores - gamma * seen.to(device=scores.device, dtype=scores.dtype)[:, None, None]


def pixel_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_label: int) -> torch.Tensor:
    """Pixel cross-entropy; ``logits: (B, K, h, w)``, ``labels: (B, h, w)`` with ``ignore_label`` skipped."""
    if (labels == ignore_label).all():  # e.g. a crop of unseen pixels only: the mean over nothing is NaN
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=ignore_label)


def downsample_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``labels: (B, H, W)`` class ids -> ``(B, h, w)`` by nearest neighbour (ids are never averaged)."""
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


class ZeroShotSegmentor(nn.Module):
    """Base of SPNet, ZegFormer and CaGNet. Subclasses set ``self.seen_mask`` (K,) in ``set_vocabulary``."""

    def __init__(self, *, pixel_mean: Sequence[float], pixel_std: Sequence[float], calibration_gamma: float) -> None:
        super().__init__()
        self.calibration_gamma = calibration_gamma
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def normalized_images(self, batched_inputs: list[dict]) -> list[torch.Tensor]:
        """``[{"image": (3, H, W) uint8}]`` -> normalised float images on the model's device."""
        return [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]

    def calibrate(self, scores: torch.Tensor) -> torch.Tensor:
        """``(K, H, W)`` scores with ``calibration_gamma`` subtracted from the seen classes."""
        return calibrate_scores(scores, self.seen_mask, self.calibration_gamma)

    def dense_results(self, scores: torch.Tensor, images: ImageList, batched_inputs: list[dict]) -> list[dict]:
        """``scores: (B, K, h, w)`` of the padded batch -> ``[{"sem_seg": (K, H, W)}]`` at each input's size, calibrated."""
        scores = F.interpolate(scores, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False)
        results = []
        for score, x, size in zip(scores, batched_inputs, images.image_sizes):
            score = sem_seg_postprocess(score, size, x.get("height", size[0]), x.get("width", size[1]))
            results.append({"sem_seg": self.calibrate(score)})
        return results
