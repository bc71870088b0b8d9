from . import backbone  # noqa: F401  registers backbones
from .baselines import SPNet
from .vocabulary import Vocabulary

__all__ = ["SPNet", "Vocabulary"]
