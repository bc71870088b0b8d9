"""A classifier C for a vocabulary CaGNet was not trained on, fitted on features its generator makes.

G turns any class embedding (plus a latent code z ~ N(0, 1)) into visual features, which is what lets
CaGNet's finetuning step train C on unseen classes without images. The same step, run once for a new
vocabulary, gives that vocabulary its own classifier: draw features of its K' classes from G (eval
mode, no dropout), keep C's trained first layer (the trunk, trained on real and generated features)
frozen, and fit a fresh K'-way 1x1 head on top with Adam. The result is a FeatureClassifier like the
trained one, so inference is unchanged. Finetuning a copy of the trunk too (``train_trunk``) was no
better on the weights and the feature-level simulation tried so far, and is slower, hence off by default.
Patch-wise models (k x k trunk) get pure single-class k x k patches with one z per patch, as in the
finetuning step; only the patch centre is classified.

Shapes: K' vocabulary classes, D class-embedding dim, C feature dim, H trunk width, N generated features.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .classifier import FeatureClassifier
from .generator import Generator

logger = logging.getLogger(__name__)

__all__ = ["VocabularyClassifiers", "VocabularyFitSettings", "fit_vocabulary_classifier", "generate_class_features"]


@dataclass(frozen=True)
class VocabularyFitSettings:
    """How a new vocabulary's classifier is fitted (MODEL.CAGNET.VOCAB_FIT.<FIELD IN CAPITALS>)."""

    steps: int = 200  # Adam steps on the head
    lr: float = 0.05  # Adam learning rate (the head starts at zero; 171 classes need a large one to fit in 200 steps)
    batch_pixels: int = 512  # generated features per step
    features_per_class: int = 128  # generated features drawn per class (the training pool)
    train_trunk: bool = False  # also finetune a copy of the trained trunk (False: trunk frozen)
    seed: int = 0  # seeds z, the minibatch order and the head: the same settings give the same classifier

    def __post_init__(self) -> None:
        for name in ("steps", "batch_pixels", "features_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"MODEL.CAGNET.VOCAB_FIT.{name.upper()} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"MODEL.CAGNET.VOCAB_FIT.LR must be positive, got {self.lr}")

    @classmethod
    def from_config(cls, cfg: Any) -> "VocabularyFitSettings":
        """Reads MODEL.CAGNET.VOCAB_FIT."""
        c = cfg.MODEL.CAGNET
        return cls(steps=c.VOCAB_FIT.STEPS, lr=c.VOCAB_FIT.LR, batch_pixels=c.VOCAB_FIT.BATCH_PIXELS,
                   features_per_class=c.VOCAB_FIT.FEATURES_PER_CLASS, train_trunk=c.VOCAB_FIT.TRAIN_TRUNK,
                   seed=c.VOCAB_FIT.SEED)


