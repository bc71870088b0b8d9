"""Trainer.build_optimizer: parameter groups (backbone multiplier, norm/embedding decay) and gradient clipping."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from zegcag.engine import Trainer
from zegcag_testing import TINY_SPNET_OPTS, make_cfg


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.queries = nn.Embedding(5, 4)
        self.head = nn.Linear(4, 2)


def groups_by_param(optimizer):
    return {id(p): g for g in optimizer.param_groups for p in g["params"]}


def test_groups_follow_the_config():
    cfg = make_cfg("configs/spnet_synthetic.yaml", "SOLVER.OPTIMIZER", "ADAMW", "SOLVER.BASE_LR", "0.01",
                   "SOLVER.BACKBONE_MULTIPLIER", "0.1", "SOLVER.WEIGHT_DECAY", "0.5",
                   "SOLVER.WEIGHT_DECAY_NORM", "0.25", "SOLVER.WEIGHT_DECAY_EMBED", "0.0")
    model = Toy()
    opt = Trainer.build_optimizer(cfg, model)
    assert isinstance(opt, torch.optim.AdamW)
    groups = groups_by_param(opt)
    conv, bn = model.backbone[0], model.backbone[1]
    assert groups[id(conv.weight)]["lr"] == pytest.approx(0.001) and groups[id(conv.weight)]["weight_decay"] == 0.5
    assert groups[id(bn.weight)]["lr"] == pytest.approx(0.001) and groups[id(bn.weight)]["weight_decay"] == 0.25
    assert groups[id(model.queries.weight)]["weight_decay"] == 0.0
    assert groups[id(model.head.weight)]["lr"] == pytest.approx(0.01)


def test_full_model_clipping_bounds_the_total_norm():
    cfg = make_cfg("configs/spnet_synthetic.yaml", "SOLVER.OPTIMIZER", "SGD", "SOLVER.BASE_LR", "1.0",
                   "SOLVER.MOMENTUM", "0.0", "SOLVER.WEIGHT_DECAY", "0.0",
                   "SOLVER.CLIP_GRADIENTS.ENABLED", "True", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "full_model",
                   "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "0.01")
    model = Toy()
    opt = Trainer.build_optimizer(cfg, model)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    opt.step()
    steps = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, model.parameters())])
    assert steps.norm().item() == pytest.approx(0.01, rel=1e-4)  # lr 1: the step is the clipped gradient


def test_unknown_optimizer_names_the_key():
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS, "SOLVER.OPTIMIZER", "LAMB")
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        Trainer.build_optimizer(cfg, Toy())
