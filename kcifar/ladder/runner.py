"""A range of rungs, each in a process of its own, up to N at once.

    python -m kcifar.ladder --run baseline..trick9 --jobs 4 --devices 0,1 --time-limit 500

The parent never imports a Keras backend (it takes no GPU memory): it reads
the rungs' configs, orders them (ladder order with one job, costliest first
with more, by `kcifar.cost`), starts `python -m kcifar.experiments.<rung>`
for each (rung, seed) with the rung flags and --resume, and follows each
run through its folder's history.csv. A child's whole output goes to
run.log in its run folder (with one job, to the terminal as well); the
parent shows one status line per run. A run that fails does not stop the
others; the end is a table of every run's outcome, and a non-zero exit
names the failed ones. Ctrl-C reaches the parent alone, which sends each
running child exactly one SIGINT: every child discards its unfinished epoch
and keeps its last checkpoint, so the same command resumes them all.
SIGTERM and SIGHUP (`kill`, a closed terminal or remote login) stop it the
same way: its children, in process groups of their own, would otherwise
train on without it.

The slots are kept by hand on `subprocess` rather than by a
`concurrent.futures` or `multiprocessing` pool: those run Python functions
in workers that share one environment, while each run here is a command of
its own with its own GPU, CPU share, log and exactly one SIGINT. Two reader
threads per child copy its stdout and stderr as they come (`communicate`
would wait for the end).
"""

import codecs
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

from kcifar import cli, cost, files, results
from kcifar.experiments import RUNGS, rung
from kcifar.ladder import parallel
from kcifar.results import LOG_FILE
from kcifar.settings import check_time_limit
POLL_SECONDS = 1.0
# Flags the parent handles itself and does not pass on as they were given.
RUN_CONTROL = ("--time-limit", "--seeds", "--seed")


@dataclasses.dataclass
class Job:
    """One (rung, seed) run: what the parent knows of it."""

    name: str
    seed: int
    run_dir: str
    epochs: int
    process: subprocess.Popen = None
    slot: int = None
    returncode: int = None
    interrupted: bool = False
    last_line: str = ""
    readers: list = None
    log: object = None
    started_at: float = None
    first_epoch_seconds: float = None  # from its start to its first new epoch, as the parent saw it

    @property
    def running(self):
        return self.process is not None and self.returncode is None

    def outcome(self):
        if self.returncode not in (0, None) and not self.interrupted:
            return "failed"  # before the folder: a resume that failed may leave its last stop's partial.json
        found = results.state(self.run_dir)
        if found in ("complete", "partial"):
            return found
        if self.process is None:
            return "not started"
        return "interrupted" if self.interrupted else "failed"


