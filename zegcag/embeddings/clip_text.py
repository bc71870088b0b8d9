"""CLIP text embeddings of class names with prompt-template ensembling (ZegFormer §1).

Shapes: S synonyms, T templates, D = the model's embed_dim. Every template x synonym text is
encoded and L2-normalised; the T rows of a synonym are averaged here, the synonyms of a class
are averaged by ClassEmbedder, and the class mean is L2-normalised. That equals the mean over
all T x S unit rows of a class, as in the official code. The open_clip model is built only when
a vocabulary misses both caches.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable

from .base import ClassEmbedder
from .build import register_class_embedder
from .cache import EmbeddingCache, resolve_cache_dir
from .clip_loader import LoadedClip, load_open_clip, model_embed_dim, register_model_config, resolve_weights
from .templates import check_templates, get_templates

logger = logging.getLogger(__name__)

__all__ = ["ClipTextEmbedder"]


@register_class_embedder
class ClipTextEmbedder(ClassEmbedder):
    """Provider "clip": open_clip text encoder over a prompt-template set, (K, D) unit rows."""

    provider = "clip"

    @configurable
    def __init__(
        self,
        *,
        model_name: str = "ViT-B-16",
        pretrained: str = "openai",
        model_config: str = "",
        templates: str | Sequence[str] = "single",
        cache_dir: str | None = "",
        device: str = "cpu",
        batch_size: int = 256,
    ) -> None:
        """
        Args:
            model_name: open_clip architecture (the file stem of ``model_config`` if given).
            pretrained: pretrained tag, local checkpoint path, or "" for random init (tests only).
            model_config: optional JSON of a custom open_clip architecture.
            templates: a template-set name (see templates.py) or the template strings themselves.
            cache_dir: on-disk cache directory; "" = $ZEGCAG_CACHE or ~/.cache/zegcag/embeddings,
                None = memory only. Random-init models are never cached on disk.
            device: where the text encoder runs; results are always on CPU.
            batch_size: texts per encoder call.
        """
        self.model_name = model_name
        self._config_digest = register_model_config(model_name, model_config)
        self.model_config = model_config
        self.weights = resolve_weights(model_name, pretrained)
        if isinstance(templates, str):
            self.templates = get_templates(templates)
        else:
            self.templates = check_templates(list(templates), "given to ClipTextEmbedder")
        self.device = torch.device(device)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self._dim = model_embed_dim(model_name)
        disk = None if cache_dir is None or self.weights.identity() is None else resolve_cache_dir(cache_dir)
        super().__init__(EmbeddingCache(disk))
        self._clip: LoadedClip | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> dict[str, Any]:
        ce = cfg.MODEL.CLASS_EMBED
        return {
            "model_name": ce.CLIP_MODEL,
            "pretrained": ce.CLIP_PRETRAINED,
            "model_config": ce.CLIP_MODEL_CONFIG,
            "templates": ce.TEMPLATES,
            "cache_dir": ce.CACHE_DIR,
            "device": cfg.MODEL.DEVICE,
        }

    @property
    def dim(self) -> int:
        return self._dim

    def identity(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model_name,
            "model_config_sha256": self._config_digest,
            "weights": self.weights.identity(),
            "templates": list(self.templates),
        }

    def __repr__(self) -> str:
        return (f"ClipTextEmbedder(model={self.model_name!r}, weights={self.weights.identity()!r}, "
                f"templates={len(self.templates)}, cache_dir={str(self.cache.directory)!r})")

    def load(self) -> LoadedClip:
        """The open_clip model, preprocessing and tokenizer, built on first use."""
        if self._clip is None:
            self._clip = load_open_clip(self.model_name, self.weights.value, self.model_config, device=self.device)
        return self._clip

    def _embed_synonyms(self, synonyms: list[str]) -> torch.Tensor:
        """synonyms (S,) -> (S, D): mean over templates of unit text embeddings (not renormalised)."""
        model, _, tokenizer = self.load()
        texts = [t.format(s) for s in synonyms for t in self.templates]
        logger.info("encoding %d prompts (%d names x %d templates) with %s",
                    len(texts), len(synonyms), len(self.templates), self.model_name)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                tokens = tokenizer(texts[start:start + self.batch_size]).to(self.device)
                chunks.append(F.normalize(model.encode_text(tokens).float(), dim=-1).cpu())
        rows = torch.cat(chunks)
        return rows.view(len(synonyms), len(self.templates), -1).mean(dim=1)
