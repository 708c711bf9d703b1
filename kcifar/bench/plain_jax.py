"""Rung 0's network as a hand-written JAX step: lax convolutions, a
hand-written Adam (Keras's constants), all in one `jax.jit` that donates
the old weights and optimizer state to the new ones.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from kcifar.bench.plain import ADAM, init_params

CONV_DIMS = ("NHWC", "HWIO", "NHWC")


def forward(params, x, mean, scale, convs_per_stage):
    x = (x.astype(jnp.float32) - mean) * scale
    *convs, (hidden, hidden_bias), (logits, logits_bias) = params
    for i, (kernel, bias) in enumerate(convs, start=1):
        x = jax.nn.relu(lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=CONV_DIMS) + bias)
        if i % convs_per_stage == 0:
            x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    x = jax.nn.relu(x.reshape(x.shape[0], -1) @ hidden + hidden_bias)
    return x @ logits + logits_bias


def loss_fn(params, x, y, mean, scale, convs_per_stage):
    logits = forward(params, x, mean, scale, convs_per_stage)
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None].astype(jnp.int32), axis=1)
    return -picked.mean()


@functools.partial(jax.jit, static_argnums=(6, 7), donate_argnums=(0, 1))
def train_step(params, state, x, y, mean, scale, convs_per_stage, learning_rate):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y, mean, scale, convs_per_stage)
    t, m, v = state
    t = t + 1
    b1, b2 = ADAM["beta_1"], ADAM["beta_2"]
    alpha = learning_rate * jnp.sqrt(1 - b2**t) / (1 - b1**t)
    m = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), m, grads)
    v = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - b2), v, grads)
    params = jax.tree.map(lambda w, m, v: w - alpha * m / (jnp.sqrt(v) + ADAM["epsilon"]), params, m, v)
    return params, (t, m, v), loss


class Step:
    """One training step on a uint8 NHWC batch."""

    def __init__(self, config, mean, std, seed):
        self.params = [tuple(jnp.asarray(a) for a in pair) for pair in init_params(config, seed)]
        zeros = jax.tree.map(jnp.zeros_like, self.params)
        self.state = (jnp.zeros((), jnp.float32), zeros, jax.tree.map(jnp.zeros_like, self.params))
        self.mean = jnp.asarray(np.asarray(mean), jnp.float32)
        self.scale = jnp.asarray(1 / np.asarray(std), jnp.float32)
        self.static = (config.convs_per_stage, config.learning_rate)
        self.loss = None

    def __call__(self, x, y):
        self.params, self.state, self.loss = train_step(
            self.params, self.state, x, y, self.mean, self.scale, *self.static
        )
        return self.loss

    def sync(self):
        if self.loss is not None:
            self.loss.block_until_ready()


def steps(config, mean, std, seed):
    """The hand-written step by name."""
    return {"jax_jit": Step(config, mean, std, seed)}


def count_params(step):
    return sum(a.size for pair in step.params for a in pair)


def logits(step, x):
    """The network's logits for uint8 NHWC images, as NumPy."""
    return np.asarray(forward(step.params, x, step.mean, step.scale, step.static[0]))
