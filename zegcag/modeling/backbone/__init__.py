from .small_convnet import SmallConvNet, build_small_convnet_backbone

__all__ = ["SmallConvNet", "build_small_convnet_backbone"]
