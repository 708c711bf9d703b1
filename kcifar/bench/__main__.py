"""`python -m kcifar.bench`: see kcifar/bench/__init__.py.

Usage errors end with one line on stderr and exit status 2; a backend that
fails while measuring ends the run with one line and exit status 1.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import time

from kcifar import files
from kcifar.bench import ladder, matmul, memory, record, timing, worker
from kcifar.bench.children import backend_env, last_line, patch_records, patched_root
from kcifar.bench.errors import BenchError
from kcifar.bench.record import PROG, machine
from kcifar.cli import BACKENDS
from kcifar.command import Parser, UsageError, error
from kcifar.config import PRECISIONS
from kcifar.data.loader import source_name
from kcifar.experiments import RUNGS

FORMAT = 1  # of the results file
# Of the flags whose default depends on --ladder (None in the parser).
DEFAULTS = {"rung": "baseline", "batch_size": 128, "steps": 4, "windows": 5, "warmup": 2}
# Augmentation must not slow rung 5 below rung 4, and costs at most 5% of a
# rung 7 step (against rung 7 without it).
FULL_RUNGS = ("trick4", "trick5", "trick7")
KERAS_PATHS = ("keras_step", "keras_fit", "keras_jit_step")  # compared with the best plain step
TARGETS = {"keras_vs_plain": 0.95, "rung5_vs_rung4": 0.90, "augmentation_share": 0.05, "peak_rss_mb": 3072}


def parser():
    p = Parser(prog=PROG, description="Training throughput of the Keras path against hand-written steps.")
    p.add_argument("--rung", help="the rung whose network is measured (default baseline)")
    p.add_argument("--widths", help="the rung's network with these four stage widths instead, e.g. rung 0 at rung 9's "
                                    "widths to set the hand-written step beside a wide network: --rung baseline "
                                    "--widths 128,256,512,1024 (default: the rung's own)")
    p.add_argument("--backends", help="comma-separated subset of tensorflow,torch,jax (default: the installed ones)")
    p.add_argument("--batch-size", type=int,
                   help="images per step (default 128; with --ladder, each rung's own)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32", help="Keras dtype policy (default float32)")
    p.add_argument("--steps", type=int, help=f"steps per timed window (default {DEFAULTS['steps']}; "
                                              f"{ladder.DEFAULTS['steps']} with --ladder, and as many "
                                              "validation batches)")
    p.add_argument("--windows", type=int, help=f"timed windows per path, in turns (default {DEFAULTS['windows']}; "
                                                f"{ladder.DEFAULTS['windows']} with --ladder)")
    p.add_argument("--warmup", type=int, help=f"untimed steps per path first (default {DEFAULTS['warmup']}; with "
                                               f"--ladder, {ladder.DEFAULTS['warmup']} after the first step)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and batches (default 0)")
    p.add_argument("--full", action="store_true",
                   help="also rung 4 against rung 5, rung 7 with and without its augmentation, and the peak memory "
                        "of a 200-step rung 0 run (needs data)")
    p.add_argument("--data", help="real images for the pipeline and the memory run (default: synthetic "
                                  "images; the memory run and --ladder fall back to $KCIFAR_DATA)")
    p.add_argument("--out", default=os.path.join("experiments", "bench"),
                   help="folder of the results file (default experiments/bench)")
    p.add_argument("--threads", type=int,
                   help="keep each backend to this many CPUs (default: all); 1 steadies figures on a busy machine")
    p.add_argument("--profile", action="store_true",
                   help="after timing, profile the Keras step and the best hand-written step (operations on torch and TensorFlow)")
    p.add_argument("--jit", action="store_true",
                   help="also time the Keras step with jit_compile=True (XLA on TensorFlow, torch.compile on "
                        "torch; JAX's is compiled already) and its first, compiling step")
    p.add_argument("--patch", action="append", default=[], metavar="DIFF",
                   help="measure the package with this diff applied (to a copy); repeatable")
    p.add_argument("--ladder", action="store_true",
                   help="instead: time every rung's training (start-up, first step, steady step, validation) "
                        "and project each rung's full schedule and the whole ladder's wall time")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="with --ladder: copies of each rung trained at once, and the slots of the ladder's "
                        "projection (default 1)")
    p.add_argument("--rungs", metavar="LIST",
                   help="with --ladder: comma-separated rungs, and steps beyond the ladder such as pretrained "
                        "(default: the ten rungs)")
    p.add_argument("--devices", metavar="LIST",
                   help="with --ladder: GPUs for the children, e.g. 0,1 (round robin by slot; default: every "
                        "child sees every device)")
    return p


def check_widths(args):
    """--widths as a tuple of four positive ints, for one rung's bench only."""
    if args.ladder or args.full:
        raise UsageError(f"--widths measures one rung's network; not with {'--ladder' if args.ladder else '--full'}")
    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 4 or min(widths) < 1:
        raise UsageError(f"--widths must be four positive integers, comma-separated. Received: --widths {args.widths}")
    return widths


