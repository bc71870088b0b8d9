#!/usr/bin/env python3
"""Check that zegcag's ZegFormer-seg computes what the official ZegFormer computes, on CPU.

    python tools/check_zegformer_equivalence.py --official-dir /path/to/ZegFormer [--gammas 0 0.1] [--tolerance 1e-4]

The official code (github.com/dingjiansw101/ZegFormer, a MaskFormer fork) is NOT part of zegcag: pass the path
of a checkout. A child process imports it from there (both projects register a "ZegFormerHead", so they cannot
share a process), builds its MaskFormer meta-architecture with a tiny configuration and random weights, replaces
its text embeddings by fixed ones, and runs inference on fixed images. Its state dict is then converted with
tools/convert_zegformer_checkpoint.py, loaded into zegcag's ZegFormer built with the same sizes, and both
``sem_seg`` outputs are compared (max abs difference), for every calibration gamma. See docs/zegformer_equivalence.md.

The official code needs CUDA and downloads CLIP; the child process only works around that from outside: CLIP's
loader returns a stand-in text encoder (its output is discarded: the embeddings are replaced), and
``Tensor.cuda`` returns the tensor itself. No official file is modified.
Exit status: 0 all within tolerance, 1 a difference above it, 2 the official code is missing.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
# One tiny architecture, written once for both code bases.
SIZES = dict(depth=50, stem=16, res2=32, width=8, conv=32, mask=32, hidden=32, queries=10, heads=4, ffn=64,
             layers=3, embed=512, temperature=0.01)
NUM_CLASSES, UNSEEN = 7, (2, 5)
IMAGE_SIZES = [(100, 130), (75, 96)]  # not multiples of 32: padding and cropping are exercised
OUTPUT_SIZES = [(120, 150), (75, 96)]  # "height"/"width": the first is resized after cropping


def make_inputs(seed: int) -> dict:
    """Images (0-255 RGB), output sizes, class names, fixed unit class embeddings ``(K, 512)``."""
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand(3, h, w, generator=g) * 255 for h, w in IMAGE_SIZES]
    embeddings = torch.nn.functional.normalize(torch.randn(NUM_CLASSES, SIZES["embed"], generator=g), dim=-1)
    return {"images": images, "output_sizes": OUTPUT_SIZES, "names": [f"class {i}" for i in range(NUM_CLASSES)],
            "unseen": list(UNSEEN), "embeddings": embeddings}


def batched(inputs: dict) -> list[dict]:
    return [{"image": im, "height": h, "width": w} for im, (h, w) in zip(inputs["images"], inputs["output_sizes"])]


# ---------------------------------------------------------------- child process: the official model
def official_opts(class_json: str, dataset: str, pre_norm: bool) -> list[str]:
    s = SIZES
    return [
        "MODEL.META_ARCHITECTURE", "MaskFormer", "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "",
        "MODEL.PIXEL_MEAN", "[123.675, 116.28, 103.53]", "MODEL.PIXEL_STD", "[58.395, 57.12, 57.375]",
        "MODEL.BACKBONE.NAME", "build_resnet_backbone", "MODEL.BACKBONE.FREEZE_AT", "0",
        "MODEL.RESNETS.DEPTH", str(s["depth"]), "MODEL.RESNETS.STEM_OUT_CHANNELS", str(s["stem"]),
        "MODEL.RESNETS.RES2_OUT_CHANNELS", str(s["res2"]), "MODEL.RESNETS.WIDTH_PER_GROUP", str(s["width"]),
        "MODEL.RESNETS.STRIDE_IN_1X1", "False", "MODEL.RESNETS.OUT_FEATURES", "['res2', 'res3', 'res4', 'res5']",
        "MODEL.SEM_SEG_HEAD.NAME", "ZegFormerHead",
        "MODEL.SEM_SEG_HEAD.IN_FEATURES", "['res2', 'res3', 'res4', 'res5']",
        "MODEL.SEM_SEG_HEAD.IGNORE_VALUE", "255", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(NUM_CLASSES),
        "MODEL.SEM_SEG_HEAD.CONVS_DIM", str(s["conv"]), "MODEL.SEM_SEG_HEAD.MASK_DIM", str(s["mask"]),
        "MODEL.SEM_SEG_HEAD.NORM", "GN", "MODEL.SEM_SEG_HEAD.TRAIN_CLASS_JSON", class_json,
        "MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON", class_json, "MODEL.SEM_SEG_HEAD.CLIP_PRETRAINED", "ViT-B/16",
        "MODEL.SEM_SEG_HEAD.TEMPERATURE", str(s["temperature"]), "MODEL.PROMPT_ENSEMBLE_TYPE", "single",
        "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE", "res5", "MODEL.MASK_FORMER.DEEP_SUPERVISION", "True",
        "MODEL.MASK_FORMER.HIDDEN_DIM", str(s["hidden"]), "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", str(s["queries"]),
        "MODEL.MASK_FORMER.NHEADS", str(s["heads"]), "MODEL.MASK_FORMER.DIM_FEEDFORWARD", str(s["ffn"]),
        "MODEL.MASK_FORMER.ENC_LAYERS", "0", "MODEL.MASK_FORMER.DEC_LAYERS", str(s["layers"]),
        "MODEL.MASK_FORMER.PRE_NORM", str(pre_norm), "MODEL.MASK_FORMER.SIZE_DIVISIBILITY", "32",
        "DATASETS.TEST", f"('{dataset}',)", "DATASETS.VAL_ALL", f"('{dataset}',)",
    ]


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Perturb every float parameter and buffer, so zero biases, unit norms and frozen BN statistics count too.

    The no-object vector keeps its official initialisation: larger, its unnormalised score would win every query
    and leave all class scores near zero (a comparison of nothing)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if not t.is_floating_point() or any(k in name for k in ("pixel_", "logit_scale", "bg_feature")):
                continue
            t.add_(0.1 * torch.randn(t.shape, generator=g))
            if name.endswith("running_var"):
                t.abs_().add_(0.5)


def run_official(official_dir: Path, inputs_path: Path, result_path: Path, gammas: list[float], seed: int,
                 pre_norm: bool) -> None:
    sys.path.insert(0, str(official_dir))
    from detectron2.config import get_cfg
    from detectron2.data import MetadataCatalog
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config

    import mask_former  # the official package, from --official-dir
    from mask_former.third_party import clip

    class TextOnlyClip:  # stands in for the CLIP download; the text features it yields are replaced below
        def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
            return torch.randn(tokens.shape[0], SIZES["embed"])

    clip.load = lambda *args, **kwargs: (TextOnlyClip(), None)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # CPU run of hard-wired .cuda() calls

    inputs = torch.load(inputs_path)
    names = inputs["names"]
    dataset = "zegformer_equivalence_check"
    MetadataCatalog.get(dataset).set(stuff_classes=names, val_extra_classes=[names[i] for i in inputs["unseen"]])
    class_json = inputs_path.with_suffix(".json")
    class_json.write_text(json.dumps(names))
    cfg = get_cfg()
    add_deeplab_config(cfg)
    mask_former.add_mask_former_config(cfg)
    cfg.merge_from_list(official_opts(str(class_json), dataset, pre_norm))
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    randomize_(model, seed)
    model.sem_seg_head.predictor.text_features_test = inputs["embeddings"].clone()
    outputs = {}
    with torch.no_grad():
        for gamma in gammas:
            model.gzero_calibrate = gamma
            outputs[gamma] = [r["sem_seg"] for r in model(batched(inputs))]
    torch.save({"state_dict": model.state_dict(), "outputs": outputs,
                "seen_indexes": model.seen_indexes}, result_path)


# ---------------------------------------------------------------- this process: zegcag's model
class FixedEmbedder:
    """Class names -> the fixed embeddings the official model was given."""

    def __init__(self, names: list[str], embeddings: torch.Tensor) -> None:
        self.rows = dict(zip(names, embeddings))
        self.dim = embeddings.shape[1]

    def __call__(self, names) -> torch.Tensor:
        return torch.stack([self.rows[n] for n in names])


def build_zegcag(inputs: dict, no_object_similarity: str, pre_norm: bool):
    from detectron2.config import get_cfg
    from detectron2.modeling import build_backbone
    from detectron2.projects.deeplab import add_deeplab_config

    from zegcag import add_zegcag_config
    from zegcag.modeling.matcher import HungarianMatcher
    from zegcag.modeling.vocabulary import Vocabulary
    from zegcag.modeling.zegformer import ZegFormer, ZegFormerHead
    from zegcag.modeling.zegformer.criterion import SetCriterion

    s = SIZES
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_zegcag_config(cfg)
    cfg.merge_from_file(str(REPO / "configs" / "Base-ZegFormer.yaml"))
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.RESNETS.DEPTH", str(s["depth"]),
        "MODEL.RESNETS.STEM_OUT_CHANNELS", str(s["stem"]), "MODEL.RESNETS.RES2_OUT_CHANNELS", str(s["res2"]),
        "MODEL.RESNETS.WIDTH_PER_GROUP", str(s["width"]), "MODEL.ZEGFORMER.CONVS_DIM", str(s["conv"]),
        "MODEL.ZEGFORMER.MASK_DIM", str(s["mask"]), "MODEL.ZEGFORMER.HIDDEN_DIM", str(s["hidden"]),
        "MODEL.ZEGFORMER.NUM_OBJECT_QUERIES", str(s["queries"]), "MODEL.ZEGFORMER.NHEADS", str(s["heads"]),
        "MODEL.ZEGFORMER.DIM_FEEDFORWARD", str(s["ffn"]), "MODEL.ZEGFORMER.DEC_LAYERS", str(s["layers"]),
        "MODEL.ZEGFORMER.TEMPERATURE", str(s["temperature"]), "MODEL.ZEGFORMER.PRE_NORM", str(pre_norm),
        "MODEL.ZEGFORMER.NO_OBJECT_SIMILARITY", no_object_similarity, "MODEL.ZEGFORMER.INFERENCE_MODE", "seg",
    ])
    backbone = build_backbone(cfg)
    z = cfg.MODEL.ZEGFORMER
    matcher = HungarianMatcher(cost_class=z.CLASS_WEIGHT, cost_mask=z.MASK_WEIGHT, cost_dice=z.DICE_WEIGHT)
    return ZegFormer(
        backbone=backbone,
        head=ZegFormerHead(cfg, backbone.output_shape(), embed_dim=s["embed"]),
        criterion=SetCriterion(matcher, no_object_weight=z.NO_OBJECT_WEIGHT, class_weight=z.CLASS_WEIGHT,
                               mask_weight=z.MASK_WEIGHT, dice_weight=z.DICE_WEIGHT),
        class_embedder=FixedEmbedder(inputs["names"], inputs["embeddings"]),
        vocabulary=Vocabulary(tuple(inputs["names"]), frozenset(set(range(NUM_CLASSES)) - set(inputs["unseen"]))),
        ignore_label=255, size_divisibility=z.SIZE_DIVISIBILITY, pixel_mean=cfg.MODEL.PIXEL_MEAN,
        pixel_std=cfg.MODEL.PIXEL_STD, inference_mode="seg", image_branch=None, fusion_lambda=z.FUSION_LAMBDA,
        clip_topk=0, clip_no_object_in_softmax=True, calibration_gamma=0.0,
    ).eval()


def load_converter():
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_zegformer", REPO / "tools/convert_zegformer_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(inputs: dict, official: dict, no_object_similarity: str, pre_norm: bool) -> dict[float, float]:
    """Max abs difference of ``sem_seg`` per gamma (over all images)."""
    converted, dropped = load_converter().convert_state_dict(official["state_dict"])
    model = build_zegcag(inputs, no_object_similarity, pre_norm)
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    seen = model.seen_mask.nonzero().squeeze(1).tolist()
    if seen != sorted(official["seen_indexes"]):
        raise RuntimeError(f"seen classes differ: zegcag {seen}, official {official['seen_indexes']}")
    diffs = {}
    with torch.no_grad():
        for gamma, theirs in official["outputs"].items():
            model.calibration_gamma = gamma
            ours = [r["sem_seg"] for r in model(batched(inputs))]
            for a, b in zip(ours, theirs):
                if a.shape != b.shape:
                    raise RuntimeError(f"sem_seg shapes differ: zegcag {tuple(a.shape)}, official {tuple(b.shape)}")
            diffs[gamma] = max((a - b).abs().max().item() for a, b in zip(ours, theirs))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-dir", type=Path, help="checkout of github.com/dingjiansw101/ZegFormer")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.0, 0.1], help="calibration gammas to check")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed max abs difference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pre-norm", action="store_true", help="also the pre-norm decoder (official PRE_NORM True)")
    parser.add_argument("--official-worker", nargs=2, type=Path, help=argparse.SUPPRESS)  # inputs.pt result.pt
    args = parser.parse_args(argv)
    if args.official_dir is None or not (args.official_dir / "mask_former" / "mask_former_model.py").is_file():
        print(f"check_zegformer_equivalence: --official-dir must point to a checkout of the official ZegFormer "
              f"code (github.com/dingjiansw101/ZegFormer, with mask_former/mask_former_model.py); got "
              f"{args.official_dir}. It is not shipped with zegcag; nothing was compared.", file=sys.stderr)
        return 2
    if args.official_worker:
        run_official(args.official_dir.resolve(), *args.official_worker, args.gammas, args.seed, args.pre_norm)
        return 0
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        inputs_path, result_path = Path(tmp) / "inputs.pt", Path(tmp) / "official.pt"
        inputs = make_inputs(args.seed)
        torch.save(inputs, inputs_path)
        cmd = [sys.executable, __file__, "--official-dir", str(args.official_dir), "--seed", str(args.seed),
               "--gammas", *map(str, args.gammas), "--official-worker", str(inputs_path), str(result_path)]
        subprocess.run(cmd + (["--pre-norm"] if args.pre_norm else []), check=True)
        official = torch.load(result_path, weights_only=False)
    scale = max(o.abs().max().item() for o in official["outputs"][args.gammas[0]])
    print(f"official sem_seg: {len(IMAGE_SIZES)} images, K={NUM_CLASSES}, largest |score| {scale:.4g}")
    for similarity in ("dot", "cosine"):
        diffs = compare(inputs, official, similarity, args.pre_norm)
        for gamma, diff in diffs.items():
            verdict = "" if similarity != "dot" else ("  OK" if diff <= args.tolerance else "  FAIL")
            failed |= similarity == "dot" and diff > args.tolerance
            print(f"NO_OBJECT_SIMILARITY {similarity:6s} gamma {gamma:<5g} max abs diff {diff:.3e}{verdict}")
    print("cosine is the paper's no-object score: a large difference there shows the check is sensitive.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
