"""Guarding a run's output directory: a finished run is never overwritten silently."""
from __future__ import annotations

import os

FINISHED_MARKERS = ("model_final.pth", "eval_results.json")


class OutputDirExistsError(FileExistsError):
    pass


def check_output_dir(output_dir: str, *, resume: bool, eval_only: bool, overwrite: bool) -> None:
    """Refuse to start a new training in a directory that holds a finished run, unless told to."""
    if resume or eval_only or overwrite:
        return
    found = [m for m in FINISHED_MARKERS if os.path.isfile(os.path.join(output_dir, m))]
    if found:
        raise OutputDirExistsError(
            f"OUTPUT_DIR {output_dir} already holds a finished run ({', '.join(found)}). "
            "Choose another OUTPUT_DIR, pass --resume to continue it, --eval-only to evaluate it, "
            "or --overwrite to replace it."
        )