def check_args(args):
    """Validates the flags and fills in the defaults of the mode (--ladder or
    not); returns the backends to measure."""
    ladder.check_args(args)
    for key, value in (ladder.DEFAULTS if args.ladder else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not args.ladder and args.rung not in RUNGS:
        raise UsageError(f"--rung must be one of {', '.join(RUNGS)}. Received: --rung {args.rung}")
    if args.widths is not None:
        args.widths = check_widths(args)
    for flag, value, low in (("--batch-size", 1 if args.batch_size is None else args.batch_size, 1), ("--steps", args.steps, 1),
                             ("--windows", args.windows, 1), ("--warmup", args.warmup, 0),
                             ("--threads", 1 if args.threads is None else args.threads, 1)):
        if value < low:
            raise UsageError(f"{flag} must be at least {low}. Received: {flag} {value}")
    batch = max(ladder.batch_sizes(args).values()) if args.ladder else args.batch_size
    for flag, steps in (("--steps", args.steps), ("--warmup", args.warmup)):
        if not args.data and steps * batch > worker.SYNTHETIC_TRAIN:
            raise UsageError(f"{flag} x --batch-size must be at most {worker.SYNTHETIC_TRAIN} images (one epoch). "
                             f"Received: {steps} x {batch}")
    if args.data and not os.path.exists(args.data):
        raise UsageError(f"--data {args.data}: no such file or folder")
    for patch in args.patch:
        if not os.path.isfile(patch):
            raise UsageError(f"--patch {patch}: no such file")
    installed = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    if args.backends is None:
        if not installed:
            raise UsageError("no backend installed (tensorflow, torch or jax); see README 'Install'")
        return installed
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise UsageError(f"--backends must be a comma-separated subset of {','.join(BACKENDS)}. "
                         f"Received: --backends {args.backends}")
    missing = [b for b in backends if b not in installed]
    if missing:
        raise UsageError(f"backend {missing[0]} is not installed; see README 'Install'")
    return list(dict.fromkeys(backends))


def run_worker(backend, spec, env, tmp, cwd=None):
    """Measures one backend in a child process; returns its results dict.
    `cwd`: the patched copy's folder, which `python -m` puts first on the path."""
    spec_path = os.path.join(tmp, f"spec-{backend}.json")
    result_path = os.path.join(tmp, f"result-{backend}.json")
    files.write_json(spec_path, spec)
    done = subprocess.run([sys.executable, "-m", "kcifar.bench.worker", spec_path, result_path],
                          env=env, cwd=cwd, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0 or not os.path.exists(result_path):
        raise BenchError(f"{backend} failed: {last_line(done.stderr, done.returncode)}")
    return files.read_json(result_path)


def summary(results):
    """The figures the targets are about, per backend."""
    out = {"keras_vs_plain": {}, "feed_share_of_fit_step": {}}
    for backend, r in results["backends"].items():
        main = r["rungs"][results["settings"]["rung"]]
        if main.get("ratios"):
            out["keras_vs_plain"][backend] = {
                "reference": main["best_plain"],
                **{p: {"wall": main["ratios"][p], "cpu": main["cpu_ratios"][p]}
                   for p in KERAS_PATHS if p in main["ratios"]},
            }
        out["feed_share_of_fit_step"][backend] = {
            name: round(e["paths"]["feed"]["cpu_ms_per_image"] / e["paths"]["keras_fit"]["cpu_ms_per_image"], 4)
            for name, e in r["rungs"].items()
        }
        for name, entry in r["rungs"].items():
            if worker.NO_AUGMENTATION in entry["paths"]:
                with_it, without = entry["paths"]["keras_fit"], entry["paths"][worker.NO_AUGMENTATION]
                slower = timing.ratio(without["windows_images_per_second"], with_it["windows_images_per_second"])
                out.setdefault("augmentation_share", {}).setdefault(backend, {})[name] = round(1 - 1 / slower, 4)
                # Per CPU-second too: a busy spell that stretches one window's
                # wall time leaves its CPU time nearly as it was.
                costlier = timing.ratio(with_it["windows_cpu_ms_per_image"], without["windows_cpu_ms_per_image"])
                out.setdefault("augmentation_share_cpu", {}).setdefault(backend, {})[name] = round(1 - 1 / costlier, 4)
        if "augmentation_images_per_second" in r:
            alone = r["augmentation_images_per_second"]
            out.setdefault("augmentation_images_per_second", {})[backend] = alone
            batch = str(results["settings"]["batch_size"])
            if alone["rung"] in r["rungs"] and batch in alone:
                # The block timed by itself, as a share of the fit step: the
                # difference of two fits is noisier than the block's cost.
                fit = r["rungs"][alone["rung"]]["paths"]["keras_fit"]["images_per_second"]
                out.setdefault("augmentation_share_alone", {})[backend] = {alone["rung"]: round(fit / alone[batch], 4)}
        if all(name in r["rungs"] for name in FULL_RUNGS[:2]):
            four, five = (r["rungs"][n]["paths"]["keras_fit"] for n in FULL_RUNGS[:2])
            out.setdefault("rung5_vs_rung4", {})[backend] = {
                "wall": timing.ratio(five["windows_images_per_second"], four["windows_images_per_second"]),
                "cpu": timing.ratio(*([1 / c for c in f["windows_cpu_ms_per_image"]] for f in (five, four))),
            }
    if "memory" in results:
        out["peak_rss_mb"] = {b: None if m["error"] else m["peak_rss_mb"] for b, m in results["memory"].items()}
    return out


def in_process(backend, args):
    """Whether this process can measure `backend` itself: its caller already
    runs Keras on it (as the tests do), and no patch or CPU limit asks for a
    child. From the command line the parent never imports Keras."""
    keras = sys.modules.get("keras")
    return keras is not None and keras.backend.backend() == backend and not args.patch and not args.threads


def findings(results):
    """One line per target and backend: the figure beside its target."""
    s, lines = results["summary"], []
    for backend in results["backends"]:
        ratios = s["keras_vs_plain"].get(backend, {})
        for path in [p for p in KERAS_PATHS if p in ratios]:
            lines.append(f"{backend}: {path} / {ratios['reference']} = {ratios[path]['wall']:.3f} "
                         f"(target >= {TARGETS['keras_vs_plain']}; per CPU-second {ratios[path]['cpu']:.3f})")
        for name, entry in results["backends"][backend]["rungs"].items():
            if "jit_first_step_seconds" in entry:
                lines.append(f"{backend}: {name} with jit_compile=True: model build and first (compiling) step "
                             f"{entry['jit_first_step_seconds']} s")
        lines.append(f"{backend}: making the batches alone costs "
                     + ", ".join(f"{x:.1%} ({n})" for n, x in s["feed_share_of_fit_step"][backend].items())
                     + " of a fit step's CPU time")
        if backend in s.get("rung5_vs_rung4", {}):
            five = s["rung5_vs_rung4"][backend]
            lines.append(f"{backend}: rung 5 / rung 4 fit speed = {five['wall']:.3f} "
                         f"(target >= {TARGETS['rung5_vs_rung4']}; per CPU-second {five['cpu']:.3f})")
        for name, share in s.get("augmentation_share", {}).get(backend, {}).items():
            cpu = s["augmentation_share_cpu"][backend][name]
            lines.append(f"{backend}: {name}'s augmentation costs {share:.1%} of its fit step "
                         f"(target <= {TARGETS['augmentation_share']:.0%}; per CPU-second {cpu:.1%})")
        for name, share in s.get("augmentation_share_alone", {}).get(backend, {}).items():
            lines.append(f"{backend}: {name}'s augmentation block timed alone is {share:.1%} of its fit step's time "
                         f"at batch {results['settings']['batch_size']}")
        speed = s.get("augmentation_images_per_second", {}).get(backend)
        if speed:
            lines.append(f"{backend}: {speed['rung']} augmentation alone: "
                         + ", ".join(f"{v} images/s at batch {k}" for k, v in speed.items() if k != "rung"))
        rss = results.get("memory", {}).get(backend)
        if rss and rss["error"] is None:
            lines.append(f"{backend}: peak RSS {rss['peak_rss_mb']:.0f} MB over {rss['steps']} steps of rung 0 "
                         f"(target < {TARGETS['peak_rss_mb']} MB)")
        elif rss:
            lines.append(f"{backend}: memory run failed: {rss['error']}")
    if results.get("memory_skipped"):
        lines.append(f"memory run {results['memory_skipped']}")
    return lines


def table(results):
    """The results as aligned text: one block per rung."""
    s = results["settings"]
    out = [f"{results['machine']['cpu']}, {results['machine']['cores']} cores, load average at start "
           f"{results['machine']['load_average_at_start'][0]}; matmul 2048x2048 float32: numpy "
           f"{results['numpy_matmul_gflops']} GFLOP/s, "
           + ", ".join(f"{b} {r['matmul_gflops']}" for b, r in results["backends"].items())]
    rung_names = list(next(iter(results["backends"].values()))["rungs"])
    for name in rung_names:
        first = next(iter(results["backends"].values()))["rungs"][name]
        out += ["", f"{name} (rung {first['rung']}): batch {s['batch_size']}, {s['precision']}, "
                    f"{s['windows']} windows x {s['steps']} steps per path, "
                    f"{first['train_flops_per_image'] / 1e6:.0f} MFLOP per image per training step; "
                    "Keras data format: "
                    + ", ".join(f"{b} {r['rungs'][name]['data_format']}" for b, r in results["backends"].items()),
                f"{'backend':11}{'path':22}{'img/s':>9}{'CPU ms/img':>12}{'GFLOP/s':>9}{'of matmul':>11}"
                f"{'vs plain':>10}{'(CPU)':>8}"]
        for backend, r in results["backends"].items():
            entry = r["rungs"][name]
            for path, f in entry["paths"].items():
                vs = entry.get("ratios", {}).get(path)
                vs_cpu = entry.get("cpu_ratios", {}).get(path)
                out.append(f"{backend:11}{path:22}{f['images_per_second']:9.1f}{f['cpu_ms_per_image']:12.2f}"
                           + (f"{f['gflops']:9.1f}{f['matmul_share']:11.0%}" if "gflops" in f else f"{'-':>20}")
                           + (f"{vs:10.3f}{vs_cpu:8.3f}" if vs is not None else f"{'-':>18}"))
            if entry.get("plain_skipped"):
                out.append(f"{backend:11}(no hand-written step: {entry['plain_skipped']})")
    for backend, r in results["backends"].items():
        out += profile_lines(backend, r.get("profile"))
    return "\n".join(out + [""] + results["findings"])


def profile_lines(backend, profile, top=12):
    """The profiled paths side by side: operations (torch, TensorFlow), else Python calls."""
    if not profile:
        return []
    paths = [p for p in profile if p != "steps"]
    kind = "ops" if all("ops" in profile[p] for p in paths) else "python"
    rows = {}
    for p in paths:
        for key, (ms, calls) in profile[p][kind].items():
            rows.setdefault(key, {})[p] = (ms, calls)
    ranked = sorted(rows, key=lambda k: -max(ms for ms, _ in rows[k].values()))[:top]
    out = ["", f"{backend}: profile, {'operations' if kind == 'ops' else 'Python functions'}, "
               f"own time per step in ms (calls per step), over {profile['steps']} steps",
           f"{'':44}" + "".join(f"{p:>22}" for p in paths)]
    for key in ranked:
        cells = [rows[key].get(p) for p in paths]
        out.append(f"{key[-44:]:44}" + "".join(f"{c[0]:>14.1f} ({c[1]:>5.0f})" if c else f"{'-':>22}" for c in cells))
    if kind == "ops":  # every operation is recorded, so their sum is the profiled step
        # Calls per step, nested ones counted (aten::conv2d and the aten::convolution it calls).
        totals = [[sum(column) for column in zip(*profile[p]["ops"].values())] for p in paths]
        out.append(f"{'all operations':44}" + "".join(f"{ms:>14.1f} ({calls:>5.0f})" for ms, calls in totals))
    for p in paths:
        if "dynamo" in profile[p]:
            d = profile[p]["dynamo"]
            head = f"{backend}: {p} under torch._dynamo.explain: "
            if "error" in d:
                out.append(head + f"failed ({d['error']})")
            else:
                out.append(head + f"{d['graphs']} graphs, {d['graph_breaks']} graph breaks")
                out += [f"  {n} x {reason}" for reason, n in list(d["break_reasons"].items())[:8]]
    return out


def run(args, argv):
    backends = check_args(args)
    if args.ladder:
        return ladder.run(args, argv, backends)
    record.out_folder(args.out)
    started = time.perf_counter()
    if args.data:
        args.data = os.path.abspath(args.data)  # children may run elsewhere (--patch)
    settings = {k: getattr(args, k) for k in ("rung", "widths", "batch_size", "precision", "steps", "windows",
                                              "warmup", "seed", "threads", "full", "data", "profile", "jit")}
    spec = {"rungs": [args.rung] + [r for r in FULL_RUNGS if args.full and r != args.rung],
            **{k: settings[k] for k in ("widths", "batch_size", "precision", "steps", "windows", "warmup", "seed",
                                         "threads", "full", "data", "profile", "jit")}}
    settings["data"] = args.data and source_name(args.data)  # the file, not where this machine keeps it
    results = {"format": FORMAT, "command": record.command(argv), "settings": settings,
               "machine": machine(), "targets": TARGETS, "patches": patch_records(args.patch), "backends": {}}
    with tempfile.TemporaryDirectory(prefix="kcifar-bench-") as tmp:
        root = patched_root(args.patch, os.path.join(tmp, "patched")) if args.patch else ""
        print("numpy: matmul ...", flush=True)
        results["numpy_matmul_gflops"] = round(matmul.numpy_rate(), 1)
        for backend in backends:
            if in_process(backend, args):
                results["backends"][backend] = worker.measure(spec)
            else:
                results["backends"][backend] = run_worker(backend, spec, backend_env(backend, root), tmp, root or None)
        source = args.data or os.environ.get("KCIFAR_DATA")
        if args.full and source:
            results["memory"] = {}
            for backend in backends:
                print(f"{backend}: peak memory of a 200-step rung 0 run on {source} ...", flush=True)
                results["memory"][backend] = memory.training_rss(
                    backend_env(backend, root), os.path.abspath(source), args.batch_size, cwd=root or None
                )
        elif args.full:
            results["memory_skipped"] = "skipped: no data (pass --data or set KCIFAR_DATA)"
    results["summary"] = summary(results)
    results["findings"] = findings(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    widths = f"-w{'x'.join(map(str, args.widths))}" if args.widths else ""
    name = f"{args.rung}{widths}{'-full' if args.full else ''}-b{args.batch_size}-{args.precision}-{record.stamp()}.json"
    path = os.path.join(args.out, name)
    files.write_json(path, results)
    print(table(results))
    print(f"{results['seconds']:.0f} s; wrote {path}")
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(parser().parse_args(argv), argv)
    except UsageError as e:
        sys.exit(error(PROG, e))
    except BenchError as e:
        sys.exit(error(PROG, e, 1))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
