"""`python -m kcifar.bench --ladder`: every rung's training measured on this
machine, projected to its full schedule and to the whole ladder's wall time.

For each backend and rung, N children (`--jobs N`) start at once, each
with `kcifar.ladder.parallel`'s environment and CPU share, and each trains the
rung through the project's own path (`ladder_worker`), so the figures are
those of N runs sharing the machine. A rung's projection is its start-up
and first step, then every epoch's steps and validation pass, then the
test pass (`projected_seconds`); the ladder's is the makespan of the rungs,
costliest first by `kcifar.cost`, on N slots (`schedule`). A step beyond
the ladder (`--rungs pretrained`) is measured and projected the same way,
phase by phase, and kept out of the ladder's projection. This process never
imports Keras.
"""

import heapq
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

from kcifar import cost, files
from kcifar.bench import record
from kcifar.bench.children import backend_env, last_line, patch_records, patched_root
from kcifar.bench.errors import BenchError
from kcifar.command import UsageError
from kcifar.data import DataError, load
from kcifar.data.loader import FULL_COUNTS, source_name
from kcifar.data.split import TRAIN_SAMPLE_SIZE, default_val_size
from kcifar.experiments import BEYOND, RUNGS, step
from kcifar.ladder import parallel

FORMAT = 1  # of the results file
# A window of one step (and one validation batch): rung 9 costs ~16 times
# rung 0, and all ten rungs, each with its start-up and compiling first
# step, must fit in five minutes per backend on two CPU cores.
DEFAULTS = {"steps": 1, "windows": 1, "warmup": 0}
# CIFAR-10's splits as `kcifar.data.load` makes them: what synthetic images stand for.
FULL_SPLITS = {"train": FULL_COUNTS["train"] - default_val_size(FULL_COUNTS["train"]),
               "val": default_val_size(FULL_COUNTS["train"]), "test": FULL_COUNTS["test"]}
# The figures a rung's copies give, with the decimals their median keeps.
FIGURES = {"startup_seconds": 3, "first_step_seconds": 3, "step_seconds": 5, "images_per_second": 2,
           "validation_seconds_per_image": 8, "projected_seconds": 1}
# Flags of the one-rung comparison that the ladder has no use for, and why.
NOT_WITH_LADDER = {
    "rung": ("--rung", "use --rungs"),
    "full": ("--full", "it compares paths of one rung"),
    "jit": ("--jit", "it compares paths of one rung"),
    "profile": ("--profile", "it compares paths of one rung"),
    "threads": ("--threads", "each of the --jobs children gets its share of the CPUs"),
}
LADDER_ONLY = {"jobs": "--jobs", "rungs": "--rungs", "devices": "--devices"}
# What every child says alike (`kcifar.runtime.describe`), kept once per backend.
DESCRIBED = ("backend", "backend_version", "keras_version", "device", "python", "kcifar")


def parse_rungs(spec):
    """The rungs of `--rungs baseline,trick9` (every rung when None), in
    ladder order, then the steps beyond it that are named."""
    if spec is None:
        return list(RUNGS)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNGS + BEYOND]
    if unknown or not names:
        raise UsageError(f"--rungs must be a comma-separated list of {', '.join(RUNGS + BEYOND)}. "
                         f"Received: --rungs {spec}")
    return [n for n in RUNGS + BEYOND if n in names]


def check_args(args):
    """Checks the ladder's flags (and, without --ladder, that none is
    given); sets args.rungs to the rung names and args.devices to GPU
    indices or None."""
    if not args.ladder:
        given = [flag for key, flag in LADDER_ONLY.items() if getattr(args, key) is not None]
        if given:
            raise UsageError(f"{given[0]} applies to --ladder only")
        return
    for key, (flag, why) in NOT_WITH_LADDER.items():
        if getattr(args, key) not in (None, False):
            raise UsageError(f"{flag} does not apply to --ladder: {why}")
    args.jobs = 1 if args.jobs is None else args.jobs
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1. Received: --jobs {args.jobs}")
    args.rungs = parse_rungs(args.rungs)
    try:
        args.devices = parallel.parse_devices(args.devices) if args.devices is not None else None
    except parallel.DeviceError as e:
        raise UsageError(str(e))


def batch_sizes(args):
    """Images per step of each rung: --batch-size, else the rung's own."""
    return {name: args.batch_size or step(name).CONFIG.batch_size for name in args.rungs}


