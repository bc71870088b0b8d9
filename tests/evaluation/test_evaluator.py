"""GeneralizedSemSegEvaluator on a tiny dataset registered from tmp_path PNGs."""
from __future__ import annotations

import json
import math
import pickle
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import inference_on_dataset
from PIL import Image

from zegcag.data.datasets.register_zs3_sem_seg import register_zs3_sem_seg
from zegcag.data.datasets.splits import make_split
from zegcag.evaluation import GeneralizedSemSegEvaluator

CLASSES = ["sky", "road", "cat", "dog"]  # seen: sky, road; unseen: cat, dog
GT = {
    "a": np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255]], dtype=np.uint8),
    "b": np.array([[1, 1, 1, 1], [1, 2, 2, 1], [1, 1, 1, 1]], dtype=np.uint8),
}
PRED = {
    "a": np.array([[0, 1, 1, 1], [0, 0, 1, 1], [2, 0, 3, 3]]),
    "b": np.array([[1, 1, 1, 1], [1, 2, 1, 1], [1, 1, 1, 1]]),
}


def register_tiny(root: Path, gt: dict[str, np.ndarray], classes: list[str] = CLASSES, unseen=(2, 3)) -> str:
    """Write label PNGs (+ dummy images) under ``root`` and register them; returns the dataset name."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for stem, label in gt.items():
        Image.fromarray(label).save(root / "labels" / f"{stem}.png")
        Image.fromarray(np.zeros(label.shape + (3,), np.uint8)).save(root / "images" / f"{stem}.jpg")
    name = f"test_gzs3_{uuid.uuid4().hex[:8]}"
    split = make_split(name, classes, list(unseen))
    register_zs3_sem_seg(name, split, root / "images", root / "labels", prepare_hint="(test data)")
    return name


@pytest.fixture
def make_dataset(tmp_path):
    """register_tiny under tmp_path; the registrations are removed after the test."""
    names = []

    def make(gt: dict[str, np.ndarray], classes: list[str] = CLASSES, unseen=(2, 3)) -> str:
        names.append(register_tiny(tmp_path / f"data{len(names)}", gt, classes, unseen))
        return names[-1]

    yield make
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture
def dataset(make_dataset):
    return make_dataset(GT)


def scores(pred: np.ndarray, num_channels: int = 4) -> torch.Tensor:
    """(H, W) ids -> (K, H, W) scores whose argmax is ``pred``."""
    return torch.nn.functional.one_hot(torch.as_tensor(pred), num_channels).permute(2, 0, 1).float()


def run(evaluator, name: str, preds=PRED, drop_gt_key: bool = False):
    evaluator.reset()
    for d in DatasetCatalog.get(name):
        inp = {k: v for k, v in d.items() if not (drop_gt_key and k == "sem_seg_file_name")}
        evaluator.process([inp], [{"sem_seg": scores(preds[d["image_id"]])}])
    return evaluator.evaluate()


def test_hand_computed_results(dataset):
    res = run(GeneralizedSemSegEvaluator(dataset, distributed=False), dataset)["sem_seg"]
    # confusion over both images (rows GT): sky [3,1,0,0], road [0,14,0,0], cat [1,1,2,0], dog none;
    # dog is predicted twice, but only on ignore pixels -> neither GT nor prediction -> NaN
    iou = {"sky": 3 / 5, "road": 14 / 16, "cat": 2 / 4}
    for cls, value in iou.items():
        assert res[f"IoU-{cls}"] == pytest.approx(100 * value)
    assert math.isnan(res["IoU-dog"])
    assert res["mIoU"] == pytest.approx(100 * sum(iou.values()) / 3)
    assert res["seen_mIoU"] == pytest.approx(100 * (iou["sky"] + iou["road"]) / 2)
    assert res["unseen_mIoU"] == pytest.approx(100 * iou["cat"])
    s, u = (iou["sky"] + iou["road"]) / 2, iou["cat"]
    assert res["hIoU"] == pytest.approx(100 * 2 * s * u / (s + u))
    assert res["pAcc"] == pytest.approx(100 * 19 / 22)
    assert res["mAcc"] == pytest.approx(100 * (3 / 4 + 14 / 14 + 2 / 4) / 3)
    assert "boundary_F" not in res


def test_gt_found_from_file_name_and_distributed_gather(dataset):
    expected = run(GeneralizedSemSegEvaluator(dataset, distributed=False), dataset)
    # Detectron2's test-time mapper drops "sem_seg_file_name"; single-process all_gather is the identity
    got = run(GeneralizedSemSegEvaluator(dataset, distributed=True), dataset, drop_gt_key=True)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_seen_unseen_override(dataset):
    res = run(GeneralizedSemSegEvaluator(dataset, distributed=False, seen_classes=[0], unseen_classes=[1]), dataset)
    assert res["sem_seg"]["unseen_mIoU"] == pytest.approx(100 * 14 / 16)
    with pytest.raises(ValueError, match="both seen and unseen"):
        GeneralizedSemSegEvaluator(dataset, seen_classes=[0, 1], unseen_classes=[1])


def test_invalid_predicted_ids_count_as_wrong(dataset):
    preds = {"a": PRED["a"], "b": PRED["b"].copy()}
    preds["b"][0, 0] = 4  # channel 4 of 5 is not a class
    ev = GeneralizedSemSegEvaluator(dataset, distributed=False)
    ev.reset()
    for d in DatasetCatalog.get(dataset):
        ev.process([d], [{"sem_seg": scores(preds[d["image_id"]], 5)}])
    res = ev.evaluate()["sem_seg"]
    assert res["IoU-road"] == pytest.approx(100 * 13 / 16)  # one road pixel fewer correct, union unchanged


def test_boundary_keys(dataset):
    perfect = {k: np.where(v == 255, 0, v).astype(np.int64) for k, v in GT.items()}  # ignore pixels: any class
    res = run(GeneralizedSemSegEvaluator(dataset, distributed=False, boundary=True), dataset, preds=perfect)["sem_seg"]
    for key in ("boundary_P", "boundary_R", "boundary_F", "boundary_F_mean_per_image"):
        assert res[key] == 100.0
    res = run(GeneralizedSemSegEvaluator(dataset, distributed=False, boundary=True), dataset)["sem_seg"]
    assert 0.0 < res["boundary_F"] < 100.0


def test_bad_ground_truth_and_size_mismatch_name_the_file(make_dataset):
    name = make_dataset({"x": np.array([[0, 7]], dtype=np.uint8)})
    ev = GeneralizedSemSegEvaluator(name, distributed=False)
    d = DatasetCatalog.get(name)[0]
    with pytest.raises(ValueError, match=r"x\.png.*\[7\]"):
        ev.process([d], [{"sem_seg": scores(np.zeros((1, 2), int))}])
    with pytest.raises(ValueError, match=r"x\.png.*differs"):
        ev.process([d], [{"sem_seg": scores(np.zeros((2, 2), int))}])


def test_outputs_written_and_state_constant(dataset, tmp_path):
    out = tmp_path / "out"
    ev = GeneralizedSemSegEvaluator(dataset, distributed=False, output_dir=str(out), write_predictions=True)
    ev.reset()
    data = DatasetCatalog.get(dataset)
    ev.process([data[0]], [{"sem_seg": scores(PRED["a"])}])
    size_one = len(pickle.dumps(ev._counts))
    for _ in range(20):
        ev.process([data[1]], [{"sem_seg": scores(PRED["b"])}])
    assert len(pickle.dumps(ev._counts)) == size_one  # memory does not grow with the number of images
    res = ev.evaluate()["sem_seg"]
    for stem in ("a", "b"):
        written = np.asarray(Image.open(out / "predictions" / f"{stem}.png"))
        assert written.dtype == np.uint8
        np.testing.assert_array_equal(written, PRED[stem])
    saved = json.loads((out / "sem_seg_metrics.json").read_text())
    assert saved["IoU-dog"] is None and saved["mIoU"] == pytest.approx(res["mIoU"])
    rows = dict(line.split(",") for line in (out / "sem_seg_metrics.csv").read_text().splitlines()[1:])
    assert float(rows["hIoU"]) == pytest.approx(res["hIoU"]) and rows["IoU-dog"] == "nan"


def test_many_classes_write_uint16(make_dataset, tmp_path):
    name = make_dataset({"z": np.zeros((2, 3), np.uint8)}, [f"c{i}" for i in range(300)], unseen=[299])
    ev = GeneralizedSemSegEvaluator(name, distributed=False, output_dir=str(tmp_path / "o"), write_predictions=True)
    pred = np.array([[0, 299, 256], [1, 2, 3]])
    ev.process([DatasetCatalog.get(name)[0]], [{"sem_seg": scores(pred, 300)}])
    written = np.asarray(Image.open(tmp_path / "o" / "predictions" / "z.png"))
    np.testing.assert_array_equal(written.astype(np.int64), pred)


def test_inside_inference_on_dataset(dataset):
    class Oracle(torch.nn.Module):
        def forward(self, inputs):
            return [{"sem_seg": scores(PRED[x["image_id"]])} for x in inputs]

    loader = [[d] for d in DatasetCatalog.get(dataset)]
    res = inference_on_dataset(Oracle(), loader, GeneralizedSemSegEvaluator(dataset, distributed=True))
    assert res["sem_seg"]["unseen_mIoU"] == pytest.approx(100 * 2 / 4)


def test_zsl_confusion_counts_argmax_over_unseen_classes_only():
    from zegcag.evaluation.generalized_sem_seg_evaluation import zsl_confusion, zsl_metrics

    gt = np.array([[0, 2, 2], [3, 3, 255]])
    scores = np.zeros((4, 2, 3))
    scores[1] = 10.0  # a seen class wins the full argmax everywhere; only the unseen channels are passed
    scores[2, 0, 1] = 1.0  # gt 2 -> 2 (right)
    scores[3, 0, 2] = 1.0  # gt 2 -> 3 (wrong)
    scores[3, 1, 0] = 1.0  # gt 3 -> 3 (right)
    scores[2, 1, 1] = 1.0  # gt 3 -> 2 (wrong)
    conf = zsl_confusion(scores[[2, 3]], gt, [2, 3])
    assert conf.tolist() == [[1, 1], [1, 1]]
    m = zsl_metrics(np.array([[3, 1], [0, 0]]))
    assert m["unseen_zsl_pAcc"] == 75.0 and m["unseen_zsl_mAcc"] == 75.0  # class 3 absent: not averaged
