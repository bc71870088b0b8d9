"""Detectron2 trainer for every zegcag model: data loaders, evaluator, optimizer, calibration hook."""
from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict

import torch
from detectron2.data import MetadataCatalog, build_detection_test_loader, build_detection_train_loader
from detectron2.data.build import get_detection_dataset_dicts
from detectron2.engine import DefaultTrainer, HookBase, hooks
from detectron2.evaluation import DatasetEvaluator
from detectron2.projects.deeplab import build_lr_scheduler as build_deeplab_lr_scheduler
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from ..data.mappers import MAPPERS
from ..data.protocol import check_unseen_policy, drop_images_with_classes, resolve_split
from ..evaluation import GeneralizedSemSegEvaluator
from ..evaluation.generalized_sem_seg_evaluation import json_safe
from .calibration import search_calibration_gamma

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
OPTIMIZERS = {"SGD": torch.optim.SGD, "ADAMW": torch.optim.AdamW}
NORM_TYPES = (torch.nn.BatchNorm2d, torch.nn.SyncBatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)


def build_mapper(cfg, is_train: bool):
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if name not in MAPPERS:
        raise KeyError(f"INPUT.DATASET_MAPPER_NAME '{name}' is unknown; known: {sorted(MAPPERS)}")
    return MAPPERS[name](cfg, is_train)


def build_gzs3_evaluator(cfg, dataset_name: str, output_folder: str | None) -> DatasetEvaluator:
    split = resolve_split(cfg, dataset_name)
    return GeneralizedSemSegEvaluator(
        dataset_name,
        distributed=True,
        output_dir=output_folder,
        seen_classes=split.seen,
        unseen_classes=split.unseen,
        boundary=cfg.TEST.GZS3.BOUNDARY,
        boundary_max_dist_ratio=cfg.TEST.GZS3.BOUNDARY_MAX_DIST_RATIO,
        write_predictions=cfg.TEST.GZS3.WRITE_PREDICTIONS,
    )


