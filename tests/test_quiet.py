import importlib.util
import os
import subprocess
import sys

import pytest
from helpers import REPO

START_UP = ("oneDNN", "cuda drivers")


def run(code, backend="tensorflow"):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_what_the_block_writes_to_stderr_is_held_back_and_what_follows_is_not():
    result = run("import os, sys; from kcifar.quiet import stderr_held_back\n"
                 "with stderr_held_back():\n"
                 "    os.write(2, b'from C\\n'); print('from Python', file=sys.stderr)\n"
                 "print('after', file=sys.stderr); print('out')")
    assert result.returncode == 0 and result.stdout == "out\n"
    assert result.stderr == "after\n"


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow not installed")
def test_a_quiet_command_on_tensorflow_prints_no_start_up_lines():
    # The op after it is where TensorFlow would look for a GPU, and say when there is none.
    code = ("from kcifar import cli; cli.check_backend(quiet={}); import sys; print('still here', file=sys.stderr); "
            "import keras; keras.ops.sum(keras.ops.ones(2))")
    quiet, loud = run(code.format(True)), run(code.format(False))
    assert quiet.returncode == 0 and loud.returncode == 0, loud.stderr
    assert quiet.stderr == "still here\n"
    assert "still here\n" in loud.stderr  # whatever TensorFlow says on this machine, around it