def projected_seconds(figures, epochs, splits, batch_size):
    """A rung's wall time at its full schedule, from its measured parts:
    start-up + first step + epochs x (steps per epoch x step + (validation
    images + the clean training sample) x time per image) + test images x
    time per image. A step in phases counts each phase's first step and
    epochs at its own step time.

    Args:
        figures: startup_seconds, first_step_seconds, step_seconds and
            validation_seconds_per_image; `phases` (each with epochs,
            first_step_seconds, step_seconds) for a step in phases.
        epochs: the rung's epochs (a step in phases: its phases' sum).
        splits: images per split: train, val, test.
        batch_size: images per training step.
    """
    steps_per_epoch = math.ceil(splits["train"] / batch_size)
    per_image = figures["validation_seconds_per_image"]
    inference = splits["val"] + min(splits["train"], TRAIN_SAMPLE_SIZE)  # kcifar.train.CleanTrainAccuracy
    phases = figures.get("phases") or [{"epochs": epochs, **{k: figures[k] for k in ("first_step_seconds",
                                                                                      "step_seconds")}}]
    total = figures["startup_seconds"] + splits["test"] * per_image
    for phase in phases:
        epoch = steps_per_epoch * phase["step_seconds"] + inference * per_image
        total += phase["first_step_seconds"] + phase["epochs"] * epoch
    return total


def schedule(seconds, jobs):
    """List scheduling: each rung, in the order given, starts in the slot
    that frees first (the lowest-numbered on a tie).

    Args:
        seconds: dict name -> wall seconds, in the order they start.
        jobs: the slots.

    Returns:
        dict with slots (the names each slot runs, in turn), starts
        (name -> start second) and makespan_seconds (when the last ends).
    """
    free = [(0.0, slot) for slot in range(jobs)]
    slots, starts = [[] for _ in range(jobs)], {}
    for name, duration in seconds.items():
        at, slot = heapq.heappop(free)
        slots[slot].append(name)
        starts[name] = at
        heapq.heappush(free, (at + duration, slot))
    return {"slots": slots, "starts": starts, "makespan_seconds": max(at for at, _ in free)}


