"""Predictor: one BGR image in, per-class scores and a label map over a chosen class vocabulary out.

The flow is Detectron2's DefaultPredictor (config -> build_model -> checkpoint -> resize to
INPUT.MIN_SIZE_TEST -> model) plus a vocabulary: ``set_vocabulary(names)`` hands the names to the
model's ``set_vocabulary``, which embeds them once; every image after that reuses the embeddings.
Any meta-architecture with ``set_vocabulary(Vocabulary)`` and ``[{"sem_seg": (K, H, W)}]`` outputs
works; a model whose ``set_vocabulary`` does more (e.g. fits a classifier on generated features) is
called only when the vocabulary changes.

Calibration: ``calibration.json`` next to the weights (written by training) gives the gamma subtracted
from seen-class scores. It applies to the training vocabulary only: a user vocabulary has no seen
classes, so its scores are not shifted.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, get_cfg
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from detectron2.projects.deeplab import add_deeplab_config

from ..config import add_zegcag_config
from ..modeling.vocabulary import Vocabulary
from .trainer import CALIBRATION_FILE

logger = logging.getLogger(__name__)

__all__ = ["IncompatibleCheckpointError", "Predictor", "StrictCheckpointer", "build_predictor_cfg"]

# Meta-architectures whose "sem_seg" are non-negative class-probability mixtures (ZegFormer: sum over
# segments of class probability x mask probability) rather than logits; their confidence is the
# normalised score, not a softmax.
PROBABILITY_OUTPUTS = frozenset({"ZegFormer"})


class IncompatibleCheckpointError(ValueError):
    """The checkpoint does not hold the weights of the built model (other architecture or config)."""


class StrictCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer that raises, instead of only warning, when keys are missing, unexpected or
    of another shape (loading a ResNet checkpoint into SPNet would otherwise "succeed")."""

    def _load_model(self, checkpoint: Any):
        incompatible = super()._load_model(checkpoint)
        problems = []
        if incompatible.missing_keys:
            problems.append(f"missing keys {_preview(incompatible.missing_keys)}")
        if incompatible.unexpected_keys:
            problems.append(f"unexpected keys {_preview(incompatible.unexpected_keys)}")
        if incompatible.incorrect_shapes:
            shapes = [f"{k} {tuple(a)} vs model {tuple(b)}" for k, a, b in incompatible.incorrect_shapes]
            problems.append(f"keys of another shape {_preview(shapes)}")
        if problems:
            raise IncompatibleCheckpointError(
                f"the weights do not fit the model {type(self.model).__name__} built from the config: "
                + "; ".join(problems) + ". Use the config the weights were trained with (--config-file, --opts)"
            )
        return incompatible


def _preview(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return f"({len(items)}): {shown}" + (", ..." if len(items) > limit else "")


def _override_list(overrides: dict[str, Any]) -> list:
    """``{"MODEL.DEVICE": "cpu", "INPUT__MIN_SIZE_TEST": 64}`` -> merge_from_list's flat KEY VALUE list."""
    flat = []
    for key, value in overrides.items():
        flat += [key.replace("__", "."), value]
    return flat


def build_predictor_cfg(config_file: str, weights: str | None = None, device: str = "cpu",
                        **overrides: Any) -> CfgNode:
    """A frozen config: ``config_file`` + overrides (``KEY=value``, dots written ``__`` or passed as
    ``**{"A.B": v}``; string values are parsed like command-line opts), then ``weights`` and ``device``."""
    if not Path(config_file).is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_zegcag_config(cfg)
    cfg.merge_from_file(str(config_file))
    cfg.merge_from_list(_override_list(overrides))
    if weights is not None:
        cfg.MODEL.WEIGHTS = str(weights)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device 'cpu'")
    cfg.MODEL.DEVICE = device
    cfg.freeze()
    return cfg


def load_calibration_gamma(weights: str) -> float | None:
    """The gamma in ``calibration.json`` beside a local weights file, or None."""
    path = Path(weights).expanduser().parent / CALIBRATION_FILE
    if not Path(weights).expanduser().is_file() or not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text())["gamma"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} has no valid 'gamma' entry ({e}); delete it or re-run the calibration") from None


