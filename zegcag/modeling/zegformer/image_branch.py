"""ZegFormer's CLIP image branch (paper §3.3): classify each predicted segment's sub-image with CLIP.

Shapes: N segments, H/W image size, S CLIP input size, K classes, D CLIP embedding dim.
``mask_boxes``: ``(N, H, W)`` bool -> ``(N, 4)`` pixel-edge boxes (x0, y0, x1, y1); an empty mask -> whole image.
``extract_sub_images``: ``image (3, H, W)``, ``masks (N, H, W)`` bool -> ``(N, 3, S, S)``, by style:
    "cropmask": the mask's bounding box of the masked image, resampled to S x S with roi_align (aspect not kept);
    "crop": the same box of the unmasked image; "mask": the whole masked image resized to S x S.
    An empty mask stands for the whole image (official code: a blank masked image in the whole-image box).
``ClipImageBranch.class_logits``: ``image (3, H, W)``, ``mask_logits (N, H, W)``, K names -> ``(N, K)``
    = CLIP logit scale x cos(image embedding of each sub-image, text embedding of each class).
The CLIP model is not part of the ZegFormer state dict; it is loaded lazily, on first use, through the
text embedder (shared with the class embedder when that is the same CLIP).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import torch
from torch.nn import functional as F
from torchvision.ops import roi_align

from ...embeddings import ClassEmbedder
from ...embeddings.clip_loader import LoadedClip, resolve_weights
from ...embeddings.clip_text import ClipTextEmbedder
from ...embeddings.templates import get_templates

logger = logging.getLogger(__name__)

__all__ = [
    "CLIP_CLS_STYLES",
    "ClipImageBranch",
    "ImageBranchTextEmbedder",
    "build_clip_image_branch",
    "extract_sub_images",
    "mask_boxes",
]

CLIP_CLS_STYLES = ("cropmask", "mask", "crop")


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes ``[x0, y0, x1, y1)`` in pixel-edge coordinates of ``(N, H, W)`` bool masks -> ``(N, 4)`` float;
    the box of an empty mask is the whole image ``[0, 0, W, H]``."""
    n, h, w = masks.shape
    rows, cols = masks.any(dim=2), masks.any(dim=1)  # (N, H), (N, W)
    y0 = rows.int().argmax(dim=1)
    y1 = h - rows.flip(1).int().argmax(dim=1)
    x0 = cols.int().argmax(dim=1)
    x1 = w - cols.flip(1).int().argmax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    empty = ~rows.any(dim=1)
    boxes[empty] = torch.tensor([0.0, 0.0, float(w), float(h)], device=masks.device)
    return boxes


