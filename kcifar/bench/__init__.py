"""Training speed: the project's Keras path against hand-written steps.

    python -m kcifar.bench                  # rung 0, installed backends (< 5 min on 2 CPU cores)
    python -m kcifar.bench --backends torch --threads 1 --profile   # steadier on a busy machine
    python -m kcifar.bench --full           # + rung 4 vs 5, rung 7 with/without augmentation, peak memory
    python -m kcifar.bench --jit            # + the Keras step with jit_compile=True (not JAX: always)
    python -m kcifar.bench --patch change.diff   # the same, with a proposed change applied
    python -m kcifar.bench --ladder --jobs 2     # every rung's full run and the ladder's, projected

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

`--ladder` (`ladder`, its children `ladder_worker`) asks instead how long
the ladder takes here. For each backend and rung (`--rungs`, default all
ten), N children (`--jobs N`, default 1) start at once, with
`kcifar.ladder.parallel`'s environment and CPU share, and train the rung as
`kcifar.train` does (`compile_model`, `TrainBatches`, `fit`, augmentation
included) on `--data` or $KCIFAR_DATA (else synthetic images, on CIFAR-10's
split sizes). Each child times its start-up (process start to compiled
model), its first, compiling step, the steady step over `--windows` x
`--steps` steps (default 1 x 1) and validation on `--steps` batches. A
rung's full schedule is projected from these (start-up + first step +
epochs x (steps per epoch x step + validation images x time per image) +
test images x time per image), under the concurrency it was measured at;
the ladder's wall time for N is the makespan of the rungs, costliest first
by `kcifar.cost`, each in the slot that frees first (the sum for N = 1).
The augmentation block alone is timed once per backend (the best of
`--windows` windows); `--patch` and `--devices` (GPUs, round robin by slot)
apply too. The table is printed and written to
experiments/bench/ladder-j<N>-b<batch>-<precision>-<date>.json.
"""
