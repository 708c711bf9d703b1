"""What one Keras training step costs the host on the torch backend, against
the same step written in plain PyTorch: a minimal script for an upstream
report (keras-team/keras), needing only keras, torch and numpy.

    KERAS_BACKEND=torch python keras_torch_step.py [--batch 32] [--width 1] [--steps 20] [--device cpu|cuda]

The network is a small CIFAR-10 CNN of the kind many Keras users train: a
per-image random flip, four stages of two 3x3 convolutions with batch
normalization and ReLU, 2x2 max pooling and dropout, then two dense layers;
`--width 4` makes it four times as wide. For each of Keras's step
(`train_on_batch`, eager and with `jit_compile=True`) and the plain torch
step it prints, per step: the host's wall time, the aten operations
dispatched, and, on CUDA, kernel launches, device-to-host copies and stream
synchronizations (torch's profiler); for Keras, also the calls into
`keras.src.backend.torch.random.torch_seed_generator` (each reads its seed
state with int(): a device-to-host read when that state is on the GPU), and
the graph breaks that torch.compile meets in `model.train_step`
(`torch._dynamo.explain`).
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from keras import layers  # noqa: E402


def keras_model(width, jit):
    inputs = keras.Input((32, 32, 3))
    x = layers.RandomFlip("horizontal", seed=1)(inputs)
    for i, w in enumerate((32, 64, 128, 256)):
        for _ in range(2):
            x = layers.Conv2D(w * width, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.3, seed=10 + i)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", jit_compile=jit)
    return model


class TorchNet(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        blocks, c = [], 3
        for w in (32, 64, 128, 256):
            for _ in range(2):
                blocks += [torch.nn.Conv2d(c, w * width, 3, padding=1, bias=False),
                           torch.nn.BatchNorm2d(w * width), torch.nn.ReLU()]
                c = w * width
            blocks += [torch.nn.MaxPool2d(2), torch.nn.Dropout(0.3)]
        self.features = torch.nn.Sequential(*blocks)
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c * 4, 512), torch.nn.ReLU(),
                                        torch.nn.Linear(512, 10))

    def forward(self, x):
        flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5  # per image, as RandomFlip
        x = torch.where(flip, x.flip(3), x)
        return self.head(self.features(x))


def plain_step(width, device):
    net = TorchNet(width).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return step


def counted(step, steps, device):
    """Per step: host wall ms, aten ops, CUDA launches, copies, syncs."""
    from torch.profiler import ProfilerActivity, profile

    step()
    step()  # warm-up
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    host_ms = (time.perf_counter() - start) / steps * 1000  # the host's time, before waiting for the device
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as p:
        for _ in range(steps):
            step()
        sync()
    counts = {}
    for e in p.key_averages():
        counts[e.key] = counts.get(e.key, 0) + e.count
    per = lambda keys: round(sum(n for k, n in counts.items() if keys(k)) / steps, 1)  # noqa: E731
    return {
        "host_ms": round(host_ms, 2),
        "aten_ops": per(lambda k: k.startswith("aten::")),
        "item_calls": per(lambda k: k in ("aten::item", "aten::_local_scalar_dense")),
        "kernel_launches": per(lambda k: k in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC")),
        "memcpy": per(lambda k: k.startswith("cudaMemcpy")),
        "stream_syncs": per(lambda k: k in ("cudaStreamSynchronize", "cudaDeviceSynchronize")),
    }


def seed_generator_calls(model, x, y):
    """Calls into Keras's torch seed generator in one train_on_batch."""
    import keras.src.backend.torch.random as torch_random

    original, calls = torch_random.torch_seed_generator, []

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    torch_random.torch_seed_generator = counting
    try:
        model.train_on_batch(x, y)
    finally:
        torch_random.torch_seed_generator = original
    return len(calls)


def graph_breaks(model, x, y):
    try:
        explained = torch._dynamo.explain(model.train_step)((x, y))
    except Exception as e:  # a failure to trace is itself the finding
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    reasons = sorted({str(getattr(b, "reason", b)).splitlines()[0][:160] for b in explained.break_reasons})
    return {"graphs": explained.graph_count, "graph_breaks": explained.graph_break_count, "reasons": reasons}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=int, default=1)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x_np = rng.uniform(0, 1, (args.batch, 32, 32, 3)).astype("float32")
    y_np = rng.integers(0, 10, args.batch)
    out = {"keras": keras.__version__, "torch": torch.__version__, "device": args.device, "batch": args.batch,
           "width": args.width}
    with torch.device(args.device):
        for name, jit in (("keras eager", False), ("keras jit_compile=True", True)):
            keras.utils.set_random_seed(0)
            model = keras_model(args.width, jit)
            try:
                out[name] = counted(lambda: model.train_on_batch(x_np, y_np), args.steps, args.device)
                out[name]["seed_generator_calls"] = seed_generator_calls(model, x_np, y_np)
            except Exception as e:
                out[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        model = keras_model(args.width, False)
        x_t, y_t = torch.as_tensor(x_np), torch.as_tensor(y_np)
        out["keras train_step under torch._dynamo.explain"] = graph_breaks(model, x_t, y_t)
    x = torch.as_tensor(x_np, device=args.device).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    y = torch.as_tensor(y_np, device=args.device)
    step = plain_step(args.width, args.device)
    out["plain torch"] = counted(lambda: step(x, y), args.steps, args.device)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
