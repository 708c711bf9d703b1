import numpy as np
import pytest

from kcifar.data import split
from kcifar.data.split import channel_stats, checksum, default_val_size, validation_split


@pytest.mark.parametrize("n, size", [(50000, 5000), (1000, 100), (137, 13)])
def test_split_is_stratified_disjoint_and_fixed(n, size):
    labels = np.arange(n) % 10
    train, val = validation_split(labels, size, seed=0)
    assert len(val) == size and len(train) == n - size
    assert not set(train) & set(val)
    counts = np.bincount(labels[val], minlength=10)
    assert counts.max() - counts.min() <= 1  # every class gives its share
    again_train, again_val = validation_split(labels, size, seed=0)
    np.testing.assert_array_equal(val, again_val)
    np.testing.assert_array_equal(train, again_train)
    assert not np.array_equal(val, validation_split(labels, size, seed=1)[1])


@pytest.mark.parametrize("size", [0, 100, -1])
def test_split_size_must_fit(size):
    with pytest.raises(ValueError, match=f"Received: size={size}"):
        validation_split(np.arange(100) % 10, size)


@pytest.mark.parametrize("n, want", [(50000, 5000), (60000, 5000), (1000, 100), (120, 12)])
def test_default_val_size(n, want):
    assert default_val_size(n) == want


def test_channel_stats_match_numpy():
    x = np.random.default_rng(0).integers(0, 256, (12001, 32, 32, 3), dtype=np.uint8)
    mean, std = channel_stats(x)
    np.testing.assert_allclose(mean, x.reshape(-1, 3).mean(0), rtol=1e-10)
    np.testing.assert_allclose(std, x.reshape(-1, 3).std(0), rtol=1e-7)


def test_checksum_sees_every_byte():
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    b[3, 3] = 1
    assert checksum(a) != checksum(b) and len(checksum(a)) == 16


def test_train_sample_is_fixed_stratified_and_its_own():
    labels = np.repeat(np.arange(10), 4500)
    sample = split.train_sample(labels)
    assert len(sample) == split.TRAIN_SAMPLE_SIZE and np.array_equal(sample, np.sort(sample))
    assert np.bincount(labels[sample]).tolist() == [500] * 10
    assert np.array_equal(sample, split.train_sample(labels))  # the same in every run
    # Its own seed: not the images the validation split would draw.
    assert not np.array_equal(sample, split.validation_split(labels, split.TRAIN_SAMPLE_SIZE)[1])


def test_train_sample_of_a_small_split_is_all_of_it():
    labels = np.repeat(np.arange(10), 500)
    assert np.array_equal(split.train_sample(labels), np.arange(5000))
