"""Self-training pseudo-labels: which ignored pixels get an unseen class under each rule."""
from __future__ import annotations

import pytest
import torch

from zegcag.modeling.cagnet import pseudo_label

IGNORE = 255
UNSEEN = [2, 3]


def make_logits(rows: list[list[float]]) -> torch.Tensor:
    """One pixel per row of 4 class logits -> (1, 4, 1, N)."""
    return torch.tensor(rows).T[None, :, None, :]


LOGITS = make_logits([
    [0.0, 0.0, 5.0, 0.0],  # 0: confident unseen 2
    [0.0, 0.0, 2.0, 0.0],  # 1: less confident unseen 2
    [0.0, 0.0, 1.0, 0.0],  # 2: weak unseen 2
    [4.0, 0.0, 1.0, 3.0],  # 3: top class seen 0; best unseen is 3
    [0.0, 0.0, 0.0, 6.0],  # 4: confident unseen 3, but labelled (must stay 1)
    [0.0, 0.0, 0.0, 2.0],  # 5: unseen 3
])
LABELS = torch.tensor([[[IGNORE, IGNORE, IGNORE, IGNORE, 1, IGNORE]]])


def test_argmax_unseen_keeps_the_top_fraction_per_class():
    out = pseudo_label(LOGITS, LABELS, UNSEEN, IGNORE, rule="argmax_unseen", fraction=0.5)
    # class 2: candidates 0, 1, 2 -> ceil(1.5) = 2 most confident (0, 1); class 3: candidate 5 only
    assert out[0, 0].tolist() == [2, 2, IGNORE, IGNORE, 1, 3]


def test_best_unseen_also_takes_pixels_whose_top_class_is_seen():
    out = pseudo_label(LOGITS, LABELS, UNSEEN, IGNORE, rule="best_unseen", fraction=1.0)
    assert out[0, 0].tolist() == [2, 2, 2, 3, 1, 3]


def test_fraction_one_argmax_unseen_and_labels_are_not_modified_in_place():
    labels = LABELS.clone()
    out = pseudo_label(LOGITS, labels, UNSEEN, IGNORE, rule="argmax_unseen", fraction=1.0)
    assert out[0, 0].tolist() == [2, 2, 2, IGNORE, 1, 3]
    assert torch.equal(labels, LABELS)


def test_bad_rule_or_fraction():
    with pytest.raises(ValueError, match="MODEL.CAGNET.ST.RULE"):
        pseudo_label(LOGITS, LABELS, UNSEEN, IGNORE, rule="percentile")
    with pytest.raises(ValueError, match="MODEL.CAGNET.ST.FRACTION"):
        pseudo_label(LOGITS, LABELS, UNSEEN, IGNORE, fraction=0.0)
