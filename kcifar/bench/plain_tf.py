"""Rung 0's network as a hand-written TensorFlow step: tf.nn ops, a
GradientTape and Adam in a `tf.function`, with and without XLA.

TensorFlow's CPU convolutions take NHWC only, the layout the images come in.
"""

import numpy as np
import tensorflow as tf

from kcifar.bench.plain import ADAM, init_params


class Step:
    """One training step on a uint8 NHWC batch.

    Args:
        config, mean, std, seed: the network, input statistics, weights seed.
        jit_compile: compile the step with XLA.
    """

    def __init__(self, config, mean, std, seed, jit_compile):
        self.convs_per_stage = config.convs_per_stage
        self.learning_rate = config.learning_rate
        self.weights = [tf.Variable(a) for pair in init_params(config, seed) for a in pair]
        self.m = [tf.Variable(tf.zeros_like(w)) for w in self.weights]
        self.v = [tf.Variable(tf.zeros_like(w)) for w in self.weights]
        self.iterations = tf.Variable(0.0)
        self.mean = tf.constant(np.asarray(mean), tf.float32)
        self.scale = tf.constant(1 / np.asarray(std), tf.float32)
        self.step = tf.function(self.train_step, jit_compile=jit_compile)
        self.loss = None

    def forward(self, x):
        x = (tf.cast(x, tf.float32) - self.mean) * self.scale
        *convs, hidden, logits = [self.weights[i : i + 2] for i in range(0, len(self.weights), 2)]
        for i, (kernel, bias) in enumerate(convs, start=1):
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias))
            if i % self.convs_per_stage == 0:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        x = tf.reshape(x, (tf.shape(x)[0], -1))
        x = tf.nn.relu(tf.matmul(x, hidden[0]) + hidden[1])
        return tf.matmul(x, logits[0]) + logits[1]

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(y, tf.int32), self.forward(x))
            )
        grads = tape.gradient(loss, self.weights)
        self.iterations.assign_add(1.0)
        t = self.iterations
        alpha = self.learning_rate * tf.sqrt(1 - ADAM["beta_2"] ** t) / (1 - ADAM["beta_1"] ** t)
        for w, g, m, v in zip(self.weights, grads, self.m, self.v):
            m.assign_add((g - m) * (1 - ADAM["beta_1"]))
            v.assign_add((g * g - v) * (1 - ADAM["beta_2"]))
            w.assign_sub(alpha * m / (tf.sqrt(v) + ADAM["epsilon"]))
        return loss

    def __call__(self, x, y):
        self.loss = self.step(x, y)
        return self.loss

    def sync(self):
        if self.loss is not None:
            self.loss.numpy()


def steps(config, mean, std, seed):
    """The hand-written steps by name: graph mode, and graph mode with XLA."""
    return {
        "tf_function": Step(config, mean, std, seed, jit_compile=False),
        "tf_function_xla": Step(config, mean, std, seed, jit_compile=True),
    }


def count_params(step):
    return sum(int(np.prod(w.shape)) for w in step.weights)


def logits(step, x):
    """The network's logits for uint8 NHWC images, as NumPy."""
    return step.forward(x).numpy()
