"""Scale out: multi-worker training on TensorFlow's and JAX's own engines, and sharded evaluation.

The training tests start two worker processes on 127.0.0.1 (ports chosen free by the test) through
tests/worker_job.py, which runs train.py's main() on a tiny model (width 0.0625, batch 1 per worker, baseline) and
records the weights after each iteration. Every wait is bounded: each job by JOB_TIMEOUT_S, and a worker's stop after
a peer is lost by LOST_WITHIN_S.

Float tolerance of "the same weights as one process with the global batch": both runs add the same per-image
gradients in another order (a batch-of-2 backward pass, or two batch-of-1 passes whose gradients are all-reduced),
so the gradients agree to float32 rounding. Adam divides each gradient by its running RMS: for a weight whose
gradient is near 0 (of the size of epsilon, 1e-8) a rounding difference becomes a visible difference of its update,
which Adam bounds by the step size (lr 2e-4). Measured: at most 8e-6 after 3 iterations (a handful of the 156,515
weights above 1e-6); the tests allow WEIGHT_ATOL = lr / 10. The workers among themselves agree bit for bit.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

LEARNING_RATE = 2e-4
WEIGHT_ATOL = LEARNING_RATE / 10
JOB_TIMEOUT_S = 300
LOST_WITHIN_S = 60  # TensorFlow's coordination service notices a dead peer by its heartbeats (about 10 s)
TRAIN_FLAGS = ("--variant", "baseline", "--batch-size", "1", "--width", "0.0625", "--checkpoint-every", "1",
               "--sample-every", "1000", "--no-progress", "--join-timeout", "120")


def free_ports(count):
    """`count` distinct free TCP ports of 127.0.0.1 (held open together while they are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_job(backend, data_root, run_dir, out_dir, iterations, actions, jax_cache=None):
    """One worker process per entry of `actions` (see tests/worker_job.py), all on 127.0.0.1."""
    ports = free_ports(len(actions))
    workers = []
    for index, action in enumerate(actions):
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("TF_CONFIG", None)
        flags = ["--data-root", data_root, "--run", str(run_dir), "--iterations", str(iterations), *TRAIN_FLAGS]
        if backend == "tensorflow":
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                           "task": {"type": "worker", "index": index}})
        else:  # one CPU device per process; the compiled step is shared through a cache between the two jobs
            env.update(JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(jax_cache),
                       JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                       XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
            flags += ["--coordinator", f"127.0.0.1:{ports[0]}", "--num-processes", str(len(actions)),
                      "--process-id", str(index)]
        workers.append(subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "worker_job.py"), str(out_dir), action, "--", *flags],
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return workers


def finish(workers):
    """[(exit code, stdout, stderr, seconds since the job started)] once every worker ended (bounded)."""
    start, ended = time.monotonic(), {}
    try:
        while len(ended) < len(workers):
            assert time.monotonic() - start < JOB_TIMEOUT_S, "a worker did not stop: the job was killed"
            for i, worker in enumerate(workers):
                if i not in ended and worker.poll() is not None:
                    ended[i] = time.monotonic() - start
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    return [(w.returncode, *w.communicate(), ended.get(i)) for i, w in enumerate(workers)]


def recorded_weights(out_dir):
    """{worker index: {(iteration, "g" or "d", i): array}} from the workers' files."""
    found = {}
    for name in sorted(os.listdir(out_dir)):
        if name.startswith("weights-") and name.endswith(".npz") and ".tmp" not in name:
            with np.load(out_dir / name) as data:
                for key in data.files:
                    index, step, model, i = key.split("/")
                    found.setdefault(int(index), {})[(int(step), model, int(i))] = data[key]
    return found


def assert_workers_agree(weights, steps):
    assert sorted(weights) == [0, 1]
    assert sorted({step for step, _, _ in weights[0]}) == list(steps)
    for key, value in weights[0].items():
        np.testing.assert_array_equal(value, weights[1][key], err_msg=str(key))  # replicas stay in sync


