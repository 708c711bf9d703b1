"""keras-tuner's own distributed mode: one chief oracle, workers over gRPC.

keras-tuner reads three environment variables when a tuner is made:
KERASTUNER_TUNER_ID ("chief" for the oracle, a unique ID per worker),
KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT. `--chief` and
`--worker ID` set them, and guard against the engine's traps:

- an ID containing "chief" makes a chief: such worker IDs are refused;
- a worker made with overwrite=True deletes the project folder: no tuner is
  ever made with it (only the chief's --overwrite deletes, before serving);
- gRPC binds its port with SO_REUSEPORT, so a second chief on a port in use
  starts silently and splits the workers: a plain socket probes it first;
- a worker waits up to an hour per call on a chief that is not there: here it
  gives up after --chief-timeout seconds with one line;
- a killed worker's trial stays assigned to its ID and the chief waits for it:
  the chief says which trial and worker it waits for, and restarting the
  worker under the same ID resumes that trial from its checkpoint;
- TensorFlow and JAX take most of a GPU's memory at start, so several
  processes on one GPU are told to allocate as they go.

Workers need the chief's `--out` folder on a shared filesystem.
"""

import os
import socket
import time

from kcifar.results import HISTORY_FILE
from kcifar.tune.project import trial_label

ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
CHIEF_ID = "chief"


class DistributedError(Exception):
    """A chief or worker that cannot start or go on; the message is one line."""


def parse_address(text):
    """(host, port) of "HOST:PORT" ("[::1]:8000" for IPv6)."""
    host, sep, port = (text or "").rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributedError(f"--oracle must be HOST:PORT with a port in 1..65535. Received: --oracle {text}")
    return host, int(port)


def check_worker_id(worker_id):
    if CHIEF_ID in worker_id:
        raise DistributedError(
            f"a worker ID must not contain {CHIEF_ID!r}: keras-tuner would make it a second chief. "
            f"Received: --worker {worker_id}"
        )


def ambient_settings():
    """keras-tuner's variables already in the environment (they would switch
    a plain search to distributed mode behind the user's back)."""
    return [name for name in (ENV_ID, ENV_IP, ENV_PORT) if name in os.environ]


def set_role(tuner_id, host, port):
    """Sets keras-tuner's variables; call before the tuner is made."""
    os.environ[ENV_ID] = tuner_id
    os.environ[ENV_IP] = host
    os.environ[ENV_PORT] = str(port)


def share_gpu_memory(chief=False):
    """Lets several processes share a GPU: TensorFlow and JAX allocate as they
    go instead of taking most of it at start. The chief trains nothing, so it
    stays off the GPU unless CUDA_VISIBLE_DEVICES says otherwise. Call before
    the backend is imported."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if chief:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def check_port_free(host, port):
    """Raises DistributedError when HOST:PORT cannot be bound by a plain
    socket (another chief or program holds it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise DistributedError(f"cannot resolve --oracle host {host!r} ({e.strerror})")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # SO_REUSEADDR only skips connections of a finished chief in TIME_WAIT;
        # a live listener still makes bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            raise DistributedError(
                f"cannot serve on {host}:{port}: {e.strerror or e} (is another chief running there?); "
                "pick another --oracle port"
            )


def wait_for_chief(host, port, timeout):
    """Waits until a gRPC server answers at HOST:PORT, at most `timeout` s."""
    import grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise DistributedError(
            f"no chief answered at {host}:{port} within {timeout:g} s; start it first "
            "(the same command with --chief) or check --oracle"
        )
    finally:
        channel.close()


