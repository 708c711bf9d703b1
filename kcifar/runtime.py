"""What a result needs to say about where it ran, and the knobs that change it.

Nothing here picks the backend: that is `KERAS_BACKEND`'s job, read by Keras.
"""

import contextlib
import os
import platform

import keras

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
    return f"cpu: {platform.processor() or platform.machine()} x{os.cpu_count()}"


def set_precision(policy):
    """Sets Keras's global dtype policy before the model is built."""
    if policy not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={policy!r}")
    keras.mixed_precision.set_global_policy(policy)


def set_deterministic():
    """The backends' own determinism switches (slower; see README).

    TensorFlow: op determinism. torch: deterministic algorithms (cuBLAS needs
    its workspace setting too). JAX: XLA's deterministic GPU ops, which XLA
    reads when it starts, so set before the first computation.
    """
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif name == "torch":
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif name == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_gpu_deterministic_ops=true").strip()


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
        "python": platform.python_version(),
    }
