"""Class-name embeddings: shipped word vectors and the open_clip text encoder, behind one registry."""
from __future__ import annotations

from . import clip_text, word_vectors  # noqa: F401  registers the providers
from .base import ClassEmbedder
from .build import EMBEDDER_REGISTRY, build_class_embedder, register_class_embedder
from .cache import EmbeddingCache
from .clip_loader import LoadedClip, load_open_clip
from .templates import available_template_sets, get_templates

__all__ = [
    "EMBEDDER_REGISTRY",
    "ClassEmbedder",
    "EmbeddingCache",
    "LoadedClip",
    "available_template_sets",
    "build_class_embedder",
    "get_templates",
    "load_open_clip",
    "register_class_embedder",
]