def start_child(spec, env, tmp, tag, cwd):
    """Starts `ladder_worker` on `spec`; its stderr goes to a file (N
    children writing pipes that are read one by one could block)."""
    spec_path, result_path = (os.path.join(tmp, f"{kind}-{tag}.json") for kind in ("spec", "result"))
    files.write_json(spec_path, spec)
    with open(os.path.join(tmp, f"stderr-{tag}.txt"), "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "kcifar.bench.ladder_worker", spec_path, result_path],
                                   env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    return process, result_path, err.name


def wait_children(children, what):
    """The results of started children, once all have ended; BenchError
    with the first failure's last line."""
    failures = []
    for process, result_path, err_path in children:
        returncode = process.wait()
        if returncode != 0 or not os.path.exists(result_path):
            with open(err_path, errors="replace") as f:
                failures.append(last_line(f.read(), returncode))
    if failures:
        raise BenchError(f"{what} failed: {failures[0]}")
    return [files.read_json(result_path) for _, result_path, _ in children]


def run_copies(spec, what, jobs, devices, base_env, tmp, cwd):
    """The figures of `jobs` children run at once on `spec`, in slot order.

    Args:
        what: names the work in file names and errors, e.g. "torch trick9".
        base_env: the backend's child environment (`children.backend_env`).
        cwd: the children's folder (the patched copy's), or None.
    """
    children = []
    try:
        for slot in range(jobs):
            env = parallel.child_env(jobs, slot, devices, base=base_env)
            child = start_child({**spec, "slot": slot, "jobs": jobs}, env, tmp,
                                f"{what.replace(' ', '-')}-{slot}", cwd)
            parallel.pin(child[0].pid, jobs, slot)
            children.append(child)
        return wait_children(children, what)
    finally:
        for process, _, _ in children:  # those left after an interrupt or a failed start
            if process.poll() is None:
                process.kill()
                process.wait()


def rung_entry(name, copies, splits, batch_size):
    """A rung's figures: each copy's, with its projection, and their medians.
    A step in phases has its operations counted by its children, from the
    built model (`kcifar.cost` counts a rung's from its config)."""
    config = step(name).CONFIG
    for copy in copies:
        copy["projected_seconds"] = round(projected_seconds(copy, config.epochs, splits, batch_size), 1)
    entry = {"rung": config.rung, "change": config.change, "epochs": config.epochs, "batch_size": batch_size,
             "steps_per_epoch": math.ceil(splits["train"] / batch_size)}
    if "phases" in copies[0]:
        phases = [{"epochs": phase["epochs"], "step_flops": phase["step_flops"],
                   **{key: round(statistics.median(c["phases"][i][key] for c in copies), FIGURES[key])
                      for key in ("first_step_seconds", "step_seconds")}}
                  for i, phase in enumerate(copies[0]["phases"])]
        entry.update(forward_flops=copies[0]["forward_flops"], phases=phases,
                     training_flops=sum(p["epochs"] * p["step_flops"] for p in phases) * splits["train"])
    else:
        entry["training_flops"] = cost.training_flops(config, splits["train"])
    entry["copies"] = copies
    entry.update({key: round(statistics.median(c[key] for c in copies), digits) for key, digits in FIGURES.items()})
    entry["projected_minutes"] = round(entry["projected_seconds"] / 60, 1)
    return entry


def ladder_entry(rungs, jobs, splits):
    """The ladder's projection for `jobs` slots (rungs: name -> rung_entry,
    of the ladder's rungs only)."""
    configs = {name: step(name).CONFIG for name in rungs}
    order = cost.costliest_first(configs, splits["train"])
    planned = schedule({name: rungs[name]["projected_seconds"] for name in order}, jobs)
    return {"jobs": jobs, "order": order, "slots": planned["slots"],
            "starts_seconds": {n: round(s, 1) for n, s in planned["starts"].items()},
            "makespan_seconds": round(planned["makespan_seconds"], 1),
            "makespan_minutes": round(planned["makespan_seconds"] / 60, 1),
            "sum_seconds": round(sum(r["projected_seconds"] for r in rungs.values()), 1)}


def measure_backend(backend, args, spec, sizes, splits, root, tmp):
    """Every rung's copies on `backend`, then the augmentation block alone.
    `sizes`: each rung's batch size; `splits`: the images projected on."""
    started = time.perf_counter()
    base, cwd = backend_env(backend, root), root or None
    rungs = {}
    for name in args.rungs:
        print(f"{backend}: {name}, {args.jobs} at once ...", flush=True)
        copies = run_copies({**spec, "rung": name, "batch_size": sizes[name]}, f"{backend} {name}", args.jobs,
                            args.devices, base, tmp, cwd)
        described = {key: copies[0][key] for key in DESCRIBED}
        for copy in copies:  # the backend's versions and device, said once
            for key in DESCRIBED:
                del copy[key]
        rungs[name] = rung_entry(name, copies, splits, sizes[name])
        print(f"{backend}: {name}: " + row_text(rungs[name]), flush=True)
    print(f"{backend}: augmentation block alone ...", flush=True)
    (augmentation,) = run_copies({**spec, "task": "augmentation"}, f"{backend} augmentation", 1, args.devices,
                                 base, tmp, cwd)
    beyond = {name: rungs.pop(name) for name in list(rungs) if name in BEYOND}
    return {**described, "rungs": rungs, **({"beyond": beyond} if beyond else {}),
            "ladder": ladder_entry(rungs, args.jobs, splits) if rungs else None,
            "augmentation_images_per_second": augmentation, "seconds": round(time.perf_counter() - started, 1)}


def row_text(entry):
    phases = "".join(f"; phase {i}: first step {phase['first_step_seconds']:.1f} s, step "
                     f"{phase['step_seconds'] * 1000:.0f} ms" for i, phase in enumerate(entry.get("phases", [])[1:], 2))
    return (f"start-up {entry['startup_seconds']:.1f} s, first step {entry['first_step_seconds']:.1f} s, "
            f"step {entry['step_seconds'] * 1000:.0f} ms ({entry['images_per_second']:.1f} img/s), "
            f"validation {entry['validation_seconds_per_image'] * 1000:.2f} ms/img{phases}; "
            f"projected {entry['projected_minutes']:.1f} min")


def table(results):
    """The results as aligned text: a row per backend and rung, then each
    backend's ladder."""
    s, m = results["settings"], results["machine"]
    splits = results["splits"]
    out = [f"{m['cpu']}, {m['cores']} cores, load average at start {m['load_average_at_start'][0]}; "
           f"--jobs {s['jobs']}, {s['precision']}, {s['windows']} window(s) x {s['steps']} steps; "
           f"data: {results['data']}; a full run: {splits['train']}/{splits['val']}/{splits['test']} "
           "train/val/test images",
           f"{'backend':11}{'rung':10}{'start-up s':>11}{'1st step s':>11}{'step ms':>10}{'img/s':>9}"
           f"{'val ms/img':>11}{'projected min':>15}"]
    for backend, r in results["backends"].items():
        for name, e in {**r["rungs"], **r.get("beyond", {})}.items():
            out.append(f"{backend:11}{name:10}{e['startup_seconds']:11.1f}{e['first_step_seconds']:11.1f}"
                       f"{e['step_seconds'] * 1000:10.0f}{e['images_per_second']:9.1f}"
                       f"{e['validation_seconds_per_image'] * 1000:11.3f}{e['projected_minutes']:15.1f}")
    out.append("")
    for backend, r in results["backends"].items():
        for name, e in r.get("beyond", {}).items():
            phases = "; ".join(f"phase {i}: {p['epochs']} epochs of {p['step_seconds'] * 1000:.0f} ms steps, "
                               f"{p['step_flops'] / 1e6:.0f} MFLOP an image a step"
                               for i, p in enumerate(e["phases"], start=1))
            out.append(f"{backend}: {name}, beyond the ladder: {e['forward_flops'] / 1e6:.0f} MFLOP forward an "
                       f"image; {phases}")
        lad = r["ladder"]
        if lad is not None:  # None when only steps beyond the ladder were measured
            out.append(f"{backend}: the ladder with --jobs {lad['jobs']}: {lad['makespan_minutes']:.1f} min "
                       f"({lad['makespan_seconds'] / 3600:.1f} h; the rungs' sum {lad['sum_seconds'] / 60:.1f} min)")
            if lad["jobs"] > 1:
                out += [f"{backend}:   slot {i}: " + ", ".join(names) for i, names in enumerate(lad["slots"])]
        speed = r["augmentation_images_per_second"]
        out.append(f"{backend}: {speed['rung']} augmentation alone: "
                   + ", ".join(f"{v} images/s at batch {k}" for k, v in speed.items() if k != "rung"))
    return "\n".join(out)


def results_name(args, sizes):
    """e.g. ladder-j2-b128-float32-20250101-120000.json."""
    batch = args.batch_size or ("-".join(map(str, sorted(set(sizes.values())))))
    return f"ladder-j{args.jobs}-b{batch}-{args.precision}-{record.stamp()}.json"


def data_source(args):
    """The data of the run: (the absolute path of --data or $KCIFAR_DATA,
    its description, its split sizes); (None, a note, FULL_SPLITS) for
    synthetic images. Loading it here also fills the project's cache: a
    cold one would charge the decoding of 60000 images to the first rung's
    start-up."""
    source = args.data or os.environ.get("KCIFAR_DATA")
    if not source:
        return None, "synthetic uint8 images (no dataset), projected on CIFAR-10's split sizes", FULL_SPLITS
    flag = "--data" if args.data else "$KCIFAR_DATA"
    if not os.path.exists(source):
        raise UsageError(f"{flag} {source}: no such file or folder")
    try:
        data = load(source)
    except DataError as e:
        raise UsageError(f"{flag}: {e}")
    splits = {"train": len(data.y_train), "val": len(data.y_val), "test": len(data.y_test)}
    return os.path.abspath(source), data.description, splits  # children may run elsewhere (--patch)


def run(args, argv, backends):
    """Measures the ladder on `backends`; writes and returns the results."""
    record.out_folder(args.out)
    started = time.perf_counter()
    data, description, splits = data_source(args)
    sizes = batch_sizes(args)
    spec = {"task": "rung", "precision": args.precision, "steps": args.steps, "windows": args.windows,
            "warmup": args.warmup, "seed": args.seed, "data": data}
    settings = {**{k: getattr(args, k) for k in ("rungs", "jobs", "devices", "batch_size", "precision", "steps",
                                                 "windows", "warmup", "seed")},
                "data": data and source_name(data)}  # the file, not where this machine keeps it
    results = {"format": FORMAT, "mode": "ladder", "command": record.command(argv), "settings": settings,
               "machine": record.machine(), "data": description, "splits": splits,
               "patches": patch_records(args.patch), "backends": {}}
    with tempfile.TemporaryDirectory(prefix="kcifar-ladder-") as tmp:
        root = patched_root(args.patch, os.path.join(tmp, "patched")) if args.patch else ""
        for backend in backends:
            results["backends"][backend] = measure_backend(backend, args, spec, sizes, splits, root, tmp)
    results["seconds"] = round(time.perf_counter() - started, 1)
    path = os.path.join(args.out, results_name(args, sizes))
    files.write_json(path, results)
    print(table(results))
    print(f"{results['seconds']:.0f} s; wrote {path}")
    return results
