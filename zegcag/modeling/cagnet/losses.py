"""The losses CaGNet uses besides the shared pixel cross-entropy: adversarial, feature reconstruction (L2 or MMD), KL.

Shapes: B batch, C feature dim, K classes, h/w feature map size, N/M pixel counts.
``mask: (B, h, w)`` bool marks the pixels a loss averages over (labelled pixels; patch centres in
patch-wise finetuning). Each function returns a scalar; an empty mask gives a zero that keeps the graph.
"""
from __future__ import annotations

from typing import Sequence

import torch

ADV_LOSSES = ("lsgan", "l1")
REC_LOSSES = ("l2", "mmd")


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values: (B, C, h, w)`` over the entries of the pixels in ``mask: (B, h, w)``."""
    weights = mask[:, None].to(values.dtype)  # a product, not values[mask]: boolean indexing is slow on CPU
    count = weights.sum() * values.shape[1]
    return (values * weights).sum() / count.clamp(min=1)


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per entry, averaged over the entries of the masked pixels."""
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    return _masked_mean(kl, mask)


def l2_reconstruction_loss(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``real`` and ``fake: (B, C, h, w)`` over the masked pixels (paper: L_REC)."""
    return _masked_mean((real - fake).pow(2), mask)


def mmd(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float]) -> torch.Tensor:
    """Squared MMD between samples ``x: (N, C)`` and ``y: (M, C)`` with a sum of Gaussian kernels (biased estimate)."""
    xy = torch.cat([x, y])
    d2 = torch.cdist(xy, xy).pow(2)
    kernel = sum(torch.exp(-d2 / (2 * s * s)) for s in sigmas)
    n = len(x)
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


def mmd_reconstruction_loss(real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                            sigmas: Sequence[float], max_pixels: int) -> torch.Tensor:
    """Class-wise MMD between real and generated features (generative moment matching, ZS3Net).

    For every class in ``labels: (B, h, w)`` (masked pixels only), compares the distributions of its real
    and fake features, on at most ``max_pixels`` random pixels each; the mean over classes is returned.
    """
    real = real.permute(0, 2, 3, 1)[mask]
    fake = fake.permute(0, 2, 3, 1)[mask]
    labels = labels[mask]
    terms = []
    for c in labels.unique():
        idx = (labels == c).nonzero().squeeze(1)
        if len(idx) > max_pixels:
            idx = idx[torch.randperm(len(idx), device=idx.device)[:max_pixels]]
        terms.append(mmd(real[idx], fake[idx], sigmas))
    if not terms:
        return real.sum() * 0.0 + fake.sum() * 0.0
    return torch.stack(terms).mean()


def _adv_distance(scores: torch.Tensor, target: float, kind: str) -> torch.Tensor:
    if kind == "lsgan":
        return (scores - target).pow(2)
    if kind == "l1":
        return (torch.sigmoid(scores) - target).abs()
    raise ValueError(f"MODEL.CAGNET.ADV_LOSS must be one of {ADV_LOSSES}, got {kind!r}")


def discriminator_adv_loss(real_scores: torch.Tensor | None, fake_scores: torch.Tensor, mask: torch.Tensor,
                           kind: str = "lsgan") -> torch.Tensor:
    """D pushes real scores to 1 and fake scores to 0 (``scores: (B, 1, h, w)``); no real term in finetuning.

    ``lsgan`` is the paper's squared distance, ``l1`` the official code's L1 distance after a sigmoid.
    """
    loss = _masked_mean(_adv_distance(fake_scores, 0.0, kind), mask)
    if real_scores is not None:
        loss = loss + _masked_mean(_adv_distance(real_scores, 1.0, kind), mask)
    return loss


def generator_adv_loss(fake_scores: torch.Tensor, mask: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """G pushes D's scores of its features to 1."""
    return _masked_mean(_adv_distance(fake_scores, 1.0, kind), mask)


class LossSettings:
    """Which adversarial / reconstruction losses CaGNet uses and their weights (paper: lambda1 = 10, lambda2 = 100)."""

    def __init__(self, adv_loss: str = "lsgan", adv_weight: float = 1.0, rec_loss: str = "l2", rec_weight: float = 10.0,
                 kl_weight: float = 100.0, mmd_sigmas: Sequence[float] = (2, 5, 10, 20, 40, 80),
                 mmd_max_pixels: int = 512) -> None:
        if adv_loss not in ADV_LOSSES:
            raise ValueError(f"MODEL.CAGNET.ADV_LOSS must be one of {ADV_LOSSES}, got {adv_loss!r}")
        if rec_loss not in REC_LOSSES:
            raise ValueError(f"MODEL.CAGNET.REC_LOSS must be one of {REC_LOSSES}, got {rec_loss!r}")
        if rec_loss == "mmd" and not mmd_sigmas:
            raise ValueError("MODEL.CAGNET.MMD_SIGMAS is empty: the MMD reconstruction loss needs kernel widths")
        self.adv_loss, self.adv_weight = adv_loss, adv_weight
        self.rec_loss, self.rec_weight, self.kl_weight = rec_loss, rec_weight, kl_weight
        self.mmd_sigmas, self.mmd_max_pixels = tuple(mmd_sigmas), mmd_max_pixels

    def reconstruction(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
        """Weighted reconstruction term between ``real`` and ``fake: (B, C, h, w)`` on the masked pixels."""
        if self.rec_loss == "l2":
            return self.rec_weight * l2_reconstruction_loss(real, fake, mask)
        return self.rec_weight * mmd_reconstruction_loss(real, fake, labels, mask, self.mmd_sigmas,
                                                         self.mmd_max_pixels)
