"""Load an open_clip model (architecture name + pretrained tag, local checkpoint or random init).

Shared by the CLIP text embedder and ZegFormer's CLIP image branch. Every failure names the
config key to change: MODEL.CLASS_EMBED.CLIP_MODEL, CLIP_PRETRAINED or CLIP_MODEL_CONFIG.
"""
from __future__ import annotations

import hashlib
import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import open_clip
import torch

logger = logging.getLogger(__name__)

__all__ = [
    "ClipWeights",
    "LoadedClip",
    "load_open_clip",
    "model_embed_dim",
    "register_model_config",
    "resolve_weights",
]

# Config files registered with open_clip by this process: resolved path -> content digest.
_REGISTERED_CONFIGS: dict[Path, str] = {}


class LoadedClip(NamedTuple):
    """An open_clip model in eval mode, its image preprocessing and its tokenizer.

    ``preprocess`` is open_clip's dict: ``size``, ``mean``/``std`` (RGB, 0-1 scale), ``interpolation``...
    ``tokenizer(texts: list[str]) -> (N, context_length)`` int64 tokens.
    """

    model: torch.nn.Module
    preprocess: dict[str, Any]
    tokenizer: Callable[..., torch.Tensor]


@dataclass(frozen=True)
class ClipWeights:
    """Where the weights come from: ``kind`` is "random", "tag" (open_clip pretrained tag) or "file"."""

    kind: str
    value: str = ""
    size: int = 0
    mtime_ns: int = 0

    def identity(self) -> str | None:
        """Stable description for cache keys; None for random init (never the same twice)."""
        if self.kind == "random":
            return None
        if self.kind == "tag":
            return f"tag:{self.value}"
        return f"file:{self.value}:{self.size}:{self.mtime_ns}"


def register_model_config(model_name: str, model_config: str = "") -> str:
    """Register a custom architecture JSON with open_clip (under its file stem) and check
    ``model_name`` is known. Returns the JSON's SHA-256 ("" without a custom config)."""
    if not model_config:
        model_embed_dim(model_name)  # raises for an unknown architecture
        return ""
    path = Path(model_config).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG: architecture file not found: {path}")
    raw = path.read_bytes()
    try:
        arch = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG: {path} is not valid JSON: {e}") from e
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if not isinstance(arch, dict) or k not in arch]
    if missing:
        raise ValueError(f"MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG: {path} lacks the open_clip keys {missing}")
    if model_name != path.stem:
        raise ValueError(f"MODEL.CLASS_EMBED.CLIP_MODEL = {model_name!r} must be {path.stem!r}: open_clip "
                         f"registers the architecture of CLIP_MODEL_CONFIG {path} under its file stem")
    digest = hashlib.sha256(raw).hexdigest()
    if _REGISTERED_CONFIGS.get(path) != digest:
        open_clip.add_model_config(path)
        _REGISTERED_CONFIGS[path] = digest
    return digest


def resolve_weights(model_name: str, pretrained: str) -> ClipWeights:
    """CLIP_PRETRAINED -> ClipWeights: "" random, a known tag of ``model_name``, else an existing file."""
    if not pretrained:
        return ClipWeights("random")
    if open_clip.get_pretrained_cfg(model_name, pretrained):
        return ClipWeights("tag", pretrained)
    path = Path(pretrained).expanduser().resolve()
    if not path.is_file():
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise FileNotFoundError(
            f"MODEL.CLASS_EMBED.CLIP_PRETRAINED: no checkpoint file at {path}, and {pretrained!r} is not a "
            f"pretrained tag of open_clip model {model_name!r} (its tags: {tags})"
        )
    stat = path.stat()
    return ClipWeights("file", str(path), stat.st_size, stat.st_mtime_ns)


def _download_help(model_name: str, tag: str) -> str:
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    source = " or ".join(
        s for s in (cfg.get("hf_hub") and f"Hugging Face repo {cfg['hf_hub'].rstrip('/')}", cfg.get("url")) if s
    )
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        HF_HUB_CACHE = "~/.cache/huggingface/hub"
    quick = ""
    if cfg.get("quick_gelu") and not model_name.endswith("-quickgelu"):
        quick = f" and MODEL.CLASS_EMBED.CLIP_MODEL {model_name}-quickgelu (these weights use QuickGELU)"
    return (
        f"Without internet access, download the checkpoint elsewhere ({source or 'see open_clip'}), copy it here "
        f"and set MODEL.CLASS_EMBED.CLIP_PRETRAINED /path/to/file.pt{quick}; or copy the populated "
        f"Hugging Face cache into {HF_HUB_CACHE} (where open_clip downloads to). Set HF_HUB_OFFLINE=1 to "
        "make an offline machine fail at once instead of retrying."
    )


def load_open_clip(
    model_name: str, pretrained: str = "", model_config: str = "", device: str | torch.device = "cpu"
) -> LoadedClip:
    """Build an open_clip model (eval mode) with its preprocessing dict and tokenizer.

    Args:
        model_name: open_clip architecture, e.g. "ViT-B-16" (the file stem of ``model_config`` if given).
        pretrained: pretrained tag ("openai"), a local checkpoint path, or "" for random init (tests).
        model_config: optional JSON of a custom architecture.
    """
    register_model_config(model_name, model_config)
    weights = resolve_weights(model_name, pretrained)
    if weights.kind == "random":
        logger.warning("open_clip model %s is randomly initialised (CLIP_PRETRAINED is empty): tests only", model_name)
    else:
        logger.info("loading open_clip model %s with weights %s", model_name, weights.value)
    try:
        model = open_clip.create_model(model_name, pretrained=weights.value or None, device=device)
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError) as e:
        if weights.kind == "tag":
            raise RuntimeError(
                f"could not load open_clip weights {model_name!r} / {weights.value!r}: {e}\n"
                + _download_help(model_name, weights.value)
            ) from e
        if weights.kind == "file":
            raise RuntimeError(
                f"checkpoint {weights.value} (MODEL.CLASS_EMBED.CLIP_PRETRAINED) does not load into open_clip "
                f"model {model_name!r} (MODEL.CLASS_EMBED.CLIP_MODEL): {e}"
            ) from e
        raise
    model.eval()
    return LoadedClip(model, dict(open_clip.get_model_preprocess_cfg(model)), open_clip.get_tokenizer(model_name))


def model_embed_dim(model_name: str) -> int:
    """Joint embedding size of a registered open_clip architecture, without building it."""
    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        dashed = model_name.replace("/", "-")
        hint = f" (did you mean {dashed!r}?)" if open_clip.get_model_config(dashed) else ""
        raise ValueError(
            f"MODEL.CLASS_EMBED.CLIP_MODEL = {model_name!r} is not an open_clip architecture{hint}; see "
            "open_clip.list_models(), or give a custom architecture JSON in MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG"
        )
    return int(cfg["embed_dim"])