def add_gradient_clipping(cfg, optimizer_cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """Detectron2's per-parameter clipping ("value", "norm"), plus "full_model": one norm over all gradients
    (the clipping of MaskFormer-style models, which Detectron2 0.6 does not offer)."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not (clip.ENABLED and clip.CLIP_TYPE == "full_model"):
        return maybe_add_gradient_clipping(cfg, optimizer_cls)
    max_norm, norm_type = clip.CLIP_VALUE, clip.NORM_TYPE

    class FullModelGradientClippingOptimizer(optimizer_cls):
        def step(self, closure=None):
            all_params = [p for group in self.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(all_params, max_norm, norm_type)
            return super().step(closure=closure)

    return FullModelGradientClippingOptimizer


# metadata "evaluator_type" -> evaluator builder
EVALUATORS = {"gzs3_sem_seg": build_gzs3_evaluator}


class CalibrationHook(HookBase):
    """After training, choose the calibration gamma on TEST.GZS3.CALIBRATION_DATASET (before the final evaluation)."""

    def after_train(self) -> None:
        Trainer.calibrate(self.trainer.cfg, self.trainer.model)


def parameter_summary(model: torch.nn.Module) -> str:
    """"<Name>: N parameters (T trainable); child: n, ..." for the log (official counts are quoted against it)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    children = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    parts = ", ".join(f"{name} {count:,}" for name, count in children.items() if count)
    return f"{type(model).__name__}: {total:,} parameters ({trainable:,} trainable); {parts}"


class Trainer(DefaultTrainer):
    @classmethod
    def build_model(cls, cfg) -> torch.nn.Module:
        """Detectron2's model build, plus a log line with the parameter counts (total, trainable, per child)."""
        model = super().build_model(cfg)
        logger.info(parameter_summary(model))
        return model

    @classmethod
    def build_train_loader(cls, cfg):
        policy = check_unseen_policy(cfg.DATASETS.ZS3.UNSEEN_POLICY)
        dicts = get_detection_dataset_dicts(cfg.DATASETS.TRAIN)
        if policy == "drop":
            dicts = drop_images_with_classes(dicts, resolve_split(cfg, cfg.DATASETS.TRAIN[0]).unseen)
        return build_detection_train_loader(cfg, dataset=dicts, mapper=build_mapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name: str):
        return build_detection_test_loader(cfg, dataset_name, mapper=build_mapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name: str, output_folder: str | None = None) -> DatasetEvaluator:
        kind = MetadataCatalog.get(dataset_name).get("evaluator_type")
        if kind not in EVALUATORS:
            raise KeyError(f"dataset '{dataset_name}' has evaluator_type {kind!r}; zegcag evaluates {sorted(EVALUATORS)}")
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return EVALUATORS[kind](cfg, dataset_name, output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
        """SGD or AdamW; backbone LR multiplier; own weight decay for norms and embeddings; gradient clipping."""
        name = cfg.SOLVER.OPTIMIZER.upper()
        if name not in OPTIMIZERS:
            raise ValueError(f"SOLVER.OPTIMIZER must be one of {sorted(OPTIMIZERS)}, got '{cfg.SOLVER.OPTIMIZER}'")
        params, seen = [], set()
        for module_name, module in model.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                if not param.requires_grad or param in seen:
                    continue
                seen.add(param)
                lr, wd = cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY
                if module_name.startswith("backbone"):
                    lr *= cfg.SOLVER.BACKBONE_MULTIPLIER
                if isinstance(module, NORM_TYPES):
                    wd = cfg.SOLVER.WEIGHT_DECAY_NORM
                elif isinstance(module, torch.nn.Embedding):
                    wd = cfg.SOLVER.WEIGHT_DECAY_EMBED
                params.append({"params": [param], "lr": lr, "weight_decay": wd})
        optimizer_cls = add_gradient_clipping(cfg, OPTIMIZERS[name])
        if name == "SGD":
            return optimizer_cls(params, cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV)
        return optimizer_cls(params, cfg.SOLVER.BASE_LR)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_deeplab_lr_scheduler(cfg, optimizer)  # adds WarmupPolyLR to Detectron2's schedulers

    def build_hooks(self):
        ret = super().build_hooks()
        if self.cfg.TEST.GZS3.CALIBRATION_DATASET:
            position = next(i for i, h in enumerate(ret) if isinstance(h, hooks.EvalHook))
            ret.insert(position, CalibrationHook())
        return ret

    # Detectron2 0.6 leaves the optimizer out of DefaultTrainer's checkpoints (fixed in later versions the
    # same way), so --resume would restart Adam/SGD momentum from zero.
    def state_dict(self) -> dict:
        ret = super().state_dict()
        ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        if "_trainer" in state_dict:
            self._trainer.load_state_dict(state_dict["_trainer"])

    def resume_or_load(self, resume: bool = True) -> None:
        if resume and not self.checkpointer.has_checkpoint():
            logger.warning(f"--resume: no checkpoint in {self.cfg.OUTPUT_DIR}; starting a new training")
        super().resume_or_load(resume=resume)

    @classmethod
    def calibrate(cls, cfg, model: torch.nn.Module) -> float | None:
        """Set ``model.calibration_gamma`` to the best gamma on TEST.GZS3.CALIBRATION_DATASET; record it."""
        dataset = cfg.TEST.GZS3.CALIBRATION_DATASET
        if not dataset:
            return None
        net = model.module if hasattr(model, "module") else model
        split = resolve_split(cfg, dataset)
        gamma, table = search_calibration_gamma(
            net, cls.build_test_loader(cfg, dataset), cfg.TEST.GZS3.CALIBRATION_GAMMAS,
            split.seen, split.unseen, split.ignore_label,
        )
        net.calibration_gamma = gamma
        if comm.is_main_process():
            path = os.path.join(cfg.OUTPUT_DIR, CALIBRATION_FILE)
            with PathManager.open(path, "w") as f:
                json.dump({"dataset": dataset, "gamma": gamma, "candidates": table}, f, indent=1)
        return gamma

    @classmethod
    def test(cls, cfg, model, evaluators=None) -> OrderedDict:
        results = super().test(cfg, model, evaluators)
        if comm.is_main_process():
            # Detectron2 unwraps the results of a single test dataset; the file always maps dataset -> results
            per_dataset = {cfg.DATASETS.TEST[0]: results} if len(cfg.DATASETS.TEST) == 1 else results
            path = os.path.join(cfg.OUTPUT_DIR, "eval_results.json")
            with PathManager.open(path, "w") as f:
                json.dump(json_safe(per_dataset), f, indent=1, allow_nan=False)
            logger.info(f"evaluation results written to {path}")
        return results