def generate_class_features(generator: Generator, class_embeddings: torch.Tensor, per_class: int,
                            rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``class_embeddings: (K', D)`` -> G's features ``(N, C)`` with ``N = K' * per_class`` and their labels
    ``(N,)``; G in eval mode (no dropout), z ~ N(0, 1) drawn from ``rng`` (a CPU generator)."""
    device = class_embeddings.device
    labels = torch.arange(len(class_embeddings)).repeat_interleave(per_class)
    z = torch.randn(generator.latent_dim, len(labels), generator=rng)
    labels, z = labels.to(device), z.to(device)
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():  # the N features as one (1, C, N, 1) map: faster than N 1x1 maps
            valid = torch.ones_like(labels, dtype=torch.bool)
            fake = generator.forward_labels(class_embeddings, labels[None, :, None], valid[None, :, None],
                                            z[None, :, :, None])
    finally:
        generator.train(was_training)
    return fake[0, :, :, 0].t(), labels


def pure_patch_trunk(trunk: nn.Sequential, features: torch.Tensor) -> torch.Tensor:
    """Trunk output ``(N, H)`` at the centre of a k x k patch filled with one feature ``features: (N, C)``.

    There the k x k conv sees the same feature at every tap, which equals a 1x1 conv with the taps
    summed: k*k times cheaper than convolving the whole patch. The rest (ReLU, dropout) acts per pixel.
    """
    conv = trunk[0]
    hidden = F.linear(features, conv.weight.sum((2, 3)), conv.bias)
    return trunk[1:](hidden[:, :, None, None])[:, :, 0, 0]


def fit_vocabulary_classifier(generator: Generator, classifier: FeatureClassifier, class_embeddings: torch.Tensor,
                              settings: VocabularyFitSettings = VocabularyFitSettings()) -> FeatureClassifier:
    """A FeatureClassifier with ``K'`` outputs for ``class_embeddings: (K', D)``: ``classifier``'s trunk (a
    copy, finetuned only if ``settings.train_trunk``) and a new head fitted on G's features of the K'
    classes. The inputs are left unchanged; the result is in eval mode and needs no gradient."""
    start, device, num_classes = time.perf_counter(), class_embeddings.device, len(class_embeddings)
    rng = torch.Generator().manual_seed(settings.seed)
    features, labels = generate_class_features(generator, class_embeddings, settings.features_per_class, rng)
    fitted = copy.deepcopy(classifier).to(device).eval()  # eval: no dropout, so rng is the only randomness
    fitted.zero_grad(set_to_none=True)
    # skip_init and zeros: building the head leaves the global RNG alone (softmax regression starts fine at 0)
    fitted.head = nn.utils.skip_init(nn.Conv2d, classifier.head.in_channels, num_classes, 1, device=device)
    nn.init.zeros_(fitted.head.weight)
    nn.init.zeros_(fitted.head.bias)
    fitted.num_classes = num_classes
    fitted.requires_grad_(False)
    fitted.head.requires_grad_(True)
    fitted.trunk.requires_grad_(settings.train_trunk)
    optimizer = torch.optim.Adam([p for p in fitted.parameters() if p.requires_grad], lr=settings.lr)
    with torch.no_grad():  # a frozen trunk is applied once, to the whole pool
        hidden = None if settings.train_trunk else pure_patch_trunk(fitted.trunk, features)
    with torch.enable_grad():
        for _ in range(settings.steps):
            idx = torch.randint(len(labels), (settings.batch_pixels,), generator=rng).to(device)
            h = pure_patch_trunk(fitted.trunk, features[idx]) if hidden is None else hidden[idx]
            loss = F.cross_entropy(F.linear(h, fitted.head.weight[:, :, 0, 0], fitted.head.bias), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    fitted.requires_grad_(False)
    with torch.no_grad():
        h = pure_patch_trunk(fitted.trunk, features) if hidden is None else hidden
        accuracy = (F.linear(h, fitted.head.weight[:, :, 0, 0], fitted.head.bias).argmax(1) == labels).float().mean()
    logger.info(f"fitted a {num_classes}-class classifier on {len(labels)} generated features ({settings.steps} "
                f"steps, trunk {'finetuned' if settings.train_trunk else 'frozen'}) in "
                f"{time.perf_counter() - start:.1f}s; its accuracy on them: {100 * accuracy.item():.1f}%")
    return fitted


def _fingerprint(*modules: nn.Module) -> tuple:
    """Changes when any parameter is replaced or modified in place (load_state_dict, optimizer steps)."""
    return tuple((p.data_ptr(), p._version) for m in modules for p in m.parameters())


class VocabularyClassifiers:
    """Fitted classifiers per vocabulary (ordered class names); one is refitted when G, C or the settings
    changed since.

    Kept as a plain attribute of the model, outside its modules: no checkpoint key depends on it.
    """

    def __init__(self, settings: VocabularyFitSettings | None = None) -> None:
        self.settings = settings or VocabularyFitSettings()
        self._fitted: dict[tuple[str, ...], tuple[tuple, FeatureClassifier]] = {}
        self.num_fits = 0

    def get(self, names: Sequence[str], generator: Generator, classifier: FeatureClassifier,
            class_embeddings: torch.Tensor) -> FeatureClassifier:
        """The classifier for ``names`` (``class_embeddings: (K', D)`` their embeddings), fitted if not cached."""
        key, fingerprint = tuple(names), (self.settings, _fingerprint(generator, classifier))
        cached = self._fitted.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        fitted = fit_vocabulary_classifier(generator, classifier, class_embeddings, self.settings)
        self.num_fits += 1
        self._fitted[key] = (fingerprint, fitted)
        return fitted

    def lookup(self, names: Sequence[str]) -> FeatureClassifier | None:
        """The classifier fitted last for ``names``, or None."""
        cached = self._fitted.get(tuple(names))
        return None if cached is None else cached[1]
