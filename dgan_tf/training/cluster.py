"""The workers of one training job: who they are, how they meet, and what they agree on.

One process alone is a `Cluster()` of one worker, its own chief. Several processes meet through their engine's own
mechanism: on TensorFlow `tf.distribute.MultiWorkerMirroredStrategy`, configured from TF_CONFIG (what Keras and
Kubeflow's TFJob set); on JAX `jax.distributed.initialize` with a coordinator address (flags, or JAX's environment:
JAX_COORDINATOR_ADDRESS and what it detects under Slurm or Open MPI). Worker 0 is the chief (TF_CONFIG's `chief`
task, else worker 0; JAX process 0): it alone takes the run folder's lock and writes checkpoints, samples,
TensorBoard and generator.keras.

What the training loop needs the workers to agree on goes through `Cluster.sum_over_workers` (an all-reduce of a
small vector): the checkpoint to resume from (the chief's choice) and, every iteration, whether any worker received
SIGTERM or Ctrl-C (then all save once and stop). A worker that dies makes its peers' next collective operation
fail: TensorFlow's coordination service notices a missing heartbeat (about 10 s) and aborts the collectives, JAX's
gloo collectives fail on the closed connection; `is_peer_failure` recognises those errors and the loop stops with
WorkerLost. Joining is bounded too: a worker whose peers do not all start within `join_timeout_s` stops with the
same exit code instead of waiting forever (TensorFlow's own wait has no limit and ignores SIGTERM).
"""

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
from typing import Any

import numpy as np

# Kubeflow's training operator restarts a job under `restartPolicy: ExitCode` for 130, 137, 143 and 138, the last
# "for user defined retryable error" (128 + SIGUSR1): a lost worker is retryable, the job resumes from its checkpoint.
WORKER_LOST_EXIT = 138
DEFAULT_JOIN_TIMEOUT_S = 600
TF_CONFIG = "TF_CONFIG"
JAX_COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
JOBS = ("chief", "worker")  # MultiWorkerMirroredStrategy's training tasks; evaluator and ps are not supported


class ClusterConfigError(ValueError):
    """TF_CONFIG or the JAX flags do not describe a usable cluster; the message says what is wrong."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place among the job's workers; `Cluster()` is a process training alone."""

    num_workers: int = 1
    index: int = 0  # 0 is the chief
    engine: str = ""  # "tensorflow" or "jax" when the workers met through that engine
    strategy: Any = None  # TensorFlow: the MultiWorkerMirroredStrategy; else None
    _tf_all_reduce: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def is_chief(self):
        return self.index == 0

    @property
    def distributed(self):
        return self.num_workers > 1

    def describe(self):
        return f"worker {self.index} of {self.num_workers}" + (" (the chief)" if self.is_chief else "")

    def sum_over_workers(self, values):
        """The element-wise sum over all workers of each worker's int64 vector `values` (every worker must call)."""
        values = np.asarray(values, dtype=np.int64)
        if not self.distributed:
            return values
        if self.engine == "jax":
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(values)).sum(axis=0)
        # Every local replica contributes the worker's vector: the sum counts each worker once per local replica.
        local_replicas = self.strategy.num_replicas_in_sync // self.num_workers
        return np.asarray(self._tf_all_reduce(values)) // local_replicas

    def chief_value(self, value):
        """The chief's int `value` on every worker (every worker must call)."""
        contributions = np.zeros(1, dtype=np.int64)
        if self.is_chief:
            contributions[0] = value
        return int(self.sum_over_workers(contributions)[0])

    def is_peer_failure(self, error):
        """Whether `error` is a failed collective operation: a peer died, or the network between the workers."""
        if not self.distributed:
            return False
        if self.engine == "jax":
            import jax

            if not isinstance(error, (jax.errors.JaxRuntimeError, ValueError)):
                return False
            text = str(error)
            code = text.split(":", 1)[0].strip()
            if code in _XLA_PEER_CODES:
                return True
            # UNKNOWN / INTERNAL also come from this worker's own kernels: a peer's only with the transport's words
            return code in ("UNKNOWN", "INTERNAL") and any(word in text.lower() for word in _PEER_WORDS)
        import tensorflow as tf

        return isinstance(error, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                                  tf.errors.AbortedError, tf.errors.CancelledError))


