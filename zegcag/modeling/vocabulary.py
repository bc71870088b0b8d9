"""The classes a model scores: names (embedded by a ClassEmbedder) and which of them were seen in training."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.datasets.splits import ZS3Split


@dataclass(frozen=True)
class Vocabulary:
    class_names: tuple[str, ...]
    seen: frozenset[int]

    @classmethod
    def from_split(cls, split: ZS3Split) -> "Vocabulary":
        return cls(tuple(split.class_names), frozenset(split.seen))

    @classmethod
    def unseen_only(cls, class_names) -> "Vocabulary":
        """A user vocabulary at test time: no class is treated as seen (no calibration applies)."""
        return cls(tuple(class_names), frozenset())

    def seen_mask(self) -> torch.Tensor:
        """(K,) bool."""
        return torch.tensor([i in self.seen for i in range(len(self.class_names))], dtype=torch.bool)

    def train_label_map(self, ignore_label: int) -> torch.Tensor:
        """Lookup over ids 0..max(K, ignore): a seen class id -> its position among the seen classes, else ignore."""
        table = torch.full((max(len(self.class_names), ignore_label + 1),), ignore_label, dtype=torch.long)
        seen = sorted(self.seen)
        table[seen] = torch.arange(len(seen))
        return table
