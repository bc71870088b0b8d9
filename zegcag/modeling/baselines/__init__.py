from .spnet import SPNet
from .zs3net import ZS3Net

__all__ = ["SPNet", "ZS3Net"]
