"""python -m kcifar.evaluate MODEL.keras [--data SOURCE] [--json FILE]

Test accuracy, per-class accuracy and the confusion matrix of a saved model
(a run folder's model.keras, or any Keras model from 32x32x3 RGB in 0..255 to
ten class probabilities), on whichever backend KERAS_BACKEND names. The test
split is CIFAR-10's 10000 test images from SOURCE (default: $KCIFAR_DATA,
then Keras's download). Bad input ends with one line on stderr and exit
status 2.
"""

import argparse
import os
import sys
import zipfile

from kcifar.cli import check_backend
from kcifar.command import Parser, UsageError, error
# No backend: the model is checked after Keras loads it.
from kcifar.data.readers import IMAGE_SHAPE, NUM_CLASSES, DataError


PROG = "python -m kcifar.evaluate"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of a legacy .h5 model


def load_model(path):
    """The saved model at `path`; UsageError (one line) when it cannot be used."""
    import keras

    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    if not _saved_model_file(path):
        # Keras's own answer to such a file is a paragraph about TensorFlow's SavedModel.
        raise UsageError(f"{path}: not a saved Keras model (expected a model.keras file saved by a kcifar run)")
    try:
        model = keras.saving.load_model(path)
    except Exception as e:  # Keras raises many kinds for a bad file: zip, JSON, HDF5, config errors
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{path}: not a Keras model this Keras can load ({reason})")
    try:
        shapes = (tuple(model.input_shape[1:]), tuple(model.output_shape[1:]))
    except (AttributeError, TypeError, ValueError):  # unbuilt, subclassed or with several inputs
        shapes = ("unknown", "unknown")
    if shapes != (IMAGE_SHAPE, (NUM_CLASSES,)):
        raise UsageError(
            f"{path}: expected a model from {IMAGE_SHAPE} images to {NUM_CLASSES} class probabilities. "
            f"Received: input {shapes[0]}, output {shapes[1]}"
        )
    return model


def _saved_model_file(path):
    """Whether `path` starts as a file Keras saves a model in: a zip (.keras)
    or HDF5 (legacy .h5). UsageError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
        return head == HDF5_SIGNATURE or zipfile.is_zipfile(path)
    except OSError as e:
        raise UsageError(f"{path}: cannot be read ({e.strerror or e})")


def evaluate(model, data, batch_size=512):
    """`kcifar.train.score_predictions` of `model` on `data`'s test split."""
    from kcifar.train import score_predictions

    probs = model.predict(data.x_test, batch_size=batch_size, verbose=0)
    return score_predictions(probs, data.y_test)


def report(path, data, result, machine):
    """The results as text, one figure per line."""
    from kcifar.data import CLASS_NAMES

    lines = [
        f"model:     {path}",
        f"backend:   {machine['backend']} {machine['backend_version']}, Keras {machine['keras_version']}, "
        f"{machine['device']}",
        f"data:      {data.description}, {len(data.y_test)} test images",
        *(f"note:      {note}" for note in data.notes),
        f"test accuracy: {result['test_accuracy']:.2%}  (cross-entropy {result['test_loss']:.4f})",
        "per-class accuracy:",
        *(f"  {name:12}{accuracy:7.1%}" for name, accuracy in zip(CLASS_NAMES, result["per_class_accuracy"])),
        "confusion matrix (rows: true class, columns: predicted class):",
        " " * 14 + "".join(f"{name[:5]:>6}" for name in CLASS_NAMES),
        *(f"  {name:12}" + "".join(f"{count:6d}" for count in row)
          for name, row in zip(CLASS_NAMES, result["confusion_matrix"])),
    ]
    return "\n".join(lines)


def main(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.keras", help="a saved Keras model, e.g. a run folder's model.keras")
    p.add_argument("--data", help="CIFAR-10 folder or archive (default: $KCIFAR_DATA, then Keras's download)")
    p.add_argument("--json", metavar="FILE", help="also write the results, backend and data to FILE")
    try:
        args = p.parse_args(argv)
        check_backend()
        from kcifar import files, runtime
        from kcifar.data import CLASS_NAMES, load

        model = load_model(args.model)
        data = load(args.data)
        result = evaluate(model, data)
        machine = runtime.describe()
        print(report(args.model, data, result, machine))
        if args.json:
            results = {
                "model": os.path.abspath(args.model), **result, **machine,
                "data": {"description": data.description, "source": data.source, "format": data.format,
                         "checksum": data.checksum, "test": len(data.y_test), "notes": list(data.notes)},
                "class_names": list(CLASS_NAMES),
            }
            try:
                files.write_json(args.json, results)
            except OSError as e:
                raise UsageError(f"cannot write {args.json}: {e.strerror or e}")
    except (UsageError, DataError) as e:
        return error(PROG, e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
