"""tools/benchmark_cagnet.py: FLOP counting, the timing loop's budget, synthetic batches, a job in a worker
process, and a tiny end-to-end run that writes the report."""
from __future__ import annotations

import time

import pytest
import torch

from zegcag_testing import REPO, load_script, tiny_cagnet_opts

CONFIG = "configs/cagnet_synthetic.yaml"
# the tiny model of the trainer tests, on the registered synthetic benchmark's metadata (no files needed)
_PAIRS = zip(tiny_cagnet_opts()[::2], tiny_cagnet_opts()[1::2])
MODEL_OPTS = [item for key, value in _PAIRS if not key.startswith(("DATASETS.", "TEST.")) for item in (key, value)]


@pytest.fixture(scope="module")
def bench():
    return load_script("tools/benchmark_cagnet.py")


def job(config=CONFIG, **extra):
    return {"config": str(REPO / config), "opts": MODEL_OPTS, "device": "cpu", "size": 32, "extra_flops_sizes": [],
            **extra}


def test_flops_scale_with_the_image_area_and_parts_add_up(bench):
    counted = bench.count(job(extra_flops_sizes=[64]))
    small, large = counted["flops"]["32"], counted["flops"]["64"]
    assert small["total"] > 0
    assert large["total"] == pytest.approx(4 * small["total"], rel=1e-6)  # fully convolutional
    assert sum(small[p] for p in bench.INFERENCE_PARTS) == pytest.approx(small["total"])
    params = counted["params"]
    assert params["generator"] > 0 and params["pixelcnn"] == 0  # pixel-wise: no PixelCNN
    assert sum(params[p] for p in bench.PARTS) == params["total"]


def test_non_cagnet_config_is_refused(bench):
    with pytest.raises(TypeError, match="spnet_synthetic.yaml.*not CaGNet-style"):
        bench.build(job("configs/spnet_synthetic.yaml"))


def test_time_calls_stops_at_the_time_budget(bench):
    calls = []
    times = bench.time_calls(lambda: (calls.append(1), time.sleep(0.02)), lambda: None, warmup=50, iters=1000,
                             max_seconds=0.05)
    assert 1 <= len(times) <= 5 and len(calls) < 10
    assert all(t >= 0.02 for t in times)
    assert len(bench.time_calls(lambda: None, lambda: None, warmup=0, iters=3, max_seconds=0.0)) == 1


def test_synthetic_batch_uses_seen_classes_only(bench):
    _, model = bench.build(job())
    batch = bench.synthetic_batch(model, 3, 20)
    seen = set(model.seen_mask.nonzero()[:, 0].tolist())
    for x in batch:
        assert x["image"].shape == (3, 20, 20) and x["image"].dtype == torch.uint8
        assert x["sem_seg"].shape == (20, 20)
        assert set(x["sem_seg"].unique().tolist()) <= seen | {model.ignore_label}


def test_count_job_in_a_fresh_process_matches_in_process(bench):
    assert bench.run_job("count", job()) == bench.count(job())


def test_main_writes_the_report(bench, tmp_path, monkeypatch):
    # the jobs run in this process here (a fresh interpreter per job costs seconds of imports)
    monkeypatch.setattr(bench, "run_job", lambda kind, job: {"count": bench.count, "timing": bench.timing}[kind](job))
    out = tmp_path / "cagnet.md"
    results = bench.main(["--config-file", CONFIG, "--iters", "2", "--warmup", "0", "--input-size", "32",
                          "--batch-size", "2", "--output", str(out), *MODEL_OPTS])
    counted, timed = results[CONFIG]["count"], results[CONFIG]["timing"]
    assert counted["flops"]["32"]["total"] > 0
    for stage in ("inference", "finetune", "train"):
        assert len(timed[stage]["times"]) == 2 and min(timed[stage]["times"]) > 0
        assert timed[stage]["mem_peak"] > 0
    report = out.read_text()
    for heading in ("## Paper (Table V", "## FLOPs of the inference path", "## Parameters", "## Times and memory",
                    "## GPU"):
        assert heading in report
    row = next(line for line in report.splitlines() if "(n=2)" in line)
    assert row.startswith(f"| `{CONFIG}` | 32 |") and "2 x 32x32" in row and "not measured" not in row
    assert "| SPNet | (not given) | 15.8 |" in report


def test_paper_comparison_ratios_and_closest_size(bench):
    counts = {"size": 368, "flops": {"368": {"total": 2 * 102.98e9}, "256": {"total": 101.0e9}}}
    lines = bench.paper_comparison({"configs/cagnet_voc.yaml": {"count": counts},
                                    "configs/cagnet_synthetic.yaml": {"count": counts}})
    assert len([line for line in lines if line.startswith("- CaGNet")]) == 1  # only configs of the paper's table
    assert "2.00x the paper's 102.98 GFLOPs as multiply-adds, 4.00x as 2 FLOPs each" in lines[0]
    assert "At 256x256 we count 101.00 GMACs" in lines[0]
    assert bench.paper_comparison({"configs/cagnet_synthetic.yaml": {"count": counts}}) == []


def test_timing_without_generator_skips_finetuning(bench):
    timed = bench.timing(job("configs/cagnet_ec_only_synthetic.yaml", batch_size=2, iters=1, warmup=0,
                             max_seconds=10.0, gmacs=1e-3, cpu_train_max_gmacs=20.0))
    assert "finetune" not in timed and "no generator" in timed["skipped"]["finetune"]
    assert len(timed["train"]["times"]) == 1 and timed["train"]["batch"] == "2 x 32x32"
    too_big = bench.timing(job(batch_size=2, iters=1, warmup=0, max_seconds=10.0, gmacs=30.0, cpu_train_max_gmacs=20.0))
    assert "train" not in too_big and "30 GMACs per image > --cpu-train-max-gmacs 20" in too_big["skipped"]["train"]
    assert len(too_big["finetune"]["times"]) == 1
