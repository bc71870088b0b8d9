"""Registry of class-embedding providers and ``build_class_embedder(cfg)``."""
from __future__ import annotations

from typing import Any, TypeVar

from fvcore.common.registry import Registry

__all__ = ["EMBEDDER_REGISTRY", "build_class_embedder", "register_class_embedder"]

EMBEDDER_REGISTRY = Registry("CLASS_EMBEDDER")
EMBEDDER_REGISTRY.__doc__ = """
Class-embedding providers, registered under the name MODEL.CLASS_EMBED.PROVIDER selects
(``cls.provider``, e.g. "w2v+ft", which is not a Python identifier). Each is a ClassEmbedder
subclass whose ``__init__`` is Detectron2-``@configurable`` (``cls(cfg)`` builds it).
"""

T = TypeVar("T")


def register_class_embedder(cls: T) -> T:
    """Class decorator: register a ClassEmbedder subclass under its ``provider`` name."""
    name = getattr(cls, "provider", "")
    if not name:
        raise ValueError(f"{cls!r} has no 'provider' name to register under")
    # fvcore's public register() always uses __name__; provider names such as "w2v+ft" are not
    # identifiers, so go through the same internal call it uses.
    EMBEDDER_REGISTRY._do_register(name, cls)
    return cls


def build_class_embedder(cfg: Any) -> Any:
    """Build the ClassEmbedder named by cfg.MODEL.CLASS_EMBED.PROVIDER from the config."""
    provider = cfg.MODEL.CLASS_EMBED.PROVIDER
    if provider not in EMBEDDER_REGISTRY:
        known = sorted(name for name, _ in EMBEDDER_REGISTRY)
        raise ValueError(f"MODEL.CLASS_EMBED.PROVIDER = {provider!r} is not a registered class embedder; "
                         f"registered: {known}")
    return EMBEDDER_REGISTRY.get(provider)(cfg)
