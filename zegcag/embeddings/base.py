"""The class-embedding interface every provider implements.

Shapes: K = classes in the vocabulary, S = synonyms over all classes, D = embedding dim.
A class name may carry synonyms separated by commas ("person, human"): each synonym is
embedded on its own, the synonyms of a class are averaged, and the mean is L2-normalised.
"""
from __future__ import annotations

import abc
import logging
from collections import Counter
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F

from .cache import EmbeddingCache, make_cache_key

logger = logging.getLogger(__name__)

__all__ = ["ClassEmbedder", "check_vocabulary", "split_synonyms"]


def split_synonyms(name: str) -> list[str]:
    """``"person, human"`` -> ``["person", "human"]``; an empty synonym is a ValueError."""
    parts = [p.strip() for p in name.split(",")]
    if not all(parts):
        raise ValueError(f"class name {name!r} has an empty synonym (synonyms are separated by ', ')")
    return parts


def check_vocabulary(names: Sequence[str]) -> list[str]:
    """Validate a vocabulary: a non-empty sequence of distinct, non-empty strings (stripped)."""
    if isinstance(names, str):
        raise TypeError(f"expected a sequence of class names, got the single string {names!r}")
    names = list(names)
    if not names:
        raise ValueError("the class vocabulary is empty: give at least one class name")
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ValueError(f"class names must be non-empty strings, got {bad!r}")
    names = [n.strip() for n in names]
    duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
    if duplicates:
        raise ValueError(f"duplicate class names in the vocabulary: {duplicates}")
    return names


class ClassEmbedder(abc.ABC):
    """Maps class names to fixed, L2-normalised embeddings: ``names (K,) -> (K, D)`` float32 on CPU.

    Subclasses set ``provider`` (their registry name), implement ``dim``, ``identity()`` and
    ``_embed_synonyms()``; results are memoised per vocabulary in ``self.cache``.
    """

    provider: ClassVar[str] = ""

    def __init__(self, cache: EmbeddingCache | None = None) -> None:
        self.cache = cache if cache is not None else EmbeddingCache(None)

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Embedding dimension D."""

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-serialisable description of everything, besides the names, that fixes the output."""

    @abc.abstractmethod
    def _embed_synonyms(self, synonyms: list[str]) -> torch.Tensor:
        """synonyms (S,) -> (S, D) float tensor; rows are averaged per class, then normalised."""

    def _check_supported(self, names: list[str]) -> None:
        """Raise before any work if some names cannot be embedded (default: all can)."""

    def cache_key(self, names: Sequence[str]) -> str:
        """A string that changes whenever the provider identity or the (ordered) vocabulary does."""
        names = check_vocabulary(names)
        return f"{self.provider}-" + make_cache_key({"identity": self.identity(), "names": names})

    def __call__(self, names: Sequence[str]) -> torch.Tensor:
        """names: K class names -> (K, D) float32 CPU tensor with unit-norm rows."""
        names = check_vocabulary(names)
        key = self.cache_key(names)
        cached = self.cache.get(key, expected_shape=(len(names), self.dim))
        if cached is not None:
            return cached
        self._check_supported(names)
        embeddings = self._embed_names(names)
        self.cache.put(key, embeddings)
        return embeddings.clone()

    def _embed_names(self, names: list[str]) -> torch.Tensor:
        groups = [split_synonyms(n) for n in names]
        flat = [s for g in groups for s in g]
        rows = self._embed_synonyms(flat).detach().to("cpu", torch.float32)
        if rows.shape != (len(flat), self.dim):
            raise RuntimeError(
                f"{type(self).__name__} returned shape {tuple(rows.shape)}, expected {(len(flat), self.dim)}"
            )
        owner = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor([len(g) for g in groups]))
        summed = torch.zeros(len(groups), self.dim).index_add_(0, owner, rows)
        # The mean and the sum have the same direction, so normalising the sum is enough.
        return F.normalize(summed, dim=-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity()})"
