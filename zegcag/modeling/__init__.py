from . import backbone  # noqa: F401  registers backbones
from . import cagnet  # noqa: F401  registers CaGNet
from .baselines import SPNet, ZS3Net
from .vocabulary import Vocabulary
from .zegformer import ZegFormer

__all__ = ["SPNet", "ZS3Net", "Vocabulary", "ZegFormer"]
