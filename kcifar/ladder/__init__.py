"""The ladder runner: a range of rungs, each in a process of its own.

    python -m kcifar.ladder --run baseline..trick9 [--jobs N] [rung flags]

A tool around the lesson: it starts `python -m kcifar.experiments.<rung>`
children and follows their run folders; the rungs never import it.
"""
