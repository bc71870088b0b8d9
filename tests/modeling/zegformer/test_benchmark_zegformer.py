"""tools/benchmark_zegformer.py: one-iteration run on the tiny config (report rows, equal logits), its memory
probe and its generated segment masks."""
from __future__ import annotations

import re

import pytest
import torch

from zegcag_testing import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("tools/benchmark_zegformer.py")


def test_peak_memory_sees_a_large_allocation(bench):
    with bench.PeakMemory(torch.device("cpu")) as memory:
        block = torch.ones(64 * 2 ** 20 // 4)  # 64 MiB, touched
        del block
    if memory.peak is None:
        pytest.skip("/proc/self/clear_refs is not writable here: the CPU peak cannot be reset")
    assert 56 * 2 ** 20 < memory.peak < 256 * 2 ** 20


def test_segment_masks(bench):
    masks = bench.segment_masks(40, (48, 64))
    assert masks.shape == (40, 48, 64) and set(masks.unique().tolist()) <= {-10.0, 10.0}
    filled = (masks > 0).flatten(1).sum(1)
    assert filled[19] == 0 and filled[39] == 0 and (filled[:19] > 0).all()
    assert filled.max() > 10 * filled[filled > 0].min()  # small and large segments


def test_benchmark_runs_on_the_tiny_config(bench, tmp_path, capsys):
    out = tmp_path / "zegformer.md"
    assert bench.main(["--iters", "1", "--warmup", "0", "--segments", "5", "--no-full", "--output", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out
    for mode in ("ZegFormer-seg", "ZegFormer-img", "ZegFormer (fusion)"):
        assert re.search(rf"\| tiny .* \| cpu \| {re.escape(mode)} \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", text), mode
    rows = re.findall(r"\| tiny CLIP \(64\), 192x256 \| (.+?) \| (\d+) \| .* \| ([\d.]+)x \| (\S+) \|", text)
    paths = [(path.split(":")[0], calls) for path, calls, _, _ in rows]
    assert paths == [("loop", "5"), ("all 5 in one call (official)", "1")]
    assert all(float(diff) < 1e-4 for *_, diff in rows)
    assert re.search(r"`configs/zegformer_coco.yaml` \(R101\): [\d,]{10} parameters", text) and "not measured" in text
