"""ZegFormer: meta-architecture, head, set criterion and the CLIP image branch."""
from .criterion import SetCriterion
from .head import ZegFormerHead
from .image_branch import ClipImageBranch
from .meta_arch import ZegFormer

__all__ = ["ClipImageBranch", "SetCriterion", "ZegFormer", "ZegFormerHead"]
