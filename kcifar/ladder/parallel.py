"""Several processes on one machine: what each child of `--jobs N` gets.

The parent (`python -m kcifar.ladder --run ... --jobs N`, and
`python -m kcifar.bench --ladder --jobs N`) never imports a Keras backend,
so it holds no GPU memory; each child trains in a process of its own.
"""

import os
import shutil
import subprocess

import psutil

# The variables by which the backends size their CPU thread pools (OpenMP for
# torch and oneDNN, TensorFlow's own); JAX sizes its pool by the CPU affinity.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


class DeviceError(ValueError):
    """--devices names GPUs this machine does not have; the message is one line."""


def usable_cpus():
    """The CPUs this process may run on; every CPU where the system has no
    affinity (macOS)."""
    process = psutil.Process()
    return process.cpu_affinity() if hasattr(process, "cpu_affinity") else list(range(os.cpu_count()))


def cpu_share(jobs, slot, cpus=None):
    """The CPUs of child `slot` of `jobs` running at once: an equal share,
    at least one, so that N children do not oversubscribe the cores."""
    cpus = usable_cpus() if cpus is None else list(cpus)
    per = max(1, len(cpus) // jobs)
    start = (slot % max(1, len(cpus) // per)) * per
    return cpus[start:start + per]


def gpus():
    """The GPU indices `nvidia-smi` lists; [] where there is no nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def parse_devices(spec):
    """The GPU indices of `--devices 0,1`, each checked against nvidia-smi.

    Raises:
        DeviceError: an empty list, or a GPU that nvidia-smi does not list
            (on a machine without nvidia-smi: any).
    """
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    if not devices:
        raise DeviceError(f"--devices must be a comma-separated list of GPU indices. Received: --devices {spec}")
    listed = gpus()
    if not listed:
        raise DeviceError(f"--devices {spec}: this machine lists no GPU (no nvidia-smi, or it lists none)")
    unknown = [d for d in devices if d not in listed]
    if unknown:
        raise DeviceError(f"--devices {spec}: GPU {unknown[0]} is not listed by nvidia-smi "
                          f"(it lists {','.join(listed)})")
    return devices


def child_env(jobs, slot, devices=None, base=None):
    """The environment of child `slot` when `jobs` children run at once.

    Args:
        jobs: how many children run at the same time.
        slot: this child's number, 0 to jobs - 1 (a worker slot, reused).
        devices: GPU indices from `parse_devices`, given round robin by slot
            (CUDA_VISIBLE_DEVICES); None: every child sees every device.
        base: the environment to start from (default: this process's).
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    if devices:
        env["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
    if jobs > 1:
        threads = str(len(cpu_share(jobs, slot)))
        env.update({name: threads for name in THREAD_VARIABLES})
    if jobs > len(devices or [None]):
        # Several processes share a GPU: none may take all its memory up front
        # (JAX preallocates 75% of it, TensorFlow all of it, by default).
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return env


def pin(pid, jobs, slot):
    """Keeps process `pid` on its share of the CPUs (Linux and Windows; a
    no-op on macOS, where the thread variables alone do it). Called right
    after the child starts, before it imports a backend."""
    if jobs > 1 and hasattr(psutil.Process, "cpu_affinity"):
        try:
            psutil.Process(pid).cpu_affinity(cpu_share(jobs, slot))
        except psutil.Error:  # the child has already ended
            pass
