"""Accelerator benchmark: the JAX train step and the generator's inference, with no TensorFlow anywhere.

  KERAS_BACKEND=jax python scripts/benchmark.py accelerator [--sizes 128x64,256x256] [--variants dsc,full]
      [--precisions float32,mixed_bfloat16] [--groups [SIZE/]VARIANT/PRECISION,...] [--batches paper,8,16,32,64]
      [--steps 10] [--warmup 2] [--width 1.0] [--inference-batches 64,1] [--time-budget SECONDS] [--json OUT]
      [--profile DIR [--profile-row SIZE/VARIANT/PRECISION/BATCH]] [--compile-cache DIR] [--xla-dump DIR]

The GPU run (one call, under 8 minutes, wheels carried): scripts/device/run_accelerator.sh.

Train rows: the project's step (`make_jax_train_step` of a `DeformableGAN` built by
`dgan_tf.build.build_gan(config, vgg_weights="random")`; one iteration = one D update then one G update on
three minibatches of `batch` pairs) fed with ONE device-resident batch (jax.device_put once, reused;
the state threads through), on synthetic figures of the real shapes: rendered images and their
detected keypoints (`dgan_tf.data.synthetic.synthesize_image`, nothing written to disk), so the part
geometry is realistic. Variants: dsc (pixel L1) and full (nearest-neighbour loss on VGG19
block1_conv2, random VGG weights: the speed is the same as with ImageNet weights).
Inference rows: the generator alone (training=False), images/s at batch 64 and latency at batch 1.

Columns: compile seconds (trace + lower + XLA compile, autotuning included), median step time of
individually blocked steps, images/s = batch / median step (the G-update minibatch, as the paper's
"iterations x batch"), peak device memory (`memory_stats()['peak_bytes_in_use']`, a process-wide
high-water mark: exact only for a row that raised it, else an upper bound, see `peak_memory_exact`;
"n/a" on CPU) and XLA's own per-executable estimate (arguments + outputs + temporaries), the analytic
FLOPs per image (`dgan_tf.models.flops`: 4 G + 8 D + 3 VGG forward passes per pair) and the achieved
TFLOP/s. The batch sweep records "OOM" (RESOURCE_EXHAUSTED) and skips larger batches of that group.
`--time-budget` skips rows whose estimated cost (compile + steps, from the rows already run) no
longer fits; rows run most important first: every group in --groups order (a train group's paper
batch and batch 32, an inference group's batches), then the train groups' other batches.
Every finished row is printed and, with --json, the file is rewritten at once (partial results
survive a kill).
"""

import argparse
import gc
import json
import os
import statistics
import sys
import time

T0 = time.perf_counter()  # the time budget counts from here (imports included)
DEFAULT_SIZES = "128x64,256x256"
DEFAULT_VARIANTS = "dsc,full"
DEFAULT_PRECISIONS = "float32,mixed_bfloat16"
DEFAULT_BATCHES = "paper,8,16,32,64"
PRIORITY_BATCH = 32  # run right after the paper's batch: usually near the best throughput
POOL_PAIRS = 16  # distinct synthetic pairs, tiled to fill a batch
INFERENCE = "generator"  # the variant name of inference rows (the generator alone)
INFERENCE_COMPILE_FRACTION = 0.3  # prior for the budget: inference compile / train-step compile (CPU: 8.6 / 45 s)


