"""Memory + on-disk cache of class embeddings, keyed by provider identity and vocabulary.

Entries are ``(K, D)`` float32 arrays saved as ``<dir>/<key>.npy``. Keys come from
``make_cache_key`` over everything that fixes the embeddings (provider, model, weights identity,
templates, ordered names), so a stale entry is never reused; files are written atomically.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingCache", "make_cache_key", "resolve_cache_dir"]

DEFAULT_CACHE_DIR = Path("~/.cache/zegcag/embeddings")


def make_cache_key(parts: Any) -> str:
    """32 hex digits of SHA-256 over the canonical JSON of ``parts`` (dicts, lists, str, numbers)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def resolve_cache_dir(configured: str = "") -> Path:
    """MODEL.CLASS_EMBED.CACHE_DIR if set, else $ZEGCAG_CACHE, else ~/.cache/zegcag/embeddings."""
    chosen = configured or os.environ.get("ZEGCAG_CACHE", "") or str(DEFAULT_CACHE_DIR)
    return Path(chosen).expanduser()


class EmbeddingCache:
    """Memoise ``key -> (K, D)`` tensors in memory and, if ``directory`` is given, on disk.

    ``get`` returns a fresh copy (callers may modify it) or None; a disk entry of the wrong
    shape or an unreadable file counts as a miss. A failed write is logged, not raised.
    """

    def __init__(self, directory: str | os.PathLike | None) -> None:
        self.directory = Path(directory).expanduser() if directory else None
        self._memory: dict[str, torch.Tensor] = {}

    def path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.npy"

    def get(self, key: str, expected_shape: tuple[int, int] | None = None) -> torch.Tensor | None:
        if key in self._memory:
            return self._memory[key].clone()
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            logger.warning("ignoring unreadable embedding cache file %s: %s", path, e)
            return None
        if expected_shape is not None and tuple(array.shape) != tuple(expected_shape):
            logger.warning(
                "ignoring embedding cache file %s: shape %s, expected %s", path, array.shape, expected_shape
            )
            return None
        logger.info("loaded class embeddings from cache %s", path)
        self._memory[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return self._memory[key].clone()

    def put(self, key: str, embeddings: torch.Tensor) -> None:
        value = embeddings.detach().to("cpu", torch.float32).clone()
        self._memory[key] = value
        path = self.path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write to a temporary file in the same directory, then rename: readers in other
            # processes never see a half-written .npy, and a crash leaves no partial entry.
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, value.numpy())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as e:
            logger.warning("could not write embedding cache file %s (%s); continuing without it", path, e)
            return
        logger.info("saved class embeddings to cache %s", path)