def children_backend():
    """The backend the children will run, found as Keras finds it (the
    KERAS_BACKEND variable, then keras.json, then TensorFlow) without
    importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    try:
        return files.read_json(os.path.join(home, "keras.json")).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def plan(names, flags, jobs):
    """The Jobs for rungs `names` under the rung flags `flags`, in the order
    they start. Raises cli.UsageError for flags the rungs would refuse."""
    args = cli.parser("python -m kcifar.ladder", "").parse_args(flags)
    try:
        check_time_limit(args.time_limit)  # the rungs' own check, before any of them starts
    except ValueError as e:
        raise cli.UsageError(str(e))
    seeds = cli.seeds_of(args)
    backend = children_backend()
    configs = {}
    for name in names:
        try:
            configs[name] = cli.configure(rung(name).CONFIG, args)
        except ValueError as e:
            raise cli.UsageError(str(e))
    # The longest first, so that the last to start are short.
    order = cost.costliest_first(configs) if jobs > 1 else list(names)
    planned = [Job(name, seed, cli.run_dir_of(args, configs[name], seed, backend), configs[name].epochs)
               for name in order for seed in seeds]
    return planned, args


def passed_flags(flags):
    """The rung flags without the run-control ones the parent sets per child."""
    out, skip = [], False
    for flag in flags:
        if skip:
            skip = False
            continue
        key = flag.split("=", 1)[0]
        if key in RUN_CONTROL:
            skip = "=" not in flag
            continue
        out.append(flag)
    if "--resume" not in out and "--overwrite" not in out:
        out.append("--resume")  # complete runs are skipped, interrupted ones resumed
    return out


def child_command(job, flags, time_left):
    """The command line of one child."""
    command = [sys.executable, "-m", f"kcifar.experiments.{job.name}", *flags, "--seed", str(job.seed)]
    if time_left is not None:
        command += ["--time-limit", f"{max(time_left, 0.1):.1f}"]  # never 0.0, which the child refuses
    return command


def start(job, flags, slot, jobs, devices, time_left, echo):
    """Starts the child of `job` in `slot`; its output goes to run.log (and,
    with `echo`, its stdout to this stdout and its stderr to this stderr)."""
    os.makedirs(job.run_dir, exist_ok=True)
    log = open(os.path.join(job.run_dir, LOG_FILE), "ab")
    job.slot = slot
    job.started_at = time.time()
    # Apart from the terminal's process group on POSIX: its Ctrl-C reaches the parent
    # alone, which passes on exactly one SIGINT (Windows children share the
    # console and get it from there).
    job.process = subprocess.Popen(
        child_command(job, flags, time_left), env=parallel.child_env(jobs, slot, devices),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        start_new_session=os.name == "posix",
    )
    parallel.pin(job.process.pid, jobs, slot)
    lock = threading.Lock()  # one log, two streams
    job.readers = [threading.Thread(target=_copy_output, args=(job, source, log, lock, target if echo else None),
                                    daemon=True)
                   for source, target in ((job.process.stdout, sys.stdout), (job.process.stderr, sys.stderr))]
    for reader in job.readers:
        reader.start()
    job.log = log


def _copy_output(job, source, log, lock, echo):
    decode = codecs.getincrementaldecoder("utf-8")("replace").decode
    for chunk in iter(lambda: source.read1(4096), b""):
        with lock:
            log.write(chunk)
            log.flush()
        text = decode(chunk)
        if echo is not None:
            echo.write(text)
            echo.flush()
        lines = text.replace("\r", "\n").strip().splitlines()
        if lines:
            job.last_line = lines[-1].strip()


def note_first_epoch(job, now):
    """Records how long `job` took from its start to the first epoch it
    trained: a run writes history.csv at the end of each epoch and at no
    other time, so a file written since the start means an epoch trained
    (a file older than the start is an earlier command's, also when the run
    was resumed or started afresh with --overwrite).

    Args:
        job: a started `Job`.
        now: a `time.time()` value.
    """
    if job.started_at is None or job.first_epoch_seconds is not None:
        return
    try:
        written = os.path.getmtime(os.path.join(job.run_dir, results.HISTORY_FILE))
    except OSError:  # no epoch yet
        return
    if written >= job.started_at:
        job.first_epoch_seconds = now - job.started_at


def may_start(time_left, planned):
    """Whether a waiting run may start.

    A run's first epoch always trains (`kcifar.run_folder.TimeLimit`), so a
    run started with less time left than the quickest run of this command
    took to its first epoch would only end after the limit.

    Args:
        time_left: seconds of the limit left, or None without a limit.
        planned: the command's `Job`s.
    """
    if time_left is None:
        return True
    needed = min((job.first_epoch_seconds for job in planned if job.first_epoch_seconds is not None), default=0)
    return time_left > needed


def finish(job):
    """Records a child's end once its output is all in its log."""
    job.returncode = job.process.wait()
    for reader in job.readers or []:  # none yet when Ctrl-C came as the child started
        reader.join(timeout=10)
    if job.log is not None:
        job.log.close()


def status(job):
    """One line: rung, epoch/epochs, last validation accuracy, images/s, ETA."""
    head = f"{job.name} seed {job.seed}"
    if job.process is None:
        return f"{head}: waiting"
    history = _history(job.run_dir)
    if job.returncode is not None:
        outcome = job.outcome()
        done = f", {len(history)}/{job.epochs} epochs" if history else ""
        if outcome == "failed":
            return f"{head}: failed (exit {job.returncode}){done}: {job.last_line}"
        return f"{head}: {outcome}{done}"
    if not history:
        return f"{head}: starting"
    last = history[-1]
    images = _train_images(job.run_dir)
    speed = f", {images / last['train_seconds']:.0f} img/s" if images and last["train_seconds"] else ""
    per_epoch = sum(row["seconds"] for row in history) / len(history)
    eta = per_epoch * max(job.epochs - len(history), 0)
    return (f"{head}: epoch {len(history)}/{job.epochs}, val {last['val_accuracy']:.1%}{speed}, "
            f"ETA {eta / 60:.1f} min")


def _history(run_dir):
    try:
        return results.read_history(run_dir)
    except results.RunFolderError:
        return []


