"""CaGNet: context-aware feature generation (pixel-wise and patch-wise) for zero-shot segmentation."""
from .classifier import FeatureClassifier
from .contextual_module import ContextOutput, ContextualModule
from .discriminator import Discriminator
from .fake_labels import FakeLabelSampler
from .generator import Generator
from .losses import LossSettings
from .meta_arch import CaGNet, StepOutputs
from .pixelcnn import MaskedConv2d, PixelCNN
from .self_training import PSEUDO_LABEL_RULES, pseudo_label
from .vocabulary_classifier import VocabularyClassifiers, VocabularyFitSettings

__all__ = [
    "CaGNet",
    "ContextOutput",
    "ContextualModule",
    "Discriminator",
    "FakeLabelSampler",
    "FeatureClassifier",
    "Generator",
    "LossSettings",
    "MaskedConv2d",
    "PSEUDO_LABEL_RULES",
    "PixelCNN",
    "StepOutputs",
    "VocabularyClassifiers",
    "VocabularyFitSettings",
    "pseudo_label",
]
