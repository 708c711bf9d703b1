"""One backend's measurements, run in a process of its own (Keras fixes the
backend per process; the parent sets KERAS_BACKEND for this one).

    python -m kcifar.bench.worker SPEC.json RESULT.json

SPEC holds the parent's settings (see `measure`); RESULT gets the figures.
"""

import importlib
import os
import sys

import numpy as np
import psutil

import kcifar
from kcifar import files
from kcifar.ladder.parallel import THREAD_VARIABLES, usable_cpus

PLAIN_MODULES = {"torch": "plain_torch", "tensorflow": "plain_tf", "jax": "plain_jax"}
SYNTHETIC_TRAIN = 45000  # the size of the real training split
NO_AUGMENTATION = "keras_fit_no_augmentation"
AUGMENTATION_RUNG = "trick7"  # the richest augmentation of the ladder
AUGMENTATION_BATCHES = (128, 512)


def synthetic_data(seed=0, n=SYNTHETIC_TRAIN):
    """Random uint8 images and labels shaped like the CIFAR-10 training split."""
    from kcifar.data import Cifar10

    class Synthetic(Cifar10):
        def channel_stats(self):
            # Those of the uniform draw on 0..255, without a pass over 138 MB.
            return (127.5,) * 3, (np.sqrt((256**2 - 1) / 12),) * 3

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.uint8)
    return Synthetic(x, y, x[:100], y[:100], x[:100], y[:100], "synthetic", "synthetic", "none")


def limit_threads(n):
    """Keeps this process to n CPUs, before any backend starts its thread
    pools: each sizes them by the CPUs it may run on (and these variables,
    which alone do it on macOS)."""
    process = psutil.Process()
    if hasattr(process, "cpu_affinity"):  # Linux and Windows
        process.cpu_affinity(usable_cpus()[:n])
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)


def plain_window(step, x, y):
    """A timed window of a hand-written step on one ready batch."""
    from kcifar.bench.timing import clocks, since

    def window(steps):
        start = clocks()
        for _ in range(steps):
            step(x, y)
        step.sync()
        return since(start)

    return window


def add_rung(paths, name, spec, data, backend):
    """Adds the rung's timed paths to `paths` ("<rung>/<path>"); returns
    what is known of the rung before timing."""
    import keras

    from kcifar.augment import augments, without_augmentation
    from kcifar.bench import flops, plain
    from kcifar.bench.keras_path import KerasPath
    from kcifar.experiments import rung
    from kcifar.models import inference_network

    config = rung(name).CONFIG.replace(batch_size=spec["batch_size"])
    if spec.get("widths"):
        config = config.replace(widths=tuple(spec["widths"]))
    keras_path = KerasPath(config, data, spec["seed"])
    network = inference_network(keras_path.model)  # the augmentation block holds no convolutions
    forward, rows = flops.model_flops(network)
    convs = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    entry = {
        "rung": config.rung, "change": config.change, "params": keras_path.model.count_params(),
        "data_format": convs[0].data_format, "forward_flops_per_image": forward,
        "train_flops_per_image": flops.train_flops(forward), "flops_by_layer": dict(rows), "plain": None,
    }
    reason = plain.unsupported(config)
    if reason is None and spec["precision"] != "float32":
        reason = "hand-written steps run float32 only"
    if reason:
        entry["plain_skipped"] = reason
    else:
        module = importlib.import_module(f"kcifar.bench.{PLAIN_MODULES[backend]}")
        steps = module.steps(config, *data.channel_stats(), spec["seed"])
        entry["plain"] = list(steps)
        entry["plain_params"] = module.count_params(next(iter(steps.values())))
        for step_name, step in steps.items():
            paths[f"{name}/{step_name}"] = plain_window(step, *keras_path.first_batch)
    paths[f"{name}/keras_step"] = keras_path.step_window
    if spec.get("jit") and backend != "jax":  # Keras compiles JAX's step already
        from kcifar.bench.timing import clocks, since

        start = clocks()
        jit_path = KerasPath(config, data, spec["seed"], jit_compile=True)
        jit_path.step_window(1)  # the first step compiles; timed with the build
        entry["jit_first_step_seconds"] = round(since(start)[0], 1)
        paths[f"{name}/keras_jit_step"] = jit_path.step_window
    paths[f"{name}/keras_fit"] = keras_path.fit_window
    paths[f"{name}/feed"] = keras_path.feed_window
    if spec.get("full") and augments(config):
        # The same network without its augmentation block: what the block costs.
        paths[f"{name}/{NO_AUGMENTATION}"] = KerasPath(without_augmentation(config), data, spec["seed"]).fit_window
    return entry


