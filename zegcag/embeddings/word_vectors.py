"""Word-vector class embeddings (word2vec, fastText, both) from the vectors shipped with zegcag.

``vectors/<source>/{word2vec,fasttext}.npy`` are ``(rows, 300)`` float32 arrays; ``meta.json``
names the rows twice (``labels`` as released, ``labels_refined`` as used to build the vectors).
Index conventions (/work/shared/data/zs3/README.md): in ``voc12`` and ``context`` both lists
give the row directly; in ``cocostuff`` ``labels_refined`` gives the row and ``labels`` is one
higher (its 0 is "unlabeled", which has no row). ``context`` rows are not unit norm; every row
is L2-normalised here.

All sources form one table ``name -> vector``. A name found in several sources takes the vector
of the first source in ``sources`` (default ``voc12, context, cocostuff``); within a source,
``labels_refined`` and ``labels`` point at the same row. Only "dining table" and "potted plant"
differ between sources.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from detectron2.config import configurable

from .base import ClassEmbedder, split_synonyms
from .build import register_class_embedder

__all__ = [
    "VECTORS_DIR",
    "VECTOR_SOURCES",
    "MissingWordVectorError",
    "WordVectorEmbedder",
    "Word2VecEmbedder",
    "FastTextEmbedder",
    "Word2VecFastTextEmbedder",
    "normalize_class_name",
]

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
VECTOR_SOURCES = ("voc12", "context", "cocostuff")
WORD_VECTOR_DIM = 300
# Row of a class = its index in meta.json's list + offset (default 0).
_ROW_OFFSET = {("cocostuff", "labels"): -1}


def normalize_class_name(name: str) -> str:
    """Lower case, '_' and '-' read as spaces, runs of spaces collapsed: "Potted_Plant" -> "potted plant"."""
    return " ".join(re.sub(r"[_\-]", " ", name.lower()).split())


def _compact(name: str) -> str:
    """The normalised name without separators: "tv monitor" -> "tvmonitor"."""
    return normalize_class_name(name).replace(" ", "")


class MissingWordVectorError(KeyError):
    """Some class names have no shipped word vector (``missing`` lists all of them)."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(missing)
        self.missing = missing

    def __str__(self) -> str:
        return (
            f"no shipped word vector for {len(self.missing)} class name(s): {', '.join(self.missing)}. "
            f"Names are matched ignoring case, '_', '-' and spaces against the classes of "
            f"{', '.join(VECTOR_SOURCES)} in {VECTORS_DIR}. For other names use a CLIP text "
            "embedding: MODEL.CLASS_EMBED.PROVIDER clip"
        )


@lru_cache(maxsize=None)
def _load_table(kind: str, sources: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Lookup keys (normalised and compact names) -> unit (300,) vector of ``kind``."""
    table: dict[str, np.ndarray] = {}
    for source in sources:
        folder = VECTORS_DIR / source
        with open(folder / "meta.json", encoding="utf-8") as f:
            meta = json.load(f)
        vectors = np.load(folder / f"{kind}.npy").astype(np.float32)
        if vectors.shape != (meta["embedding_rows"], WORD_VECTOR_DIM):
            raise ValueError(f"{folder / kind}.npy has shape {vectors.shape}, meta.json expects "
                             f"({meta['embedding_rows']}, {WORD_VECTOR_DIM})")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = _name_rows(source, meta)
        # Exact (normalised) names first, so a compact form never shadows a real name.
        for make_key in (normalize_class_name, _compact):
            for name, row in rows.items():
                table.setdefault(make_key(name), vectors[row])
    return table


def _name_rows(source: str, meta: dict[str, Any]) -> dict[str, int]:
    """Name -> row over ``labels_refined`` then ``labels``; a name in both must give one row."""
    rows: dict[str, int] = {}
    for listing in ("labels_refined", "labels"):
        offset = _ROW_OFFSET.get((source, listing), 0)
        for index, name in meta[listing]:
            row = index + offset
            if not 0 <= row < meta["embedding_rows"]:
                continue
            if rows.setdefault(name, row) != row:
                raise ValueError(f"{VECTORS_DIR / source / 'meta.json'}: {name!r} is row {rows[name]} in "
                                 f"labels_refined but row {row} in {listing}; the index convention has changed")
    return rows


class WordVectorEmbedder(ClassEmbedder):
    """Shipped word vectors; ``kinds`` lists the 300-d tables concatenated per synonym.

    With two kinds ("w2v+ft") each half is unit norm before concatenation and the 600-d row is
    normalised again, so each half of a single-word row has norm 1/sqrt(2).
    """

    kinds: ClassVar[tuple[str, ...]] = ()

    @configurable
    def __init__(self, *, sources: Sequence[str] = VECTOR_SOURCES) -> None:
        """
        Args:
            sources: vector folders to read, earlier ones winning when a name is in several.
        """
        super().__init__()
        unknown = [s for s in sources if s not in VECTOR_SOURCES]
        if unknown or not sources:
            raise ValueError(f"unknown word-vector sources {unknown or list(sources)}; known: {list(VECTOR_SOURCES)}")
        self.sources = tuple(sources)

    @classmethod
    def from_config(cls, cfg: Any) -> dict[str, Any]:
        # No config key picks the sources: the default order applies.
        return {}

    @property
    def dim(self) -> int:
        return WORD_VECTOR_DIM * len(self.kinds)

    def identity(self) -> dict[str, Any]:
        return {"provider": self.provider, "kinds": list(self.kinds), "sources": list(self.sources)}

    def lookup(self, synonym: str) -> np.ndarray | None:
        """One name -> its (D,) vector (unit norm per 300-d part, not renormalised), or None."""
        parts = []
        for kind in self.kinds:
            table = _load_table(kind, self.sources)
            vector = table.get(normalize_class_name(synonym))
            if vector is None:
                vector = table.get(_compact(synonym))
            if vector is None:
                return None
            parts.append(vector)
        return np.concatenate(parts)

    def _check_supported(self, names: list[str]) -> None:
        missing = []
        for name in names:
            synonyms = split_synonyms(name)
            absent = [s for s in synonyms if self.lookup(s) is None]
            if absent:
                missing.append(repr(name) if len(synonyms) == 1 else f"{absent} (in {name!r})")
        if missing:
            raise MissingWordVectorError(missing)

    def _embed_synonyms(self, synonyms: list[str]) -> torch.Tensor:
        vectors = []
        for s in synonyms:
            vector = self.lookup(s)
            if vector is None:
                raise MissingWordVectorError([repr(s)])
            vectors.append(vector)
        return F.normalize(torch.from_numpy(np.stack(vectors)), dim=-1)


@register_class_embedder
class Word2VecEmbedder(WordVectorEmbedder):
    """word2vec (Google News), 300-d."""

    provider = "word2vec"
    kinds = ("word2vec",)


@register_class_embedder
class FastTextEmbedder(WordVectorEmbedder):
    """fastText (Common Crawl), 300-d."""

    provider = "fasttext"
    kinds = ("fasttext",)


@register_class_embedder
class Word2VecFastTextEmbedder(WordVectorEmbedder):
    """word2vec then fastText, 600-d: the CaGNet / ZS3Net class embedding."""

    provider = "w2v+ft"
    kinds = ("word2vec", "fasttext")