def assert_close_to(weights, reference, steps):
    for step in steps:
        keys = [key for key in weights if key[0] == step]
        assert keys and all(key in reference for key in keys)
        worst = max(float(np.abs(weights[key] - reference[key]).max()) for key in keys)
        assert worst <= WEIGHT_ATOL, f"iteration {step}: weights differ by {worst} from one process's"


def assert_lost_and_resumable(result, run_dir, at_step):
    code, _, stderr, _ = result
    assert code == 138, stderr[-3000:]
    assert "worker lost: a collective operation of the 2 workers failed during iteration" in stderr, stderr[-3000:]
    assert f"resume from the last checkpoint, {run_dir / 'checkpoints' / f'ckpt-{at_step:08d}.npz'}" in stderr
    assert "Traceback" not in stderr


def assert_stopped_by_sigterm(results, run_dir):
    """Both workers stopped after iteration 4 with 143, the SIGTERM of worker 1 named; the chief saved once."""
    for code, stdout, stderr, _ in results:
        assert code == 128 + signal.SIGTERM, stderr[-3000:]
        assert "iterations 3 -> 5" in stdout  # resumed from the checkpoint of iteration 3
        assert "SIGTERM received by worker 1 of 2: stopped after iteration 4" in stderr, stderr[-3000:]
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.npz"))[-1] == "ckpt-00000004.npz"
    assert not (run_dir / "generator.keras").exists()


def single_process_reference(data_root, steps, run_dir):
    """{(iteration, "g" or "d", i): weights} of one TensorFlow process training on the global batch of the two
    workers (each minibatch: worker 0's pair, then worker 1's), dropout off as in the workers."""
    import keras

    import dgan_tf.models.generator
    from dgan_tf.build import build_trainer, build_training_data, ensure_dataset
    from dgan_tf.config import build_run_config
    from dgan_tf.run import Run
    from dgan_tf.training.gan import split_minibatches

    def config(batch_size):
        return build_run_config("synthetic", "baseline", iterations=steps, batch_size=batch_size, width=0.0625,
                                checkpoint_every=1000, sample_every=1000, data_root=data_root, seed=0)

    per_worker = config(1)
    keras.utils.set_random_seed(per_worker.seed)  # the shuffling seed, as the workers set it
    data = ensure_dataset(per_worker)
    shards = [build_training_data(per_worker, data, shard=(index, 2)).batches for index in range(2)]
    batches = []
    for _ in range(steps):
        parts = [split_minibatches(next(shard)) for shard in shards]
        batches.append({key: keras.ops.concatenate([parts[w][m][key] for m in range(3) for w in range(2)])
                        for key in parts[0][0]})
    build_generator = dgan_tf.models.generator.build_generator
    try:  # TensorFlow's replicas draw the same dropout masks, which one process cannot: see tests/worker_job.py
        dgan_tf.models.generator.build_generator = lambda *a, **k: build_generator(*a, **dict(k, dropout_rate=0.0))
        trainer = build_trainer(config(2), Run(run_dir), xla=False, progress=False, run_eagerly=True)
    finally:
        dgan_tf.models.generator.build_generator = build_generator
    trainer.batches = iter(batches)
    weights = {}

    def record(t):
        for name, model in (("g", t.gan.generator), ("d", t.gan.discriminator)):
            for i, value in enumerate(model.get_weights()):
                weights[(t.step, name, i)] = np.asarray(value)

    trainer.train(on_step=record)
    return weights


# ---- who the workers are, and what each trains on


def test_tf_config_gives_the_number_of_workers_and_the_chief_first():
    from dgan_tf.training.cluster import ClusterConfigError, parse_tf_config

    workers = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}
    assert parse_tf_config(json.dumps({"cluster": workers, "task": {"type": "worker", "index": 1}})) == (2, 1)
    with_chief = dict(workers, chief=["10.0.0.3:2222"])
    assert parse_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})) == (3, 0)
    assert parse_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})) == (3, 1)
    for text, message in (("{", "not valid JSON"), ("[]", "needs \"cluster\" and \"task\""),
                          (json.dumps({"cluster": dict(workers, ps=["a:1"]), "task": {"type": "worker", "index": 0}}),
                           "'chief' and 'worker' only"),
                          (json.dumps({"cluster": workers, "task": {"type": "worker", "index": 2}}),
                           "must name one of the cluster's tasks"),
                          (json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}),
                           "non-empty list")):
        with pytest.raises(ClusterConfigError, match=message):
            parse_tf_config(text)


