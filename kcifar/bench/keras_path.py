"""The project's own training path, timed in three parts.

- "keras_fit": what `kcifar.train.train` runs: the rung's compiled model
  (`compile_model`, or the pretrained step's in one of its phases), then
  `model.fit` on `TrainBatches` and `EpochSync` (the model augments).
- "keras_step": the same compiled model and `fit`, on one ready batch given
  again at every step: the train step and the fit loop, without data work.
- "feed": `TrainBatches` alone (shuffle, gather): the data work
  that `fit` waits for on the torch and JAX backends (TensorFlow's tf.data
  runs it in a thread beside the step).

No validation, no progress bar: only training steps are timed.
"""

import keras

from kcifar import runtime
from kcifar.bench.timing import clocks, since
from kcifar.pipeline import EpochSync, TrainBatches
from kcifar.train import compile_model


class ReadyBatches(keras.utils.PyDataset):
    """The same ready (images, labels) batch, `steps` times."""

    def __init__(self, x, y, steps):
        super().__init__()
        self.x, self.y, self.steps = x, y, steps

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        return self.x, self.y


class WindowClock(keras.callbacks.Callback):
    """Wall and CPU time from the start of the first batch to the end of `fit`.

    Only `on_train_batch_begin` is overridden: a callback with a batch-end
    hook would switch off Keras's asynchronous callback dispatch, which
    `kcifar.train` keeps. `fit` waits for the last step before it ends.
    """

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.start = clocks()

    def on_train_end(self, logs=None):
        self.seconds = since(self.start)


class KerasPath:
    """The rung's compiled model with its training batches.

    Args:
        config: a `kcifar.config.Config` (its batch size is used).
        data: a `kcifar.data.Cifar10` (or synthetic stand-in).
        seed: the run's seed.
        jit_compile: passed to `model.compile` (True: XLA on TensorFlow,
            `torch.compile` on torch).
        model: the compiled model to time instead of the rung's
            (`compile_model`): the pretrained step's, in one of its phases.
    """

    def __init__(self, config, data, seed, jit_compile="auto", model=None):
        # Seeded before building, as a run is (`runtime.start_run`, which the
        # worker calls once: several paths share its process).
        runtime.set_seed(seed)
        self.config, self.data, self.seed = config, data, seed
        self.batches = TrainBatches(data.x_train, data.y_train, config.batch_size, seed)
        if model is None:
            model = compile_model(config, data, len(self.batches), seed, jit_compile)
        self.model = model
        self.first_batch = self.batches[0]

    def _fit(self, batches, steps, callbacks=()):
        clock = WindowClock()
        # shuffle=False as kcifar.train: the batches shuffle themselves.
        self.model.fit(
            batches, epochs=1, steps_per_epoch=steps, shuffle=False, callbacks=[*callbacks, clock], verbose=0
        )
        return clock.seconds

    def fit_window(self, steps):
        """(wall, CPU) seconds of `steps` steps of the project's fit."""
        if steps > len(self.batches):
            raise ValueError(f"steps must be at most {len(self.batches)} batches. Received: steps={steps}")
        return self._fit(self.batches, steps, [EpochSync(self.batches)])

    def step_window(self, steps):
        """(wall, CPU) seconds of `steps` steps of fit on a ready batch."""
        return self._fit(ReadyBatches(*self.first_batch, steps), steps)

    def explain(self):
        """What `torch.compile` makes of Keras's train step on torch, on the
        first batch (`profiling.torch_graph_breaks`; it runs one step)."""
        from kcifar.bench.profiling import torch_graph_breaks

        x, y = (keras.ops.convert_to_tensor(a) for a in self.first_batch)
        return torch_graph_breaks(self.model.train_step, (x, y))

    def feed_window(self, steps):
        """(wall, CPU) seconds to make `steps` training batches."""
        start = clocks()
        for i in range(steps):
            self.batches[i % len(self.batches)]
        return since(start)
