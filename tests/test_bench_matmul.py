import keras

from kcifar.bench import matmul


def test_rates_are_positive_and_finite():
    assert 0 < matmul.numpy_rate(n=64, repeats=1) < 1e6
    assert 0 < matmul.backend_rate(keras.backend.backend(), n=64, repeats=1) < 1e6


def test_unknown_backend_has_no_rate():
    assert matmul.backend_rate("mxnet", n=8) is None


def test_best_seconds_keeps_the_fastest_call():
    calls = []
    seconds = matmul.best_seconds(lambda: calls.append(1), repeats=3)
    assert len(calls) == 4 and 0 <= seconds < 0.1  # one warm-up call, then three timed
