"""The feature maps' layout: the backend's fastest by default, one permute
into channels_first, and nothing else accepted."""

import keras
import numpy as np
import pytest

from kcifar import channels


def test_channels_first_on_torch_only():
    expected = "channels_first" if keras.backend.backend() == "torch" else "channels_last"
    assert channels.preferred() == expected
    assert channels.checked(None) == expected
    assert channels.checked("channels_last") == "channels_last"
    with pytest.raises(ValueError, match=r"Received: data_format='nhwc'"):
        channels.checked("nhwc")


def test_channels_first_is_one_permute_of_nhwc_images():
    inputs = keras.Input((32, 32, 3))
    assert channels.laid_out(inputs, "channels_last") is inputs
    model = keras.Model(inputs, channels.laid_out(inputs, "channels_first"))
    assert [layer.name for layer in model.layers[1:]] == ["channels_first"]
    x = np.arange(2 * 32 * 32 * 3, dtype="float32").reshape(2, 32, 32, 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), x.transpose(0, 3, 1, 2))
    assert (channels.axis("channels_first"), channels.axis("channels_last")) == (1, -1)
