"""What every kcifar command shares: its parser, its usage error, and the one
form of its error line, `<prog>: error: <message>` on stderr.

A mistake a user can make (a bad flag, a missing file, unreadable data) ends
a command with that one line and exit status 2. This module imports nothing
of kcifar, so that any command, the data's included, can stand on it.
"""

import argparse
import sys


class UsageError(Exception):
    """Bad input from the command line; the message is one line."""


class Parser(argparse.ArgumentParser):
    """argparse, refusing a flag in one line like every other mistake
    (`error`), not with its usage block."""

    def error(self, message):
        raise UsageError(message)


def error(prog, message, status=2):
    """Says `<prog>: error: <message>` on stderr, argparse's own form, and
    returns `status`, the command's exit status."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status
