"""Figures and a Markdown page from the results files that runs write.

    python -m kcifar.report                 # every run under experiments/
    python -m kcifar.report runs/ --out /tmp/report

Modules: `runs` (reading and checking run folders and tuner summaries,
grouping runs that differ by seed alone), `table` (the Markdown), `figures`
(the PNGs). Nothing needs model.keras, which is never committed.
"""