def build_parser():
    parser = argparse.ArgumentParser(prog="benchmark.py accelerator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated HxW (default %(default)s)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="train variants (default %(default)s)")
    parser.add_argument("--precisions", default=DEFAULT_PRECISIONS, help="Keras dtype policies (default %(default)s)")
    parser.add_argument("--groups", default=None,
                        help="explicit [SIZE/]VARIANT/PRECISION items in priority order, VARIANT 'generator' for the "
                             "inference rows, e.g. 256x256/full/mixed_bfloat16,256x256/generator/mixed_bfloat16; "
                             "default: every size x variant x precision, then the inference rows")
    parser.add_argument("--batches", default=DEFAULT_BATCHES,
                        help="pairs per minibatch; 'paper' = the paper's batch for the dataset and variant "
                             "(default %(default)s)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling (default %(default)s)")
    parser.add_argument("--width", type=float, default=1.0, help="channel-width multiplier; 1.0 = the paper's networks")
    parser.add_argument("--inference-batches", default="64,1", help="generator-only batches; '' for none (default %(default)s)")
    parser.add_argument("--no-train", action="store_true", help="inference rows only")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds for the whole benchmark; rows that would not fit are skipped")
    parser.add_argument("--json", default=None, help="write the table as JSON here (rewritten after every row)")
    parser.add_argument("--profile", default=None,
                        help="take a jax.profiler trace of the largest train row that ran into this folder")
    parser.add_argument("--profile-row", default=None,
                        help="SIZE/VARIANT/PRECISION/BATCH: trace this train row right after it is timed "
                             "(default: re-run the largest train row at the end)")
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--compile-cache", default=None,
                        help="JAX persistent compilation cache folder (default: none). Rows of a later run that "
                             "hit it report a short compile time")
    parser.add_argument("--xla-dump", default=None, help="dump XLA HLO into this folder (sets XLA_FLAGS; first thing)")
    parser.add_argument("--pool", type=int, default=POOL_PAIRS, help="distinct synthetic pairs per size")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def parse_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    args.variants = [v for v in args.variants.split(",") if v]
    args.precisions = [p for p in args.precisions.split(",") if p]
    args.inference_batches = [int(b) for b in args.inference_batches.split(",") if b]
    args.batches = [b if b == "paper" else int(b) for b in args.batches.split(",") if b]
    try:
        args.groups = row_groups(args)
        if args.profile_row:
            args.profile_row = parse_profile_row(args.profile_row)
    except ValueError as error:
        parser.error(str(error))
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


def row_groups(args):
    """[(size, variant, precision)] in priority order: --groups as given (a size-less item for every size), else
    every size x train variant x precision, then the inference rows; --no-train / no inference batches filter."""
    if args.groups:
        groups = []
        for text in (g for g in args.groups.split(",") if g):
            parts = text.split("/")
            if len(parts) == 2:
                groups += [(size, parts[0], parts[1]) for size in args.sizes]
            elif len(parts) == 3:
                groups.append((parse_size(parts[0]), parts[1], parts[2]))
            else:
                raise ValueError(f"--groups takes [SIZE/]VARIANT/PRECISION items. Received: {text!r}")
        args.sizes = list(dict.fromkeys(size for size, _, _ in groups))
        args.variants = list(dict.fromkeys(v for _, v, _ in groups if v != INFERENCE))
        args.precisions = list(dict.fromkeys(p for _, _, p in groups))
    else:
        groups = [(size, v, p) for size in args.sizes for v in args.variants for p in args.precisions]
        if args.inference_batches:
            groups += [(size, INFERENCE, p) for size in args.sizes for p in args.precisions]
    if args.no_train:
        groups = [g for g in groups if g[1] == INFERENCE]
    if not args.inference_batches:
        groups = [g for g in groups if g[1] != INFERENCE]
    return groups


def parse_profile_row(text):
    """SIZE/VARIANT/PRECISION/BATCH -> (size text, variant, precision, batch or 'paper')."""
    parts = text.split("/")
    if len(parts) != 4:
        raise ValueError("--profile-row takes SIZE/VARIANT/PRECISION/BATCH, e.g. 256x256/full/mixed_bfloat16/32")
    return size_text(parse_size(parts[0])), parts[1], parts[2], parts[3] if parts[3] == "paper" else int(parts[3])


def parse_size(text):
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def size_text(size):
    return f"{size[0]}x{size[1]}"


# ---------------------------------------------------------------------------------------------------
# Synthetic inputs


