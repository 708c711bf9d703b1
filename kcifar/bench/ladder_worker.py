"""One rung's training, timed in the parts a full run is made of: one of the
children of `python -m kcifar.bench --ladder` (`kcifar.bench.ladder`).

    python -m kcifar.bench.ladder_worker SPEC.json RESULT.json

The rung trains as `kcifar.train.train` trains it (`KerasPath`: its
compiled model, `TrainBatches` and `fit`, the model's augmentation block
included; the pretrained step's model phase by phase, as its own training
compiles it), and is timed in four parts: start-up, from this process's start
to the compiled model (imports, data, build); the first step, which
compiles; the steady step, over `windows` windows of `steps` steps; and
validation, `model.evaluate` as `fit` runs it after every epoch, on a
slice of the validation split. SPEC's task "augmentation" times the
augmentation block alone instead (`worker.augmentation_speed`).
"""

import statistics
import sys
import time

import psutil

from kcifar import files


def validation_slice(data, batch_size, steps):
    """`steps` batches of the validation split (all of it when it is
    smaller), whole batches where there are any: every timed batch then has
    the shape the untimed first pass compiled."""
    n = min(len(data.y_val), steps * batch_size)
    n = n // batch_size * batch_size or n
    return data.x_val[:n], data.y_val[:n]


def validation_seconds(model, x, y, batch_size, windows):
    """Wall seconds of a first pass of `model.evaluate` over the first batch
    of (x, y) (it compiles), and of `windows` passes over all of it."""
    from kcifar.bench.timing import clocks, since

    def seconds(images, labels):
        start = clocks()
        model.evaluate(images, labels, batch_size=batch_size, verbose=0)
        return since(start)[0]

    first = seconds(x[:batch_size], y[:batch_size])
    return first, [seconds(x, y) for _ in range(windows)]


def rung_figures(spec, started):
    """Measures the rung of `spec`; `started` is this process's start
    (`time.time()`'s clock). Returns a JSON-ready dict of figures.

    A step that trains in phases (the pretrained step) is timed in each:
    the figures' first step and steady step are phase 1's, and `phases`
    lists every phase's epochs, first step after its recompile, steady step
    and operations per image of a step (`flops.step_flops`, which counts a
    frozen backbone's forward pass alone).
    """
    import kcifar
    from kcifar import runtime
    from kcifar.bench import flops
    from kcifar.bench.keras_path import KerasPath
    from kcifar.bench.timing import clocks, since
    from kcifar.bench.worker import synthetic_data
    from kcifar.config import PretrainedConfig
    from kcifar.data import load
    from kcifar.experiments import step
    from kcifar.ladder.parallel import usable_cpus

    config = step(spec["rung"]).CONFIG
    if spec["batch_size"]:
        config = config.replace(batch_size=spec["batch_size"])
    runtime.start_run(spec["precision"], spec["seed"])  # as kcifar.train starts a run
    data = load(spec["data"]) if spec["data"] else synthetic_data(spec["seed"])
    model, ends = None, [config.epochs]
    if isinstance(config, PretrainedConfig):
        from kcifar import pretrained

        backbone = pretrained.build_backbone(config, None)  # random weights: ImageNet's cost the same
        model = pretrained.build_pretrained_model(config, backbone, spec["seed"])
        model = pretrained.compile_phase(model, backbone, config, 1)
        ends = pretrained.phase_ends(config)
    path = KerasPath(config, data, spec["seed"], model=model)
    startup = time.time() - started

    def steps():
        """The first step's seconds and the steady windows' (wall, CPU)
        seconds a step, in the phase the model is in."""
        start = clocks()
        path.fit_window(1)
        first = since(start)[0]  # the whole first fit call: it builds and compiles
        if spec["warmup"]:
            path.fit_window(spec["warmup"])
        windows = [path.fit_window(spec["steps"]) for _ in range(spec["windows"])]
        return first, [(wall / spec["steps"], cpu / spec["steps"]) for wall, cpu in windows]

    first_step, windows = steps()
    x_val, y_val = validation_slice(data, config.batch_size, spec["steps"])
    first_val, val_times = validation_seconds(path.model, x_val, y_val, config.batch_size, spec["windows"])
    figures = {
        **runtime.describe(), "kcifar": kcifar.__version__, "slot": spec["slot"], "cpus": len(usable_cpus()),
        "startup_seconds": round(startup, 3),
        "first_step_seconds": round(first_step, 3),
        "step_seconds": round(statistics.median(wall for wall, _ in windows), 5),
        "windows_step_seconds": [round(wall, 5) for wall, _ in windows],
        "cpu_seconds_per_step": round(statistics.median(cpu for _, cpu in windows), 5),
        "images_per_second": round(config.batch_size / statistics.median(wall for wall, _ in windows), 2),
        # Reported, not projected: the projection counts validation at its steady rate.
        "first_validation_seconds": round(first_val, 3),
        "validation_images": len(y_val),
        "validation_seconds_per_image": round(statistics.median(val_times) / len(y_val), 8),
        "windows_validation_seconds": [round(t, 4) for t in val_times],
    }
    if len(ends) > 1:
        figures["forward_flops"] = flops.model_flops(path.model)[0]
        figures["phases"] = []
        for number, (begin, end) in enumerate(zip([0, *ends[:-1]], ends), start=1):
            if number > 1:
                path.model = pretrained.compile_phase(path.model, backbone, config, number)  # as its training does
                first_step, windows = steps()
            figures["phases"].append({"epochs": end - begin, "first_step_seconds": round(first_step, 3),
                                      "step_seconds": round(statistics.median(w for w, _ in windows), 5),
                                      "step_flops": flops.step_flops(path.model)})
    return figures


def augmentation_figures(spec):
    """The augmentation block alone, per batch size (`worker`'s timing)."""
    import keras

    from kcifar import runtime
    from kcifar.bench.worker import augmentation_speed

    runtime.set_precision(spec["precision"])  # as the rungs' children train
    # --windows windows, as the rungs get: the default one keeps the run short.
    return augmentation_speed(spec, keras.backend.backend(), log=lambda line: None, windows=spec["windows"])


def main(argv=None):
    started = psutil.Process().create_time()
    spec_path, result_path = sys.argv[1:] if argv is None else argv
    spec = files.read_json(spec_path)
    figures = augmentation_figures(spec) if spec["task"] == "augmentation" else rung_figures(spec, started)
    files.write_json(result_path, figures)


if __name__ == "__main__":
    main()
