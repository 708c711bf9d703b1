"""kcifar: the CIFAR-10 generalization ladder in Keras 3.

The lesson is the core, read from a rung down: `experiments` (one module per
rung), `config`, `models` and `augment` (the network), `train` and
`pipeline` (its training; `run_folder` keeps its files), `cli` (the command)
and `data`, with the small modules they stand on (docs/layout.md lists
them). The tools around it (`ladder`, `tune`, `report`, `bench`, `evaluate`,
`predict`) import the core and are never imported by it; docs/layout.md maps
every module. The backend is chosen by `KERAS_BACKEND`, never here.
"""

__version__ = "0.1.0"