def add_figures(entry, times, spec, matmul_gflops):
    """Images/s, FLOP rates and, with hand-written steps, the ratios to the
    best of them, from the rung's windows (times: path -> windows)."""
    from kcifar.bench import timing

    entry["paths"] = {p: timing.summary(t, spec["steps"], spec["batch_size"]) for p, t in times.items()}
    timed = [p for p in entry["paths"] if p != "feed"]
    for p in timed:
        figures = entry["paths"][p]
        achieved = figures["images_per_second"] * entry["train_flops_per_image"] / 1e9
        figures["gflops"] = round(achieved, 1)
        figures["matmul_share"] = round(achieved / matmul_gflops, 3)
    if entry["plain"]:
        best = max(entry["plain"], key=lambda p: entry["paths"][p]["images_per_second"])
        rates = {p: entry["paths"][p]["windows_images_per_second"] for p in timed}
        # Images per CPU-second, which a busy machine disturbs less than
        # wall time (other processes take turns on the cores, not our work).
        cpu_rates = {p: [1 / max(c, 1e-9) for c in entry["paths"][p]["windows_cpu_ms_per_image"]] for p in timed}
        entry["best_plain"] = best
        entry["ratios"] = {p: timing.ratio(rates[p], rates[best]) for p in timed}
        entry["cpu_ratios"] = {p: timing.ratio(cpu_rates[p], cpu_rates[best]) for p in timed}


def measure(spec, log=print):
    """Measures every path of every rung in `spec` on this process's backend.

    Args:
        spec: dict with rungs (names), batch_size, precision, steps, windows,
            warmup, seed, data (a source for kcifar.data.load, or None for
            synthetic images), profile (profile the first rung's Keras step
            and best plain step after timing).
        log: called with progress lines.

    Returns:
        A JSON-ready dict: backend description, matmul rate, and per rung
        the paths' figures, FLOPs and the Keras/plain ratios.
    """
    import keras

    from kcifar import runtime
    from kcifar.bench import matmul, timing
    from kcifar.data import load

    backend = keras.backend.backend()
    result = {
        # kcifar's version, not its folder (a patched copy is named by the results' "patches").
        **runtime.describe(), "kcifar": kcifar.__version__, "cpus": len(usable_cpus()),
        "matmul_gflops": round(matmul.backend_rate(backend), 1),
    }
    log(f"{backend}: matmul {result['matmul_gflops']} GFLOP/s")
    data = load(spec["data"]) if spec["data"] else synthetic_data(spec["seed"])
    result["data"] = data.description if spec["data"] else "synthetic uint8 images (no dataset)"
    # Once for the process: its paths are timed in turns, so no clear_session
    # may come between them (on torch it would drop torch.compile's caches).
    runtime.start_run(spec["precision"], spec["seed"])

    paths = {}
    result["rungs"] = {name: add_rung(paths, name, spec, data, backend) for name in spec["rungs"]}
    log(f"{backend}: {len(paths)} paths, {spec['windows']} windows of {spec['steps']} steps each, in turns")
    times = timing.interleave(paths, spec["steps"], spec["windows"], spec["warmup"],
                              log=lambda line: log(f"{backend}: {line}"))
    for name, entry in result["rungs"].items():
        mine = {key.split("/", 1)[1]: t for key, t in times.items() if key.startswith(name + "/")}
        add_figures(entry, mine, spec, result["matmul_gflops"])
    if spec.get("profile"):
        result["profile"] = profile_paths(paths, spec, result["rungs"], backend, log)
    result["augmentation_images_per_second"] = augmentation_speed(spec, backend, log)
    return result


def augmentation_speed(spec, backend, log, windows=3):
    """The augmentation block alone, per batch size, on this backend's
    device: the best of `windows` timed windows."""
    from kcifar.bench.augment_speed import images_per_second
    from kcifar.experiments import rung

    config = rung(AUGMENTATION_RUNG).CONFIG
    out = {"rung": AUGMENTATION_RUNG}
    for batch_size in AUGMENTATION_BATCHES:
        out[str(batch_size)] = images_per_second(config, batch_size, windows=windows, seed=spec["seed"])
        log(f"{backend}: {AUGMENTATION_RUNG} augmentation alone, batch {batch_size}: "
            f"{out[str(batch_size)]} images/s")
    return out


def profile_paths(paths, spec, rungs, backend, log):
    """Profiles of the first rung's Keras step and best hand-written step."""
    from kcifar.bench import profiling

    name = spec["rungs"][0]
    jit = ["keras_jit_step"] if f"{name}/keras_jit_step" in paths else []
    targets = ["keras_step"] + jit + ([rungs[name]["best_plain"]] if rungs[name]["plain"] else [])
    out = {"steps": spec["steps"]}
    for target in targets:
        log(f"{backend}: profiling {target}")
        run = paths[f"{name}/{target}"]
        out[target] = {"python": profiling.python_calls(run, spec["steps"])}
        ops = {"torch": profiling.torch_ops, "tensorflow": profiling.tensorflow_ops}.get(backend)
        if ops and (table := ops(run, spec["steps"])):
            out[target]["ops"] = table
    if jit and backend == "torch":
        log(f"{backend}: explaining the compiled step (torch._dynamo.explain)")
        out["keras_jit_step"]["dynamo"] = paths[f"{name}/keras_jit_step"].__self__.explain()  # its KerasPath
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    spec_path, result_path = argv
    spec = files.read_json(spec_path)
    if spec.get("threads"):
        limit_threads(spec["threads"])
    files.write_json(result_path, measure(spec))


if __name__ == "__main__":
    main()
