"""Hyperparameter search of a rung's dropout rate and L2 lambda with keras-tuner.

    python -m kcifar.tune --rung trick4 --tuner random --max-trials 20 --epochs 10

Modules: `space` (the ranges searched, and which a rung can use),
`hypermodel` (the rung's model as a keras-tuner HyperModel), `search` (the oracles and the tuner that runs one seeded,
resumable trial per folder), `project` (the project folder and its
settings), `summary` (the table, plot and best configuration),
`distributed` (keras-tuner's chief and workers over gRPC). The backend is
chosen by `KERAS_BACKEND`, never here.
"""
