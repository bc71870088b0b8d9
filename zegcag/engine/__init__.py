from .cagnet_trainer import CaGNetTrainer
from .calibration import search_calibration_gamma
from .trainer import Trainer

# MODEL.META_ARCHITECTURE -> trainer class (Trainer for every single-optimizer model)
TRAINERS = {"CaGNet": CaGNetTrainer, "ZS3Net": CaGNetTrainer}


def trainer_class(cfg) -> type[Trainer]:
    return TRAINERS.get(cfg.MODEL.META_ARCHITECTURE, Trainer)


__all__ = ["CaGNetTrainer", "TRAINERS", "Trainer", "search_calibration_gamma", "trainer_class"]
