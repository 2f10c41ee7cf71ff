"""Training benchmarks: seconds per iteration, and evidence that the model learns.

  python scripts/benchmark.py train speed [--sizes 128x64,256x256] [--steps 5] [--xla both] [--warp-gradient both]
  python scripts/benchmark.py train learning [--iterations 300] [--variants baseline,dsc] [--width 1.0]

speed: median seconds per iteration (one D + one G update, three minibatches of --batch-size) after
one warm-up step, TensorFlow with and without XLA, on the paper's networks (dsc, pixel L1: no VGG19),
with the original's inverse-warp gradient through the part warps and/or the exact one; each row ends
with the 1-minute load average (the CPU may be shared).
learning: trains each variant on the synthetic data with the same iterations and seed, then reports the
mean SSIM (the settings of pose-gan test.py:29-31 at 8693ec4) of generated vs target on the synthetic test
pairs, next to the copy-the-source baseline SSIM(source, target).
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine_description


def speed(args):
    import keras

    from dgan_tf.config import build_run_config
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.synthetic import ensure_synthetic_dataset
    from dgan_tf.build import build_trainer
    from dgan_tf.run import Run

    rows = []
    with tempfile.TemporaryDirectory() as root:
        for size_text in args.sizes.split(","):
            size = tuple(int(v) for v in size_text.split("x"))
            data = get_dataset("synthetic", data_root=root, image_size=size)
            ensure_synthetic_dataset(data.data_dir, image_size=size, identities=6, images_per_identity=4)
            gradients = ("original", "exact") if args.warp_gradient == "both" else (args.warp_gradient,)
            for xla, warp_gradient in [(x, g) for x in ((False, True) if args.xla == "both" else (args.xla == "on",))
                                       for g in gradients]:
                if keras.backend.backend() == "jax" and not xla:
                    continue
                config = build_run_config("synthetic", args.variant, image_size=size, batch_size=args.batch_size,
                                          iterations=10**6, width=args.width, data_root=root, seed=0,
                                          warp_gradient=warp_gradient)
                trainer = build_trainer(config, Run(Path(root) / f"run-{size_text}-{xla}-{warp_gradient}"), xla=xla,
                                        progress=False)
                start = time.perf_counter()
                trainer.step_fn(next(trainer.batches))  # trace / compile
                compile_seconds = time.perf_counter() - start
                times = []
                for _ in range(args.steps):
                    batch = next(trainer.batches)
                    start = time.perf_counter()
                    losses = trainer.step_fn(batch)
                    float(keras.ops.convert_to_numpy(losses["g_loss"]))  # wait for the step to finish
                    times.append(time.perf_counter() - start)
                median = statistics.median(times)
                row = (f"{size_text} {args.variant} width {args.width} batch {args.batch_size}x3 "
                       f"{keras.backend.backend()} xla={xla} warp_gradient={warp_gradient}: median {median:.2f} "
                       f"s/iteration ({args.batch_size / median:.2f} img/s) over {args.steps} steps "
                       f"[{', '.join(f'{t:.2f}' for t in times)}]; first step (trace+compile) {compile_seconds:.1f} s; "
                       f"load {os.getloadavg()[0]:.2f}")
                print(row, flush=True)
                rows.append(row)
                del trainer
    return rows


def learning(args):
    import numpy as np

    from dgan_tf.evaluation import metrics
    from dgan_tf.config import build_run_config
    from dgan_tf.build import build_trainer, ensure_dataset
    from dgan_tf.data.pipeline import dataset_for_split
    from dgan_tf.images import evaluation_uint8, real_to_uint8
    from dgan_tf.run import Run

    results = {}
    out = Path(args.output_dir)
    for variant in args.variants.split(","):
        config = build_run_config("synthetic", variant, iterations=args.iterations, width=args.width,
                                  seed=args.seed, data_root=args.data_root, batch_size=args.batch_size)
        run_dir = out / f"{variant}-w{args.width}-it{args.iterations}-s{args.seed}"
        start = time.perf_counter()
        trainer = build_trainer(config, Run(run_dir), xla=None, progress=False)
        trainer.train()
        seconds = time.perf_counter() - start
        dataset, pairs, _, _ = dataset_for_split(ensure_dataset(config), "test", 64, shuffle=False, repeat=False,
                                                 drop_remainder=False)
        generated_ssim, copy_ssim = [], []
        for batch in dataset:
            inputs = [batch["source_image"], batch["source_keypoints"], batch["target_keypoints"]]
            generated = evaluation_uint8(np.asarray(trainer.gan.generator.predict_on_batch(inputs), dtype=np.float32))
            sources = real_to_uint8(batch["source_image"].numpy())
            targets = real_to_uint8(batch["target_image"].numpy())
            for s, t, g in zip(sources, targets, generated):
                generated_ssim.append(metrics.ssim(t, g))
                copy_ssim.append(metrics.ssim(t, s))
        results[variant] = dict(test_pairs=len(generated_ssim), ssim=float(np.mean(generated_ssim)),
                                copy_source_ssim=float(np.mean(copy_ssim)), train_seconds=round(seconds, 1),
                                final_losses=trainer.last_losses, run_dir=str(run_dir))
        print(f"{variant}: SSIM generated {results[variant]['ssim']:.4f} vs copy-the-source "
              f"{results[variant]['copy_source_ssim']:.4f} on {len(generated_ssim)} test pairs; "
              f"{args.iterations} iterations in {seconds:.0f} s", flush=True)
    print(json.dumps(results, indent=2))
    return results


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("speed", "learning"))
    p.add_argument("--sizes", default="128x64,256x256")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--xla", choices=("both", "on", "off"), default="both")
    p.add_argument("--warp-gradient", choices=("original", "exact", "both"), default="original",
                   help="gradient rule of the part warps (speed mode; default the original's)")
    p.add_argument("--variant", default="dsc")
    p.add_argument("--variants", default="baseline,dsc")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default="data")
    p.add_argument("--output-dir", default="runs/benchmark-learning")
    args = p.parse_args(argv)
    print(machine_description(), flush=True)
    (speed if args.mode == "speed" else learning)(args)
    return 0
