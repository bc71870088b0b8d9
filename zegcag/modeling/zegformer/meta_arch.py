"""ZegFormer (Ding et al., CVPR'22): decoupled zero-shot segmentation by class-agnostic segment prediction
and segment classification in a class-embedding space, optionally refined by CLIP's image encoder.

Shapes: B batch, H/W padded input, h/w original size, Q queries, K vocabulary size, S seen classes.
Training: backbone -> ZegFormerHead against the S seen-class embeddings -> SetCriterion losses.
Inference (MODEL.ZEGFORMER.INFERENCE_MODE): "seg" (ZegFormer-seg), "img" (ZegFormer-img: CLIP image-branch
class probabilities) or "fusion" (ZegFormer: both, fused with lambda) -> ``[{"sem_seg": (K, h, w)}]``, with the
calibration gamma subtracted from seen-class scores.
"""
from __future__ import annotations

import logging
from typing import Sequence

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.modeling.postprocessing import sem_seg_postprocess
from detectron2.structures import ImageList
from torch.nn import functional as F

from ...data.protocol import resolve_split, training_classes
from ...embeddings import ClassEmbedder, build_class_embedder
from ..matcher import HungarianMatcher
from ..vocabulary import Vocabulary
from ..zero_shot_segmentor import ZeroShotSegmentor, downsample_labels, pixel_cross_entropy
from . import fusion
from .criterion import SetCriterion
from .head import ZegFormerHead
from .image_branch import ClipImageBranch, build_clip_image_branch
from .targets import semantic_to_mask_targets

logger = logging.getLogger(__name__)

__all__ = ["INFERENCE_MODES", "ZegFormer"]

INFERENCE_MODES = ("seg", "img", "fusion")


