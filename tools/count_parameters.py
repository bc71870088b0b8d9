#!/usr/bin/env python3
"""Count the parameters of the model a config builds (per module, with fvcore), with no weights or downloads.

    python tools/count_parameters.py --config-file configs/zegformer_coco.yaml [--max-depth 2] [KEY VALUE ...]
    python tools/count_parameters.py --config-file configs/zegformer_coco.yaml --official-dir /path/to/ZegFormer \
        [--official-config configs/coco-stuff/zegformer_R101_bs32_60k_vit16_coco-stuff.yaml]

The model is randomly initialised (MODEL.WEIGHTS ""): the count does not depend on the weights. A CLIP class
embedder is built on a stand-in open_clip model with the same embedding size, so no CLIP weights are needed.
CLIP is not part of the state dict of either ZegFormer: its text embeddings are fixed and its image
encoder (the CLIP image branch) is loaded separately. The counts therefore leave CLIP out.

With --official-dir (a checkout of github.com/dingjiansw101/ZegFormer, ZegFormer configs only), a child process
builds the official model from --official-config with random weights (as tools/check_zegformer_equivalence.py
does: CLIP's loader and ``Tensor.cuda`` are replaced from outside). The script then prints the official count,
the relative difference, and whether every official state-dict key converts (tools/convert_zegformer_checkpoint.py)
to a key of ours with the same shape. Exit status 1 if the counts differ by more than --tolerance or a key does
not convert, 2 if the official checkout or config is missing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_COCO_R101 = "configs/coco-stuff/zegformer_R101_bs32_60k_vit16_coco-stuff.yaml"
# Smallest open_clip architecture that open_clip builds; only its embed_dim matters here.
STAND_IN_ARCH = {"vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 32, "patch_size": 16},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 1, "layers": 1}}


def load_cfg(config_file: str, opts: Sequence[str] = ()):
    """Detectron2 config with zegcag's keys, ``config_file`` and ``KEY VALUE`` overrides, on CPU, no weights."""
    from detectron2.config import get_cfg
    from detectron2.projects.deeplab import add_deeplab_config

    from zegcag import add_zegcag_config

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_zegcag_config(cfg)
    cfg.merge_from_file(str(config_file))
    cfg.merge_from_list(list(opts))
    cfg.merge_from_list(["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"])
    return cfg


def use_clip_stand_in(cfg, folder: Path) -> int:
    """Point MODEL.CLASS_EMBED.CLIP_* at a random tiny open_clip model with the configured CLIP's embedding
    size (written into ``folder``), one template per class name. Returns that size."""
    from zegcag.embeddings.clip_loader import model_embed_dim, register_model_config

    ce = cfg.MODEL.CLASS_EMBED
    register_model_config(ce.CLIP_MODEL, ce.CLIP_MODEL_CONFIG)
    dim = model_embed_dim(ce.CLIP_MODEL)
    path = folder / f"zegcag_count_stand_in_{dim}.json"
    path.write_text(json.dumps({"embed_dim": dim, **STAND_IN_ARCH}))
    cfg.merge_from_list(["MODEL.CLASS_EMBED.CLIP_MODEL", path.stem, "MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG", str(path),
                         "MODEL.CLASS_EMBED.CLIP_PRETRAINED", "", "MODEL.CLASS_EMBED.TEMPLATES", "single",
                         "MODEL.CLASS_EMBED.CACHE_DIR", ""])
    if "ZEGFORMER" in cfg.MODEL:
        cfg.MODEL.ZEGFORMER.CLIP_IMAGE_TEMPLATES = "single"
    return dim


def build_for_counting(config_file: str, opts: Sequence[str] = ()) -> torch.nn.Module:
    """The model of ``config_file`` (+ overrides), randomly initialised on CPU, CLIP replaced by a stand-in."""
    from detectron2.modeling import build_model

    import zegcag  # noqa: F401  registers datasets, embedders and models

    cfg = load_cfg(config_file, opts)
    with tempfile.TemporaryDirectory(prefix="zegcag_count_") as tmp:
        if cfg.MODEL.CLASS_EMBED.PROVIDER == "clip":
            use_clip_stand_in(cfg, Path(tmp))
        torch.manual_seed(0)
        return build_model(cfg)


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """``{module name: parameter count}`` for every module, "" for the whole model (fvcore)."""
    from fvcore.nn import parameter_count

    return dict(parameter_count(model))


# ---------------------------------------------------------------- child process: the official model
def run_official_worker(official_dir: Path, official_config: str, result_path: Path) -> None:
    """Build the official model (random weights, CPU) and write its per-module counts and state-dict shapes."""
    sys.path.insert(0, str(official_dir))
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config

    import mask_former  # the official package, from --official-dir
    from mask_former.third_party import clip

    class TextOnlyClip:  # stands in for the CLIP download; text features do not change the parameters
        def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
            return torch.randn(tokens.shape[0], 512)

    clip.load = lambda *args, **kwargs: (TextOnlyClip(), None)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # CPU run of hard-wired .cuda() calls

    cfg = get_cfg()
    add_deeplab_config(cfg)
    mask_former.add_mask_former_config(cfg)
    cfg.merge_from_file(str(official_dir / official_config))
    names_json = result_path.with_suffix(".names.json")  # the official class-name files are made by its data scripts
    names_json.write_text(json.dumps([f"class {i}" for i in range(cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES)]))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.SEM_SEG_HEAD.TRAIN_CLASS_JSON",
                         str(names_json), "MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON", str(names_json)])
    model = build_model(cfg)
    shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
    result_path.write_text(json.dumps({"counts": parameter_counts(model), "state_dict_shapes": shapes}))