def synthetic_pool(image_size, pairs, seed=0):
    """`pairs` same-identity (source, target) pairs of rendered figures: images in [-1, 1], keypoints (y, x).

    Images whose four torso joints were all detected are preferred, as the pair lists do (pose-gan
    create_pairs_dataset.py:9-14 at 8693ec4).
    """
    import numpy as np

    from dgan_tf.data.synthetic import identity_appearance, synthesize_image
    from dgan_tf.geometry.keypoints import TORSO_JOINTS

    pool = {"source_image": [], "source_keypoints": [], "target_image": [], "target_keypoints": []}
    for index in range(pairs):
        identity = identity_appearance(seed, index)
        samples = [synthesize_image(seed, index, k, image_size, identity=identity) for k in range(2)]
        valid = [s for s in samples if (s.keypoints_yx[list(TORSO_JOINTS)] >= 0).all()]
        for k in range(2, 12):  # a few more poses until two have all four torso joints
            if len(valid) >= 2:
                break
            sample = synthesize_image(seed, index, k, image_size, identity=identity)
            if (sample.keypoints_yx[list(TORSO_JOINTS)] >= 0).all():
                valid.append(sample)
        chosen = (valid + samples)[:2]
        for side, sample in zip(("source", "target"), chosen):
            pool[f"{side}_image"].append(sample.image.astype(np.float32) / 127.5 - 1.0)  # (H, W, 3) in [-1, 1]
            pool[f"{side}_keypoints"].append(sample.keypoints_yx.astype(np.float32))  # (18, 2) (y, x), -1 missing
    return {k: np.stack(v) for k, v in pool.items()}


def tile_batch(pool, count, offset=0):
    """`count` examples cycling through the pool (a different start per minibatch via offset)."""
    import numpy as np

    size = len(pool["source_image"])
    index = (np.arange(count) + offset) % size
    return {k: v[index] for k, v in pool.items()}


def train_batch(pool, batch):
    """The step's input: three minibatches of `batch` pairs stacked on the batch axis (3 * batch)."""
    import numpy as np

    parts = [tile_batch(pool, batch, offset=i * batch + i) for i in range(3)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# ---------------------------------------------------------------------------------------------------
# Device helpers


def device_info():
    import jax

    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": getattr(device, "device_kind", "?"),
            "device_count": jax.device_count(), "jax": jax.__version__}


def peak_bytes():
    import jax

    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # some platforms raise instead of returning None
        stats = None
    if not stats or "peak_bytes_in_use" not in stats:
        return None
    return int(stats["peak_bytes_in_use"])


def xla_memory_bytes(compiled):
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)
    except Exception:
        return None


def xla_flops(compiled):
    try:
        cost = compiled.cost_analysis()
        if isinstance(cost, (list, tuple)):
            cost = cost[0]
        return float(cost["flops"]) if cost and "flops" in cost else None
    except Exception:
        return None


