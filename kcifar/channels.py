"""Where the channels sit in a network's feature maps: a matter of a
backend's speed, never of what the network computes.

A ladder network takes NHWC images and gives the same outputs from the same
weights in either layout (its kernels are HWIO in both). Inside it the
feature maps are channels_last, except on torch: there Keras's channels_last
convolutions and pooling copy every feature map to NCHW and back (a quarter
of a rung 0 step on CPU; `python -m kcifar.bench --profile` shows it), while
the input, permuted once to NCHW, keeps NHWC memory ("channels_last" in
torch's words) all the way through, the layout oneDNN and cuDNN are fastest
with. TensorFlow's CPU kernels are NHWC, and channels_first measured slower
on TensorFlow and JAX.
"""

import keras
from keras import layers

FORMATS = ("channels_last", "channels_first")


def preferred():
    """The feature-map layout that trains fastest on the current backend."""
    return "channels_first" if keras.backend.backend() == "torch" else "channels_last"


def checked(data_format=None):
    """`data_format`, or `preferred()` for None; ValueError for any other value."""
    data_format = data_format or preferred()
    if data_format not in FORMATS:
        raise ValueError(
            f"data_format must be channels_last or channels_first. Received: data_format={data_format!r}"
        )
    return data_format


def laid_out(images, data_format):
    """NHWC `images` (a Keras tensor) in `data_format`'s layout: permuted
    once, by a layer named "channels_first", where that is the layout."""
    if data_format == "channels_first":
        return layers.Permute((3, 1, 2), name="channels_first")(images)
    return images


def axis(data_format):
    """The channel axis of a feature map in `data_format`."""
    return 1 if data_format == "channels_first" else -1