class Predictor:
    """``predictor(image_bgr)`` -> ``{"sem_seg": (K, H, W) scores, "labels": (H, W) int64,
    "confidence": (H, W) in [0, 1], "classes": [K names], "synthesised_classes": [names]}``, all on CPU.

    ``image_bgr``: (H, W, 3) uint8, OpenCV channel order (as ``cv2.imread`` returns).
    ``confidence`` is the winning class's probability (softmax of the scores, or the normalised scores
    for models in PROBABILITY_OUTPUTS).
    """

    def __init__(self, config_file: str, weights: str | None = None, device: str = "cpu", **overrides: Any) -> None:
        """
        Args:
            config_file: the YAML the weights were trained with.
            weights: checkpoint (default: the config's MODEL.WEIGHTS); keys must match the model exactly.
            device: "cpu" or "cuda[:i]".
            overrides: config keys, e.g. ``**{"INPUT.MIN_SIZE_TEST": 512}`` or ``INPUT__MIN_SIZE_TEST=512``.
        """
        self.cfg = build_predictor_cfg(config_file, weights, device, **overrides)
        weights_argument, weights = weights, self.cfg.MODEL.WEIGHTS
        if not weights:
            raise ValueError("no weights: pass weights=... (demo: --weights) or set MODEL.WEIGHTS to a trained "
                             "checkpoint")
        if "://" not in weights and not Path(weights).expanduser().is_file():
            raise FileNotFoundError(f"weights file not found: {weights}")
        self.model = build_model(self.cfg)
        self.model.eval()
        if not hasattr(self.model, "set_vocabulary") or not isinstance(getattr(self.model, "vocabulary", None),
                                                                       Vocabulary):
            raise TypeError(f"{type(self.model).__name__} has no set_vocabulary(Vocabulary) and vocabulary "
                            "attribute: it cannot take a user vocabulary")
        try:
            StrictCheckpointer(self.model).load(str(Path(weights).expanduser()) if "://" not in weights else weights)
        except IncompatibleCheckpointError as e:
            if weights_argument is not None:
                raise
            raise IncompatibleCheckpointError(
                f"{e}. No weights were given, and the config's MODEL.WEIGHTS ({weights}) are the starting weights of "
                "training (a pretrained backbone), not a trained model: pass weights=... (demo: --weights)") from None
        self.calibration_gamma = load_calibration_gamma(weights)
        if self.calibration_gamma is not None:
            if hasattr(self.model, "calibration_gamma"):
                self.model.calibration_gamma = self.calibration_gamma
                logger.info(f"calibration gamma {self.calibration_gamma:.3g} from {CALIBRATION_FILE} "
                            "(applies to the training vocabulary)")
            else:
                logger.warning(f"{type(self.model).__name__} has no calibration_gamma; ignoring {CALIBRATION_FILE}")
        self.training_vocabulary: Vocabulary = self.model.vocabulary
        self._vocabulary = self.training_vocabulary
        self.probability_outputs = self.cfg.MODEL.META_ARCHITECTURE in PROBABILITY_OUTPUTS
        self.input_format = self.cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT must be RGB or BGR, got {self.input_format!r}")
        self.aug = T.ResizeShortestEdge([self.cfg.INPUT.MIN_SIZE_TEST] * 2, self.cfg.INPUT.MAX_SIZE_TEST)

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocabulary

    @property
    def classes(self) -> list[str]:
        return list(self._vocabulary.class_names)

    @property
    def synthesised_classes(self) -> list[str]:
        """Classes of the current vocabulary whose classifier the model fitted on generated features (CaGNet
        on a new vocabulary); empty when every class was scored by trained weights."""
        return list(getattr(self.model, "synthesised_classes", ()))

    @property
    def applied_gamma(self) -> float:
        """The gamma actually subtracted from seen-class scores under the current vocabulary (0: none)."""
        gamma = float(getattr(self.model, "calibration_gamma", 0.0) or 0.0)
        return gamma if self._vocabulary.seen else 0.0

    def set_vocabulary(self, names: Sequence[str] | Vocabulary | None) -> Vocabulary:
        """Score these classes from now on. None or the training class list -> the training vocabulary (its
        seen classes calibrated); other names -> a vocabulary with no seen class (no calibration)."""
        if names is None:
            vocabulary = self.training_vocabulary
        elif isinstance(names, Vocabulary):
            vocabulary = names
        else:
            if isinstance(names, str):
                raise TypeError(f"expected a list of class names, got the single string {names!r}")
            names = tuple(n.strip() if isinstance(n, str) else n for n in names)
            same = names == self.training_vocabulary.class_names
            vocabulary = self.training_vocabulary if same else Vocabulary.unseen_only(names)
        if vocabulary == self._vocabulary:
            return vocabulary
        previous = self._vocabulary
        try:
            self.model.set_vocabulary(vocabulary)
        except Exception:
            self.model.set_vocabulary(previous)  # the model may have half-switched; its embedder caches `previous`
            raise
        self._vocabulary = vocabulary
        logger.info(f"vocabulary: {len(vocabulary.class_names)} classes ({len(vocabulary.seen)} seen in training)")
        synthesised = self.synthesised_classes
        if synthesised:
            more = f" and {len(synthesised) - 20} more" if len(synthesised) > 20 else ""
            logger.info(f"classes synthesised from the generator: {', '.join(synthesised[:20])}{more}")
        return vocabulary

    def scores_to_confidence(self, sem_seg: torch.Tensor) -> torch.Tensor:
        """``(K, H, W)`` scores -> ``(K, H, W)`` per-pixel class probabilities (sum 1 over K)."""
        if self.probability_outputs:
            probs = sem_seg.clamp(min=0)
            return probs / probs.sum(0, keepdim=True).clamp(min=1e-12)
        return sem_seg.float().softmax(0)

    @torch.no_grad()
    def __call__(self, image_bgr: np.ndarray) -> dict[str, Any]:
        if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            shape = getattr(image_bgr, "shape", type(image_bgr).__name__)
            raise ValueError(f"expected an (H, W, 3) BGR image array, got {shape}")
        if image_bgr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {image_bgr.dtype}")
        image = image_bgr[:, :, ::-1] if self.input_format == "RGB" else image_bgr
        height, width = image.shape[:2]
        resized = self.aug.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        sem_seg = self.model([{"image": tensor, "height": height, "width": width}])[0]["sem_seg"].float().cpu()
        labels = sem_seg.argmax(0)
        confidence = self.scores_to_confidence(sem_seg).gather(0, labels[None])[0]
        return {"sem_seg": sem_seg, "labels": labels, "confidence": confidence, "classes": self.classes,
                "synthesised_classes": self.synthesised_classes}
