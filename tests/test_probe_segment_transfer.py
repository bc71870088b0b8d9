"""tools/probe_segment_transfer.py: the three read-outs on features built from the embeddings, and the command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zegcag_testing import TINY_SPNET_OPTS, load_script

probe = load_script("tools/probe_segment_transfer.py")


def linear_world(seed: int, noise: float, informative: bool = True):
    """10 classes (last 3 unseen) with 20-d embeddings of rank 5 (so the 7 seen ones span them all); 40 segments per
    class whose 32-d feature is a fixed linear map of the class embedding plus noise (or, ``informative=False``, of a
    random vector)."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(10, 5)) @ rng.normal(size=(5, 20))
    mixing = rng.normal(size=(20, 32))
    y = np.repeat(np.arange(10), 40)
    source = embeddings[y] if informative else rng.normal(size=(len(y), 20))
    x = source @ mixing + noise * rng.normal(size=(len(y), 32))
    seen = y < 7
    return x[seen], y[seen], x[~seen], y[~seen], embeddings, np.arange(7, 10)


@pytest.mark.parametrize("readout", ["ridge_zsl", "nearest_mean_zsl", "cosine_classifier_zsl"])
def test_readouts_transfer_when_features_are_linear_in_the_embedding(readout):
    fit = getattr(probe, readout)
    result = fit(*linear_world(0, noise=0.1))
    assert result["zsl_top1"] > 0.9
    assert sum(result["predicted_per_class"]) == 120
    # features unrelated to the class: no transfer (chance is 1/3)
    assert fit(*linear_world(0, noise=0.1, informative=False))["zsl_top1"] < 0.6


def test_command_on_the_tiny_benchmark(tiny_benchmark, tmp_path, capsys):
    out = tmp_path / "probe.json"
    args = ["--config-file", "configs/spnet_synthetic.yaml", "--weights", "", "--train-images", "6",
            "--test-images", "6", "--output", str(out), *TINY_SPNET_OPTS]
    results = probe.main(args)
    saved = json.loads(out.read_text())
    assert saved["feature"] == results["feature"] and saved["test_segments"] > 0
    assert saved["chance"] == pytest.approx(1 / len(saved["unseen_classes"]))
    for name in ("ridge", "nearest_mean", "cosine"):
        assert 0.0 <= saved[name]["zsl_top1"] <= 1.0
        assert sum(saved[name]["predicted_per_class"]) == saved["test_segments"]
    assert "ZSL top-1" in capsys.readouterr().out
    with pytest.raises(FileExistsError, match="probe.json"):
        probe.main(args)
