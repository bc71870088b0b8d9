"""Fake label maps for the finetuning step: seen and unseen classes, no image needed.

Shapes: B maps, s map side, k patch size, g = s // k patches per side, N patches.
Pixel-wise (k = 1): every pixel gets a class; exactly ``round(B*s*s * u / (s + u))`` pixels are unseen
for a seen:unseen ratio s:u (paper Table 5: 1:1 is best), classes uniform within each group.
Patch-wise (k > 1): g x g category patches per map. Mixed patches start with ``fill_unseen`` raster
pixels of one random unseen class and are completed by the PixelCNN; those with more than
``max_classes`` classes are resampled. Pure (one-class) patches follow the seen:unseen ratio and
outnumber mixed ones ``pure_to_mixed`` : 1. Losses count only patch centres, where a k x k window lies
inside one patch.
"""
from __future__ import annotations

import logging
from typing import Sequence

import torch

from .pixelcnn import PixelCNN

logger = logging.getLogger(__name__)

MAX_REJECTION_ROUNDS = 20


def check_seen_unseen(seen: Sequence[int], unseen: Sequence[int], num_classes: int) -> None:
    """Both non-empty, disjoint and in 0..num_classes-1, or a ValueError naming the problem."""
    if not unseen:
        raise ValueError("CaGNet needs at least one unseen class to generate features for: the split's unseen list "
                         "(or DATASETS.ZS3.UNSEEN_CLASSES) is empty")
    if not seen:
        raise ValueError("CaGNet needs at least one seen class: every class of the split is unseen")
    both = sorted(set(seen) & set(unseen))
    if both:
        raise ValueError(f"classes {both} are both seen and unseen (DATASETS.ZS3.TRAIN_ON_ALL_CLASSES trains on "
                         "unseen classes, which leaves nothing to generate for CaGNet's finetuning)")
    bad = sorted(c for c in [*seen, *unseen] if not 0 <= c < num_classes)
    if bad:
        raise ValueError(f"class ids {bad} are outside 0..{num_classes - 1}")


