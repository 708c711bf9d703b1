"""Training speed: the project's Keras path against hand-written steps.

    python -m kcifar.bench                  # rung 0, installed backends (< 5 min on 2 CPU cores)
    python -m kcifar.bench --backends torch --threads 1 --profile   # steadier on a busy machine
    python -m kcifar.bench --full           # + rung 4 vs 5, rung 7 with/without augmentation, peak memory
    python -m kcifar.bench --jit            # + the Keras step with jit_compile=True (not JAX: always)
    python -m kcifar.bench --patch change.diff   # the same, with a proposed change applied

For each backend a child process (KERAS_BACKEND set for it) measures, in
turns and after a warm-up, the steady training throughput of:

- the hand-written steps of the same network (`plain_torch`, `plain_tf`,
  `plain_jax`: same layers, shapes, He init, Adam 1e-3), the best of them
  being the reference;
- "keras_step": the project's compiled model (`kcifar.train.compile_model`)
  trained by `fit` on a ready batch: the train step and the fit loop;
- "keras_fit": the same `fit` on `kcifar.pipeline.TrainBatches`, as
  `kcifar.train.train` runs it (the model's augmentation block included);
- "feed": `TrainBatches` alone, the data work;
- with `--full`, for a rung with augmentation, "keras_fit_no_augmentation":
  the same network without its augmentation block, so the block's share of
  a step is measured in the same spell.

Every run also times the augmentation block of rung 7 alone
(`augment_speed`), compiled as training runs it, at batch 128 and 512, on
the device the backend uses: the figure to read on a GPU, where the block
must keep up with the network.
- with `--jit`, "keras_jit_step": keras_step compiled with `jit_compile=True`
  (XLA on TensorFlow, `torch.compile` on torch), building it and its first
  (compiling) step timed apart.

Images/s is the median of the timed windows; a ratio of two paths is the
median of their per-round ratios (measured in the same spell, so a busy
machine slows both); each is also given per CPU-second (process CPU time),
which other processes on a shared machine disturb less. FLOPs per image
come from the model's layers (`flops`), the ceiling from a 2048x2048
float32 matmul (`matmul`). `--profile` adds where the time goes
(`profiling`); `--patch` measures the package with a diff applied to a
copy, so a proposed change is measured before anyone applies it. The table
is printed and written, with the machine, load and versions, to
experiments/bench/<rung>-b<batch>-<precision>-<date>.json.
"""
