#!/usr/bin/env python3
"""How much of the class embedding can be read from a model's backbone features, one segment at a time?

Averages the backbone feature under every ground-truth class region (a "segment") of a training set's images,
fits three linear read-outs on the seen-class segments, and classifies the unseen-class segments of a test set
among the unseen classes only (ZSL top-1; chance is 1 / number of unseen classes):

- ``ridge``: ridge regression feature -> class embedding, nearest unseen embedding by cosine;
- ``nearest_mean``: ridge regression class embedding -> class-mean feature (the generative direction of CaGNet and
  ZS3Net), nearest predicted unseen mean;
- ``cosine``: a linear map trained with cross-entropy on cosine similarities / tau (ZegFormer's classifier form).

It separates what the features allow (perfect masks, a fit with no other loss) from what a model's own head makes of
them: compare the backbone a model ends with against the one it started from (benchmarks/synthetic_transfer.md).

    python tools/probe_segment_transfer.py --config-file configs/spnet_synthetic.yaml \
        --weights output/spnet_synthetic/model_final.pth [--output probe.json] [KEY VALUE ...]

``--weights`` may hold only a backbone (e.g. ``zegcag://synthetic_backbone.pth``): the other weights stay random,
which does not matter here as only the backbone runs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

__all__ = ["cosine_classifier_zsl", "nearest_mean_zsl", "ridge_zsl", "segment_features"]


def segment_features(model, dataset_dicts: list[dict], feature: str, keep: np.ndarray, input_format: str,
                     ignore_label: int) -> tuple[np.ndarray, np.ndarray]:
    """Backbone ``feature`` averaged over each class region of each image, for the classes where ``keep[c]``:
    -> ``X: (N, C)`` and their class ids ``y: (N,)``. Features are upsampled to the label's size first."""
    from zegcag.data.label_io import read_label
    from zegcag.data.mappers.zs3_semantic_mapper import read_image

    xs, ys = [], []
    with torch.no_grad():
        for d in dataset_dicts:
            image = read_image(d["file_name"], input_format)
            label = read_label(d["sem_seg_file_name"])
            tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
            normalized = model.normalized_images([{"image": tensor}])[0][None]
            outputs = model.backbone(normalized)
            if feature not in outputs:
                raise KeyError(f"the backbone has no output {feature!r}; it has {sorted(outputs)} (--feature)")
            fmap = F.interpolate(outputs[feature].float(), size=label.shape, mode="bilinear", align_corners=False)[0]
            fmap = fmap.flatten(1).cpu().numpy()
            flat = label.reshape(-1)
            for c in np.unique(flat):
                if c == ignore_label or c >= len(keep) or not keep[c]:
                    continue
                xs.append(fmap[:, flat == c].mean(1))
                ys.append(int(c))
    if not xs:
        raise ValueError("no segment of the wanted classes in these images")
    return np.stack(xs), np.asarray(ys)


def _standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return (train - mean) / std, (test - mean) / std


def _result(predicted: np.ndarray, y_test: np.ndarray, unseen: np.ndarray) -> dict:
    return {"zsl_top1": float(np.mean(unseen[predicted] == y_test)),
            "predicted_per_class": np.bincount(predicted, minlength=len(unseen)).tolist()}


def ridge_zsl(x_train, y_train, x_test, y_test, embeddings: np.ndarray, unseen: np.ndarray, lam: float = 10.0) -> dict:
    """Ridge regression standardized feature -> embedding (with intercept) on the training segments; nearest unseen
    embedding by cosine."""
    a, b = _standardize(x_train, x_test)
    targets = embeddings[y_train]
    offset = targets.mean(0)
    weights = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ (targets - offset))
    pred = offset + b @ weights
    unit = embeddings[unseen] / np.linalg.norm(embeddings[unseen], axis=1, keepdims=True)
    return _result((pred @ unit.T).argmax(1), y_test, unseen)


def nearest_mean_zsl(x_train, y_train, x_test, y_test, embeddings: np.ndarray, unseen: np.ndarray,
                     lam: float = 0.1) -> dict:
    """Linear ridge regression (with intercept, in its dual form) class embedding -> class-mean standardized feature
    over the training classes; each test segment goes to the unseen class whose predicted mean is nearest."""
    a, b = _standardize(x_train, x_test)
    classes = np.unique(y_train)
    means = np.stack([a[y_train == c].mean(0) for c in classes])
    embedding_offset, mean_offset = embeddings[classes].mean(0), means.mean(0)
    train_embeddings = embeddings[classes] - embedding_offset
    dual = np.linalg.solve(train_embeddings @ train_embeddings.T + lam * np.eye(len(classes)), means - mean_offset)
    predicted_means = mean_offset + (embeddings[unseen] - embedding_offset) @ train_embeddings.T @ dual
    distances = ((b[:, None] - predicted_means[None]) ** 2).sum(-1)
    return _result(distances.argmin(1), y_test, unseen)