def _draw(classes: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    return classes[torch.randint(len(classes), (n,), generator=generator)]


def sample_classes(n: int, seen: torch.Tensor, unseen: torch.Tensor, unseen_fraction: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` class ids in random order, exactly ``round(n * unseen_fraction)`` of them unseen."""
    n_unseen = round(n * unseen_fraction)
    ids = torch.cat([_draw(unseen, n_unseen, generator), _draw(seen, n - n_unseen, generator)])
    return ids[torch.randperm(n, generator=generator)]


def tile_patches(patches: torch.Tensor, grid: int) -> torch.Tensor:
    """``patches: (B*g*g, k, k)`` in row-major patch order -> ``(B, g*k, g*k)`` maps."""
    k = patches.shape[-1]
    b = patches.shape[0] // (grid * grid)
    return patches.view(b, grid, grid, k, k).permute(0, 1, 3, 2, 4).reshape(b, grid * k, grid * k)


def patch_centres(num_maps: int, grid: int, k: int, device: torch.device | None = None) -> torch.Tensor:
    """(B, g*k, g*k) bool, True at the centre pixel of every patch."""
    centres = torch.zeros(grid * k, grid * k, dtype=torch.bool, device=device)
    centres[k // 2 :: k, k // 2 :: k] = True
    return centres.expand(num_maps, -1, -1)


def count_classes(patches: torch.Tensor) -> torch.Tensor:
    """(N, k, k) -> (N,) number of distinct classes per patch."""
    flat = patches.flatten(1).sort(dim=1).values
    return (flat.diff(dim=1) != 0).sum(dim=1) + 1


class FakeLabelSampler:
    def __init__(
        self,
        seen: Sequence[int],
        unseen: Sequence[int],
        num_classes: int,
        *,
        seen_unseen_ratio: Sequence[float] = (1.0, 1.0),
        map_size: int = 48,
        patch_size: int = 1,
        fill_unseen: int = 5,
        pure_to_mixed: float = 4.0,
        max_classes: int = 3,
        ignore_label: int = 255,
    ) -> None:
        check_seen_unseen(seen, unseen, num_classes)
        if len(seen_unseen_ratio) != 2 or min(seen_unseen_ratio) < 0 or sum(seen_unseen_ratio) <= 0:
            raise ValueError("MODEL.CAGNET.FAKE_SEEN_UNSEEN_RATIO must be two non-negative numbers, not both 0, "
                             f"got {list(seen_unseen_ratio)}")
        if map_size % patch_size:
            raise ValueError(f"MODEL.CAGNET.FAKE_MAP_SIZE ({map_size}) must be a multiple of "
                             f"MODEL.CAGNET.PATCH_SIZE ({patch_size})")
        if patch_size > 1 and not 1 <= fill_unseen < patch_size * patch_size:
            raise ValueError(f"MODEL.CAGNET.PATCH.FILL_UNSEEN must be in 1..{patch_size * patch_size - 1}, "
                             f"got {fill_unseen}")
        self.seen = torch.tensor(sorted(seen))
        self.unseen = torch.tensor(sorted(unseen))
        self.unseen_fraction = seen_unseen_ratio[1] / (seen_unseen_ratio[0] + seen_unseen_ratio[1])
        self.map_size, self.patch_size = map_size, patch_size
        self.fill_unseen, self.pure_to_mixed, self.max_classes = fill_unseen, pure_to_mixed, max_classes
        self.ignore_label = ignore_label

    def sample(self, num_maps: int, pixelcnn: PixelCNN | None = None, class_embeddings: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``labels`` (B, s, s) for the generator, ``loss_labels`` (B, s, s): ignore where no loss counts.

        Sampled on CPU (``generator`` a CPU generator); the patch-wise sampler needs ``pixelcnn`` and
        ``class_embeddings: (K, D)`` (on the PixelCNN's device).
        """
        s, k = self.map_size, self.patch_size
        if k == 1:
            labels = sample_classes(num_maps * s * s, self.seen, self.unseen, self.unseen_fraction, generator)
            labels = labels.view(num_maps, s, s)
            return labels, labels
        if pixelcnn is None or class_embeddings is None:
            raise ValueError("patch-wise fake labels need the PixelCNN and the class embeddings")
        grid = s // k
        patches = self.sample_patches(num_maps * grid * grid, pixelcnn, class_embeddings, generator)
        labels = tile_patches(patches, grid)
        loss_labels = torch.where(patch_centres(num_maps, grid, k), labels, torch.full_like(labels, self.ignore_label))
        return labels, loss_labels

    def sample_patches(self, n: int, pixelcnn: PixelCNN, class_embeddings: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` patches (n, k, k) in random order: pure ones and PixelCNN-completed mixed ones."""
        k = self.patch_size
        n_mixed = round(n / (self.pure_to_mixed + 1))
        pure = sample_classes(n - n_mixed, self.seen, self.unseen, self.unseen_fraction, generator)
        pure = pure[:, None, None].expand(-1, k, k)
        patches = torch.cat([pure, self.sample_mixed(n_mixed, pixelcnn, class_embeddings, generator)])
        return patches[torch.randperm(n, generator=generator)]

    def sample_mixed(self, n: int, pixelcnn: PixelCNN, class_embeddings: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` patches whose first ``fill_unseen`` raster pixels are one unseen class, completed by the PixelCNN."""
        k, device = self.patch_size, class_embeddings.device
        kept, missing = [], n
        was_training = pixelcnn.training
        pixelcnn.eval()
        try:
            for _ in range(MAX_REJECTION_ROUNDS):
                if missing <= 0:
                    break
                draw = max(4 * missing, 256)  # patches are tiny: oversample rather than loop
                start = _draw(self.unseen, draw, generator)[:, None].expand(-1, k * k).clone()
                # the PixelCNN samples on its own device; a CPU generator only drives CPU sampling
                cnn_generator = generator if device.type == "cpu" else None
                patches = pixelcnn.complete(start.view(draw, k, k).to(device), self.fill_unseen, class_embeddings,
                                            cnn_generator).cpu()
                patches = patches[count_classes(patches) <= self.max_classes][:missing]
                kept.append(patches)
                missing -= len(patches)
        finally:
            pixelcnn.train(was_training)
        if missing > 0:
            logger.warning(f"PixelCNN gave only {n - missing} of {n} patches with <= {self.max_classes} classes "
                           f"after {MAX_REJECTION_ROUNDS} rounds; the rest are pure unseen patches")
            kept.append(_draw(self.unseen, missing, generator)[:, None, None].expand(-1, k, k))
        return torch.cat(kept) if kept else torch.zeros(0, k, k, dtype=torch.long)
