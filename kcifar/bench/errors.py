"""The two ways a bench run ends early, each with a one-line message."""


class UsageError(Exception):
    """Bad input from the command line (exit status 2)."""


class BenchError(Exception):
    """A measurement that failed (exit status 1)."""
