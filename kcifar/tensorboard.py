"""`--tensorboard DIR`: Keras's TensorBoard callback, one subfolder per run
(`DIR/<run folder name>`) or per trial of a search (`DIR/<project>/trial_<id>`).

Per epoch it writes, under that subfolder's `train/`, `epoch_loss`,
`epoch_accuracy` and `epoch_learning_rate`, and under `validation/` the
validation `epoch_loss` and `epoch_accuracy`: the numbers of `history.csv`.

    tensorboard --logdir DIR

Keras's callback writes through `tensorflow.summary` whichever backend
trains, so TensorFlow must be installed (the `tensorflow` extra).
"""

import os

import keras

INSTALL = 'pip install -e ".[tensorflow]"'


def check():
    """Raises ImportError, in one line naming the extra to install, when
    TensorFlow cannot be imported."""
    try:
        import tensorflow  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "TensorBoard logs need TensorFlow whichever backend trains (Keras's TensorBoard callback "
            f"writes through tensorflow.summary), and it cannot be imported ({e}); install the "
            f"tensorflow extra: {INSTALL}"
        ) from None


def callbacks_for(parent, folder):
    """The callbacks a run or trial in `folder` adds: TensorBoard's, writing to
    a subfolder of `parent` named like `folder`; none when `parent` is None.
    """
    if parent is None:
        return []
    return [callback(os.path.join(parent, os.path.basename(os.path.normpath(folder))))]


def callback(log_dir):
    """Keras's TensorBoard callback writing per-epoch scalars to `log_dir`.

    Raises ImportError (see `check`) when TensorFlow is missing.
    """
    check()
    if keras.backend.backend() != "tensorflow":
        _keep_tensorflow_off_the_gpu()
    return TensorBoard(log_dir)


def _keep_tensorflow_off_the_gpu():
    """TensorFlow only writes files here; left alone, its first operation
    would take most of the GPU's memory from the backend that trains."""
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # TensorFlow already started its devices: too late to change
        pass


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras's callback, logging the learning rate each epoch trained with.

    Keras reads the rate at the end of an epoch; with a schedule that steps
    once per epoch (rung 6 on) that is already the next epoch's rate, one
    epoch ahead of history.csv. (Each epoch's points reach the disk at its
    end: TensorFlow's writer flushes when Keras leaves its `as_default()`, so
    a killed and resumed run keeps every finished epoch.)
    """

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._epoch_learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _collect_learning_rate(self, logs):
        logs = super()._collect_learning_rate(logs)
        if "learning_rate" in logs:
            logs["learning_rate"] = self._epoch_learning_rate
        return logs
