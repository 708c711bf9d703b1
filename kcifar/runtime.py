"""What a result needs to say about where it ran, and the knobs that change it.

Nothing here picks the backend: that is `KERAS_BACKEND`'s job, read by Keras.
"""

import contextlib
import os
import platform
import sys

import keras

from kcifar import machine, quiet
from kcifar.config import PRECISIONS


def backend_name():
    return keras.backend.backend()


def backend_version():
    name = backend_name()
    module = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}.get(name)
    if module is None:
        return "unknown"
    return __import__(module).__version__


def device_name():
    """The accelerator training runs on, or the CPU's description."""
    name = backend_name()
    try:
        if name == "torch":
            import torch

            if torch.cuda.is_available():
                return "cuda: " + torch.cuda.get_device_name(0)
        elif name == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return f"{device.platform}: {device.device_kind}"
        elif name == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return "gpu: " + details.get("device_name", gpus[0].name)
    except Exception:  # a broken accelerator stack still trains on the CPU
        pass
    return "cpu: " + machine.cpu_text()


def set_precision(policy):
    """Sets Keras's global dtype policy before the model is built."""
    if policy not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={policy!r}")
    keras.mixed_precision.set_global_policy(policy)


def start_run(precision, seed):
    """Keras's state at the start of a run or tuner trial: cleared by
    `clear_session` (a run after another in one process starts as the first
    one did; this also resets the dtype policy), the precision, then the seeds, before the
    model is built (its layers draw their seeds then)."""
    keras.backend.clear_session(free_memory=True)
    set_precision(precision)
    set_seed(seed)


def set_seed(seed):
    """`keras.utils.set_random_seed`, without TensorFlow's start-up lines on
    another backend.

    Keras seeds TensorFlow whenever it is installed (for tf.data), so its
    first call imports TensorFlow on any backend; on the torch and JAX
    backends TensorFlow's start-up lines (`kcifar.quiet`) are held back
    during that call. On TensorFlow `import keras` has imported it already.
    """
    if backend_name() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    with quiet.stderr_held_back():
        keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def deterministic(enabled=True):
    """The backends' determinism switches, on inside the block (slower; see
    docs/running.md) and as they were before it afterwards, even after an error.

    TensorFlow: op determinism; TensorFlow 2.21 exports only the switch that
    turns it on, so it is turned off again through the one its own config
    module keeps. torch: deterministic algorithms, cuDNN's benchmark off, and
    the cuBLAS workspace setting deterministic cuBLAS needs (read when CUDA
    makes its cuBLAS handle, so a process keeps the workspace it started with).
    JAX: XLA's deterministic GPU ops, through `XLA_FLAGS`. XLA reads its flags
    once, when JAX's first computation starts the backend: the flag acts only
    in a process that has computed nothing with JAX before the block (the
    command line's first run), and then stays on in that process after it,
    whatever `XLA_FLAGS` says by then.

    Args:
        enabled: False leaves every switch as it is, so that a caller can
            write `with deterministic(flag):`.
    """
    if not enabled:
        yield
        return
    saved_env = {name: os.environ.get(name) for name in ("CUBLAS_WORKSPACE_CONFIG", "XLA_FLAGS")}
    restore = _switch_determinism_on(backend_name())
    try:
        yield
    finally:
        restore()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _switch_determinism_on(name):
    """Turns the backend's switches on; returns what turns them back."""
    if name == "tensorflow":
        import tensorflow as tf
        from tensorflow.python.framework import config as tf_config

        was_on = tf_config.is_op_determinism_enabled()
        tf.config.experimental.enable_op_determinism()
        return lambda: None if was_on else tf_config.disable_op_determinism()
    if name == "torch":
        import torch

        was = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
               torch.backends.cudnn.benchmark)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False

        def restore():
            torch.use_deterministic_algorithms(was[0], warn_only=was[1])
            torch.backends.cudnn.benchmark = was[2]

        return restore
    if name == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:  # an explicit setting is the user's
            os.environ["XLA_FLAGS"] = (flags + " --xla_gpu_deterministic_ops=true").strip()
    return lambda: None


@contextlib.contextmanager
def released_graph_gradients():
    """Drops the gradient functions TensorFlow registered inside the block.

    tf.distribute's all_reduce, which Keras's TensorFlow trainer traces into
    every train step, registers a custom gradient under a fresh name in
    TensorFlow's global gradient registry and never removes it; the entry
    holds the traced graph, so without this every run or tuner trial in one
    process keeps its graph (~50 MB for trick4) after `clear_session`. The
    names are unique to the dead graphs. Other backends: nothing to do.
    """
    registry = None
    if keras.backend.backend() == "tensorflow":
        from tensorflow.python.framework import ops

        registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    before = set(registry) if registry is not None else None
    try:
        yield
    finally:
        if registry is not None:
            for name in [n for n in registry if n.startswith("CustomGradient") and n not in before]:
                del registry[name]


def describe():
    """Backend, versions and device, for results files."""
    return {
        "backend": backend_name(),
        "backend_version": backend_version(),
        "keras_version": keras.__version__,
        "device": device_name(),
        "cpu": machine.cpu(),  # also under a GPU: it feeds the batches
        "python": platform.python_version(),
    }
