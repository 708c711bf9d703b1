import keras
import pytest

from kcifar import runtime


def test_describe_names_backend_versions_and_device():
    info = runtime.describe()
    assert info["backend"] == keras.backend.backend()
    assert info["keras_version"] == keras.__version__
    assert info["backend_version"] not in ("", "unknown")
    assert info["device"].startswith(("cpu:", "cuda:", "gpu:"))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float32"])
def test_set_precision(policy):
    runtime.set_precision(policy)
    assert keras.config.dtype_policy().name == policy
    runtime.set_precision("float32")


def test_unknown_precision():
    with pytest.raises(ValueError, match="Received: precision='float8'"):
        runtime.set_precision("float8")