# XLA status codes that JAX reports (a JaxRuntimeError, or a ValueError when the failure surfaces while an array is
# fetched) for a collective operation whose peer is gone; a gloo transport failure comes as UNKNOWN ("Gloo AllGather
# failed: ... Connection reset by peer"). Any other error (a kernel's INTERNAL, RESOURCE_EXHAUSTED) is this worker's.
_XLA_PEER_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "CANCELLED")
_PEER_WORDS = ("gloo", "connection", "socket", "peer", "heartbeat", "coordination service")


def _tf_all_reduce(strategy):
    """values -> their SUM over every replica of the job, traced once (eager collectives are slow)."""
    import tensorflow as tf

    @tf.function
    def all_reduce(values):
        per_replica = strategy.run(tf.identity, args=(values,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return all_reduce


# ---- TF_CONFIG


def parse_tf_config(text):
    """(number of workers, this worker's index, chief first) from TF_CONFIG's JSON; ClusterConfigError naming what
    is wrong. A cluster of one task is (1, 0)."""
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ClusterConfigError(f"{TF_CONFIG} is not valid JSON ({error}): {text[:200]!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ClusterConfigError(f'{TF_CONFIG} needs "cluster" and "task" objects, e.g. {{"cluster": {{"worker": '
                                 f'["host1:2222", "host2:2222"]}}, "task": {{"type": "worker", "index": 0}}}}; '
                                 f"received {text[:200]!r}")
    others = sorted(set(cluster) - set(JOBS))
    if others:
        raise ClusterConfigError(f"{TF_CONFIG} names the task type(s) {others}: dgan_tf trains with "
                                 "MultiWorkerMirroredStrategy, whose tasks are 'chief' and 'worker' only")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) and a for a in addresses):
            raise ClusterConfigError(f'{TF_CONFIG}: cluster "{job}" must be a non-empty list of "host:port" '
                                     f"addresses; received {addresses!r}")
    if len(cluster.get("chief", [])) > 1:
        raise ClusterConfigError(f"{TF_CONFIG}: a cluster has at most one chief; received {cluster['chief']!r}")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster or not isinstance(index, int) or isinstance(index, bool) or not \
            0 <= index < len(cluster[kind]):
        raise ClusterConfigError(f'{TF_CONFIG}: "task" must name one of the cluster\'s tasks (type in '
                                 f"{sorted(cluster)}, index from 0); received {task!r}")
    chiefs = len(cluster.get("chief", []))
    return chiefs + len(cluster.get("worker", [])), index if kind == "chief" else chiefs + index


# A watchdog process: TensorFlow waits for its peers inside a call that holds Python's GIL, where no thread or signal
# handler of this process can run. It kills this process with SIGUSR1 (exit status 128 + 10 = WORKER_LOST_EXIT on
# Linux), and only while it is still its parent (a PID is reused once its process has ended).
_WATCHDOG = """import os, signal, sys, time
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
time.sleep(seconds)
if os.getppid() == parent:
    print("error: " + message, file=sys.stderr, flush=True)
    os.kill(parent, getattr(signal, "SIGUSR1", signal.SIGTERM))
"""


@contextlib.contextmanager
def bounded_wait(seconds, message):
    """Stop this process with WORKER_LOST_EXIT and `message` if the block takes more than `seconds` (0: no limit):
    for the engines' waits for their peers, which neither time out nor let SIGTERM through."""
    if not seconds or seconds <= 0:
        yield
        return
    usr1 = getattr(signal, "SIGUSR1", None)  # Windows has none: the watchdog terminates the process there
    previous = signal.signal(usr1, signal.SIG_DFL) if usr1 and _main_thread() else None
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), message])
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()
        if previous is not None:
            signal.signal(usr1, previous)


def _check_coordinator_port(coordinator):
    """ClusterConfigError when process 0 cannot listen on the coordinator's port (another program holds it)."""
    import socket

    port = coordinator.rsplit(":", 1)[-1]
    if not port.isdigit():
        raise ClusterConfigError(f"--coordinator {coordinator}: expected HOST:PORT (the address of process 0)")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC: a port in TIME_WAIT is free
        try:
            probe.bind(("", int(port)))
        except OSError as error:
            raise ClusterConfigError(f"process 0 cannot be the JAX coordinator at {coordinator} (--coordinator): "
                                     f"port {port} is not free on this machine ({error.strerror}); choose another "
                                     "port") from None


def _tf_task_address(text):
    """This task's HOST:PORT in TF_CONFIG (already checked by parse_tf_config)."""
    config = json.loads(text)
    return config["cluster"][config["task"]["type"]][int(config["task"]["index"])]


