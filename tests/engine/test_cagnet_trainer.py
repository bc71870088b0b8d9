"""CaGNetTrainer on the tiny benchmark: the phase schedule, which parts each step updates, checkpoints with
every optimizer and the phase, resuming a killed run, and stopping cleanly on a NaN loss."""
from __future__ import annotations

import json

import pytest
import torch
from detectron2.engine import HookBase

from zegcag.engine.cagnet_trainer import CaGNetTrainer, PhaseSchedule
from zegcag_testing import REPO, tiny_cagnet_opts
from zegcag_testing import make_cfg as make_repo_cfg

SYNTHETIC = "configs/cagnet_synthetic.yaml"


def make_cfg(out, *opts, config=SYNTHETIC):
    return make_repo_cfg(config, *tiny_cagnet_opts(), "OUTPUT_DIR", str(out), *opts)


class Recorder(HookBase):
    """Records, per iteration, the phase and whether the backbone / generator / classifier changed."""

    def __init__(self, modules=("backbone", "generator", "classifier")):
        self.modules, self.steps = modules, []

    def before_step(self):
        model = self.trainer.model
        self._before = {name: [p.detach().clone() for p in getattr(model, name).parameters()] for name in self.modules}

    def after_step(self):
        model = self.trainer.model
        changed = {name: any(not torch.equal(a, b) for a, b in zip(before, getattr(model, name).parameters()))
                   for name, before in self._before.items()}
        self.steps.append((self.trainer.iter, self.trainer.phase, changed))


class FailAt(HookBase):
    """Calls ``action(trainer)`` before iteration ``iteration``."""

    def __init__(self, iteration, action):
        self.iteration, self.action = iteration, action

    def before_step(self):
        if self.trainer.iter == self.iteration:
            self.action(self.trainer)


def test_phase_schedule():
    schedule = PhaseSchedule(initial_train_iters=3, train_period=1, finetune_period=2)
    assert [schedule.phase(i) for i in range(9)] == ["train"] * 3 + ["finetune", "finetune", "train"] * 2
    assert {PhaseSchedule(0, 1, 1, finetuning=False).phase(i) for i in range(5)} == {"train"}
    assert {PhaseSchedule(2, 5, 0).phase(i) for i in range(10)} == {"train"}
    assert [PhaseSchedule(2, 0, 3).phase(i) for i in range(5)] == ["train", "train"] + ["finetune"] * 3
    with pytest.raises(ValueError, match="must be >= 0"):
        PhaseSchedule(-1, 1, 1)


def test_training_alternates_phases_and_updates_the_right_parts(tiny_benchmark, tmp_path):
    # the paper's schedule, G updated in the finetuning step (cagnet_synthetic.yaml keeps it fixed)
    cfg = make_cfg(tmp_path, "SOLVER.MAX_ITER", "6", "MODEL.CAGNET.FINETUNE_GENERATOR", "True")
    trainer = CaGNetTrainer(cfg)
    recorder = Recorder()
    trainer.register_hooks([recorder])
    trainer.resume_or_load(resume=False)
    trainer.train()
    phases = [phase for _, phase, _ in recorder.steps]
    assert phases == ["train", "train", "finetune", "finetune", "train", "train"]
    for _, phase, changed in recorder.steps:
        assert changed["generator"] and changed["classifier"]
        assert changed["backbone"] == (phase == "train")  # E and CM stay fixed while finetuning

    saved = torch.load(tmp_path / "model_final.pth", weights_only=False)
    state = saved["trainer"]["_trainer"]
    assert set(state["optimizers"]) == {"backbone", "discriminator", "generator"}
    assert state["phase"] == "train" and saved["iteration"] == 5
    assert set(saved["trainer"]["hooks"]["LRSchedulers"]) == {"backbone", "discriminator", "generator"}
    events = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    keys = set().union(*events)
    assert {"loss_cls", "loss_rec", "loss_kl", "loss_adv", "loss_d_adv", "lr_generator", "finetune_phase"} <= keys
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert "hIoU" in results["zs3_test_val"]["sem_seg"]
    assert json.loads((tmp_path / "calibration.json").read_text())["dataset"] == "zs3_test_calib"


def test_killed_run_resumes_in_the_same_phase_with_the_same_optimizer_state(tiny_benchmark, tmp_path):
    opts = ("SOLVER.MAX_ITER", "8", "MODEL.CAGNET.FINETUNE_PERIOD", "3", "MODEL.CAGNET.TRAIN_PERIOD", "3",
            "TEST.GZS3.CALIBRATION_DATASET", "")
    # phases: t t f f f t t t; checkpoints after iterations 1, 3, 5, 7; killed before iteration 4
    first = CaGNetTrainer(make_cfg(tmp_path, *opts))
    first.register_hooks([FailAt(4, lambda t: (_ for _ in ()).throw(KeyboardInterrupt("killed")))])
    first.resume_or_load(resume=False)
    with pytest.raises(KeyboardInterrupt):
        first.train()
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_0000003.pth"
    assert not (tmp_path / "model_final.pth").exists()
    saved = torch.load(tmp_path / "model_0000003.pth", weights_only=False)

    second = CaGNetTrainer(make_cfg(tmp_path, *opts))
    second.resume_or_load(resume=True)
    assert second.start_iter == 4
    assert second.phase == "finetune" == second._trainer.schedule.phase(4)  # mid-phase: continues finetuning
    for name, optimizer in second._trainer.optimizers.items():
        restored, expected = optimizer.state_dict()["state"], saved["trainer"]["_trainer"]["optimizers"][name]["state"]
        assert restored.keys() == expected.keys() and restored
        for key, values in expected.items():
            for field, value in values.items():
                assert torch.equal(torch.as_tensor(restored[key][field]), torch.as_tensor(value)), (name, field)
    for name, scheduler in second.schedulers.items():
        assert scheduler.last_epoch == saved["trainer"]["hooks"]["LRSchedulers"][name]["last_epoch"] == 4
    for name, value in second.model.state_dict().items():
        assert torch.equal(value, saved["model"][name]), name
    recorder = Recorder()
    second.register_hooks([recorder])
    second.train()
    assert [(i, p) for i, p, _ in recorder.steps] == [(4, "finetune"), (5, "train"), (6, "train"), (7, "train")]


