"""TensorFlow's start-up lines, held back where a command is asked to be quiet.

TensorFlow writes "oneDNN custom operations are on" and "Could not find cuda
drivers" from C++ as it is imported, before its logging starts, where no log
level (TF_CPP_MIN_LOG_LEVEL included) reaches them. Only the file descriptor
they are written to can hold them back.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def stderr_held_back():
    """Within the block, what this process writes to stderr (file descriptor
    2, where C++ libraries write too) goes to the null device."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