def _train_images(run_dir):
    try:
        return files.read_json(os.path.join(run_dir, results.SETTINGS_FILE))["data"]["train"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


class StatusBoard:
    """The status lines, redrawn in place on a terminal; in a log file, a
    line whenever a run's state or epoch changes."""

    def __init__(self, jobs, stream=None):
        self.jobs, self.stream = jobs, stream or sys.stdout
        self.tty = self.stream.isatty()
        self.drawn, self.shown = 0, {}

    def update(self):
        lines = [status(job) for job in self.jobs]
        if self.tty:
            up = f"\x1b[{self.drawn}F" if self.drawn else ""
            self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self.drawn = len(lines)
        else:
            for job, line in zip(self.jobs, lines):
                key = line.split(", ETA")[0].split(", val")[0] if job.running else line
                if self.shown.get(id(job)) != key:
                    self.shown[id(job)] = key
                    self.stream.write(line + "\n")
        self.stream.flush()


def run(names, flags, jobs=1, devices=None, out=None):
    """Trains rungs `names` (`--run`'s range) with the rung flags `flags`.

    Args:
        names: rung names in ladder order.
        flags: the rung flags (see `python -m kcifar.experiments.baseline --help`).
        jobs: how many children run at once.
        devices: GPU indices from `parallel.parse_devices`, or None.
        out: where status lines and the outcome table go (default stdout).

    Returns:
        The exit status: 0 when no run failed, 1 when one did, 130 after Ctrl-C.
    """
    out = out or sys.stdout
    planned, args = plan(names, flags, jobs)
    child_flags = passed_flags(flags)
    begin = cli.started()
    board = StatusBoard(planned, out) if jobs > 1 else None
    pending, free, interrupted = list(planned), list(range(jobs)), False
    restore_handlers = _kill_as_ctrl_c()  # kill and a closed terminal stop it as Ctrl-C does
    try:
        while pending or any(job.running for job in planned):
            while pending and free:
                job = pending.pop(0)
                time_left = None if args.time_limit is None else args.time_limit - (time.time() - begin)
                if not may_start(time_left, planned):
                    pending.clear()  # too late for a first epoch: what is left does not start
                    break
                if board is None:
                    print(f"=== {job.name}: {rung(job.name).CONFIG.change}", file=out, flush=True)
                start(job, child_flags, free.pop(0), jobs, devices, time_left, echo=board is None)
            time.sleep(POLL_SECONDS if board else 0.2)
            for job in planned:
                if job.running:
                    note_first_epoch(job, time.time())
                if job.running and job.process.poll() is not None:
                    finish(job)
                    free.append(job.slot)
            if board:
                board.update()
    except KeyboardInterrupt:
        interrupted = True
        _interrupt([job for job in planned if job.running])
    finally:
        restore_handlers()
    print(outcome_table(planned), file=out, flush=True)
    failed = [job for job in planned if job.outcome() == "failed"]
    if interrupted:
        again = "the same command without --overwrite" if "--overwrite" in child_flags else "the same command"
        print(f"interrupted; run {again} to resume", file=sys.stderr)
        return 130
    if failed:
        print("python -m kcifar.ladder: error: failed: " + ", ".join(f"{j.name} (seed {j.seed})" for j in failed)
              + f"; see {LOG_FILE} in their run folders", file=sys.stderr)
        return 1
    return 0


def _kill_as_ctrl_c():
    """Makes SIGTERM and SIGHUP raise KeyboardInterrupt in the parent;
    returns the function that puts the handlers before them back."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    kept = {}
    for name in ("SIGTERM", "SIGHUP"):  # Windows has no SIGHUP
        if hasattr(signal, name):
            kept[name] = signal.signal(getattr(signal, name), interrupt)

    def restore():
        for name, handler in kept.items():
            signal.signal(getattr(signal, name), handler)

    return restore


def _interrupt(running):
    """One SIGINT to each running child, then waits for them all."""
    for job in running:
        job.interrupted = True
        if os.name == "posix":
            job.process.send_signal(signal.SIGINT)
    for job in running:
        while True:
            try:
                finish(job)
                break
            except KeyboardInterrupt:  # a second Ctrl-C: the children are stopping already
                continue


def outcome_table(planned):
    """Every run's outcome, in ladder order."""
    rows = [("run", "outcome", "epochs", "folder")]
    for job in sorted(planned, key=lambda j: (RUNGS.index(j.name), j.seed)):
        history = _history(job.run_dir)
        rows.append((f"{job.name} seed {job.seed}", job.outcome(), f"{len(history)}/{job.epochs}", job.run_dir))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3]
                     for row in rows)