def test_a_process_alone_is_its_own_chief(monkeypatch):
    from dgan_tf.training.cluster import Cluster, ClusterConfigError, join_cluster, leave_cluster

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
    assert join_cluster("tensorflow") == Cluster() == join_cluster("jax")
    assert Cluster().is_chief and not Cluster().distributed
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker",
                                                                                         "index": 0}}))
    assert join_cluster("tensorflow") == Cluster()  # a cluster of one task trains alone
    with pytest.raises(ClusterConfigError, match="for the JAX backend"):
        join_cluster("tensorflow", coordinator="127.0.0.1:1234")
    with pytest.raises(ClusterConfigError, match="need --coordinator"):
        join_cluster("jax", num_processes=2, process_id=0)
    assert Cluster().sum_over_workers([1, 2]).tolist() == [1, 2]
    assert leave_cluster(3) == 3  # returned as usual: no job to leave


def test_a_worker_whose_peers_do_not_come_stops_after_the_join_timeout():
    """TensorFlow waits for its peers holding Python's GIL (no thread or signal handler runs): a watchdog process
    stops the worker, here while one C call holds the GIL."""
    from dgan_tf.training.cluster import WORKER_LOST_EXIT

    script = ("from dgan_tf.training.cluster import bounded_wait\n"
              "with bounded_wait(1, 'the other workers did not start'):\n"
              "    sum(range(10 ** 12))\n")
    env = dict(os.environ, KERAS_BACKEND="numpy", PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert 128 - done.returncode == WORKER_LOST_EXIT and done.returncode == -signal.SIGUSR1, done.stderr[-2000:]
    assert "error: the other workers did not start" in done.stderr


def test_workers_share_each_pass_of_the_pairs_without_overlap(tiny_data_root):
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.pipeline import dataset_for_split

    def pair(element):
        return element["source_image"].numpy().tobytes() + element["target_image"].numpy().tobytes()

    data = get_dataset("synthetic", data_root=tiny_data_root)
    workers, seen = 4, []  # 18 pairs: 4 each per pass, 2 left over
    for index in range(workers):
        dataset, pairs, _, _ = dataset_for_split(data, "train", 1, seed=0, shard=(index, workers))
        per_pass = len(pairs) // workers
        iterator = iter(dataset)
        seen.append([pair(next(iterator)) for _ in range(2 * per_pass)])
    for start in (0, per_pass):  # two passes, reshuffled: in each, no pair is given to two workers or twice
        taken = [p for worker in seen for p in worker[start:start + per_pass]]
        assert len(taken) == len(set(taken)) == workers * per_pass


# ---- TensorFlow: MultiWorkerMirroredStrategy from TF_CONFIG


@pytest.mark.slow
def test_tensorflow_workers_train_as_one_process_and_stop_together(tiny_data_root, tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "weights"
    out.mkdir()
    # Job 1: 3 iterations, then the chief is killed (SIGKILL after iteration 3): worker 1 stops, naming the checkpoint.
    results = finish(start_job("tensorflow", tiny_data_root, run_dir, out, 4, ["kill@3", "none"]))
    assert results[0][0] == -signal.SIGKILL
    assert_lost_and_resumable(results[1], run_dir, 3)
    assert results[1][3] < LOST_WITHIN_S + results[0][3]
    weights = recorded_weights(out)
    assert_workers_agree(weights, (1, 2, 3))
    assert_close_to(weights[0], single_process_reference(tiny_data_root, 3, tmp_path / "one"), (1, 2, 3))
    # Job 2: both resume from iteration 3; SIGTERM to worker 1 after iteration 4 stops both there, the chief saving.
    assert_stopped_by_sigterm(finish(start_job("tensorflow", tiny_data_root, run_dir, out, 5, ["none", "term@4"])),
                              run_dir)
    # Job 3: 3 iterations asked of a run at 4: the chief refuses, and tells the other worker, which stops with it.
    (chief, _, chief_err, _), (worker, _, worker_err, _) = finish(
        start_job("tensorflow", tiny_data_root, run_dir, out, 3, ["none", "none"]))
    assert chief == 2 and "already at iteration 4" in chief_err, chief_err[-3000:]
    assert worker == 2 and "the chief (worker 0) refused to start" in worker_err, worker_err[-3000:]


# ---- JAX: jax.distributed, the step sharded over the processes' devices


@pytest.mark.slow
def test_jax_processes_train_as_one_process_and_stop_together(tiny_data_root, tmp_path):
    pytest.importorskip("jax")
    run_dir, out, cache = tmp_path / "run", tmp_path / "weights", tmp_path / "jax-cache"
    out.mkdir()
    # Job 1: the chief also trains the global batch on one device from the same start (its reference), and worker 1
    # is killed after iteration 3: the chief stops at the next collective operation, naming the checkpoint.
    results = finish(start_job("jax", tiny_data_root, run_dir, out, 4, ["reference@3", "kill@3"], cache))
    assert results[1][0] == -signal.SIGKILL
    assert_lost_and_resumable(results[0], run_dir, 3)
    weights = recorded_weights(out)
    assert_workers_agree(weights, (1, 2, 3))
    reference = dict(np.load(out / "reference.npz"))
    assert_close_to(weights[0], {tuple(int(p) if p.isdigit() else p for p in key.split("/")): value
                                 for key, value in reference.items()}, (1, 2, 3))
    assert_stopped_by_sigterm(finish(start_job("jax", tiny_data_root, run_dir, out, 5, ["none", "term@4"], cache)),
                              run_dir)


# ---- sharded evaluation


class FewFeatures:
    """The tiny 2015 graph's scorer with 16 of its 2048 pool features: FID's square root of a 2048 x 2048 matrix
    alone takes 30 s on 2 cores."""

    pool_dim = 16

    def __init__(self, scorer):
        self.scorer, self.label, self.num_classes = scorer, scorer.label, scorer.num_classes

    def predictions_and_features(self, images):
        probs, features = self.scorer.predictions_and_features(images)
        return probs, features[:, :self.pool_dim]

    def predictions(self, images):
        return self.predictions_and_features(images)[0]

    def pool_features(self, images):
        return self.predictions_and_features(images)[1]


class PersonScores:
    """A stand-in for the SSD300 detector: a per-image score from the pixels (DS is their mean)."""

    description = "DS: a stand-in detector"

    def person_scores(self, images):
        return np.asarray(images, np.float64).mean(axis=(1, 2, 3)) / 255.0


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    """A run folder with an untrained tiny generator, on a synthetic set of 24 test pairs, and a tiny Inception."""
    from dgan_tf.build import generator_of
    from dgan_tf.config import build_run_config
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.synthetic import ensure_synthetic_dataset
    from dgan_tf.evaluation.inception2015 import GRAPH_FILE
    from dgan_tf.run import Run
    from tests.test_inception2015 import write_fake_graph

    root = tmp_path_factory.mktemp("sharded")
    data = get_dataset("synthetic", data_root=str(root / "data"))
    ensure_synthetic_dataset(data.data_dir, image_size=data.image_size, identities=4, images_per_identity=4,
                             test_fraction=0.5, seed=0)
    config = build_run_config("synthetic", "baseline", width=0.0625, data_root=str(root / "data"), seed=0)
    run = Run(root / "run")
    run.save_config(config)
    run.save_generator(generator_of(config))
    write_fake_graph(root / GRAPH_FILE)
    return root


def test_a_shard_is_whole_batches_and_the_shards_cover_every_pair_once():
    from dgan_tf.evaluation.shards import Shard

    for total, unit, count in ((24, 4, 3), (12000, 32, 4), (7, 2, 5), (5, 1, 5)):
        rows = [Shard(k, count).rows(total, unit) for k in range(1, count + 1)]
        assert [i for r in rows for i in range(total)[r]] == list(range(total))
        assert all(r.start % unit == 0 for r in rows)
    assert Shard.parse("2/4") == Shard(2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "1/0"):
        with pytest.raises(ValueError, match="K/N"):
            Shard.parse(bad)


@pytest.mark.slow
def test_merged_shards_give_the_metrics_of_a_single_run(evaluated_run, monkeypatch, capsys):
    from dgan_tf.cli import test

    load_scorer = test.load_scorer  # the tiny 2015 graph, loaded as test.py loads it (batches of --batch-size)
    monkeypatch.setattr(test, "load_scorer", lambda args: (FewFeatures(load_scorer(args)[0]), "IS/FID: a tiny graph"))
    monkeypatch.setattr(test, "load_detector", lambda args: (PersonScores(), PersonScores.description))
    root = evaluated_run
    common = ["--run", str(root / "run"), "--data-root", str(root / "data"), "--real-data", "--batch-size", "4",
              "--inception-graph", str(root / "classify_image_graph_def.pb"), "--no-progress"]
    assert test.main([*common, "--output-dir", str(root / "single")]) == 0
    shards = [root / "run" / "test" / f"shard-{k}-of-3" for k in (1, 2, 3)]
    for k in (3, 1, 2):
        assert test.main([*common, "--shard", f"{k}/3"]) == 0
        assert (shards[k - 1] / "shard.npz").is_file() and not (shards[k - 1] / "metrics.json").exists()
    capsys.readouterr()
    assert test.main(["--merge", *map(str, shards)]) == 0
    single = json.loads((root / "single" / "metrics.json").read_text())
    merged = json.loads((root / "run" / "test" / "metrics.json").read_text())
    assert single["title"] == merged["title"] == "synthetic test, 24 pairs"
    assert set(single["rows"]["dgan_tf baseline"]) >= {"ssim", "mask_ssim", "is", "mask_is", "fid", "ds"}
    assert merged["rows"] == single["rows"]  # exactly: every number of both rows

    assert test.main(["--merge", *map(str, shards[:2])]) == 2
    assert "shard(s) 3/3 missing" in capsys.readouterr().err
    assert test.main(["--merge", *map(str, shards), str(shards[0])]) == 2
    assert "shard 1/3 is given twice" in capsys.readouterr().err

    # another method's folder (here the strips just written), in 2 shards
    folder = ["--score-dir", str(root / "single" / "images"), "--dataset", "synthetic", "--data-root",
              str(root / "data"), "--batch-size", "4", "--inception-graph", str(root / "classify_image_graph_def.pb"),
              "--no-progress"]
    assert test.main([*folder, "--output-dir", str(root / "folder")]) == 0
    for k in (1, 2):
        assert test.main([*folder, "--shard", f"{k}/2", "--output-dir", str(root / "parts" / f"{k}")]) == 0
    assert test.main(["--merge", str(root / "parts" / "1"), str(root / "parts" / "2")]) == 0
    single = json.loads((root / "folder" / "metrics.json").read_text())["rows"]
    assert json.loads((root / "parts" / "metrics.json").read_text())["rows"] == single


# ---- the README's cluster files (docs/scale_out): what they hand train.py


def slurm_task(tmp_path, backend, procid, ntasks=2):
    """docs/scale_out/slurm_task.sh as task `procid` of a 2-node job (a stand-in scontrol): (exit code, TF_CONFIG or
    None, the command's arguments, stderr)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "scontrol").write_text("#!/bin/sh\n[ \"$1 $2 $3\" = 'show hostnames gpu[07-08]' ] && "
                                       "printf 'gpu07\\ngpu08\\n'\n")
    (fake_bin / "scontrol").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake_bin}:{os.environ['PATH']}", SLURM_JOB_NODELIST="gpu[07-08]",
               SLURM_NTASKS=str(ntasks), SLURM_PROCID=str(procid), KERAS_BACKEND=backend)
    env.pop("TF_CONFIG", None)
    show = "import json, os, sys; print(json.dumps([os.environ.get('TF_CONFIG'), sys.argv[1:]]))"
    done = subprocess.run(["bash", str(REPO_ROOT / "docs" / "scale_out" / "slurm_task.sh"), sys.executable, "-c",
                           show, "--run", "runs/x"], env=env, capture_output=True, text=True, timeout=60)
    tf_config, argv = json.loads(done.stdout) if done.returncode == 0 else (None, None)
    return done.returncode, tf_config, argv, done.stderr


def test_the_slurm_task_gives_each_node_its_worker_index_or_its_jax_process(tmp_path):
    from dgan_tf.cli.train import parse_args
    from dgan_tf.training.cluster import parse_tf_config

    for procid in (0, 1):
        code, tf_config, argv, stderr = slurm_task(tmp_path, "tensorflow", procid)
        assert code == 0, stderr
        assert json.loads(tf_config)["cluster"] == {"worker": ["gpu07:12345", "gpu08:12345"]}
        assert parse_tf_config(tf_config) == (2, procid) and argv == ["--run", "runs/x"]
    code, tf_config, argv, stderr = slurm_task(tmp_path, "jax", 1)
    assert code == 0 and tf_config is None, stderr
    args = parse_args(argv)
    assert (args.coordinator, args.num_processes, args.process_id) == ("gpu07:12345", 2, 1)
    code, _, _, stderr = slurm_task(tmp_path, "tensorflow", 0, ntasks=4)
    assert code == 2 and "give one task per node" in stderr


def test_the_cluster_files_start_train_py_with_flags_it_takes():
    from dgan_tf.cli.train import parse_args

    folder = REPO_ROOT / "docs" / "scale_out"
    slurm = (folder / "train.slurm").read_text()
    (srun,) = [line for line in slurm.splitlines() if line.startswith("srun ")]
    words = srun.split()
    assert words[1:3] == ["bash", "docs/scale_out/slurm_task.sh"] and words[4] == "scripts/train.py"
    assert parse_args(words[5:]).dataset == "fashion"
    assert "#SBATCH --ntasks-per-node=1" in slurm and "#SBATCH --signal=TERM@" in slurm
    tfjob = (folder / "tfjob.yaml").read_text()
    (command,) = [line.split(":", 1)[1] for line in tfjob.splitlines() if line.strip().startswith("command:")]
    command = json.loads(command)  # a YAML flow sequence of quoted strings is JSON
    assert command[1] == "scripts/train.py" and parse_args(command[2:]).run == "/runs/fashion-dsc"
    assert "kind: TFJob" in tfjob and "replicas: 2" in tfjob and "restartPolicy: ExitCode" in tfjob


def test_jax_shares_each_minibatch_over_all_local_devices():
    """One process with 2 (forced) CPU devices: keras.distribution.DataParallel's mesh holds both, and each
    minibatch of the global batch is split between them, each device taking its half of every minibatch."""
    script = ("import numpy as np\n"
              "from dgan_tf.training.jax_step import data_parallel_mesh, global_batch\n"
              "mesh = data_parallel_mesh()\n"
              "batch = global_batch({'x': np.arange(12).reshape(6, 2)}, mesh)['x']  # 3 minibatches of 2 pairs\n"
              "print(mesh.devices.size, batch.shape, [s.data.tolist() for s in batch.addressable_shards])\n")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO_ROOT),
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == ("2 (3, 2, 2) [[[[0, 1]], [[4, 5]], [[8, 9]]], "
                                           "[[[2, 3]], [[6, 7]], [[10, 11]]]]")


def test_a_bad_shard_flag_or_a_damaged_shard_file_is_one_line(tmp_path, capsys):
    from dgan_tf.cli import test
    from dgan_tf.evaluation.shards import FORMAT, SHARD_FILE

    with pytest.raises(SystemExit) as stopped:
        test.main(["--run", str(tmp_path), "--shard", "5/4"])
    assert stopped.value.code == 2 and "K/N" in capsys.readouterr().err
    folders = [tmp_path / name for name in ("truncated", "no-labels")]
    for folder in folders:
        folder.mkdir()
    np.savez(folders[0] / SHARD_FILE, meta=json.dumps({"format": FORMAT}), pairs=np.array(["a_b"] * 5000))
    data = (folders[0] / SHARD_FILE).read_bytes()
    (folders[0] / SHARD_FILE).write_bytes(data[:len(data) // 2])  # a copy cut short
    np.savez(folders[1] / SHARD_FILE, meta=json.dumps({"format": FORMAT}), pairs=np.array(["a_b"]))
    for folder in folders:
        assert test.main(["--merge", str(folder)]) == 2
        err = capsys.readouterr().err
        assert f"{folder / SHARD_FILE} is not a readable evaluation shard" in err and "Traceback" not in err, err


@pytest.mark.slow
def test_a_worker_that_cannot_take_its_port_stops_with_one_line(tmp_path):
    """Another program listens on the port TF_CONFIG or --coordinator gives this worker: exit 2, the address named
    (TensorFlow's gRPC error would be a traceback; JAX's coordinator crashes with SIGSEGV)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        tf_config = json.dumps({"cluster": {"worker": [taken, f"127.0.0.1:{free_ports(1)[0]}"]},
                                "task": {"type": "worker", "index": 0}})
        for backend, flags, expected in (
                ("tensorflow", [], f"worker 0 of TF_CONFIG could not start its server at {taken}"),
                ("jax", ["--coordinator", taken, "--num-processes", "2", "--process-id", "0"],
                 f"process 0 cannot be the JAX coordinator at {taken} (--coordinator): port")):
            env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO_ROOT))
            if backend == "tensorflow":
                env["TF_CONFIG"] = tf_config
            done = subprocess.run([sys.executable, "scripts/train.py", "--run", str(tmp_path / backend),
                                   "--join-timeout", "60", "--no-progress", *flags], env=env, cwd=REPO_ROOT,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 2 and expected in done.stderr, done.stderr[-2000:]
            assert "Traceback" not in done.stderr and not (tmp_path / backend).exists()


def test_the_chief_alone_creates_the_dataset_and_the_others_wait_for_it(monkeypatch):
    """On a shared --data-root two workers creating the synthetic set would replace each other's files: the chief
    creates it before the job's first exchange, the other workers look for it after that exchange."""
    import dgan_tf.build as build
    from dgan_tf.training.cluster import Cluster

    class Recorded(Cluster):
        def sum_over_workers(self, values):
            events.append("exchange")
            return np.asarray(values)

    monkeypatch.setattr(build, "ensure_dataset", lambda config: events.append("dataset") or "data")
    for index, expected in ((0, ["dataset", "exchange"]), (1, ["exchange", "dataset"])):
        events = []
        assert build.dataset_of_job(None, Recorded(2, index, "jax")) == "data" and events == expected


def test_only_a_peers_failure_counts_as_a_lost_worker_on_jax():
    """A lost peer stops the job with 138 (a scheduler restarts it); this worker's own error must not."""
    pytest.importorskip("jax")
    from dgan_tf.training.cluster import Cluster

    cluster = Cluster(2, 0, "jax")
    lost = ["UNKNOWN: Gloo AllGather failed: [gloo/transport/tcp/pair.cc:538] Read error [127.0.0.1]:9896: "
            "Connection reset by peer", "UNAVAILABLE: failed to connect to all addresses", "DEADLINE_EXCEEDED: x"]
    own = ["INTERNAL: Failed to execute XLA Runtime executable: run time error in custom call",
           "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 17179869184 bytes", "INVALID_ARGUMENT: shape"]
    assert all(cluster.is_peer_failure(ValueError(text)) for text in lost)
    assert not any(cluster.is_peer_failure(ValueError(text)) for text in own)
    assert not cluster.is_peer_failure(KeyError("UNAVAILABLE")) and not Cluster().is_peer_failure(ValueError(lost[0]))
