"""--run with --jobs and --devices: order, the children's environment,
failure isolation, Ctrl-C, status lines and bad input (kcifar.ladder). The
tiny GPU command of docs/gpu.md runs in test_gpu_command.py."""

import io
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, subprocess_env

from kcifar import cost, files
from kcifar.ladder import parallel, runner
from kcifar.experiments import RUNGS, rung
from kcifar.ladder.__main__ import main
from kcifar.results import HISTORY_COLUMNS

# A stand-in for `python -m kcifar.experiments.<rung>`: records its
# environment and what it was asked, then ends as its rung name says.
FAKE_CHILD = r"""
import json, os, signal, sys, time
run_dir, name = sys.argv[1], sys.argv[2]
os.makedirs(run_dir, exist_ok=True)
json.dump({"env": dict(os.environ), "argv": sys.argv[3:]}, open(os.path.join(run_dir, "child.json"), "w"))
if name == "trick1":
    print("kcifar.experiments.trick1: error: boom", flush=True)
    sys.exit(1)
if name == "wait":  # until SIGINT; counts every one it gets for 1.5 s
    def count(*_):
        with open(os.path.join(run_dir, "signals.txt"), "a") as f:
            f.write("SIGINT\n")
    signal.signal(signal.SIGINT, count)
    open(os.path.join(run_dir, "ready"), "w").close()
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(os.path.join(run_dir, "signals.txt")):
        time.sleep(0.05)
    time.sleep(1.5)
    sys.exit(130)
if name == "trick6":  # a first epoch of about a second, then more training
    time.sleep(1.0)
    with open(os.path.join(run_dir, "history.csv"), "w") as f:
        f.write("@COLUMNS@\n" + ",".join("1" for _ in "@COLUMNS@".split(",")) + "\n")
    time.sleep(4.5)
json.dump({"done": True}, open(os.path.join(run_dir, "metrics.json"), "w"))
"""


@pytest.fixture
def fake_children(tmp_path, monkeypatch):
    script = tmp_path / "fake_child.py"
    script.write_text(FAKE_CHILD.replace("@COLUMNS@", ",".join(HISTORY_COLUMNS)))
    monkeypatch.setattr(runner, "child_command",
                        lambda job, flags, time_left: [sys.executable, str(script), job.run_dir, job.name, *flags]
                        + ([] if time_left is None else ["--time-limit", f"{time_left:.1f}"]))
    monkeypatch.setattr(runner, "POLL_SECONDS", 0.05)
    return script


