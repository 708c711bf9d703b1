"""kcifar.tune.distributed: keras-tuner's chief and workers on 127.0.0.1 as
separate processes, a worker killed and restarted, and the traps (a port in
use, an unreachable chief) as one line instead of a hang."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from concurrent import futures

import pytest

from kcifar.tune import distributed, project
from kcifar.tune.__main__ import main
from helpers import REPO, subprocess_env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8000", ("127.0.0.1", 8000)),
    ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ("chief.example.org:1", ("chief.example.org", 1)),
    ("[::1]:8000", ("::1", 8000)),
    ("localhost", None), (":8000", None), ("host:0", None), ("host:70000", None), ("host:http", None),
])
def test_parse_address(text, expected):
    if expected is None:
        with pytest.raises(distributed.DistributedError, match="HOST:PORT"):
            distributed.parse_address(text)
    else:
        assert distributed.parse_address(text) == expected


@pytest.mark.parametrize("worker_id, ok", [("w1", True), ("tuner0", True), ("chief", False), ("mischief", False)])
def test_worker_id(worker_id, ok):
    if ok:
        distributed.check_worker_id(worker_id)
    else:
        with pytest.raises(distributed.DistributedError, match="second chief"):
            distributed.check_worker_id(worker_id)


def test_port_held_by_a_grpc_server_is_seen_as_used():
    import grpc

    port = free_port()
    distributed.check_port_free("127.0.0.1", port)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    server.start()
    try:
        # The trap: gRPC lets a second server bind the same port (SO_REUSEPORT) ...
        second = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        assert second.add_insecure_port(f"127.0.0.1:{port}") == port
        second.stop(None)
        # ... so the probe is a plain socket, which cannot.
        with pytest.raises(distributed.DistributedError, match="another chief"):
            distributed.check_port_free("127.0.0.1", port)
    finally:
        server.stop(None)


def test_chief_on_a_port_in_use_is_one_line(tiny_dir, tmp_path, capsys):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        status = main(["--rung", "trick4", "--data", tiny_dir, "--out", str(tmp_path), "--chief",
                       "--oracle", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "is another chief running there?" in err
    assert not os.listdir(tmp_path)


def test_unreachable_chief_is_one_line_within_the_timeout(tiny_dir, tmp_path, capsys):
    start = time.monotonic()
    status = main(["--rung", "trick4", "--data", tiny_dir, "--out", str(tmp_path), "--worker", "w1",
                   "--oracle", f"127.0.0.1:{free_port()}", "--chief-timeout", "1"])
    err = capsys.readouterr().err
    assert status == 2 and "no chief answered at 127.0.0.1" in err and "within 1 s" in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert time.monotonic() - start < 60
    assert not os.listdir(tmp_path)


def test_chief_of_a_finished_search_stops_at_once(tmp_path):
    from test_tune_search import _oracle

    oracle = _oracle(tmp_path)
    oracle.max_trials = 1
    trial = oracle.create_trial("w1")
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    lines = []
    start = time.monotonic()
    distributed.serve(oracle, "127.0.0.1", free_port(), str(tmp_path / "p"), grace=0.5, poll=0.05, log=lines.append)
    assert time.monotonic() - start < 20
    assert len(lines) == 2 and "serving" in lines[0] and "without word from idle worker(s) w1" in lines[1]


def test_status_names_the_trials_it_waits_for(tmp_path):
    (tmp_path / "trial_3").mkdir()
    (tmp_path / "trial_3" / "history.csv").write_text("epoch,loss\n1,2.0\n2,1.5\n")
    line = distributed._status(str(tmp_path), {"w1": "3", "w2": "4"}, {"3": 0.0, "4": 50.0}, 2, 4, True, 130.0)
    # Numbered as keras-tuner shows them: id "3" is its Trial #4.
    assert line.startswith("chief: 2 of 4 trial(s) ended; waiting for trial 4 (trial_3) on w1 (2m10s, 2 epoch(s), "
                           "last epoch")
    assert "trial 5 (trial_4) on w2 (1m20s, 0 epoch(s))" in line
    assert line.endswith("restart it with the same --worker ID and it resumes its trial")
    idle = distributed._status(str(tmp_path), {}, {}, 0, 0, False, 1.0)
    assert "no trial running: waiting for workers" in idle


class Processes:
    """Children with their output in files; all killed at the end, whatever happens."""

    def __init__(self, folder, env):
        self.folder, self.env, self.children = folder, env, {}

    def start(self, name, argv):
        log = open(self.folder / f"{name}.log", "w")
        self.children[name] = subprocess.Popen(
            [sys.executable, "-m", "kcifar.tune", *argv], cwd=REPO, env=self.env,
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        return self.children[name]

    def log(self, name):
        return (self.folder / f"{name}.log").read_text()

    def wait_until(self, condition, what, timeout=240):
        deadline = time.monotonic() + timeout
        while not condition():
            dead = {n: c.returncode for n, c in self.children.items() if c.poll() not in (None, 0, -9)}
            assert not dead, f"{dead} died while waiting for {what}:\n" + "\n".join(
                self.log(n)[-1500:] for n in dead)
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def kill_all(self):
        for child in self.children.values():
            if child.poll() is None:
                child.kill()
            child.wait(30)


@pytest.mark.slow
def test_chief_and_two_workers_run_every_trial_once(tiny_dir, tmp_path, tmp_path_factory):
    runs = tmp_path / "runs"
    port = free_port()
    argv = ["--rung", "trick4", "--data", tiny_dir, "--out", str(runs), "--project", "p", "--limit-train", "54",
            "--batch-size", "54", "--max-trials", "3", "--epochs", "2", "--quiet", "--oracle", f"127.0.0.1:{port}"]
    folder = runs / "p"
    procs = Processes(tmp_path, subprocess_env(tmp_path_factory))
    try:
        chief = procs.start("chief", argv + ["--chief", "--status-every", "1"])
        procs.wait_until(lambda: "chief: serving" in procs.log("chief"), "the chief to serve")
        procs.start("w1", argv + ["--worker", "w1"])
        procs.start("w2", argv + ["--worker", "w2"])

        def w1_trial():
            found = re.findall(r"worker w1: trial \d+ \(trial_(\S+)\):", procs.log("w1"))
            return found[0] if found else None

        # Kill w1 after the first epoch of its trial, before the trial ends.
        procs.wait_until(lambda: w1_trial() and (folder / f"trial_{w1_trial()}" / "checkpoint.npz").exists(),
                         "w1's first epoch")
        procs.children["w1"].kill()
        procs.children["w1"].wait(30)
        killed, mark = w1_trial(), len(procs.log("chief"))
        # The chief says what it waits for.
        procs.wait_until(lambda: f"(trial_{killed}) on w1" in procs.log("chief")[mark:],
                         "the chief to name w1's trial", timeout=60)
        procs.start("w1-again", argv + ["--worker", "w1"])
        for name in ("chief", "w2", "w1-again"):
            procs.children[name].wait(240)
        assert chief.returncode == 0, procs.log("chief")[-3000:]
        assert procs.children["w2"].returncode == 0 and procs.children["w1-again"].returncode == 0
    finally:
        procs.kill_all()

    # Every trial ran once: three trials, each started once, w1's resumed where it stopped.
    starts = re.findall(r"worker (\S+): trial \d+ \(trial_(\S+)\):", procs.log("w1") + procs.log("w2"))
    resumed = re.findall(r"worker (\S+): trial \d+ \(trial_(\S+)\):", procs.log("w1-again"))
    assert resumed == [("w1", killed)]
    assert sorted(t for _, t in starts) == ["0", "1", "2"]
    with open(folder / "summary.json") as f:
        rows = json.load(f)["trials"]
    assert [(r["trial"], r["status"], r["epochs"]) for r in rows] == [(t, "COMPLETED", 2) for t in ("0", "1", "2")]
    with open(folder / f"trial_{killed}" / project.TRIAL_FILE) as f:
        assert json.load(f)["resumed_after_epoch"] == 1
    for t in ("0", "1", "2"):
        epochs = [line.split(",")[0] for line in (folder / f"trial_{t}" / "history.csv").read_text().splitlines()]
        assert epochs == ["epoch", "1", "2"]
    assert (folder / "best_config.json").exists()
    assert not [p for p in folder.rglob("checkpoint.npz")]