def set_call_timeout(seconds):
    """Bounds every call a worker makes to the chief (keras-tuner: one hour)."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = seconds


def describe_rpc_error(error, host, port, timeout):
    import grpc

    code = error.code() if hasattr(error, "code") else None
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return (
            f"lost the chief at {host}:{port} (no answer within {timeout:g} s); restart it with the same "
            "command and --chief, then this worker with the same --worker ID: its trial resumes"
        )
    details = (error.details() if hasattr(error, "details") else str(error)) or ""
    first = details.splitlines()[0] if details else ""
    return f"the chief at {host}:{port} answered with an error: {code} {first}"


def _progress(project_dir, trial_id):
    """(epochs written, seconds since the trial last wrote) of a running trial."""
    path = os.path.join(project_dir, f"trial_{trial_id}", HISTORY_FILE)
    try:
        with open(path) as f:
            epochs = max(0, sum(1 for _ in f) - 1)
        return epochs, time.time() - os.path.getmtime(path)
    except OSError:
        return 0, None


def _duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def serve(oracle, host, port, project_dir, *, on_trial_end=None, status_every=60.0, grace=30.0,
          poll=0.5, log=print):
    """Serves `oracle` to the workers until every trial has ended.

    keras-tuner's own loop (oracle_chief.start_server) says nothing while it
    waits, and waits forever for a worker that died; this one reports each
    trial as it ends, says every `status_every` seconds which trials and
    workers it waits for, and once all trials have ended waits at most
    `grace` seconds for idle workers to be told to stop.

    Args:
        oracle: the chief's oracle.
        host: address to listen on (0.0.0.0 for every interface).
        port: port to listen on (check_port_free first).
        project_dir: the project folder (for the trials' progress).
        on_trial_end: fn(trial_id) after each trial ends (summary, report).
        status_every: seconds between status lines.
        grace: seconds to wait for idle workers after the last trial.
        poll: seconds between looks at the oracle.
        log: fn(line).
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine.oracle import LOCKS

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as e:
        raise DistributedError(f"cannot serve on {host}:{port} ({e}); pick another --oracle port")
    if not bound:
        raise DistributedError(f"cannot serve on {host}:{port}; pick another --oracle port")
    server.start()
    log(f"chief: serving {os.path.basename(project_dir)} on {host}:{port}; "
        f"start workers with the same command and --worker ID --oracle {host}:{port}")
    reported = set(oracle.end_order)
    since, idle_since, last_status = {}, None, time.monotonic()
    try:
        while True:
            time.sleep(poll)
            with LOCKS[oracle]:  # the oracle's own lock: gRPC threads change it
                ended = list(oracle.end_order)
                ongoing = {tuner_id: trial.trial_id for tuner_id, trial in oracle.ongoing_trials.items()}
                waiting = set(oracle.tuner_ids) - set(ongoing)
                stopping = servicer.stop_triggered
                total = len(oracle.trials)
                queued = bool(oracle._retry_queue)
            for trial_id in ended:
                if trial_id not in reported:
                    reported.add(trial_id)
                    if on_trial_end is not None:
                        on_trial_end(trial_id)
            now = time.monotonic()
            for trial_id in ongoing.values():
                since.setdefault(trial_id, now)
            # Random and Bayesian searches are done once max_trials have
            # ended, also when a restarted chief finds them so.
            done = stopping or bool(oracle.max_trials and total >= oracle.max_trials and not queued)
            if done and not ongoing:
                if not waiting:
                    break
                idle_since = idle_since or now
                if now - idle_since > grace:
                    log(f"chief: every trial has ended; stopping without word from idle worker(s) "
                        f"{', '.join(sorted(waiting))} after {grace:g} s")
                    break
            if now - last_status >= status_every:
                last_status = now
                log(_status(project_dir, ongoing, since, len(ended), total, done, now))
    finally:
        server.stop(grace=2).wait()


def _status(project_dir, ongoing, since, ended, total, stopping, now):
    if not ongoing:
        return (f"chief: {ended} trial(s) ended; no trial running: waiting for workers "
                "(the same command with --worker ID)")
    parts = []
    for tuner_id, trial_id in sorted(ongoing.items()):
        epochs, quiet = _progress(project_dir, trial_id)
        last = f", last epoch written {_duration(quiet)} ago" if quiet is not None else ""
        parts.append(f"{trial_label(trial_id)} on {tuner_id} ({_duration(now - since[trial_id])}, {epochs} epoch(s){last})")
    line = f"chief: {ended} of {total} trial(s) ended; waiting for " + "; ".join(parts)
    if stopping:
        line += (". No trial is left to hand out: if a worker died, restart it with the same "
                 "--worker ID and it resumes its trial")
    return line
