"""Trainer hooks for models trained with several optimizers (CaGNet): one LR scheduler per optimizer."""
from __future__ import annotations

import logging
import re
import warnings
from typing import Mapping

import torch
from detectron2.engine import HookBase

logger = logging.getLogger(__name__)


class LRSchedulers(HookBase):
    """Steps every scheduler after each iteration and logs ``lr_<name>`` (and ``lr``: the first one's).

    Detectron2's LRScheduler hook drives a single optimizer, and a trainer checkpoints only the first
    hook of each type, so all schedulers live in this one hook and are saved together.
    """

    def __init__(self, schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler]) -> None:
        self.schedulers = dict(schedulers)

    def after_step(self) -> None:
        storage = self.trainer.storage
        for i, (name, scheduler) in enumerate(self.schedulers.items()):
            lr = scheduler.get_last_lr()[0]
            storage.put_scalar(f"lr_{name}", lr, smoothing_hint=False)
            if i == 0:
                storage.put_scalar("lr", lr, smoothing_hint=False)
            with warnings.catch_warnings():
                # the LR is a function of the iteration: a phase that skips an optimizer still advances its
                # schedule, which torch would report as a scheduler step before an optimizer step
                warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"),
                                        UserWarning)
                scheduler.step()

    def state_dict(self) -> dict:
        return {name: scheduler.state_dict() for name, scheduler in self.schedulers.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        for name, scheduler in self.schedulers.items():
            if name in state_dict:
                scheduler.load_state_dict(state_dict[name])
            else:
                logger.warning(f"checkpoint has no state for the '{name}' LR scheduler; it starts from scratch")
