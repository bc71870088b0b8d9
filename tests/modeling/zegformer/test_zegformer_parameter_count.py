"""configs/zegformer_coco.yaml builds a model with the official ZegFormer R101 parameter count (within 1%),
and tools/count_parameters.py prints a per-module table for any config. No weights, no CLIP download."""
from __future__ import annotations

import pytest

from zegcag_testing import REPO, load_script

# Reference values measured from the official code, not results of ours: github.com/dingjiansw101/ZegFormer at
# commit 8cb9e8f, its MaskFormer + ZegFormerHead built on CPU with random weights from
# configs/coco-stuff/zegformer_R101_bs32_60k_vit16_coco-stuff.yaml (the training config, whose state dict is the
# released checkpoint's: CLIP_CLASSIFICATION is off, so no CLIP), counted with fvcore's parameter_count:
#     python tools/count_parameters.py --official-dir <checkout of the official code>
# The total includes the official fixed logit scale (one value that is never trained).
OFFICIAL_R101_COCO_TOTAL = 60_287_937
OFFICIAL_R101_COCO_BACKBONE = 42_394_816
OFFICIAL_R101_COCO_HEAD = 17_893_121  # sem_seg_head: pixel decoder + transformer predictor


@pytest.fixture(scope="module")
def tool():
    return load_script("tools/count_parameters.py")


def test_coco_config_has_the_official_parameter_count(tool):
    model = tool.build_for_counting(str(REPO / "configs/zegformer_coco.yaml"))
    counts = tool.parameter_counts(model)
    print(f"zegformer_coco.yaml: {counts['']:,} parameters, official {OFFICIAL_R101_COCO_TOTAL:,}")
    assert len(model.backbone.res4) == 23  # ResNet-101, not the base config's 50
    assert model.head.segment_classifier.projection.out_features == 512  # ViT-B/16's embedding size, kept
    for name, ours, official in [("model", counts[""], OFFICIAL_R101_COCO_TOTAL),
                                 ("backbone", counts["backbone"], OFFICIAL_R101_COCO_BACKBONE),
                                 ("head", counts["head"], OFFICIAL_R101_COCO_HEAD)]:
        assert abs(ours - official) <= 0.01 * official, f"{name}: {ours:,} vs official {official:,}"
    assert model.image_branch is not None and "clip" not in " ".join(counts)  # CLIP stays out of the count


def test_count_parameters_prints_a_table(tool, capsys):
    assert tool.main(["--config-file", str(REPO / "configs/zegformer_synthetic.yaml"), "--max-depth", "1"]) == 0
    out = capsys.readouterr().out
    total = tool.parameter_counts(tool.build_for_counting(str(REPO / "configs/zegformer_synthetic.yaml")))[""]
    assert f"{total:,} parameters" in out
    assert "| backbone " in out and "| head " in out and "head.pixel_decoder" not in out
    with pytest.raises(FileNotFoundError, match="official-dir"):
        tool.official_model(REPO / "no_such_checkout", tool.OFFICIAL_COCO_R101)