@pytest.fixture
def two_gpus(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that lists GPUs 0 and 1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def child_record(out, name, seed=0):
    return files.read_json(os.path.join(out, f"{name}-{runner.children_backend()}-seed{seed}", "child.json"))


def test_one_job_keeps_ladder_order_and_more_start_the_costliest_first():
    names = RUNGS
    assert [job.name for job in runner.plan(names, [], jobs=1)[0]] == list(RUNGS)
    order = [job.name for job in runner.plan(names, [], jobs=3)[0]]
    assert order[:3] == ["trick9", "trick8", "trick7"] and sorted(order) == sorted(RUNGS)
    costs = [cost.training_flops(rung(job.name).CONFIG, 1) for job in runner.plan(names, [], jobs=3)[0]]
    assert costs == sorted(costs, reverse=True)


def test_each_seed_is_a_job_and_run_control_flags_are_the_parents():
    planned, args = runner.plan(["trick3"], ["--seeds", "0,2", "--budget", "small", "--time-limit", "60"], jobs=2)
    assert [(job.name, job.seed, job.epochs) for job in planned] == [("trick3", 0, 20), ("trick3", 2, 20)]
    assert planned[1].run_dir == os.path.join("runs", f"trick3-small-{runner.children_backend()}-seed2")
    assert args.time_limit == 60
    assert runner.passed_flags(["--seeds", "0,2", "--budget", "small", "--time-limit=60", "--quiet"]) == [
        "--budget", "small", "--quiet", "--resume"]
    assert runner.passed_flags(["--overwrite", "--seed", "4"]) == ["--overwrite"]


def test_children_get_a_gpu_each_round_robin_and_a_share_of_the_cpus(tmp_path, fake_children, two_gpus):
    out = str(tmp_path / "runs")
    assert main(["--run", "baseline..trick4", "--jobs", "3", "--devices", "1,0", "--out", out]) == 1  # trick1 fails
    envs = {name: child_record(out, name)["env"] for name in ("baseline", "trick2", "trick3", "trick4")}
    devices = sorted(env["CUDA_VISIBLE_DEVICES"] for env in envs.values())
    assert set(devices) == {"0", "1"}
    for env in envs.values():
        # Three children on two GPUs share one: no up-front grab of its memory.
        assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
        share = str(max(1, len(parallel.usable_cpus()) // 3))
        assert all(env[name] == share for name in parallel.THREAD_VARIABLES)
    assert child_record(out, "trick3")["argv"][-3:] == ["--out", out, "--resume"]


def test_child_env_gives_devices_by_slot_and_keeps_a_lone_child_as_it_is():
    env = parallel.child_env(4, 2, devices=["0", "1", "2", "3"], base={"PATH": "x"})
    assert env["CUDA_VISIBLE_DEVICES"] == "2" and "XLA_PYTHON_CLIENT_PREALLOCATE" not in env  # a GPU of its own
    alone = parallel.child_env(1, 0, base={"PATH": "x"})
    assert alone == {"PATH": "x", "TF_CPP_MIN_LOG_LEVEL": "2"}
    assert parallel.cpu_share(4, 3, cpus=range(16)) == [12, 13, 14, 15]
    assert parallel.cpu_share(3, 1, cpus=range(2)) == [1]  # more children than cores: one each, shared


def test_a_failed_rung_does_not_stop_the_others(tmp_path, fake_children, capsys):
    out = str(tmp_path / "runs")
    assert main(["--run", "baseline..trick2", "--out", out]) == 1
    stdout, stderr = capsys.readouterr()
    table = stdout[stdout.index("run "):].splitlines()
    assert [line.split()[3] for line in table[1:]] == ["complete", "failed", "complete"]
    assert stderr.strip().splitlines()[-1] == (
        "python -m kcifar.ladder: error: failed: trick1 (seed 0); see run.log in their run folders")
    # With one job the child's output reaches the terminal, and its log.
    assert "boom" in stdout
    log = os.path.join(out, f"trick1-{runner.children_backend()}-seed0", runner.LOG_FILE)
    assert "kcifar.experiments.trick1: error: boom" in open(log).read()


def test_a_resume_that_fails_is_failed_though_its_last_stop_left_partial_json(tmp_path):
    job = runner.Job("trick3", 0, str(tmp_path / "run"), epochs=20)
    os.makedirs(job.run_dir)
    files.write_json(os.path.join(job.run_dir, "partial.json"), {"epochs_done": 5})
    job.process = True  # it ran
    assert [job.outcome() for job.returncode in (0, 1)] == ["partial", "failed"]
    job.interrupted = True  # Ctrl-C: 130, and the folder says where it stands
    assert [job.outcome() for job.returncode in (130,)] == ["partial"]


def test_a_child_is_never_handed_a_limit_that_rounds_to_zero():
    job = runner.Job("trick3", 0, "run", epochs=20)
    assert runner.child_command(job, [], 0.04)[-2:] == ["--time-limit", "0.1"]
    assert runner.child_command(job, [], 61.26)[-2:] == ["--time-limit", "61.3"]


def test_status_lines_in_a_log_are_plain_and_one_per_change(tmp_path):
    job = runner.Job("trick3", 0, str(tmp_path / "run"), epochs=20)
    os.makedirs(job.run_dir)
    files.write_json(os.path.join(job.run_dir, "settings.json"), {"data": {"train": 5000}})
    job.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stream = io.StringIO()
        board = runner.StatusBoard([job], stream)
        board.update()
        rows = [{"epoch": e, "loss": 1, "accuracy": 0.5, "val_loss": 1, "val_accuracy": 0.4 + e / 100,
                 "learning_rate": 1e-3, "train_seconds": 10.0, "seconds": 12.0} for e in (1, 2)]
        files.write_csv(os.path.join(job.run_dir, "history.csv"), rows, HISTORY_COLUMNS)
        board.update()
        board.update()  # nothing changed: no line
    finally:
        job.process.kill()
        job.process.wait()
    assert stream.getvalue().splitlines() == [
        "trick3 seed 0: starting",
        "trick3 seed 0: epoch 2/20, val 42.0%, 500 img/s, ETA 3.6 min",
    ]


@pytest.mark.skipif(os.name != "posix", reason="process groups and SIGTERM as POSIX has them")
@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_ctrl_c_or_kill_reaches_each_child_once_and_the_table_says_interrupted(how, tmp_path, fake_children,
                                                                              tmp_path_factory):
    out = tmp_path / "runs"
    # Python ignores SIGINT in a process started with it ignored (a
    # background job of a shell without job control): restore the handler.
    parent = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "from kcifar.ladder import runner; "
              f"runner.child_command = lambda job, flags, t: [sys.executable, {str(fake_children)!r}, job.run_dir, "
              "'wait']; from kcifar.ladder.__main__ import main; "
              f"sys.exit(main(['--run', 'baseline..trick1', '--jobs', '2', '--out', {str(out)!r}]))")
    process = subprocess.Popen([sys.executable, "-c", parent], cwd=REPO, env=subprocess_env(tmp_path_factory),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    run_dirs = [out / f"{name}-{runner.children_backend()}-seed0" for name in ("baseline", "trick1")]
    deadline = time.time() + 60
    while not all((d / "ready").exists() for d in run_dirs) and time.time() < deadline:
        time.sleep(0.1)
    if how == "ctrl-c":  # a terminal sends it to its whole foreground process group
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    assert [(d / "signals.txt").read_text() for d in run_dirs] == ["SIGINT\n", "SIGINT\n"]
    assert [line.split()[3] for line in stdout[stdout.index("run "):].splitlines()[1:]] == ["interrupted"] * 2
    assert stderr.strip().splitlines()[-1] == "interrupted; run the same command to resume"


@pytest.mark.parametrize("argv, message", [
    (["--run", "trick2..baseline"], "--run trick2..baseline: trick2 comes after baseline"),
    (["--run", "baseline", "--jobs", "0"], "--jobs must be at least 1. Received: --jobs 0"),
    (["--run", "baseline", "--devices", "0,5"], "--devices 0,5: GPU 5 is not listed by nvidia-smi (it lists 0,1)"),
    (["--run", "baseline", "--devices", ","], "--devices must be a comma-separated list of GPU indices"),
    (["--run", "baseline", "--time-limit", "0"], "--time-limit must be a positive number of seconds"),
])
def test_bad_input_is_one_line_before_any_child(argv, message, tmp_path, fake_children, two_gpus, capsys):
    assert main(argv + ["--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"python -m kcifar.ladder: error: {message}")
    assert not os.path.exists(tmp_path / "runs")


def test_devices_without_nvidia_smi(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi on it
    assert main(["--run", "baseline", "--devices", "0"]) == 2
    assert "this machine lists no GPU" in capsys.readouterr().err


def test_a_limit_already_spent_starts_nothing_more(tmp_path, fake_children, monkeypatch, capsys):
    monkeypatch.setattr(runner.cli, "started", lambda: time.time() - 100)  # the command began 100 s ago
    out = str(tmp_path / "runs")
    assert main(["--run", "baseline..trick1", "--time-limit", "50", "--out", out]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[3:5] for line in table[1:]] == [["not", "started"]] * 2


def test_a_rung_waits_when_less_time_is_left_than_any_first_epoch_took():
    quick, slow, waiting = (runner.Job(name, 0, "unused", 50) for name in ("baseline", "trick9", "trick1"))
    quick.first_epoch_seconds, slow.first_epoch_seconds = 20.0, 90.0
    planned = [quick, slow, waiting]
    assert runner.may_start(None, planned)
    assert runner.may_start(20.5, planned) and not runner.may_start(19.5, planned)
    assert runner.may_start(0.5, [waiting]) and not runner.may_start(0.0, [waiting])  # nothing timed yet


def test_a_rung_after_one_that_left_too_little_time_for_a_first_epoch_is_not_started(
        tmp_path, fake_children, monkeypatch, capsys):
    # trick6's child reaches its first epoch after about 1 s and ends after about 5.5 s,
    # with under a second of the 6.5 s limit left: too little for trick7 to start.
    monkeypatch.setattr(runner.cli, "started", lambda: time.time())
    out = str(tmp_path / "runs")
    assert main(["--run", "trick6..trick7", "--time-limit", "6.5", "--out", out]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[3:5] for line in table[-2:]] == [["complete", "1/50"], ["not", "started"]]


def test_the_first_epoch_is_timed_from_the_start_to_its_first_new_row(tmp_path):
    run_dir = tmp_path / "trick2-jax-seed0"
    run_dir.mkdir()
    history = run_dir / "history.csv"
    row = ",".join("1" for _ in HISTORY_COLUMNS)
    history.write_text(",".join(HISTORY_COLUMNS) + "\n" + row + "\n")  # a resumed run: one epoch before
    start = float(int(time.time()) - 1)  # a whole second: start + 42.5 - start is exactly 42.5
    os.utime(history, (start - 60, start - 60))
    job = runner.Job("trick2", 0, str(run_dir), 50, started_at=start)
    runner.note_first_epoch(job, start + 30)
    assert job.first_epoch_seconds is None
    history.write_text(history.read_text() + row + "\n")
    runner.note_first_epoch(job, start + 42.5)
    runner.note_first_epoch(job, start + 100)  # only the first new epoch counts
    assert job.first_epoch_seconds == 42.5


def test_an_overwritten_runs_old_history_is_not_its_first_epoch(tmp_path):
    run_dir = tmp_path / "trick2-jax-seed0"
    run_dir.mkdir()
    history = run_dir / "history.csv"
    history.write_text(",".join(HISTORY_COLUMNS) + "\n" + ",".join("1" for _ in HISTORY_COLUMNS) + "\n")
    os.utime(history, (time.time() - 60, time.time() - 60))  # the old run's, left until the child deletes it
    job = runner.Job("trick2", 0, str(run_dir), 50, started_at=time.time() - 5)
    runner.note_first_epoch(job, time.time())
    assert job.first_epoch_seconds is None
