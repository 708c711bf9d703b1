"""The augmentation block alone: images/s on the device the backend uses.

The block runs compiled as it does inside a train step: under `jax.jit` on
JAX, in a `tf.function` on TensorFlow (XLA where Keras's "auto" turns it on,
on a GPU), eagerly on torch (as Keras's torch trainer runs it).
"""

import keras
import numpy as np

from kcifar.augment import SEEDS, augmentation_layers, augments
from kcifar.bench.timing import clocks, since


def block_call(config, seed=0):
    """fn(images) -> augmented images, compiled the way training runs it."""
    block = keras.Sequential(augmentation_layers(config, [seed + i for i in range(SEEDS)]))
    block.build((None, 32, 32, 3))
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        state = [v.value for v in block.non_trainable_variables]
        step = jax.jit(lambda s, x: block.stateless_call([], s, x, training=True))

        def call(x):
            nonlocal state
            out, state = step(state, x)
            return out.block_until_ready()

        return call
    if backend == "tensorflow":
        import tensorflow as tf

        gpu = bool(tf.config.list_physical_devices("GPU"))
        step = tf.function(lambda x: block(x, training=True), jit_compile=gpu)

        def call(x):
            out = step(x)
            out[0, 0, 0, 0].numpy()  # waits for the batch; copies one value, as training copies none
            return out

        return call
    import torch

    def call(x):
        out = block(x, training=True)
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # waits without copying the batch to the host
        return out

    return call


def images_per_second(config, batch_size, steps=20, windows=3, seed=0):
    """Best of `windows` timed windows of `steps` calls, after one warm-up.

    Args:
        config: a `kcifar.config.Config` with augmentation.
        batch_size: images per call.
    """
    if not augments(config):
        raise ValueError(f"config {config.name!r} has no augmentation. Received: augments(config)=False")
    call = block_call(config, seed)
    x = keras.ops.convert_to_tensor(
        np.random.default_rng(seed).integers(0, 256, (batch_size, 32, 32, 3)).astype("float32")
    )
    call(x)  # compiles
    best = 0.0
    for _ in range(windows):
        start = clocks()
        for _ in range(steps):
            call(x)
        wall = since(start)[0]
        best = max(best, steps * batch_size / max(wall, 1e-9))
    return round(best, 1)
