#!/usr/bin/env python3
"""Train or evaluate a zegcag model with Detectron2's conventions.

    python tools/train_net.py --config-file configs/spnet_synthetic.yaml [--eval-only] [--resume] [KEY VALUE ...]
"""
from __future__ import annotations


from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.projects.deeplab import add_deeplab_config
from detectron2.utils import comm

import zegcag  # noqa: F401  registers datasets, embedders and models
from zegcag import add_zegcag_config
from zegcag.engine import trainer_class
from zegcag.engine.run_dir import check_output_dir


def setup(args):
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_zegcag_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_output_dir(cfg.OUTPUT_DIR, resume=args.resume, eval_only=args.eval_only, overwrite=args.overwrite)
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    Trainer = trainer_class(cfg)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        Trainer.calibrate(cfg, model)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def parse_args(argv=None):
    parser = default_argument_parser()
    parser.add_argument("--overwrite", action="store_true",
                        help="train into an OUTPUT_DIR that already holds a finished run (its checkpoints are replaced)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    print("Command Line Args:", args)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