def cosine_classifier_zsl(x_train, y_train, x_test, y_test, embeddings: np.ndarray, unseen: np.ndarray,
                          temperature: float = 0.01, steps: int = 1000, lr: float = 2e-3,
                          weight_decay: float = 0.05, seed: int = 0) -> dict:
    """Linear map (with bias) of the raw feature, logits = cos(map, class embedding) / temperature over the training
    classes, AdamW full-batch; then argmax over the unseen classes."""
    classes = np.unique(y_train)
    generator = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(x_train.shape[1], embeddings.shape[1])
    with torch.no_grad():
        bound = 1 / np.sqrt(x_train.shape[1])
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    unit = F.normalize(torch.as_tensor(embeddings, dtype=torch.float32), dim=-1)
    x = torch.as_tensor(x_train, dtype=torch.float32)
    target = torch.as_tensor(np.searchsorted(classes, y_train))
    optimizer = torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            logits = F.normalize(layer(x), dim=-1) @ unit[classes].T / temperature
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        scores = F.normalize(layer(torch.as_tensor(x_test, dtype=torch.float32)), dim=-1) @ unit[unseen].T
    return {**_result(scores.argmax(1).numpy(), y_test, unseen), "train_loss": loss.item()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", default=None, help="checkpoint to load (default: the config's MODEL.WEIGHTS)")
    parser.add_argument("--feature", default=None, help="backbone output to pool (default: the only or first one)")
    parser.add_argument("--train-dataset", default=None, help="default: the config's first DATASETS.TRAIN")
    parser.add_argument("--test-dataset", default=None, help="default: the config's first DATASETS.TEST")
    parser.add_argument("--train-images", type=int, default=800)
    parser.add_argument("--test-images", type=int, default=300)
    parser.add_argument("--output", default=None, help="write the results here as JSON (not overwritten)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    if args.output and Path(args.output).exists():
        raise FileExistsError(f"{args.output} exists; choose another --output")

    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import DatasetCatalog
    from detectron2.modeling import build_model

    from zegcag.engine.predictor import build_predictor_cfg

    cfg = build_predictor_cfg(args.config_file, None, "cpu")
    cfg.defrost()
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    model = build_model(cfg).eval()
    weights = args.weights if args.weights is not None else cfg.MODEL.WEIGHTS
    if weights:
        DetectionCheckpointer(model).load(weights)
    feature = args.feature or next(iter(model.backbone.output_shape()))
    seen = model.seen_mask.cpu().numpy().astype(bool)
    unseen = np.nonzero(~seen)[0]
    if len(unseen) == 0:
        raise ValueError("the model's vocabulary has no unseen class: nothing to transfer to")
    embeddings = model.class_embeddings.float().cpu().numpy()
    train_name = args.train_dataset or cfg.DATASETS.TRAIN[0]
    test_name = args.test_dataset or cfg.DATASETS.TEST[0]
    ignore = getattr(model, "ignore_label", 255)
    x_train, y_train = segment_features(model, DatasetCatalog.get(train_name)[: args.train_images], feature,
                                        seen, cfg.INPUT.FORMAT, ignore)
    x_test, y_test = segment_features(model, DatasetCatalog.get(test_name)[: args.test_images], feature,
                                      ~seen, cfg.INPUT.FORMAT, ignore)
    fits = (x_train, y_train, x_test, y_test, embeddings, unseen)
    results = {
        "config_file": args.config_file, "weights": weights, "feature": feature,
        "train_segments": len(y_train), "test_segments": len(y_test), "chance": 1 / len(unseen),
        "unseen_classes": [model.vocabulary.class_names[c] for c in unseen],
        "ridge": ridge_zsl(*fits), "nearest_mean": nearest_mean_zsl(*fits), "cosine": cosine_classifier_zsl(*fits),
    }
    for name in ("ridge", "nearest_mean", "cosine"):
        print(f"{name:12s} ZSL top-1 {results[name]['zsl_top1']:.3f} (chance {results['chance']:.3f}), "
              f"predicted per unseen class {results[name]['predicted_per_class']}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
