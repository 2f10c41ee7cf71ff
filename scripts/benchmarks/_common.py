"""Helpers shared by the benchmarks: machine description and median timing."""

import os
import platform
import statistics
import time


def machine_description():
    """One line naming the CPU, core count and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import keras
    except ImportError:  # the pose environment (scripts/with_pose_env.sh) has no Keras
        return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, no Keras"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, Keras {keras.__version__} ({keras.backend.backend()})"


def median_seconds(fn, repeats=5, warmup=1):
    """Median wall time of fn() over `repeats` runs after `warmup` untimed runs; also returns all times."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times
