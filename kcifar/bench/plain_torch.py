"""Rung 0's network as a hand-written PyTorch step: torch.nn + torch.optim.Adam.

Two layouts: "nchw" (PyTorch's default contiguous layout) and
"channels_last" (the same NCHW tensors stored NHWC, which oneDNN's CPU
convolutions and cuDNN's tensor cores prefer). A uint8 NHWC batch viewed as
NCHW is already channels_last, so that layout needs no copy of the input.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kcifar.bench.plain import ADAM, init_params

LAYOUTS = ("nchw", "channels_last")


class Net(nn.Module):
    """Normalize, conv stages with max pooling, dense + ReLU, logits."""

    def __init__(self, config, mean, std, seed):
        super().__init__()
        self.register_buffer("mean", torch.tensor(np.asarray(mean), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(1 / np.asarray(std), dtype=torch.float32).view(1, 3, 1, 1))
        params = init_params(config, seed)
        layers, convs = [], iter(params[:-2])
        for _ in config.widths:
            for _ in range(config.convs_per_stage):
                kernel, bias = next(convs)
                conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
                    conv.bias.copy_(torch.from_numpy(bias))
                layers += [conv, nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        (hidden, hidden_bias), (logits, logits_bias) = params[-2:]
        self.hidden = nn.Linear(*hidden.shape)
        self.logits = nn.Linear(*logits.shape)
        with torch.no_grad():
            for layer, kernel, bias in ((self.hidden, hidden, hidden_bias), (self.logits, logits, logits_bias)):
                layer.weight.copy_(torch.from_numpy(kernel.T))
                layer.bias.copy_(torch.from_numpy(bias))

    def forward(self, x):
        x = (x - self.mean) * self.scale
        # Flattened in (height, width, channel) order, as Keras flattens NHWC
        # maps, so that the same weights give the same function.
        x = self.features(x).permute(0, 2, 3, 1).flatten(1)
        return self.logits(F.relu(self.hidden(x)))


class Step:
    """One training step on a uint8 NHWC batch, in the given layout."""

    def __init__(self, config, mean, std, seed, layout):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.channels_last = layout == "channels_last"
        self.net = Net(config, mean, std, seed).to(self.device)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=config.learning_rate,
            betas=(ADAM["beta_1"], ADAM["beta_2"]), eps=ADAM["epsilon"],
        )
        self.iterations = 0
        self.net.train()

    def images(self, x):
        """uint8 NHWC numpy -> float NCHW tensor in the step's layout."""
        x = torch.from_numpy(x).to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        return (x if self.channels_last else x.contiguous()).float()

    def __call__(self, x, y):
        y = torch.from_numpy(y).to(self.device, non_blocking=True).long()
        loss = F.cross_entropy(self.net(self.images(x)), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # Keras's Adam adds epsilon to sqrt(v), torch's to the bias-corrected
        # sqrt(v) / sqrt(1 - beta_2^t): the same update needs torch's epsilon
        # over sqrt(1 - beta_2^t), 32x at the first step (left at epsilon, the
        # first steps of rung 0 differ by up to 0.6 lr on small gradients).
        self.iterations += 1
        self.optimizer.param_groups[0]["eps"] = ADAM["epsilon"] / (1 - ADAM["beta_2"] ** self.iterations) ** 0.5
        self.optimizer.step()
        return loss.detach()

    def sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()


def steps(config, mean, std, seed):
    """The hand-written steps by name, one per layout."""
    return {f"torch_{layout}": Step(config, mean, std, seed, layout) for layout in LAYOUTS}


def count_params(step):
    return sum(p.numel() for p in step.net.parameters())


def logits(step, x):
    """The network's logits for uint8 NHWC images, as NumPy."""
    with torch.no_grad():
        return step.net(step.images(x)).cpu().numpy()
