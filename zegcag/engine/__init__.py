from .calibration import search_calibration_gamma
from .trainer import Trainer

__all__ = ["Trainer", "search_calibration_gamma"]