def is_out_of_memory(error):
    text = f"{type(error).__name__}: {error}"
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def timed_steps(run, warmup, steps):
    """Run `warmup` untimed then `steps` timed calls of run() (each blocks); returns the step times."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------------------------------------------
# Models


def run_config(size, variant, width):
    """The RunConfig of a size: Market's (128x64) or DeepFashion's (256x256) settings, at any other size
    the registry's rule (max(H, W) == 128 -> Market); the paper's batch comes with it."""
    from dgan_tf.config import build_run_config

    dataset = "market" if max(size) == 128 else "fashion"
    config = build_run_config(dataset, variant, width=width)
    return config.replace(image_size=tuple(size)) if tuple(config.image_size) != tuple(size) else config


def build_gan(config, precision):
    """DeformableGAN of the config under `precision` (dgan_tf.build, VGG19 random), optimizers built; (gan, flops)."""
    from dgan_tf.build import build_gan as build
    from dgan_tf.models.flops import train_step_flops

    gan = build(config.replace(precision=precision), vgg_weights="random")
    reconstruction = gan.generator_terms.get("g_reconstruction")
    flops = train_step_flops(gan.generator, gan.discriminator, getattr(reconstruction.fn, "feature_model", None),
                             image_size=config.image_size)
    return gan, flops


def release():
    import keras

    keras.backend.clear_session()
    gc.collect()


# ---------------------------------------------------------------------------------------------------
# Rows


class Bench:
    def __init__(self, args):
        self.args = args
        self.start = T0
        self.rows = []
        self.pools = {}
        self.compile_seen = {}  # (kind, size, variant) -> largest compile seconds seen
        self.step_seen = {}  # (kind, size, variant, precision) -> (batch, median seconds) of the last row
        self.oom_at = {}  # (size, variant, precision) -> smallest batch that ran out of memory
        self.build_seen = {}  # (size, variant) -> largest model-building seconds seen
        self.header = {}
        self.profile_result = None

    # -- budget
    def elapsed(self):
        return time.perf_counter() - self.start

    def estimate(self, kind, size, variant, precision, batch, steps):
        same = [s for (k, z, v), s in self.compile_seen.items() if (k, z, v) == (kind, size, variant)]
        any_kind = [s for (k, _, _), s in self.compile_seen.items() if k == kind]
        train = [s for (k, _, _), s in self.compile_seen.items() if k == "train"]
        if same or any_kind:
            compile_s = max(same or any_kind)
        else:  # nothing of this kind compiled yet: a forward pass compiles in about a third of a train step
            compile_s = INFERENCE_COMPILE_FRACTION * max(train) if kind == "inference" and train else 0.0
        last = self.step_seen.get((kind, size, variant, precision))
        step_s = last[1] * batch / last[0] if last else 0.0
        return compile_s + steps * step_s

    def fits(self, estimate):
        budget = self.args.time_budget
        return budget is None or self.elapsed() + estimate <= budget

    def pool(self, size):
        if size not in self.pools:
            self.pools[size] = synthetic_pool(size, self.args.pool, self.args.seed)
        return self.pools[size]

    # -- output
    def emit(self, row):
        self.rows.append(row)
        print(format_row(row), flush=True)
        self.write_json()

    def write_json(self):
        if not self.args.json:
            return
        payload = dict(self.header, rows=self.rows, summary=summarize(self.rows),
                       profile=self.profile_result, elapsed_s=round(self.elapsed(), 1),
                       tensorflow_imported="tensorflow" in sys.modules)
        path = self.args.json
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=1)
        os.replace(tmp, path)

    # -- train
    def train_group(self, size, variant, precision, batches):
        """Rows of one (size, variant, precision): build once, one compile per batch size."""
        args = self.args
        config = run_config(size, variant, args.width)
        key = (size, variant, precision)
        todo = []
        build_estimate = self.build_seen.get((size, variant), max(self.build_seen.values(), default=0.0))
        for role, batch in batches:
            batch = config.batch_size if batch == "paper" else batch
            base = dict(kind="train", size=size_text(size), variant=variant, precision=precision, batch=batch,
                        batch_role=role, width=args.width)
            if any(r["kind"] == "train" and all(r[k] == base[k] for k in ("size", "variant", "precision", "batch"))
                   for r in self.rows):
                continue  # already measured (the paper's batch may equal a sweep batch)
            if key in self.oom_at and batch >= self.oom_at[key]:
                self.emit(dict(base, status="OOM", note=f"skipped: batch {self.oom_at[key]} ran out of memory"))
                continue
            estimate = self.estimate("train", size, variant, precision, batch, args.warmup + args.steps)
            estimate += 0.0 if todo else build_estimate
            if not self.fits(estimate):
                self.emit(dict(base, status="skipped", note=f"time budget (estimated {estimate:.0f} s)"))
                continue
            todo.append(base)
        if not todo:
            return
        build_start = time.perf_counter()
        gan, flops = build_gan(config, precision)
        build_s = time.perf_counter() - build_start
        self.build_seen[(size, variant)] = max(build_s, self.build_seen.get((size, variant), 0.0))
        try:
            for base in todo:
                profile_dir = self.args.profile if self.is_profile_row(base) else None
                row = self.train_row(gan, flops, base, size, build_s, profile_dir=profile_dir)
                if profile_dir is not None:
                    self.record_profile(row)
                self.emit(row)
        finally:
            del gan
            release()

    def is_profile_row(self, base):
        wanted = self.args.profile_row
        if not self.args.profile or not wanted:
            return False
        size, variant, precision, batch = wanted
        return ((base["size"], base["variant"], base["precision"]) == (size, variant, precision)
                and (base["batch_role"] == "paper" if batch == "paper" else base["batch"] == batch))

    def record_profile(self, row):
        self.profile_result = {"status": row["status"], "row": _row_key(row), "dir": os.path.abspath(self.args.profile),
                               "steps": self.args.profile_steps, "step_ms": row.get("step_ms"),
                               "compile_s": row.get("compile_s")}
        print(f"# profile of {_row_key(row)}: {self.args.profile_steps} steps traced into {self.args.profile}",
              flush=True)

    def train_row(self, gan, flops, base, size, build_s, profile_dir=None):
        import jax

        from dgan_tf.training.jax_step import jax_state, make_jax_train_step

        args = self.args
        batch = base["batch"]
        row = dict(base, build_s=round(build_s, 2), flops_per_image=flops.train_step,
                   flops_breakdown=flops.as_dict())
        peak_before = peak_bytes()
        holder = {}
        try:
            step = make_jax_train_step(gan)
            data = jax.device_put(train_batch(self.pool(size), batch))
            holder["state"] = jax.device_put(jax_state(gan))
            start = time.perf_counter()
            if hasattr(step, "lower"):  # a jax.jit function: compile ahead of time, alone
                compiled = step.lower(holder["state"], data).compile()
                memory, xflops = xla_memory_bytes(compiled), xla_flops(compiled)
            else:  # the API changed: compile on the first call
                compiled, memory, xflops = step, None, None
                holder["state"] = jax.block_until_ready(step(holder["state"], data))[0]
            compile_s = time.perf_counter() - start

            def run():
                holder["state"], holder["losses"] = compiled(holder["state"], data)
                jax.block_until_ready((holder["state"], holder["losses"]))

            times = timed_steps(run, args.warmup, args.steps)
            if profile_dir is not None:
                os.makedirs(profile_dir, exist_ok=True)
                jax.profiler.start_trace(profile_dir)
                try:
                    timed_steps(run, 0, args.profile_steps)
                finally:
                    jax.profiler.stop_trace()
            finite = all(bool(jax.numpy.all(jax.numpy.isfinite(v)))
                         for v in jax.tree_util.tree_leaves(holder["losses"]))
        except Exception as error:  # noqa: BLE001  (an OOM row is a result; anything else is re-raised)
            if not is_out_of_memory(error):
                raise
            key = (size, base["variant"], base["precision"])
            self.oom_at[key] = min(batch, self.oom_at.get(key, batch))
            return dict(row, status="OOM", note=str(error).splitlines()[0][:200])
        finally:
            holder.clear()
            data = compiled = step = None
            gc.collect()
        median = statistics.median(times)
        peak_after = peak_bytes()
        group = ("train", size, base["variant"])
        self.compile_seen[group] = max(compile_s, self.compile_seen.get(group, 0.0))
        self.step_seen[("train", size, base["variant"], base["precision"])] = (batch, median)
        images_per_s = batch / median
        return dict(
            row, status="ok", compile_s=round(compile_s, 2), step_ms=round(1e3 * median, 3),
            step_ms_all=[round(1e3 * t, 3) for t in times], images_per_s=round(images_per_s, 3),
            peak_memory_bytes=peak_after if peak_after is not None else "n/a",
            peak_memory_exact=(peak_after is not None and (peak_before is None or peak_after > peak_before)),
            xla_memory_bytes=memory, achieved_tflops=round(flops.train_step * images_per_s / 1e12, 4),
            xla_flops_per_step=xflops, losses_finite=finite)

    # -- inference
    def inference_group(self, size, precision, batches):
        import jax

        from dgan_tf.models.flops import count_flops
        from dgan_tf.build import generator_of, precision_policy

        args = self.args
        config = run_config(size, "dsc", args.width)
        todo = []
        for batch in batches:
            base = dict(kind="inference", size=size_text(size), variant="generator", precision=precision,
                        batch=batch, batch_role="latency" if batch == 1 else "throughput", width=args.width)
            estimate = self.estimate("inference", size, "generator", precision, batch, args.warmup + args.steps)
            if not self.fits(estimate):
                self.emit(dict(base, status="skipped", note=f"time budget (estimated {estimate:.0f} s)"))
                continue
            todo.append(base)
        if not todo:
            return
        with precision_policy(precision):
            generator = generator_of(config)
        flops = count_flops(generator).flops
        variables = (jax.device_put([v.value for v in generator.trainable_variables]),
                     jax.device_put([v.value for v in generator.non_trainable_variables]))

        def forward(variables, inputs):
            return generator.stateless_call(variables[0], variables[1], inputs, training=False)[0]

        jitted = jax.jit(forward)
        try:
            for base in todo:
                self.emit(self.inference_row(jitted, variables, flops, base, size))
        finally:
            del generator, variables, jitted
            release()

    def inference_row(self, jitted, variables, flops, base, size):
        import jax

        args = self.args
        batch = base["batch"]
        row = dict(base, flops_per_image=flops)
        peak_before = peak_bytes()
        try:
            pool = tile_batch(self.pool(size), batch)
            inputs = jax.device_put([pool["source_image"], pool["source_keypoints"], pool["target_keypoints"]])
            start = time.perf_counter()
            compiled = jitted.lower(variables, inputs).compile()
            compile_s = time.perf_counter() - start
            times = timed_steps(lambda: jax.block_until_ready(compiled(variables, inputs)), args.warmup, args.steps)
            memory = xla_memory_bytes(compiled)
        except Exception as error:  # noqa: BLE001
            if not is_out_of_memory(error):
                raise
            return dict(row, status="OOM", note=str(error).splitlines()[0][:200])
        finally:
            inputs = None
            gc.collect()
        median = statistics.median(times)
        peak_after = peak_bytes()
        key = ("inference", size, "generator")
        self.compile_seen[key] = max(compile_s, self.compile_seen.get(key, 0.0))
        self.step_seen[("inference", size, "generator", base["precision"])] = (batch, median)
        images_per_s = batch / median
        return dict(
            row, status="ok", compile_s=round(compile_s, 2), step_ms=round(1e3 * median, 3),
            step_ms_all=[round(1e3 * t, 3) for t in times], latency_ms=round(1e3 * median, 3),
            images_per_s=round(images_per_s, 3), peak_memory_bytes=peak_after if peak_after is not None else "n/a",
            peak_memory_exact=(peak_after is not None and (peak_before is None or peak_after > peak_before)),
            xla_memory_bytes=memory, achieved_tflops=round(flops * images_per_s / 1e12, 4))

    # -- profile
    def profile_largest(self):
        args = self.args
        done = [r for r in self.rows if r["kind"] == "train" and r.get("status") == "ok"]
        if not done:
            self.profile_result = {"status": "skipped", "note": "no train row ran"}
            return
        largest = max(done, key=lambda r: r["flops_per_image"] * r["batch"])
        size = parse_size(largest["size"])
        estimate = largest["build_s"] + largest["compile_s"] + (args.warmup + args.profile_steps) * largest["step_ms"] / 1e3
        if not self.fits(estimate):
            self.profile_result = {"status": "skipped", "note": f"time budget (estimated {estimate:.0f} s)",
                                   "row": _row_key(largest)}
            return
        config = run_config(size, largest["variant"], args.width)
        start = time.perf_counter()
        gan, flops = build_gan(config, largest["precision"])
        base = {k: largest[k] for k in ("kind", "size", "variant", "precision", "batch", "batch_role", "width")}
        try:
            os.makedirs(args.profile, exist_ok=True)
            row = self.train_row(gan, flops, base, size, time.perf_counter() - start, profile_dir=args.profile)
        finally:
            del gan
            release()
        self.record_profile(row)


def _row_key(row):
    return f"{row['kind']} {row['size']} {row['variant']} {row['precision']} batch {row['batch']}"


# ---------------------------------------------------------------------------------------------------
# Plan, table, main

PRECISIONS = ("float32", "mixed_bfloat16")  # mixed_float16 needs loss scaling: TensorFlow backend only
FLOP_NOTES = ("analytic (dgan_tf.models.flops): 2 x MACs of Conv/ConvTranspose/Dense; norms, activations, "
              "geometry, warps and losses ignored; train step per pair = 4 G + 8 D + 3 VGG forward passes "
              "(backward = 2 x forward for the updated network, 1 x for a network only differentiated through)")


def plan(args):
    """(kind, size, variant, precision, batches) work items, most important first.

    First every group in --groups order: a train group's paper batch and PRIORITY_BATCH (one build), an
    inference group's batches; then the train groups' other batches, ascending (OOM skips the larger).
    """
    batches = [("paper", "paper") if b == "paper" else ("sweep", b) for b in args.batches]
    first = [b for b in batches if b[0] == "paper" or b[1] == PRIORITY_BATCH]
    rest = sorted((b for b in batches if b not in first), key=lambda b: b[1])
    items = []
    for size, variant, precision in args.groups:
        if variant == INFERENCE:
            items.append(("inference", size, variant, precision, list(args.inference_batches)))
        elif first:
            items.append(("train", size, variant, precision, first))
    if rest:
        items += [("train", size, variant, precision, rest) for size, variant, precision in args.groups
                  if variant != INFERENCE]
    return items


def format_bytes(value):
    return "n/a" if not isinstance(value, (int, float)) else f"{value / 2**30:.2f} GiB"


def format_row(row):
    head = f"{row['kind']:9s} {row['size']:>7s} {row['variant']:9s} {row['precision']:14s} batch {row['batch']:>3}"
    if row["kind"] == "train":
        head += f" ({row['batch_role']})"
    if row.get("status") != "ok":
        return f"{head}: {row.get('status')} {row.get('note', '')}"
    text = (f"{head}: compile {row['compile_s']:.1f} s, step {row['step_ms']:.2f} ms, "
            f"{row['images_per_s']:.1f} img/s, peak {format_bytes(row['peak_memory_bytes'])}"
            f"{'' if row['peak_memory_exact'] or row['peak_memory_bytes'] == 'n/a' else ' (high-water)'}, "
            f"XLA {format_bytes(row['xla_memory_bytes'])}, {row['flops_per_image'] / 1e9:.1f} GFLOP/img "
            f"-> {row['achieved_tflops']:.3f} TFLOP/s")
    if row["kind"] == "train" and not row.get("losses_finite", True):
        text += " [non-finite losses]"
    return text


def summarize(rows):
    """Per (kind, size, variant, precision): the paper's batch, the best sweep batch (--batches other than
    'paper'), inference throughput and latency."""
    summary = {}
    for row in rows:
        key = f"{row['kind']} {row['size']} {row['variant']} {row['precision']}"
        entry = summary.setdefault(key, {"kind": row["kind"], "size": row["size"], "variant": row["variant"],
                                         "precision": row["precision"]})
        if row.get("status") != "ok":
            entry.setdefault("not_run", []).append(f"batch {row['batch']}: {row.get('status')}")
            continue
        if row["kind"] == "train":
            if row["batch_role"] == "paper":
                entry["paper_batch"], entry["paper_images_per_s"] = row["batch"], row["images_per_s"]
            if row["batch_role"] == "sweep" and row["images_per_s"] > entry.get("best_images_per_s", 0):
                entry.update(best_batch=row["batch"], best_images_per_s=row["images_per_s"],
                             best_step_ms=row["step_ms"], best_achieved_tflops=row["achieved_tflops"],
                             best_peak_memory_bytes=row["peak_memory_bytes"])
        elif row["batch"] == 1:
            entry["latency_ms_batch1"] = row["latency_ms"]
        else:
            entry[f"images_per_s_batch{row['batch']}"] = row["images_per_s"]
    return list(summary.values())


def main(argv):
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")  # before any import of keras (dgan_tf imports it)
    args = parse_args(argv)
    bad = [p for p in args.precisions if p not in PRECISIONS]
    if bad:
        print(f"--precisions: unsupported {bad}; choose from {PRECISIONS}", file=sys.stderr)
        return 2
    if args.xla_dump:
        if "jax" in sys.modules:
            print("--xla-dump: jax is already imported; XLA_FLAGS may be ignored", file=sys.stderr)
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_dump_to={os.path.abspath(args.xla_dump)} --xla_dump_hlo_as_text").strip()
    from dgan_tf.variants import VARIANTS

    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        print(f"--variants: unknown {bad}; choose from {tuple(VARIANTS)}", file=sys.stderr)
        return 2
    import keras

    if keras.backend.backend() != "jax":
        print(f"the accelerator benchmark runs on the JAX backend; KERAS_BACKEND={keras.backend.backend()}. "
              "Run with KERAS_BACKEND=jax.", file=sys.stderr)
        return 2
    from _common import machine_description

    if args.compile_cache:
        enable_compile_cache(args.compile_cache)
    return run(args, argv, keras, machine_description)


def enable_compile_cache(folder):
    """JAX's persistent compilation cache in `folder` (every executable, however quick to compile)."""
    import jax

    os.makedirs(folder, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(folder))
    for name, value in (("jax_persistent_cache_min_compile_time_secs", 0.0),
                        ("jax_persistent_cache_min_entry_size_bytes", 0)):
        try:
            jax.config.update(name, value)
        except AttributeError:  # an option this JAX does not have
            pass


