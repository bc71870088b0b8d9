from .spnet import SPNet

__all__ = ["SPNet"]
