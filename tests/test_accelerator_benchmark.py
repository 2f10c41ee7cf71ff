"""scripts/benchmark.py accelerator: the GPU benchmark runs on the CPU at a tiny size, with no TensorFlow import."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "scripts" / "benchmarks"))

import accelerator  # noqa: E402  (imports neither keras nor jax at module level)

TRAIN_COLUMNS = ("kind", "size", "variant", "precision", "batch", "batch_role", "status", "build_s", "compile_s",
                 "step_ms", "images_per_s", "peak_memory_bytes", "peak_memory_exact", "xla_memory_bytes",
                 "flops_per_image", "achieved_tflops", "xla_flops_per_step", "losses_finite")
INFERENCE_COLUMNS = ("kind", "size", "variant", "precision", "batch", "status", "compile_s", "step_ms",
                     "latency_ms", "images_per_s", "peak_memory_bytes", "flops_per_image", "achieved_tflops")


def test_plan_runs_the_paper_batch_and_32_first_then_inference_then_the_rest():
    args = accelerator.parse_args(["--sizes", "256x256", "--variants", "full", "--precisions", "mixed_bfloat16",
                                   "--batches", "paper,8,16,32,64"])
    items = [(kind, variant, batches) for kind, _, variant, _, batches in accelerator.plan(args)]
    assert items == [
        ("train", "full", [("paper", "paper"), ("sweep", 32)]),
        ("inference", "generator", [64, 1]),
        ("train", "full", [("sweep", 8), ("sweep", 16), ("sweep", 64)]),
    ]


def test_groups_with_sizes_keep_their_order():
    args = accelerator.parse_args(["--groups", "256x256/full/mixed_bfloat16,128x64/generator/float32,dsc/float32",
                                   "--sizes", "64x64", "--batches", "paper"])
    assert args.groups == [((256, 256), "full", "mixed_bfloat16"), ((128, 64), "generator", "float32"),
                           ((64, 64), "dsc", "float32")]
    assert [(kind, size) for kind, size, *_ in accelerator.plan(args)] == [
        ("train", (256, 256)), ("inference", (128, 64)), ("train", (64, 64))]


def test_budget_estimate_uses_the_rows_already_run():
    args = accelerator.parse_args(["--time-budget", "100"])
    bench = accelerator.Bench(args)
    assert bench.estimate("train", (128, 64), "dsc", "float32", 4, 10) == 0.0  # nothing seen: run it
    bench.compile_seen[("train", (128, 64), "dsc")] = 30.0
    bench.step_seen[("train", (128, 64), "dsc", "float32")] = (4, 0.5)
    assert bench.estimate("train", (128, 64), "dsc", "float32", 8, 10) == pytest.approx(30.0 + 10 * 1.0)
    assert bench.estimate("train", (256, 256), "full", "float32", 8, 10) == 30.0  # another group: its compile only
    assert bench.estimate("inference", (128, 64), "generator", "float32", 64, 10) == pytest.approx(9.0)  # 0.3 x
    bench.start -= 1e6
    assert not bench.fits(1.0)


def test_summary_keeps_the_paper_batch_and_the_best_sweep_batch_apart():
    common = dict(kind="train", size="256x256", variant="full", precision="float32", status="ok", step_ms=1.0,
                  achieved_tflops=1.0, peak_memory_bytes="n/a")
    rows = [dict(common, batch=2, batch_role="paper", images_per_s=5.0),
            dict(common, batch=32, batch_role="sweep", images_per_s=50.0),
            dict(common, batch=16, batch_role="sweep", images_per_s=40.0),
            dict(common, batch=64, batch_role="sweep", status="OOM")]
    (entry,) = accelerator.summarize(rows)
    assert (entry["paper_batch"], entry["paper_images_per_s"]) == (2, 5.0)
    assert (entry["best_batch"], entry["best_images_per_s"]) == (32, 50.0)
    assert entry["not_run"] == ["batch 64: OOM"]
    assert accelerator.is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))
    assert not accelerator.is_out_of_memory(ValueError("shapes do not match"))


def test_synthetic_pool_has_realistic_pairs():
    pool = accelerator.synthetic_pool((128, 64), 4)
    assert pool["source_image"].shape == pool["target_image"].shape == (4, 128, 64, 3)
    assert pool["source_keypoints"].shape == (4, 18, 2) and pool["source_keypoints"].dtype == np.float32
    assert pool["source_image"].min() >= -1 and pool["source_image"].max() <= 1
    torso = [2, 5, 8, 11]
    assert (pool["source_keypoints"][:, torso] >= 0).all() and (pool["target_keypoints"][:, torso] >= 0).all()
    assert not np.array_equal(pool["source_keypoints"], pool["target_keypoints"])  # two poses per identity
    batch = accelerator.train_batch(pool, 3)
    assert batch["source_image"].shape == (9, 128, 64, 3)
    assert sorted(batch) == ["source_image", "source_keypoints", "target_image", "target_keypoints"]


@pytest.mark.slow
def test_accelerator_benchmark_runs_on_cpu_without_tensorflow(tmp_path):
    """A train row (full: VGG19 features, bfloat16) and inference, 1 step each at 64x64 and width 1/16.

    One train row keeps this test short: full covers every part of the step dsc has, plus the feature network.
    """
    out = tmp_path / "accelerator.json"
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO_ROOT),
               # The CPU compile of the train step dominates this test; LLVM -O0 halves it (speed is not tested).
               XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
    command = [sys.executable, str(REPO_ROOT / "scripts" / "benchmark.py"), "accelerator", "--sizes", "64x64",
               "--groups", "full/mixed_bfloat16,generator/float32", "--batches", "paper",
               "--steps", "1", "--warmup", "0", "--width", "0.0625", "--inference-batches", "1", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["tensorflow_imported"] is False
    assert "tensorflow imported: False" in done.stdout
    assert result["device"]["platform"] == "cpu"
    rows = {(r["kind"], r["variant"], r["precision"]): r for r in result["rows"]}
    assert set(rows) == {("train", "full", "mixed_bfloat16"), ("inference", "generator", "float32")}
    for key, row in rows.items():
        columns = TRAIN_COLUMNS if row["kind"] == "train" else INFERENCE_COLUMNS
        assert set(columns) <= set(row), (key, set(columns) - set(row))
        assert row["status"] == "ok" and row["size"] == "64x64"
        assert math.isfinite(row["images_per_s"]) and row["images_per_s"] > 0
        assert row["compile_s"] > 0 and row["step_ms"] > 0 and row["achieved_tflops"] > 0
        assert row["peak_memory_bytes"] == "n/a"  # no memory_stats on the CPU
    assert rows[("train", "full", "mixed_bfloat16")]["batch"] == 2  # the paper's DeepFashion full batch
    assert all(rows[k]["losses_finite"] for k in rows if k[0] == "train")
    full = rows[("train", "full", "mixed_bfloat16")]["flops_breakdown"]
    assert full["features_forward"] > 0
    assert rows[("inference", "generator", "float32")]["latency_ms"] > 0
    assert {entry["kind"] for entry in result["summary"]} == {"train", "inference"}
