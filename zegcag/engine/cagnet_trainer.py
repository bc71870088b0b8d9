"""Detectron2 trainer for CaGNet and ZS3Net: several optimizers, training and finetuning steps on a schedule.

An iteration is either a training step (a batch of real images) or a finetuning step (fake label maps of
seen and unseen classes, no images). Schedule: INITIAL_TRAIN_ITERS training steps, then FINETUNE_PERIOD
finetuning steps and TRAIN_PERIOD training steps in turn (paper Sec. 3.5: finetuning alone biases the
classifier towards fake features). Optimizers: "backbone" (E and CM: SOLVER.OPTIMIZER with LR multipliers),
"discriminator" (C and D), "generator" (G), "pixelcnn" (patch-wise); Adam for the last three. In every step
C and D are updated first, then E/CM/G against the updated C and D. Checkpoints hold every optimizer,
every LR scheduler and the phase, so --resume continues in the same phase with the same optimizer states.
"""
from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import SimpleTrainer, TrainerBase, hooks
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage
from detectron2.utils.logger import setup_logger

from .hooks import LRSchedulers
from .trainer import NORM_TYPES, OPTIMIZERS, Trainer

logger = logging.getLogger(__name__)

PHASES = ("train", "finetune")
OPTIMIZER_ROLES = ("backbone", "generator", "discriminator", "pixelcnn")


@dataclass(frozen=True)
class PhaseSchedule:
    """Which step an iteration runs: ``phase(iteration)`` -> "train" or "finetune"."""

    initial_train_iters: int
    train_period: int
    finetune_period: int
    finetuning: bool = True  # False when the model cannot finetune (no generator): training steps only

    def __post_init__(self) -> None:
        if min(self.initial_train_iters, self.train_period, self.finetune_period) < 0:
            raise ValueError("MODEL.CAGNET.INITIAL_TRAIN_ITERS, TRAIN_PERIOD and FINETUNE_PERIOD must be >= 0, got "
                             f"{self.initial_train_iters}, {self.train_period}, {self.finetune_period}")

    def phase(self, iteration: int) -> str:
        if not self.finetuning or iteration < self.initial_train_iters or self.finetune_period == 0:
            return "train"
        position = (iteration - self.initial_train_iters) % (self.finetune_period + self.train_period)
        return "finetune" if position < self.finetune_period else "train"


