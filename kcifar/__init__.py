"""kcifar: the CIFAR-10 generalization ladder in Keras 3.

Modules: `data` (CIFAR-10 from any source), `config` (one frozen Config),
`models` (the networks), `augment` and `pipeline` (training batches),
`train` (a resumable run into a run folder), `experiments` (one module per
rung). The backend is chosen by `KERAS_BACKEND`, never here.
"""

__version__ = "0.1.0"
