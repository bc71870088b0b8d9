"""SPNet-style baseline: pixel features projected into the class-embedding space.

Shapes: B batch, H/W padded input, h/w feature size, D embedding dim, K vocabulary size, S seen classes.
``features: (B, C, h, w)`` -> ``embedding map (B, D, h, w)`` -> ``scores = embedding · E_k  (B, K, h, w)``.
Training scores only the seen classes (cross-entropy, unseen pixels ignored); inference scores the whole
vocabulary and subtracts the calibration gamma from seen-class scores (Xian et al., CVPR'19, Sec. 3.3).
"""
from __future__ import annotations

from typing import Sequence

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList
from torch.nn import functional as F

from ...data.protocol import resolve_split, training_classes
from ...embeddings import ClassEmbedder, build_class_embedder
from ..aspp_sum import SummedASPP
from ..vocabulary import Vocabulary
from ..zero_shot_segmentor import ZeroShotSegmentor, downsample_labels, pixel_cross_entropy


@META_ARCH_REGISTRY.register()
class SPNet(ZeroShotSegmentor):
    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        in_feature: str,
        aspp_dilations: Sequence[int],
        class_embedder: ClassEmbedder,
        vocabulary: Vocabulary,
        ignore_label: int,
        calibration_gamma: float,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        loss_at_feature_resolution: bool = False,
    ) -> None:
        """
        Args:
            backbone: feature extractor; ``in_feature`` names the map that is projected.
            aspp_dilations: dilations of the summed-ASPP projection (empty: a 1x1 conv).
            class_embedder: maps class names to fixed (K, D) embeddings (not trained, not in the state dict).
            vocabulary: class names and which are seen; training uses the seen ones only, and
                calibration lowers the seen ones.
            calibration_gamma: subtracted from seen-class scores at inference.
            loss_at_feature_resolution: cross-entropy on the score map's grid against nearest-downsampled
                labels, instead of on scores upsampled to the input size (cheaper with many classes).
        """
        super().__init__(pixel_mean=pixel_mean, pixel_std=pixel_std, calibration_gamma=calibration_gamma)
        self.backbone = backbone
        self.in_feature = in_feature
        self.class_embedder = class_embedder
        self.projection = SummedASPP(backbone.output_shape()[in_feature].channels, class_embedder.dim, aspp_dilations)
        self.ignore_label = ignore_label
        self.loss_at_feature_resolution = loss_at_feature_resolution
        self.set_vocabulary(vocabulary)

    @classmethod
    def from_config(cls, cfg) -> dict:
        backbone = build_backbone(cfg)
        split = resolve_split(cfg, (cfg.DATASETS.TRAIN or cfg.DATASETS.TEST)[0])
        return {
            "backbone": backbone,
            "in_feature": cfg.MODEL.SPNET.IN_FEATURE,
            "aspp_dilations": cfg.MODEL.SPNET.ASPP_DILATIONS,
            "class_embedder": build_class_embedder(cfg),
            "vocabulary": Vocabulary(split.class_names, frozenset(training_classes(cfg, split))),
            "ignore_label": split.ignore_label,
            "calibration_gamma": cfg.MODEL.SPNET.CALIBRATION_GAMMA,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "loss_at_feature_resolution": cfg.MODEL.SPNET.LOSS_AT_FEATURE_RESOLUTION,
        }

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Embed the vocabulary's class names; the model then scores these K classes."""
        embeddings = self.class_embedder(vocabulary.class_names).to(self.device)  # may fail: switch nothing before
        self.vocabulary = vocabulary
        self.register_buffer("class_embeddings", embeddings, False)
        self.register_buffer("seen_mask", vocabulary.seen_mask().to(self.device), False)
        self.register_buffer(
            "train_label_map", vocabulary.train_label_map(self.ignore_label).to(self.device), False
        )

    def class_scores(self, images: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``images: (B, 3, H, W)`` normalised -> ``(B, K', h, w)`` scores of ``class_ids`` (default: all)."""
        embeddings = self.class_embeddings if class_ids is None else self.class_embeddings[class_ids]
        features = self.backbone(images)[self.in_feature]
        return self.projection(features, embeddings)

    def forward(self, batched_inputs: list[dict]) -> dict | list[dict]:
        images = self.normalized_images(batched_inputs)
        images = ImageList.from_tensors(images, self.backbone.size_divisibility)
        if self.training:
            targets = [x["sem_seg"].to(self.device) for x in batched_inputs]
            targets = ImageList.from_tensors(targets, self.backbone.size_divisibility, self.ignore_label).tensor
            return self.losses(images.tensor, targets)
        return self.dense_results(self.class_scores(images.tensor), images, batched_inputs)

    def losses(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy over the seen classes; ``targets: (B, H, W)`` class ids, unseen already ignored."""
        seen_ids = self.seen_mask.nonzero().squeeze(1)
        scores = self.class_scores(images, seen_ids)
        if self.loss_at_feature_resolution:
            targets = downsample_labels(targets, scores.shape[-2:])
        else:
            scores = F.interpolate(scores, size=targets.shape[-2:], mode="bilinear", align_corners=False)
        return {"loss_ce": pixel_cross_entropy(scores, self.train_label_map[targets], self.ignore_label)}