class CaGNetStepper(TrainerBase):
    """SimpleTrainer-style inner loop: one training or finetuning step per ``run_step``, several optimizers."""

    def __init__(self, model: torch.nn.Module, data_loader: Iterable, optimizers: Mapping[str, torch.optim.Optimizer],
                 schedule: PhaseSchedule, fake_batch_size: int, self_training_start: int | None = None) -> None:
        super().__init__()
        model.train()
        self.model, self.data_loader = model, data_loader
        self._data_loader_iter_obj = None
        self.optimizers = dict(optimizers)
        self.schedule = schedule
        self.fake_batch_size = fake_batch_size
        self.self_training_start = self_training_start
        self.phase: str | None = None  # the phase of the last step run

    @property
    def _data_loader_iter(self):
        if self._data_loader_iter_obj is None:  # created on first use: finetuning-only runs need no images
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def run_step(self) -> None:
        assert self.model.training, "[CaGNetStepper] model was changed to eval mode!"
        phase = self.schedule.phase(self.iter)
        if phase != self.phase:
            after = f" (after {self.phase} steps)" if self.phase else ""
            logger.info(f"iteration {self.iter}: {phase} steps{after}")
            self.phase = phase
        start = time.perf_counter()
        if phase == "train":
            data = next(self._data_loader_iter)
            data_time = time.perf_counter() - start
            self_training = self.self_training_start is not None and self.iter >= self.self_training_start
            out = self.model.forward_train(data, self_training=self_training)
            trained = ["backbone", "generator"]
        else:
            data_time = 0.0
            out = self.model.forward_finetune(self.fake_batch_size)
            trained = ["generator"]  # E and CM stay fixed while finetuning
        metrics = self._update("C/D", self.model.discriminator_losses(out), ["discriminator"])
        metrics.update(self._update("E/CM/G" if phase == "train" else "G", self.model.generator_losses(out), trained))
        if phase == "train":
            metrics.update(self._update("PixelCNN", self.model.pixelcnn_losses(out), ["pixelcnn"]))
        SimpleTrainer.write_metrics(metrics, data_time)
        if comm.is_main_process():
            get_event_storage().put_scalar("finetune_phase", float(phase == "finetune"), smoothing_hint=False)

    def _update(self, what: str, losses: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
        """Backpropagate the sum of ``losses`` into the parameters of optimizers ``names`` only, then step them."""
        optimizers = [self.optimizers[n] for n in names if n in self.optimizers]
        if not losses or not optimizers:
            return {}
        for name, value in losses.items():
            if not torch.isfinite(value).all():
                raise FloatingPointError(
                    f"CaGNet {self.phase} step at iteration {self.iter}: loss '{name}' ({what} update) is "
                    f"{value.detach().cpu().item()}. Training stopped without applying this update; the last "
                    "checkpoint in OUTPUT_DIR is the last good state (--resume continues from it)."
                )
        params = [p for opt in optimizers for group in opt.param_groups for p in group["params"] if p.requires_grad]
        for p in params:
            p.grad = None
        sum(losses.values()).backward(inputs=params)
        for opt in optimizers:
            opt.step()
        return {k: v.detach() for k, v in losses.items()}

    def state_dict(self) -> dict:
        ret = super().state_dict()
        ret["optimizers"] = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        ret["phase"] = self.phase
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        saved = state_dict.get("optimizers", {})
        for name, opt in self.optimizers.items():
            if name in saved:
                opt.load_state_dict(saved[name])
            else:
                logger.warning(f"checkpoint has no state for the '{name}' optimizer; it starts from scratch")
        self.phase = state_dict.get("phase")
        if self.phase is not None:
            logger.info(f"resumed after iteration {self.iter}, which ran {self.phase} steps")


def _param_groups(modules: list[torch.nn.Module], lr: float, weight_decay: float,
                  weight_decay_norm: float) -> list[dict]:
    """Trainable parameters of ``modules`` in two groups: normalisation layers (their own decay) and the rest."""
    norm, other = [], []
    for module in modules:
        for sub in module.modules():
            params = [p for p in sub.parameters(recurse=False) if p.requires_grad]
            (norm if isinstance(sub, NORM_TYPES) else other).extend(params)
    groups = ((other, weight_decay), (norm, weight_decay_norm))
    return [{"params": ps, "lr": lr, "weight_decay": wd} for ps, wd in groups if ps]


def _trainable(modules: list[torch.nn.Module]) -> list[torch.nn.Parameter]:
    return [p for m in modules for p in m.parameters() if p.requires_grad]


class CaGNetTrainer(Trainer):
    """Trainer (loaders, evaluators, calibration, checkpoints) with CaGNet's multi-optimizer step."""

    def __init__(self, cfg) -> None:
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        if comm.get_world_size() > 1:
            raise NotImplementedError("CaGNetTrainer runs in one process (its steps call model methods other than "
                                      "forward, which DistributedDataParallel would not synchronise); use --num-gpus 1")
        model = self.build_model(cfg)
        for method in ("forward_train", "forward_finetune", "discriminator_losses", "generator_losses"):
            if not hasattr(model, method):
                raise TypeError(f"CaGNetTrainer trains CaGNet-style models; MODEL.META_ARCHITECTURE "
                                f"'{cfg.MODEL.META_ARCHITECTURE}' has no {method}()")
        optimizers = self.build_optimizers(cfg, model)
        m = cfg.MODEL
        schedule = PhaseSchedule(m.CAGNET.INITIAL_TRAIN_ITERS, m.CAGNET.TRAIN_PERIOD, m.CAGNET.FINETUNE_PERIOD,
                                 model.can_finetune)
        if not model.can_finetune:
            logger.info("the model has no generator: every iteration is a training step")
        self_training_start = m.CAGNET.ST.START_ITER if m.CAGNET.ST.ENABLED else None
        self._trainer = CaGNetStepper(model, self.build_train_loader(cfg), optimizers, schedule,
                                      m.CAGNET.FAKE_BATCH_SIZE, self_training_start)
        self.schedulers = self.build_lr_schedulers(cfg, optimizers)
        self.checkpointer = DetectionCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_optimizers(cls, cfg, model: torch.nn.Module) -> dict[str, torch.optim.Optimizer]:
        """backbone (E, CM; SOLVER.*), discriminator (C, D), generator (G), pixelcnn: name -> optimizer."""
        name = cfg.SOLVER.OPTIMIZER.upper()
        if name not in OPTIMIZERS:
            raise ValueError(f"SOLVER.OPTIMIZER must be one of {sorted(OPTIMIZERS)}, got '{cfg.SOLVER.OPTIMIZER}'")
        m, sets, base_lr = cfg.MODEL, model.parameter_sets(), cfg.SOLVER.BASE_LR
        groups = []
        for key, multiplier in (("backbone", cfg.SOLVER.BACKBONE_MULTIPLIER), ("aspp", m.CAGNET.ASPP_LR_MULTIPLIER),
                                ("context", m.CAGNET.CONTEXT_LR_MULTIPLIER)):
            groups += _param_groups(sets[key], base_lr * multiplier, cfg.SOLVER.WEIGHT_DECAY,
                                    cfg.SOLVER.WEIGHT_DECAY_NORM)
        optimizer_cls = maybe_add_gradient_clipping(cfg, OPTIMIZERS[name])
        if name == "SGD":
            backbone = optimizer_cls(groups, base_lr, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV)
        else:
            backbone = optimizer_cls(groups, base_lr)
        optimizers = {
            "backbone": backbone,
            "discriminator": torch.optim.Adam(_trainable(sets["discriminator"]), lr=m.CAGNET.DISCRIMINATOR_LR,
                                              weight_decay=m.CAGNET.DISCRIMINATOR_WEIGHT_DECAY),
        }
        if sets["generator"]:
            optimizers["generator"] = torch.optim.Adam(_trainable(sets["generator"]), lr=m.CAGNET.GENERATOR_LR)
        if sets["pixelcnn"]:
            optimizers["pixelcnn"] = torch.optim.Adam(_trainable(sets["pixelcnn"]), lr=m.CAGNET.PIXELCNN.LR)
        return optimizers

    @classmethod
    def build_lr_schedulers(cls, cfg, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict:
        """SOLVER's schedule for the optimizers in MODEL.CAGNET.SCHEDULED_OPTIMIZERS, a constant LR for the others."""
        scheduled = set(cfg.MODEL.CAGNET.SCHEDULED_OPTIMIZERS)
        unknown = sorted(scheduled - set(OPTIMIZER_ROLES))
        if unknown:
            raise ValueError(f"MODEL.CAGNET.SCHEDULED_OPTIMIZERS has unknown names {unknown}; "
                             f"choose among {list(OPTIMIZER_ROLES)}")
        return {name: cls.build_lr_scheduler(cfg, opt) if name in scheduled
                else torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0) for name, opt in optimizers.items()}

    def build_hooks(self) -> list:
        return [LRSchedulers(self.schedulers) if isinstance(h, hooks.LRScheduler) else h for h in super().build_hooks()]

    @property
    def phase(self) -> str | None:
        """The phase of the last step run (restored by --resume)."""
        return self._trainer.phase
