"""zegcag: zero-shot semantic segmentation on Detectron2 (ZegFormer, CaGNet and baselines)."""
from __future__ import annotations

from . import data  # noqa: F401  registers datasets
from . import embeddings  # noqa: F401  registers class-embedding providers
from . import evaluation  # noqa: F401
from . import model_zoo  # noqa: F401  registers the zegcag:// checkpoint paths
from . import modeling  # noqa: F401  registers backbones and meta-architectures
from .config import add_zegcag_config
from .engine.predictor import Predictor

__all__ = ["Predictor", "add_zegcag_config"]
__version__ = "0.1.0"