def official_model(official_dir: Path, official_config: str) -> dict:
    """``{"counts": {module: n}, "state_dict_shapes": {name: shape}}`` of the official model, from a child process
    (both projects register a "ZegFormerHead", so they cannot share one)."""
    if not (official_dir / "mask_former" / "mask_former_model.py").is_file():
        raise FileNotFoundError(f"--official-dir must be a checkout of github.com/dingjiansw101/ZegFormer (with "
                                f"mask_former/mask_former_model.py); got {official_dir}")
    if not (official_dir / official_config).is_file():
        raise FileNotFoundError(f"--official-config {official_config} not found under {official_dir}")
    with tempfile.TemporaryDirectory(prefix="zegcag_count_official_") as tmp:
        result = Path(tmp) / "official.json"
        subprocess.run([sys.executable, __file__, "--official-dir", str(official_dir), "--official-config",
                        official_config, "--official-worker", str(result)], check=True)
        return json.loads(result.read_text())


def conversion_problems(official_shapes: dict[str, list[int]], model: torch.nn.Module) -> list[str]:
    """Official state-dict keys that do not convert to one of ``model``'s keys with the same shape, and keys of
    ``model`` that no official key fills; empty when a converted official checkpoint loads strictly."""
    spec = importlib.util.spec_from_file_location("convert_zegformer", REPO / "tools/convert_zegformer_checkpoint.py")
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    stand_ins = {name: torch.empty(shape, device="meta") for name, shape in official_shapes.items()}
    try:
        converted, _ = converter.convert_state_dict(stand_ins)
    except converter.ConversionError as e:
        return [str(e)]
    ours = {name: list(t.shape) for name, t in model.state_dict().items()}
    problems = [f"missing in the official checkpoint: {n}" for n in sorted(set(ours) - set(converted))]
    problems += [f"not in zegcag's model: {n}" for n in sorted(set(converted) - set(ours))]
    problems += [f"shape of {n}: official {list(t.shape)}, zegcag {ours[n]}"
                 for n, t in sorted(converted.items()) if n in ours and list(t.shape) != ours[n]]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", default=str(REPO / "configs/zegformer_coco.yaml"))
    parser.add_argument("--max-depth", type=int, default=2, help="module depth of the printed table")
    parser.add_argument("--official-dir", type=Path, help="checkout of github.com/dingjiansw101/ZegFormer")
    parser.add_argument("--official-config", default=OFFICIAL_COCO_R101, help="official config, relative to it")
    parser.add_argument("--tolerance", type=float, default=0.01, help="largest relative difference to the official")
    parser.add_argument("--official-worker", type=Path, help=argparse.SUPPRESS)  # result.json
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    if args.official_worker:
        run_official_worker(args.official_dir.resolve(), args.official_config, args.official_worker)
        return 0
    from fvcore.nn import parameter_count_table

    model = build_for_counting(args.config_file, args.opts)
    ours = parameter_counts(model)
    uses_clip = (getattr(getattr(model, "class_embedder", None), "provider", "") == "clip"
                 or getattr(model, "image_branch", None) is not None)
    note = " (CLIP not included: loaded separately, not in the state dict)" if uses_clip else ""
    print(f"{args.config_file}: {ours['']:,} parameters{note}")
    print(parameter_count_table(model, max_depth=args.max_depth))
    if args.official_dir is None:
        return 0
    try:
        official = official_model(args.official_dir.resolve(), args.official_config)
    except FileNotFoundError as e:
        print(f"count_parameters: {e}", file=sys.stderr)
        return 2
    theirs = official["counts"][""]
    diff = (ours[""] - theirs) / theirs
    parts = official["counts"]
    print(f"official {args.official_config}: {theirs:,} parameters (backbone {parts.get('backbone', 0):,}, head "
          f"{parts.get('sem_seg_head', 0):,}); zegcag {ours['']:,} (backbone {ours.get('backbone', 0):,}, head "
          f"{ours.get('head', 0):,}): difference {ours[''] - theirs:+,} = {diff:+.4%}")
    if "sem_seg_head.predictor.logit_scale" in official["counts"]:
        print("(the official count includes its fixed logit scale, 1 value that is not trained; zegcag takes the "
              "temperature from MODEL.ZEGFORMER.TEMPERATURE)")
    problems = conversion_problems(official["state_dict_shapes"], model)
    print(f"official state dict: {len(official['state_dict_shapes'])} keys; "
          + ("all convert to zegcag keys of the same shape, none missing" if not problems else
             f"{len(problems)} problems:\n  " + "\n  ".join(problems)))
    return 0 if abs(diff) <= args.tolerance and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
