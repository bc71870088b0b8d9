"""tools/synthetic_results.py: which runs a row list starts, in which order, and with which command line."""
from __future__ import annotations

import json
import threading

import pytest

from zegcag_testing import load_script

results_tool = load_script("tools/synthetic_results.py")


def test_evaluation_rows_run_after_the_training_they_evaluate(monkeypatch, tmp_path):
    order, lock = [], threading.Lock()

    def fake_run_row(name, output_root, reuse):
        with lock:
            order.append(name)
        return {"seen_mIoU": float(len(name))}

    monkeypatch.setattr(results_tool, "run_row", fake_run_row)
    # zegformer_img evaluates zegformer_seg's weights: that training run is brought in although not named
    results = results_tool.run_rows(["zegformer_img", "spnet", "cagnet_training_step_only"], tmp_path, False, 2)
    assert set(results) == {"zegformer_img", "spnet", "cagnet_training_step_only", "zegformer_seg", "cagnet"}
    trained = {"spnet", "zegformer_seg", "cagnet"}
    assert set(order[:3]) == trained and set(order[3:]) == {"zegformer_img", "cagnet_training_step_only"}
    assert results["spnet"] == {"seen_mIoU": 5.0}


def test_evaluation_row_command_line(monkeypatch, tmp_path):
    commands = []

    def fake_subprocess_run(cmd, check, cwd):
        commands.append(cmd)
        out = cmd[cmd.index("OUTPUT_DIR") + 1]
        (tmp_path / out).mkdir(parents=True, exist_ok=True)
        (tmp_path / out / "eval_results.json").write_text(json.dumps({"val": {"sem_seg": {"hIoU": 1.0}}}))

    monkeypatch.setattr(results_tool.subprocess, "run", fake_subprocess_run)
    with pytest.raises(FileNotFoundError, match="cagnet_training_step_only.*model_0000549.pth.*'cagnet'"):
        results_tool.run_row("cagnet_training_step_only", tmp_path, reuse=False)
    (tmp_path / "cagnet").mkdir()
    (tmp_path / "cagnet" / "model_0000549.pth").write_bytes(b"")
    assert results_tool.run_row("cagnet_training_step_only", tmp_path, reuse=False) == {"hIoU": 1.0}
    cmd = commands[-1]
    assert "--eval-only" in cmd
    assert cmd[cmd.index("MODEL.WEIGHTS") + 1] == str(tmp_path / "cagnet" / "model_0000549.pth")
    calibration = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "TEST.GZS3.CALIBRATION_DATASET"]
    assert calibration[-1] == ""  # the last override wins: no calibration for this row
    # --reuse takes the recorded results without running anything
    assert results_tool.run_row("cagnet_training_step_only", tmp_path, reuse=True) == {"hIoU": 1.0}
    assert len(commands) == 1