def extract_sub_images(
    image: torch.Tensor, masks: torch.Tensor, style: str, size: int | tuple[int, int]
) -> torch.Tensor:
    """``image (3, H, W)`` float (already CLIP-normalised), ``masks (N, H, W)`` bool -> ``(N, 3, *size)``."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if style not in CLIP_CLS_STYLES:
        raise ValueError(f"MODEL.ZEGFORMER.CLIP_CLS_STYLE must be one of {CLIP_CLS_STYLES}, got {style!r}")
    n = masks.shape[0]
    empty = ~masks.flatten(1).any(dim=1)
    masks = masks | empty[:, None, None]  # an empty mask stands for the whole image
    weights = masks[:, None].to(image.dtype)  # (N, 1, H, W)
    if style == "mask":
        resized = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        small = F.interpolate(weights, size=size, mode="bilinear", align_corners=False) > 0.5
        return resized * small.to(image.dtype)
    boxes = mask_boxes(masks)
    if style == "crop":
        rois = torch.cat([torch.zeros(n, 1, device=image.device), boxes.to(image.device)], dim=1)
        return roi_align(image[None], rois.to(image.dtype), size, aligned=True)
    rois = torch.cat([torch.arange(n, device=image.device, dtype=image.dtype)[:, None], boxes.to(image.dtype)], dim=1)
    return roi_align(image[None] * weights, rois, size, aligned=True)


class ImageBranchTextEmbedder(ClipTextEmbedder):
    """CLIP text embeddings (image-branch templates) whose CLIP model may come from elsewhere.

    ``loader``: returns the LoadedClip to use (e.g. the class embedder's ``load``); None loads its own.
    """

    def __init__(self, *, loader: Callable[[], LoadedClip] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loader = loader

    def load(self) -> LoadedClip:
        return self._loader() if self._loader is not None else super().load()


class ClipImageBranch:
    """Scores segments with the CLIP image encoder against CLIP text embeddings of the class names.

    Args:
        text_embedder: CLIP text embedder with the image-branch templates; its ``load()`` gives the image encoder.
        style: "cropmask", "mask" or "crop" (see module docstring).
        batch_size: sub-images per CLIP forward pass (bounds memory).
        input_format: channel order of the images given to ZegFormer ("RGB" or "BGR"); CLIP wants RGB.
        mask_threshold: a pixel belongs to a segment if sigmoid(mask logit) > this.
    """

    def __init__(self, text_embedder: ClipTextEmbedder, *, style: str, batch_size: int, input_format: str,
                 mask_threshold: float = 0.5) -> None:
        if style not in CLIP_CLS_STYLES:
            raise ValueError(f"MODEL.ZEGFORMER.CLIP_CLS_STYLE must be one of {CLIP_CLS_STYLES}, got {style!r}")
        if batch_size < 1:
            raise ValueError(f"MODEL.ZEGFORMER.CLIP_BATCH_SIZE must be positive, got {batch_size}")
        if input_format not in ("RGB", "BGR"):
            raise ValueError(f"the CLIP image branch needs INPUT.FORMAT RGB or BGR, got {input_format!r}")
        self.text_embedder = text_embedder
        self.style = style
        self.batch_size = batch_size
        self.input_format = input_format
        self.mask_threshold = mask_threshold
        self._text_cache: dict[tuple[str, ...], torch.Tensor] = {}

    def text_embeddings(self, class_names: Sequence[str]) -> torch.Tensor:
        """``(K, D)`` unit rows on the CLIP model's device, computed once per vocabulary."""
        key = tuple(class_names)
        if key not in self._text_cache:
            device = self._device(self.text_embedder.load())
            self._text_cache[key] = self.text_embedder(list(class_names)).to(device)
        return self._text_cache[key]

    @staticmethod
    def _device(clip: LoadedClip) -> torch.device:
        return next(clip.model.parameters()).device

    def _normalise(self, image: torch.Tensor, clip: LoadedClip) -> torch.Tensor:
        """``(3, H, W)`` 0-255 in ``input_format`` -> RGB normalised with CLIP's mean and std."""
        if self.input_format == "BGR":
            image = image.flip(0)
        mean = torch.tensor(clip.preprocess["mean"], device=image.device)[:, None, None] * 255
        std = torch.tensor(clip.preprocess["std"], device=image.device)[:, None, None] * 255
        return (image.float() - mean) / std

    @torch.no_grad()
    def class_logits(self, image: torch.Tensor, mask_logits: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        """``image (3, H, W)`` 0-255, ``mask_logits (N, H, W)`` at image size, K names -> ``(N, K)``
        on the image's device."""
        clip = self.text_embedder.load()
        device = self._device(clip)
        text = self.text_embeddings(class_names)
        size = clip.preprocess["size"]
        normalised = self._normalise(image, clip)
        masks = mask_logits.sigmoid() > self.mask_threshold
        features = []
        for start in range(0, masks.shape[0], self.batch_size):
            sub_images = extract_sub_images(normalised, masks[start:start + self.batch_size], self.style, size)
            features.append(F.normalize(clip.model.encode_image(sub_images.to(device)).float(), dim=-1))
        image_features = torch.cat(features) if features else torch.zeros(0, text.shape[1], device=device)
        logits = clip.model.logit_scale.exp().float() * image_features @ text.T.float()
        return logits.to(image.device)


def build_clip_image_branch(cfg, class_embedder: ClassEmbedder) -> ClipImageBranch | None:
    """The CLIP image branch for inference modes "img" / "fusion" (None for "seg"); its CLIP is
    MODEL.CLASS_EMBED.CLIP_*, shared with the class embedder when that is a CLIP text embedder of it."""
    if cfg.MODEL.ZEGFORMER.INFERENCE_MODE == "seg":
        return None
    try:
        get_templates(cfg.MODEL.ZEGFORMER.CLIP_IMAGE_TEMPLATES)
    except (KeyError, FileNotFoundError, ValueError) as e:
        raise type(e)(f"MODEL.ZEGFORMER.CLIP_IMAGE_TEMPLATES: {e.args[0] if e.args else e}") from None
    ce = cfg.MODEL.CLASS_EMBED
    shares_clip = isinstance(class_embedder, ClipTextEmbedder) and (
        class_embedder.model_name, class_embedder.model_config, class_embedder.weights
    ) == (ce.CLIP_MODEL, ce.CLIP_MODEL_CONFIG, resolve_weights(ce.CLIP_MODEL, ce.CLIP_PRETRAINED))
    text_embedder = ImageBranchTextEmbedder(
        loader=class_embedder.load if shares_clip else None,
        model_name=ce.CLIP_MODEL, pretrained=ce.CLIP_PRETRAINED, model_config=ce.CLIP_MODEL_CONFIG,
        templates=cfg.MODEL.ZEGFORMER.CLIP_IMAGE_TEMPLATES, cache_dir=ce.CACHE_DIR, device=cfg.MODEL.DEVICE,
    )
    return ClipImageBranch(text_embedder, style=cfg.MODEL.ZEGFORMER.CLIP_CLS_STYLE,
                           batch_size=cfg.MODEL.ZEGFORMER.CLIP_BATCH_SIZE, input_format=cfg.INPUT.FORMAT)