@META_ARCH_REGISTRY.register()
class ZegFormer(ZeroShotSegmentor):
    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        head: ZegFormerHead,
        criterion: SetCriterion,
        class_embedder: ClassEmbedder,
        vocabulary: Vocabulary,
        ignore_label: int,
        size_divisibility: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        inference_mode: str,
        image_branch: ClipImageBranch | None,
        fusion_lambda: float,
        clip_topk: int,
        clip_no_object_in_softmax: bool,
        calibration_gamma: float,
        pixel_class_weight: float = 0.0,
    ) -> None:
        """
        Args:
            backbone, head, criterion: the network and its training losses.
            class_embedder: class names -> fixed (K, D) embeddings (not trained, not in the state dict).
            vocabulary: class names and which are seen; training scores the seen ones only.
            size_divisibility: images (and labels) are padded to a multiple of this.
            inference_mode: "seg", "img" or "fusion"; the last two need ``image_branch``.
            fusion_lambda: weight of the segment head on seen classes (and of CLIP on unseen ones).
            clip_topk: the CLIP branch classifies only the top-k most confident segments (0: all).
            clip_no_object_in_softmax: append the segment head's no-object logit to the CLIP softmax (official).
            calibration_gamma: subtracted from seen-class scores at inference.
            pixel_class_weight: weight of ``loss_pixel_cls``, an SPNet cross-entropy of the mask-pooled classifier's
                projection on every pixel of the transformer-input feature (needs SEGMENT_EMBEDDING "mask_pooled").
        """
        super().__init__(pixel_mean=pixel_mean, pixel_std=pixel_std, calibration_gamma=calibration_gamma)
        if pixel_class_weight and head.segment_embedding != "mask_pooled":
            raise ValueError("MODEL.ZEGFORMER.PIXEL_CLASS_WEIGHT trains the mask-pooled classifier: it needs "
                             "MODEL.ZEGFORMER.SEGMENT_EMBEDDING 'mask_pooled'")
        self.pixel_class_weight = pixel_class_weight
        if inference_mode not in INFERENCE_MODES:
            raise ValueError(f"MODEL.ZEGFORMER.INFERENCE_MODE must be one of {INFERENCE_MODES}, got {inference_mode!r}")
        if inference_mode != "seg" and image_branch is None:
            raise ValueError(f"MODEL.ZEGFORMER.INFERENCE_MODE {inference_mode!r} needs the CLIP image branch")
        if not 0.0 <= fusion_lambda <= 1.0:
            raise ValueError(f"MODEL.ZEGFORMER.FUSION_LAMBDA must be in [0, 1], got {fusion_lambda}")
        self.backbone = backbone
        self.head = head
        self.criterion = criterion
        self.class_embedder = class_embedder
        self.ignore_label = ignore_label
        self.size_divisibility = size_divisibility
        self.inference_mode = inference_mode
        self.image_branch = image_branch  # a plain attribute: CLIP stays out of the state dict
        self.fusion_lambda = fusion_lambda
        self.clip_topk = clip_topk
        self.clip_no_object_in_softmax = clip_no_object_in_softmax
        self.set_vocabulary(vocabulary)

    @classmethod
    def from_config(cls, cfg) -> dict:
        backbone = build_backbone(cfg)
        class_embedder = build_class_embedder(cfg)
        split = resolve_split(cfg, (cfg.DATASETS.TRAIN or cfg.DATASETS.TEST)[0])
        matcher = HungarianMatcher(cost_class=cfg.MODEL.ZEGFORMER.CLASS_WEIGHT,
                                   cost_mask=cfg.MODEL.ZEGFORMER.MASK_WEIGHT,
                                   cost_dice=cfg.MODEL.ZEGFORMER.DICE_WEIGHT,
                                   ignore_as_negatives=cfg.MODEL.ZEGFORMER.IGNORE_PIXELS_AS_NEGATIVES)
        criterion = SetCriterion(matcher, no_object_weight=cfg.MODEL.ZEGFORMER.NO_OBJECT_WEIGHT,
                                 class_weight=cfg.MODEL.ZEGFORMER.CLASS_WEIGHT,
                                 mask_weight=cfg.MODEL.ZEGFORMER.MASK_WEIGHT,
                                 dice_weight=cfg.MODEL.ZEGFORMER.DICE_WEIGHT,
                                 ignore_as_negatives=cfg.MODEL.ZEGFORMER.IGNORE_PIXELS_AS_NEGATIVES)
        return {
            "backbone": backbone,
            "head": ZegFormerHead(cfg, backbone.output_shape(), embed_dim=class_embedder.dim),
            "criterion": criterion,
            "class_embedder": class_embedder,
            "vocabulary": Vocabulary(split.class_names, frozenset(training_classes(cfg, split))),
            "ignore_label": split.ignore_label,
            "size_divisibility": cfg.MODEL.ZEGFORMER.SIZE_DIVISIBILITY,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "inference_mode": cfg.MODEL.ZEGFORMER.INFERENCE_MODE,
            "image_branch": build_clip_image_branch(cfg, class_embedder),
            "fusion_lambda": cfg.MODEL.ZEGFORMER.FUSION_LAMBDA,
            "clip_topk": cfg.MODEL.ZEGFORMER.CLIP_TOPK,
            "clip_no_object_in_softmax": cfg.MODEL.ZEGFORMER.CLIP_NO_OBJECT_IN_SOFTMAX,
            "calibration_gamma": cfg.MODEL.ZEGFORMER.CALIBRATION_GAMMA,
            "pixel_class_weight": cfg.MODEL.ZEGFORMER.PIXEL_CLASS_WEIGHT,
        }

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Embed the vocabulary's class names; the model then scores these K classes."""
        embeddings = self.class_embedder(vocabulary.class_names).to(self.device)
        self.head.segment_classifier.check_embeddings(embeddings)
        self.vocabulary = vocabulary
        self.register_buffer("class_embeddings", embeddings, False)
        self.register_buffer("seen_mask", vocabulary.seen_mask().to(self.device), False)
        self.register_buffer("train_label_map", vocabulary.train_label_map(self.ignore_label).to(self.device), False)

    def forward(self, batched_inputs: list[dict]) -> dict | list[dict]:
        images = self.normalized_images(batched_inputs)
        images = ImageList.from_tensors(images, self.size_divisibility)
        features = self.backbone(images.tensor)
        if self.training:
            return self.losses(features, batched_inputs)
        outputs = self.head(features, self.class_embeddings)
        masks = F.interpolate(outputs["pred_masks"], size=images.tensor.shape[-2:], mode="bilinear",
                              align_corners=False)
        return [
            {"sem_seg": self.inference_single(logits, mask, x, size)}
            for logits, mask, x, size in zip(outputs["pred_logits"], masks, batched_inputs, images.image_sizes)
        ]

    def losses(self, features: dict, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        """Set-prediction losses against the seen classes; labels are ``(H, W)`` dataset class ids."""
        labels = [x["sem_seg"].to(self.device) for x in batched_inputs]
        labels = ImageList.from_tensors(labels, self.size_divisibility, self.ignore_label).tensor
        if labels.min() < 0 or labels.max() >= len(self.train_label_map):
            raise ValueError(f"training labels hold ids outside 0..{len(self.train_label_map) - 1}: "
                             f"{labels.min().item()}..{labels.max().item()}")
        targets = semantic_to_mask_targets(self.train_label_map[labels], self.ignore_label)
        seen_ids = self.seen_mask.nonzero().squeeze(1)
        outputs = self.head(features, self.class_embeddings[seen_ids])
        losses = self.criterion(outputs, targets)
        if self.pixel_class_weight:
            losses["loss_pixel_cls"] = self.pixel_class_weight * self.pixel_class_loss(
                features[self.head.transformer_in_feature], self.train_label_map[labels], seen_ids)
        return losses

    def pixel_class_loss(self, feature: torch.Tensor, labels: torch.Tensor, seen_ids: torch.Tensor) -> torch.Tensor:
        """SPNet's loss on the mask-pooled classifier: ``feature (B, C, h, w)``, ``labels (B, H, W)`` in seen-class
        index space -> cross-entropy of ``<P f, T_s>`` (dot product, as SPNet) on the feature grid."""
        projection = self.head.segment_classifier.pooled_projection
        embedded = projection(feature.permute(0, 2, 3, 1))  # (B, h, w, D)
        scores = (embedded @ self.class_embeddings[seen_ids].to(embedded.dtype).T).permute(0, 3, 1, 2)
        return pixel_cross_entropy(scores, downsample_labels(labels, scores.shape[-2:]), self.ignore_label)

    def inference_single(self, logits: torch.Tensor, masks: torch.Tensor, x: dict, image_size) -> torch.Tensor:
        """``logits: (Q, K+1)``, ``masks: (Q, H, W)`` padded-size logits -> ``(K, height, width)`` scores."""
        h, w = image_size
        class_probs = fusion.segment_class_probs(logits)
        if self.inference_mode != "seg":
            if self.image_branch is None:
                raise RuntimeError(f"inference mode {self.inference_mode!r} needs the CLIP image branch, which is "
                                   "built only when MODEL.ZEGFORMER.INFERENCE_MODE is 'img' or 'fusion'")
            class_probs = class_probs.clone()
            ids = fusion.select_queries(class_probs, self.clip_topk)
            clip_logits = self.image_branch.class_logits(
                x["image"].to(self.device), masks[ids, :h, :w], self.vocabulary.class_names
            )
            no_object = logits[ids, -1] if self.clip_no_object_in_softmax else None
            clip_probs = fusion.clip_class_probs(clip_logits, no_object)
            if self.inference_mode == "fusion":
                clip_probs = fusion.fuse_class_probs(class_probs[ids], clip_probs, self.seen_mask, self.fusion_lambda)
            class_probs[ids] = clip_probs
        scores = fusion.semantic_scores(class_probs, masks)
        scores = sem_seg_postprocess(scores, image_size, x.get("height", h), x.get("width", w))
        return self.calibrate(scores)
