"""The synthetic configs' pretrained backbone: the zegcag:// path, backbone extraction, and that pretraining never
trained a class that a synthetic split evaluates as unseen."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils.file_io import PathManager

from zegcag.data.protocol import resolve_split
from zegcag.embeddings.word_vectors import Word2VecFastTextEmbedder
from zegcag.model_zoo import MODEL_ZOO_DIR
from zegcag.utils.checkpoint_files import read_state_dict
from zegcag_testing import REPO, load_script, make_cfg

SHIPPED = "zegcag://synthetic_backbone.pth"
PRETRAIN_CONFIG = "configs/pretrain_synthetic_backbone.yaml"
# PASCAL VOC names whose COCO-Stuff name differs
VOC_TO_COCO = {"aeroplane": "airplane", "motorbike": "motorcycle", "sofa": "couch", "tv monitor": "tv"}


def synthetic_configs_on_the_backbone() -> list[str]:
    configs = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*synthetic*.yaml"))
    return [c for c in configs if make_cfg(c).MODEL.WEIGHTS == SHIPPED]


def test_synthetic_configs_start_from_the_shipped_backbone():
    configs = synthetic_configs_on_the_backbone()
    for family in ("spnet_synthetic.yaml", "zegformer_synthetic.yaml", "cagnet_synthetic.yaml", "zs3net_synthetic.yaml"):
        assert f"configs/{family}" in configs
    assert make_cfg(PRETRAIN_CONFIG).MODEL.WEIGHTS == ""


def test_zegcag_path_resolves_to_the_package_and_names_missing_files():
    local = Path(PathManager.get_local_path(SHIPPED))
    assert local == MODEL_ZOO_DIR / "synthetic_backbone.pth" and local.is_file()
    assert PathManager.exists(SHIPPED) and not PathManager.exists("zegcag://absent.pth")
    with pytest.raises(FileNotFoundError, match="absent.pth.*pretrained-backbone"):
        PathManager.get_local_path("zegcag://absent.pth")


@pytest.mark.parametrize("config", ["configs/spnet_synthetic.yaml", "configs/zegformer_synthetic.yaml",
                                    "configs/cagnet_synthetic.yaml"])
def test_shipped_backbone_loads_every_backbone_parameter(config):
    from zegcag.engine import trainer_class

    cfg = make_cfg(config)
    model = trainer_class(cfg).build_model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("backbone.")}
    shipped = read_state_dict(Path(PathManager.get_local_path(cfg.MODEL.WEIGHTS)))
    assert set(shipped) == set(before)  # nothing but the backbone, all of it
    assert all(shipped[k].dtype == v.dtype for k, v in before.items())
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    after = model.state_dict()
    changed = [k for k, v in before.items() if v.dtype.is_floating_point and not torch.equal(v, after[k])]
    assert changed and all(torch.equal(after[k], shipped[k]) for k in before)


def test_pretraining_leaves_out_every_synthetic_unseen_class():
    pretrain = make_cfg(PRETRAIN_CONFIG)
    coco = resolve_split(pretrain, pretrain.DATASETS.TRAIN[0])
    trained = {coco.class_names[i] for i in coco.seen}
    assert len(trained) == 136 and "background" in trained
    split_b = load_script("tools/synthetic_results.py").SPLIT_B
    unseen = set()
    for config in synthetic_configs_on_the_backbone():
        for overrides in ((), ("DATASETS.ZS3.UNSEEN_CLASSES", split_b)):
            cfg = make_cfg(config, *overrides)
            for dataset in [*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]:
                split = resolve_split(cfg, dataset)
                unseen |= {split.class_names[i] for i in split.unseen}
    assert {"sheep", "sofa", "bicycle", "horse"} <= unseen
    as_coco = {VOC_TO_COCO.get(name, name) for name in unseen}
    assert not as_coco & trained
    # no trained class is a near-synonym either (textures are a function of the word vectors); the closest pairs,
    # dog / hot dog and wall-concrete / wall-stone at 0.80, are distinct classes on the real splits too
    embedder = Word2VecFastTextEmbedder()
    trained = sorted(trained)
    similarity = embedder(sorted(unseen)) @ embedder(trained).T
    assert similarity.max().item() < 0.85


def test_extract_backbone_keeps_only_the_backbone(tmp_path, capsys):
    tool = load_script("tools/extract_backbone.py")
    source = tmp_path / "model_final.pth"
    torch.save({"model": {"backbone.conv.weight": torch.ones(2, 3, dtype=torch.float64),
                          "backbone.norm.num_batches_tracked": torch.tensor(7),
                          "sem_seg_head.weight": torch.zeros(4)}, "optimizer": {"state": {}}, "iteration": 9}, source)
    out = tmp_path / "backbone.pth"
    assert tool.main([str(source), str(out)]) == 0
    saved = torch.load(out, weights_only=False)["model"]
    assert list(saved) == ["backbone.conv.weight", "backbone.norm.num_batches_tracked"]
    assert saved["backbone.conv.weight"].dtype == torch.float32
    assert saved["backbone.norm.num_batches_tracked"].dtype == torch.int64
    with pytest.raises(SystemExit):
        tool.main([str(source), str(out)])
    assert "--overwrite" in capsys.readouterr().err
    assert tool.main([str(source), str(out), "--overwrite"]) == 0
    torch.save({"model": {"head.weight": torch.zeros(1)}}, source)
    with pytest.raises(SystemExit):
        tool.main([str(source), str(tmp_path / "other.pth")])
    assert "no 'backbone.*' parameters" in capsys.readouterr().err
