"""ZS3Net-style baseline (Bucher et al., NeurIPS'19) built from CaGNet's parts.

A generative moment-matching network: G maps (class embedding, noise z ~ N(0, 1)) to a pixel feature and is
trained on real seen features with a class-wise MMD loss; the classifier is then trained on generated
features of seen and unseen classes with G fixed. No contextual module, no discriminator, pixel-wise.
Differences from ZS3Net: the classifier's finetuning uses generated seen features (not real ones), and
it alternates with segmentation training on CaGNet's schedule instead of running once at the end.
"""
from __future__ import annotations

import logging

from detectron2.modeling import META_ARCH_REGISTRY

from ..cagnet.meta_arch import CaGNet

logger = logging.getLogger(__name__)

# MODEL.CAGNET keys ZS3Net fixes, whatever the config says
ZS3NET_SETTINGS = {
    "CONTEXT_MODULE": False,
    "DISCRIMINATOR": False,
    "GENERATOR": True,
    "REC_LOSS": "mmd",
    "FINETUNE_GENERATOR": False,
    "REC_TRAINS_FEATURES": False,
    "PATCH_SIZE": 1,
}


@META_ARCH_REGISTRY.register()
class ZS3Net(CaGNet):
    @classmethod
    def from_config(cls, cfg) -> dict:
        cfg = cfg.clone()
        cfg.defrost()
        for key, value in ZS3NET_SETTINGS.items():
            if cfg.MODEL.CAGNET[key] != value:
                logger.warning(f"ZS3Net ignores MODEL.CAGNET.{key} = {cfg.MODEL.CAGNET[key]!r} and uses {value!r}")
            cfg.MODEL.CAGNET[key] = value
        return super().from_config(cfg)