def test_nan_adversarial_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny_benchmark, tmp_path):
    cfg = make_cfg(tmp_path, "SOLVER.MAX_ITER", "6", "TEST.GZS3.CALIBRATION_DATASET", "")
    trainer = CaGNetTrainer(cfg)
    snapshot = {}

    def poison(t):
        snapshot.update({k: v.clone() for k, v in t.model.state_dict().items()})
        forward = t.model.discriminator.forward
        t.model.discriminator.forward = lambda trunk: forward(trunk) * float("nan")

    trainer.register_hooks([FailAt(3, poison)])  # iteration 3 is a finetuning step
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError) as error:
        trainer.train()
    message = str(error.value)
    assert "loss 'loss_d_adv'" in message and "iteration 3" in message and "finetune" in message
    assert "last checkpoint" in message
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, snapshot[name]), f"{name} changed by the failed step"
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_0000001.pth"
    assert not (tmp_path / "model_final.pth").exists()
    good = torch.load(tmp_path / "model_0000001.pth", weights_only=False)["model"]
    assert all(torch.isfinite(v).all() for v in good.values() if v.is_floating_point())


def test_encoder_and_classifier_only_has_no_finetuning(tiny_benchmark, tmp_path):
    cfg = make_cfg(tmp_path, "MODEL.CAGNET.GENERATOR", "False", "MODEL.CAGNET.DISCRIMINATOR", "False",
                   "MODEL.CAGNET.CONTEXT_MODULE", "False", "TEST.GZS3.CALIBRATION_DATASET", "")
    trainer = CaGNetTrainer(cfg)
    assert set(trainer._trainer.optimizers) == {"backbone", "discriminator"}
    recorder = Recorder(modules=("backbone", "classifier"))
    trainer.register_hooks([recorder])
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert [phase for _, phase, _ in recorder.steps] == ["train"] * 4  # the schedule would finetune at 2, 3
    assert all(changed["backbone"] and changed["classifier"] for _, _, changed in recorder.steps)
    events = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert all(e.get("finetune_phase", 0.0) == 0.0 for e in events)


def test_patch_wise_run_trains_the_pixelcnn_and_self_training_starts_on_time(tiny_benchmark, tmp_path):
    cfg = make_cfg(tmp_path, "MODEL.CAGNET.FAKE_MAP_SIZE", "6", "MODEL.CAGNET.ST.ENABLED", "True",
                   "MODEL.CAGNET.ST.START_ITER", "1", "TEST.GZS3.CALIBRATION_DATASET", "",
                   config="configs/cagnet_patch_synthetic.yaml")
    trainer = CaGNetTrainer(cfg)
    calls = []
    forward_train = trainer.model.forward_train
    trainer.model.forward_train = lambda data, self_training=False: calls.append(self_training) or forward_train(
        data, self_training=self_training)
    pixelcnn_before = [p.detach().clone() for p in trainer.model.pixelcnn.parameters()]
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert calls == [False, True]  # training steps at iterations 0 and 1; 2 and 3 finetune
    assert any(not torch.equal(a, b) for a, b in zip(pixelcnn_before, trainer.model.pixelcnn.parameters()))
    saved = torch.load(tmp_path / "model_final.pth", weights_only=False)
    assert "pixelcnn" in saved["trainer"]["_trainer"]["optimizers"]


def test_unscheduled_optimizers_keep_a_constant_lr(tiny_benchmark, tmp_path):
    cfg = make_cfg(tmp_path, "SOLVER.LR_SCHEDULER_NAME", "WarmupCosineLR", "SOLVER.MAX_ITER", "10",
                   "MODEL.CAGNET.SCHEDULED_OPTIMIZERS", "['backbone']")
    trainer = CaGNetTrainer(cfg)
    with pytest.warns(UserWarning):  # stepping schedulers without optimizer steps
        for _ in range(6):
            for scheduler in trainer.schedulers.values():
                scheduler.step()
    lr = {name: opt.param_groups[0]["lr"] for name, opt in trainer._trainer.optimizers.items()}
    assert lr["backbone"] < 0.9 * cfg.SOLVER.BASE_LR * cfg.SOLVER.BACKBONE_MULTIPLIER
    assert lr["generator"] == cfg.MODEL.CAGNET.GENERATOR_LR and lr["discriminator"] == cfg.MODEL.CAGNET.DISCRIMINATOR_LR
    with pytest.raises(ValueError, match="SCHEDULED_OPTIMIZERS has unknown names"):
        CaGNetTrainer(make_cfg(tmp_path / "bad", "MODEL.CAGNET.SCHEDULED_OPTIMIZERS", "['gen']"))
