#!/usr/bin/env python3
"""The quick start: generate the synthetic benchmark if missing, train and evaluate the best model on it,
print seen / unseen / harmonic mIoU and say where the checkpoint, metrics and pictures went.

    python tools/quickstart.py [--config-file configs/spnet_synthetic.yaml] [--output-dir DIR] [KEY VALUE ...]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = "configs/spnet_synthetic.yaml"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=DEFAULT_CONFIG)
    parser.add_argument("--output-dir", default=None, help="default: output/quickstart/<config>-<time>")
    parser.add_argument("--num-pictures", type=int, default=6)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args()


def train(config: str, output_dir: Path, opts: list[str]) -> None:
    cmd = [sys.executable, str(REPO / "tools/train_net.py"), "--config-file", config, "OUTPUT_DIR", str(output_dir), *opts]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def save_pictures(config: str, output_dir: Path, opts: list[str], count: int) -> Path:
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.projects.deeplab import add_deeplab_config

    from zegcag import add_zegcag_config
    from zegcag.engine import trainer_class
    from zegcag.engine.trainer import CALIBRATION_FILE
    from zegcag.utils.visualization import save_prediction_panels

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_zegcag_config(cfg)
    cfg.merge_from_file(str(REPO / config))
    cfg.merge_from_list(opts)
    Trainer = trainer_class(cfg)
    model = Trainer.build_model(cfg)
    DetectionCheckpointer(model).load(str(output_dir / "model_final.pth"))
    calibration = output_dir / CALIBRATION_FILE
    if calibration.is_file():
        model.calibration_gamma = json.loads(calibration.read_text())["gamma"]
    dataset = cfg.DATASETS.TEST[0]
    pictures = output_dir / "pictures"
    save_prediction_panels(model, Trainer.build_test_loader(cfg, dataset), dataset, pictures, count)
    return pictures


def print_summary(output_dir: Path, pictures: Path, seconds: float, config: str) -> None:
    results = json.loads((output_dir / "eval_results.json").read_text())
    rows = []
    for dataset, metrics in results.items():
        m = metrics["sem_seg"]
        rows.append((dataset, m["seen_mIoU"], m["unseen_mIoU"], m["hIoU"], m["mIoU"], m["pAcc"]))
    fmt = lambda v: "  n/a" if v is None else f"{v:5.1f}"  # noqa: E731
    print("\n| dataset | seen mIoU | unseen mIoU | hIoU | mIoU | pAcc |\n|---|---|---|---|---|---|")
    for name, *values in rows:
        print(f"| {name} | " + " | ".join(fmt(v) for v in values) + " |")
    calibration = output_dir / "calibration.json"
    if calibration.is_file():
        print(f"\ncalibration gamma (chosen on {json.loads(calibration.read_text())['dataset']}): "
              f"{json.loads(calibration.read_text())['gamma']:.2f}")
    print(f"\nfinished in {seconds / 60:.1f} min")
    print(f"checkpoint: {output_dir / 'model_final.pth'}")
    print(f"metrics:    {output_dir / 'eval_results.json'} (training curves: {output_dir / 'metrics.json'}, "
          f"TensorBoard: tensorboard --logdir {output_dir})")
    print(f"pictures:   {pictures}/ (image | ground truth | prediction)")
    print(f"\nsegment an image with your own class names (one per line in a text file):\n"
          f"  python demo/demo.py --config-file {config} --weights {output_dir / 'model_final.pth'} "
          f"--input IMAGE --vocab CLASSES.txt --output demo_out/")


def main() -> None:
    args = parse_args()
    start = time.time()
    from zegcag.data.datasets import datasets_root
    from zegcag.data.synthetic import ensure_synthetic_benchmark

    ensure_synthetic_benchmark(datasets_root())
    name = Path(args.config_file).stem
    output_dir = Path(args.output_dir or REPO / "output" / "quickstart" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    train(args.config_file, output_dir, args.opts)
    pictures = save_pictures(args.config_file, output_dir, args.opts, args.num_pictures)
    print_summary(output_dir, pictures, time.time() - start, args.config_file)


if __name__ == "__main__":
    main()
