"""The two ways a bench run ends early, each with a one-line message: bad
input (`kcifar.command.UsageError`, exit status 2) and a failed measurement."""


class BenchError(Exception):
    """A measurement that failed (exit status 1)."""
