"""tools/train_net.py end to end on the tiny benchmark: outputs, checkpoints, --resume, --eval-only, guards."""
from __future__ import annotations

import json
import logging

import pytest
import torch
from detectron2.data import MetadataCatalog

from zegcag.engine import Trainer
from zegcag.engine.run_dir import OutputDirExistsError
from zegcag_testing import REPO, TINY_SPNET_OPTS, load_script, make_cfg


def load_train_net():
    return load_script("tools/train_net.py")


@pytest.fixture(scope="module")
def finished_run(tiny_benchmark, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train_net = load_train_net()
    args = train_net.parse_args(["--config-file", str(REPO / "configs/spnet_synthetic.yaml"),
                                 *TINY_SPNET_OPTS, "OUTPUT_DIR", str(out)])
    train_net.main(args)
    return out


def test_training_writes_checkpoint_metrics_and_results(finished_run):
    assert (finished_run / "model_final.pth").is_file()
    assert (finished_run / "last_checkpoint").read_text().strip() == "model_final.pth"
    results = json.loads((finished_run / "eval_results.json").read_text())
    metrics = results["zs3_test_val"]["sem_seg"]
    for key in ("mIoU", "seen_mIoU", "unseen_mIoU", "hIoU", "pAcc", "mAcc"):
        assert key in metrics
    calibration = json.loads((finished_run / "calibration.json").read_text())
    assert calibration["dataset"] == "zs3_test_calib" and len(calibration["candidates"]) == 41
    events = [json.loads(line) for line in (finished_run / "metrics.json").read_text().splitlines()]
    assert any("total_loss" in e for e in events)  # a single loss term is logged as total_loss


def test_finished_run_is_not_overwritten(finished_run):
    train_net = load_train_net()
    before = (finished_run / "model_final.pth").read_bytes()
    args = train_net.parse_args(["--config-file", str(REPO / "configs/spnet_synthetic.yaml"),
                                 *TINY_SPNET_OPTS, "OUTPUT_DIR", str(finished_run)])
    with pytest.raises(OutputDirExistsError, match="already holds a finished run"):
        train_net.main(args)
    assert (finished_run / "model_final.pth").read_bytes() == before


def test_eval_only_reproduces_the_results(finished_run):
    train_net = load_train_net()
    args = train_net.parse_args(["--config-file", str(REPO / "configs/spnet_synthetic.yaml"), "--eval-only",
                                 *TINY_SPNET_OPTS, "OUTPUT_DIR", str(finished_run / "eval"),
                                 "MODEL.WEIGHTS", str(finished_run / "model_final.pth")])
    results = train_net.main(args)
    trained = json.loads((finished_run / "eval_results.json").read_text())
    assert results["sem_seg"]["mIoU"] == pytest.approx(trained["zs3_test_val"]["sem_seg"]["mIoU"])


def test_resume_continues_from_last_checkpoint(finished_run, tmp_path):
    out = tmp_path / "resume"
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS, "OUTPUT_DIR", str(out),
                   "TEST.GZS3.CALIBRATION_DATASET", "")
    first = Trainer(cfg)
    first.resume_or_load(resume=False)
    first.train()
    saved = torch.load(out / "model_final.pth", weights_only=False)
    assert saved["iteration"] == 3
    assert "LRScheduler" in saved["trainer"]["hooks"] and saved["trainer"]["_trainer"]["optimizer"]["state"]

    cfg.SOLVER.MAX_ITER = 6
    second = Trainer(cfg)
    second.resume_or_load(resume=True)
    assert second.start_iter == 4
    for name, value in second.model.state_dict().items():
        assert torch.equal(value, saved["model"][name]), name
    restored = second._trainer.optimizer.state_dict()["state"]
    for key, state in saved["trainer"]["_trainer"]["optimizer"]["state"].items():
        assert torch.equal(restored[key]["exp_avg"], state["exp_avg"])
    assert second.scheduler.last_epoch == saved["trainer"]["hooks"]["LRScheduler"]["last_epoch"]


def test_resume_without_checkpoint_warns_and_starts_fresh(tiny_benchmark, tmp_path, caplog):
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS, "OUTPUT_DIR", str(tmp_path / "empty"))
    trainer = Trainer(cfg)
    with caplog.at_level(logging.WARNING):
        trainer.resume_or_load(resume=True)
    assert trainer.start_iter == 0
    assert "no checkpoint" in caplog.text


def test_unknown_dataset_name_is_a_clear_error(tiny_benchmark, tmp_path):
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS, "DATASETS.TRAIN", "('no_such_dataset',)",
                   "OUTPUT_DIR", str(tmp_path))
    with pytest.raises(KeyError, match="no_such_dataset"):
        Trainer(cfg)


def test_eval_only_and_cli_give_identical_numbers(finished_run, tmp_path):
    """train_net --eval-only (writing prediction PNGs) and tools/evaluate_predictions.py on those PNGs."""
    train_net = load_train_net()
    out = tmp_path / "eval"
    args = train_net.parse_args(["--config-file", str(REPO / "configs/spnet_synthetic.yaml"), "--eval-only",
                                 *TINY_SPNET_OPTS, "OUTPUT_DIR", str(out), "TEST.GZS3.WRITE_PREDICTIONS", "True",
                                 "TEST.GZS3.BOUNDARY", "True", "MODEL.WEIGHTS", str(finished_run / "model_final.pth")])
    evaluator_metrics = train_net.main(args)["sem_seg"]

    cli = load_script("tools/evaluate_predictions.py")

    cli_metrics = cli.run(cli.parse_args([
        "--gt-dir", MetadataCatalog.get("zs3_test_val").sem_seg_root,
        "--pred-dir", str(out / "inference/zs3_test_val/predictions"),
        "--dataset", "zs3_test_val", "--boundary", "--output", str(tmp_path / "cli.json")]))
    assert cli_metrics["num_images"] == 8
    # only the evaluator sees score maps, so only it reports the unseen-only (ZSL) accuracy
    assert {k for k in evaluator_metrics if k not in cli_metrics} == {"unseen_zsl_pAcc", "unseen_zsl_mAcc"}
    for key, value in evaluator_metrics.items():
        if key.startswith("unseen_zsl_"):
            continue
        if value != value:  # NaN in the evaluator is null in the CLI's JSON
            assert cli_metrics[key] is None, key
        else:
            assert cli_metrics[key] == pytest.approx(value, abs=1e-9), key


def test_parameter_summary_counts_every_parameter_and_the_trainable_ones():
    from zegcag.engine.trainer import parameter_summary

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    model[2].weight.requires_grad_(False)
    assert parameter_summary(model) == "Sequential: 26 parameters (18 trainable); 0 16, 2 10"