def run(args, argv, keras, machine_description):
    bench = Bench(args)
    bench.header = {
        "benchmark": "accelerator", "command": "python scripts/benchmark.py accelerator " + " ".join(argv),
        "machine": machine_description(), "device": device_info(), "keras": keras.__version__,
        "python": sys.version.split()[0], "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "args": dict(vars(args), sizes=[size_text(s) for s in args.sizes],
                     groups=[f"{size_text(z)}/{v}/{p}" for z, v, p in args.groups]),
        "flops_notes": FLOP_NOTES,
        "memory_notes": ("peak_memory_bytes: memory_stats()['peak_bytes_in_use'], the process's high-water mark "
                         "(exact when peak_memory_exact, else an upper bound); xla_memory_bytes: the executable's "
                         "arguments + outputs + temporaries from XLA's memory analysis"),
    }
    print(f"# {bench.header['machine']}; device {bench.header['device']}", flush=True)
    print(f"# {bench.header['command']}", flush=True)
    for kind, size, variant, precision, batches in plan(args):
        if kind == "train":
            bench.train_group(size, variant, precision, batches)
        else:
            bench.inference_group(size, precision, batches)
    if args.profile and not args.profile_row:
        bench.profile_largest()
    elif args.profile and bench.profile_result is None:
        bench.profile_result = {"status": "skipped", "note": "the --profile-row did not run",
                                "row": "/".join(map(str, args.profile_row))}
    bench.write_json()
    print("# summary", flush=True)
    for entry in summarize(bench.rows):
        print("#  " + ", ".join(f"{k}={v}" for k, v in entry.items()), flush=True)
    print(f"# tensorflow imported: {'tensorflow' in sys.modules}; total {bench.elapsed():.1f} s", flush=True)
    return 0
