import numpy as np

from kcifar.pipeline import TrainBatches


def make(seed=0, n=50, batch_size=16):
    x = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
    return TrainBatches(x, np.arange(n) % 10, batch_size, seed)


def epoch_labels(batches):
    return np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(len(batches))])


def test_every_image_once_per_epoch_shuffled():
    batches = make()
    assert len(batches) == 4
    seen = epoch_labels(batches)
    assert sorted(seen) == list(range(50)) and list(seen) != list(range(50))


def test_order_is_keyed_by_seed_and_epoch():
    a, b, c = make(), make(), make(seed=1)
    b.epoch = 1
    assert list(epoch_labels(a)) == list(epoch_labels(make()))
    assert list(epoch_labels(a)) != list(epoch_labels(b))
    assert list(epoch_labels(a)) != list(epoch_labels(c))


def test_a_batch_does_not_depend_on_what_was_fetched_before():
    # After a resume, batch 3 of epoch 2 must be what it was in one long run.
    fresh, used = make(), make()
    for epoch in range(3):
        used.epoch = epoch
        for i in range(len(used)):
            used[i]
    fresh.epoch = used.epoch = 2
    np.testing.assert_array_equal(fresh[3][0], used[3][0])


def test_images_stay_uint8_unchanged_and_labels_follow():
    # The pipeline only shuffles and slices: augmentation is the model's.
    batches = make()
    x, y = batches[0]
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, batches.x[batches.order()[:16]])
    np.testing.assert_array_equal(x[:, 0, 0, 0] % 10, y)
