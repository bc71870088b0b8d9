"""tools/evaluate_predictions.py: numbers, bad inputs, and agreement with GeneralizedSemSegEvaluator."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from zegcag.data.datasets.register_zs3_sem_seg import register_zs3_sem_seg
from zegcag.data.datasets.splits import make_split
from zegcag.evaluation import GeneralizedSemSegEvaluator
from zegcag.evaluation.generalized_sem_seg_evaluation import json_safe

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "evaluate_predictions.py"
_spec = importlib.util.spec_from_file_location("evaluate_predictions", SCRIPT)
cli = importlib.util.module_from_spec(_spec)
sys.modules["evaluate_predictions"] = cli  # worker processes unpickle its functions by module name
_spec.loader.exec_module(cli)

CLASSES = ["sky", "road", "cat", "dog"]
GT = {
    "a": np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255]], dtype=np.uint8),
    "b": np.array([[1, 1, 1, 1], [1, 2, 2, 1], [1, 1, 1, 1]], dtype=np.uint8),
}
PRED = {
    "a": np.array([[0, 1, 1, 1], [0, 0, 1, 1], [2, 0, 3, 3]], dtype=np.uint8),
    "b": np.array([[1, 1, 1, 1], [1, 2, 1, 1], [1, 1, 1, 1]], dtype=np.uint8),
}


def write_pngs(folder: Path, maps: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in maps.items():
        Image.fromarray(arr).save(folder / f"{stem}.png")
    return folder


@pytest.fixture
def dirs(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(CLASSES) + "\n")
    return write_pngs(tmp_path / "gt", GT), write_pngs(tmp_path / "pred", PRED), tmp_path / "m.json", names


def evaluate(gt_dir, pred_dir, output, *extra, classes=("--num-classes", "4", "--unseen", "2,3")):
    rc = cli.main(["--gt-dir", str(gt_dir), "--pred-dir", str(pred_dir), *classes, "--output", str(output), *extra])
    return rc, (json.loads(Path(output).read_text()) if rc == 0 else None)


def test_hand_computed_numbers(dirs):
    gt_dir, pred_dir, out, names = dirs
    rc, m = evaluate(gt_dir, pred_dir, out, "--class-names", str(names))
    assert rc == 0
    # rows GT: sky [3,1,0,0], road [0,14,0,0], cat [1,1,2,0]; dog only predicted on ignore pixels
    assert m["IoU-sky"] == pytest.approx(60.0) and m["IoU-road"] == pytest.approx(87.5) and m["IoU-cat"] == 50.0
    assert m["IoU-dog"] is None and m["unseen_mIoU"] == 50.0
    assert m["pAcc"] == pytest.approx(100 * 19 / 22)
    assert (m["num_images"], m["missing_predictions"], m["invalid_pred_pixels"]) == (2, 0, 0)
    assert "boundary_F" not in m
    rc, m = evaluate(gt_dir, pred_dir, out, "--boundary", "--overwrite")
    assert rc == 0 and "IoU-0" in m
    for key in ("boundary_P", "boundary_R", "boundary_F", "boundary_F_mean_per_image"):
        assert 0.0 <= m[key] <= 100.0


def test_missing_prediction(dirs, caplog):
    gt_dir, pred_dir, out, _ = dirs
    (pred_dir / "b.png").unlink()
    rc, _ = evaluate(gt_dir, pred_dir, out)
    assert rc == 2 and "b.png" in caplog.text and "--allow-missing" in caplog.text and not out.exists()
    caplog.clear()
    rc, m = evaluate(gt_dir, pred_dir, out, "--allow-missing")
    assert rc == 0 and m["missing_predictions"] == 1 and m["num_images"] == 2
    assert "missing prediction" in caplog.text and "b.png" in caplog.text
    # every pixel of b is wrong: road tp 4 of 14 GT pixels, 5 road predictions (all in a)
    assert m["IoU-1"] == pytest.approx(100 * 4 / 15)
    assert m["pAcc"] == pytest.approx(100 * 8 / 22)


def test_extra_prediction(dirs, caplog):
    gt_dir, pred_dir, out, _ = dirs
    write_pngs(pred_dir, {"c": PRED["a"]})
    assert evaluate(gt_dir, pred_dir, out, "--allow-missing")[0] == 2
    assert "c.png" in caplog.text and "without ground truth" in caplog.text


def test_size_mismatch(dirs, caplog):
    gt_dir, pred_dir, out, _ = dirs
    write_pngs(pred_dir, {"a": PRED["a"][:2]})
    assert evaluate(gt_dir, pred_dir, out)[0] == 2
    assert "a.png" in caplog.text and "(2, 4)" in caplog.text and "(3, 4)" in caplog.text


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_multi_channel_png(dirs, caplog, which):
    gt_dir, pred_dir, out, _ = dirs
    folder, arr = (gt_dir, GT["b"]) if which == "gt" else (pred_dir, PRED["b"])
    Image.fromarray(np.stack([arr] * 3, axis=-1)).save(folder / "b.png")
    assert evaluate(gt_dir, pred_dir, out)[0] == 2
    assert str(folder / "b.png") in caplog.text and "3 channels" in caplog.text


def test_gt_id_outside_classes(dirs, caplog):
    gt_dir, pred_dir, out, _ = dirs
    bad = GT["a"].copy()
    bad[0, 0] = 9
    write_pngs(gt_dir, {"a": bad})
    assert evaluate(gt_dir, pred_dir, out)[0] == 2
    assert str(gt_dir / "a.png") in caplog.text and "[9]" in caplog.text


def test_invalid_predicted_ids_counted_or_strict(dirs, caplog):
    gt_dir, pred_dir, out, _ = dirs
    bad = PRED["b"].copy()
    bad[0, :2] = 200
    write_pngs(pred_dir, {"b": bad})
    rc, m = evaluate(gt_dir, pred_dir, out)
    assert rc == 0 and m["invalid_pred_pixels"] == 2
    assert m["IoU-1"] == pytest.approx(100 * 12 / 16)  # two road pixels wrong; nobody's false positive
    rc, _ = evaluate(gt_dir, pred_dir, out, "--strict", "--overwrite")
    assert rc == 2 and "b.png" in caplog.text and "[200]" in caplog.text


def test_existing_output_is_not_overwritten(dirs, caplog):
    gt_dir, pred_dir, out, _ = dirs
    out.write_text("keep me")
    assert evaluate(gt_dir, pred_dir, out)[0] == 2
    assert out.read_text() == "keep me" and "--overwrite" in caplog.text
    rc, m = evaluate(gt_dir, pred_dir, out, "--overwrite")
    assert rc == 0 and m["num_images"] == 2


@pytest.mark.parametrize(
    "classes, match",
    [
        (("--num-classes", "4"), "--unseen is required"),
        (("--num-classes", "4", "--unseen", "2,9"), r"\[9\]"),
        (("--num-classes", "4", "--unseen", "two"), "comma-separated"),
        (("--num-classes", "5", "--unseen", "2", "--class-names", "NAMES"), "lists 4 class names"),
        (("--dataset", "no_such_dataset_xyz"), "unknown dataset 'no_such_dataset_xyz'"),
    ],
)
def test_bad_class_arguments(dirs, caplog, classes, match):
    gt_dir, pred_dir, out, names = dirs
    classes = tuple(str(names) if c == "NAMES" else c for c in classes)
    assert evaluate(gt_dir, pred_dir, out, classes=classes)[0] == 2
    assert re.search(match, caplog.text)


def _register(root: Path, gt: dict[str, np.ndarray]) -> str:
    write_pngs(root / "labels", gt)
    write_pngs(root / "images", {k: np.zeros(v.shape + (3,), np.uint8) for k, v in gt.items()})
    name = f"test_cli_{uuid.uuid4().hex[:8]}"
    register_zs3_sem_seg(name, make_split(name, CLASSES, [2, 3]), root / "images", root / "labels",
                         prepare_hint="(test data)", image_ext=".png")
    return name


def _blocky_maps(rng: np.random.Generator, n: int) -> tuple[dict, dict]:
    gts, preds = {}, {}
    for i in range(n):
        gt = np.zeros((48, 64), np.uint8)
        for _ in range(4):
            y, x = rng.integers(0, 40), rng.integers(0, 56)
            gt[y : y + rng.integers(4, 20), x : x + rng.integers(4, 24)] = rng.integers(0, 4)
        y = int(rng.integers(0, 40))
        gt[y : y + 3, :5] = 255
        pred = np.roll(gt, int(rng.integers(-2, 3)), axis=1)
        pred[pred == 255] = 1
        pred[rng.random(gt.shape) < 0.01] = 3
        gts[f"im{i}"], preds[f"im{i}"] = gt, pred
    return gts, preds


def test_cli_and_evaluator_give_identical_numbers(tmp_path):
    gts, preds = _blocky_maps(np.random.default_rng(0), 6)
    name = _register(tmp_path / "data", gts)
    try:
        ev = GeneralizedSemSegEvaluator(name, distributed=False, output_dir=str(tmp_path / "ev"),
                                        boundary=True, write_predictions=True)
        ev.reset()
        for d in DatasetCatalog.get(name):
            pred = torch.as_tensor(preds[d["image_id"]].astype(np.int64))
            ev.process([d], [{"sem_seg": torch.nn.functional.one_hot(pred, 4).permute(2, 0, 1).float()}])
        expected = json_safe(ev.evaluate()["sem_seg"])
        # label PNGs hold no scores, so the CLI cannot restrict the argmax to the unseen classes
        assert 0 <= expected.pop("unseen_zsl_pAcc") <= 100 and expected.pop("unseen_zsl_mAcc") is not None
        outputs = []
        for workers in ("1", "2"):
            out = tmp_path / f"cli{workers}.json"
            rc, m = evaluate(tmp_path / "data" / "labels", tmp_path / "ev" / "predictions", out,
                             "--boundary", "--workers", workers, classes=("--dataset", name))
            assert rc == 0 and m.pop("num_images") == 6 and m.pop("invalid_pred_pixels") == 0
            m.pop("missing_predictions")
            outputs.append(m)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert 0 < expected["boundary_F"] < 100 and expected["IoU-cat"] is not None
    assert outputs[0] == expected and outputs[1] == expected


def test_runs_as_a_script(dirs):
    gt_dir, pred_dir, out, _ = dirs
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--gt-dir", str(gt_dir), "--pred-dir", str(pred_dir), "--num-classes", "4",
         "--unseen", "2,3", "--output", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["num_images"] == 2
