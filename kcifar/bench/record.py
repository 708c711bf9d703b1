"""What every results file of the bench says of its run: the command as
typed (no path of this machine), the machine and how busy it was, and the
folder it is written to."""

import datetime
import importlib.metadata
import os
import platform

import psutil

from kcifar.command import UsageError
from kcifar.data.loader import source_name
from kcifar.machine import code_version, cpu

PROG = "python -m kcifar.bench"
ENVIRONMENT = ("KERAS_", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "XLA_", "JAX_", "TORCH", "CUDA_", "TF_CPP_",
               "TF_NUM_", "TF_ENABLE_", "TF_XLA_", "TF_GPU_", "TF_FORCE_", "TF_DETERMINISTIC")


def machine():
    """What the figures were measured on, and how busy it was at the start."""
    return {
        "cpu": cpu()["model"],
        "cores": os.cpu_count(),
        "cpu_bf16": {k: cpu()[k] for k in ("amx", "avx512_bf16")},
        # psutil's: Windows has no os.getloadavg (psutil averages from its first call there, zeros at first).
        "load_average_at_start": [round(x, 2) for x in psutil.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code": code_version(),  # the base commit: --patch records its changes beside it
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": importlib.metadata.version("numpy"),
        "keras": importlib.metadata.version("keras"),
        # Thread and compiler settings change the figures as much as code does;
        # a folder among them (a compilation cache, an XLA dump) by its name.
        "environment": {k: " ".join(map(recorded_arg, v.split(" "))) for k, v in sorted(os.environ.items())
                        if k.startswith(ENVIRONMENT)},
    }


def recorded_arg(arg):
    """A command-line word as the results file keeps it: an absolute path
    (alone or after "--flag=") becomes its file name."""
    flag, equals, value = arg.partition("=") if arg.startswith("--") and "=" in arg else ("", "", arg)
    return flag + equals + source_name(value) if os.path.isabs(value) else arg


def command(argv):
    """The command line as the results file records it."""
    return " ".join([PROG, *map(recorded_arg, argv)])


def out_folder(out):
    """Makes `out` (--out) if need be; UsageError when it cannot be written."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot create ({e.strerror or e})")
    if not os.access(out, os.W_OK):
        raise UsageError(f"--out {out}: not writable")


def stamp():
    """The local date and time in results file names."""
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
