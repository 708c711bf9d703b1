"""Figures and a Markdown page from the results files that runs write.

    python -m kcifar.report                  # every run under experiments/, into experiments/
    python -m kcifar.report runs/*           # those runs, into runs/report/
    python -m kcifar.report runs/ --out my-report

One table and one ladder chart per training budget, the lecture's figures
beside the full budget's. A step beyond the ladder (kcifar.experiments.BEYOND)
comes after the rungs, under its name, with no lecture figure.

Modules: `runs` (reading and checking run folders and tuner summaries,
grouping runs that differ by seed alone), `table` (the Markdown), `figures`
(the PNGs). Nothing needs model.keras, which is never committed.
"""