def engine_reason(error):
    """The line of an engine's error that says what failed (TensorFlow's start with a graph trace); "" if none."""
    lines = [line.strip() for line in str(error).splitlines()]
    noise = ("File ", "Graph execution error", "Detected at node", "[[")
    useful = [i for i, line in enumerate(lines) if line and not line.startswith(noise)]
    if not useful:
        return ""
    reason = lines[useful[0]]
    if reason.endswith(":") and len(useful) > 1:  # "... unhealthy (stopped sending heartbeats):" then the task
        reason += " " + lines[useful[1]]
    return re.sub(r"\{\{.*?\}\}\s*", "", reason)[:400]


def _main_thread():
    return threading.current_thread() is threading.main_thread()


def join_cluster(backend, coordinator=None, num_processes=None, process_id=None,
                 join_timeout_s=DEFAULT_JOIN_TIMEOUT_S):
    """Meet the job's other workers (bounded by join_timeout_s), or return Cluster() for a process training alone.

    TensorFlow: TF_CONFIG with more than one task -> a MultiWorkerMirroredStrategy (created here, before any other
    TensorFlow operation, as it must be). JAX: --coordinator or JAX_COORDINATOR_ADDRESS -> jax.distributed.initialize
    (num_processes and process_id from the flags, else detected by JAX under Slurm or Open MPI).
    """
    jax_flags = coordinator is not None or num_processes is not None or process_id is not None
    if backend != "jax":
        if jax_flags:
            raise ClusterConfigError("--coordinator, --num-processes and --process-id are for the JAX backend "
                                     f"(KERAS_BACKEND=jax); TensorFlow's workers read {TF_CONFIG}")
        text = os.environ.get(TF_CONFIG, "").strip()
        if not text:
            return Cluster()
        num_workers, index = parse_tf_config(text)
        if num_workers == 1:
            return Cluster()
        import tensorflow as tf

        try:
            with bounded_wait(join_timeout_s, f"worker {index}: the {num_workers} workers of {TF_CONFIG} did not all "
                                              f"start within {join_timeout_s} s (--join-timeout); stopped"):
                strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except Exception as error:  # its own address taken or unknown: gRPC's error, one line
            reason = engine_reason(error) or type(error).__name__
            raise ClusterConfigError(f"worker {index} of {TF_CONFIG} could not start its server at "
                                     f"{_tf_task_address(text)}: {reason}") from None
        return Cluster(num_workers, index, "tensorflow", strategy, _tf_all_reduce(strategy))
    coordinator = coordinator or os.environ.get(JAX_COORDINATOR_ENV)
    if not jax_flags and not coordinator:
        return Cluster()
    if coordinator is None:
        raise ClusterConfigError(f"--num-processes and --process-id need --coordinator HOST:PORT (or "
                                 f"{JAX_COORDINATOR_ENV}): the address of process 0")
    import jax

    where = f"process {process_id}" if process_id is not None else "this process"
    if process_id == 0:
        _check_coordinator_port(coordinator)  # JAX crashes (SIGSEGV) when the coordinator cannot bind its port
    with bounded_wait(join_timeout_s, f"{where}: the JAX processes did not all reach the coordinator {coordinator} "
                                      f"within {join_timeout_s} s (--join-timeout); stopped"):
        # JAX's own limit comes after ours (which names the flag); with no limit, a week.
        limit = int(join_timeout_s) + 60 if join_timeout_s and join_timeout_s > 0 else 7 * 24 * 3600
        try:
            jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=limit)
        except Exception as error:  # the coordinator's port taken, a bad address or process id: one line
            raise ClusterConfigError(f"{where} could not join the JAX job at the coordinator {coordinator} "
                                     f"(--coordinator): {engine_reason(error) or type(error).__name__}") from None
    if jax.process_count() == 1:
        return Cluster()
    return Cluster(jax.process_count(), jax.process_index(), "jax")


def leave_cluster(exit_code):
    """`exit_code`, returned normally; a worker of a multi-process job that fails exits at once instead: JAX's and
    TensorFlow's shutdown would wait for peers that are gone (and JAX then aborts with a core dump)."""
    if exit_code and (_jax_distributed() or _tf_multi_worker()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
    return exit_code


def _jax_distributed():
    return "jax" in sys.modules and sys.modules["jax"].distributed.is_initialized()


def _tf_multi_worker():
    if "tensorflow" not in sys.modules or not os.environ.get(TF_CONFIG, "").strip():
        return False
    try:
        return parse_tf_config(os.environ[TF_CONFIG])[0] > 1
    except ClusterConfigError:
        return False
