"""python -m kcifar.experiments: the rungs, each with its one change.

Train one with `python -m kcifar.experiments.<rung>`, a range with
`python -m kcifar.ladder --run FIRST..LAST`.
"""

import argparse
import sys

from kcifar import cost
from kcifar.command import Parser, UsageError, error
from kcifar.experiments import BEYOND, RUNGS, rung, step


def main(argv=None):
    prog = "python -m kcifar.experiments"
    try:
        Parser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
                   ).parse_args(argv)
    except UsageError as e:
        return error(prog, f"{e}; train a range with python -m kcifar.ladder --run FIRST..LAST")
    print(f"{'module':9} rung  lecture  forward MFLOP/image  change")  # the lecture's figures are approximate
    for name in RUNGS:
        module = rung(name)
        mflop = cost.forward_flops(module.CONFIG) / 1e6
        lecture = "-" if module.LECTURE is None else f"~{100 * module.LECTURE:g}%"
        print(f"{name:9} {module.CONFIG.rung:4}  {lecture:>7}  {mflop:18.0f}  {module.CONFIG.change}")
    print("beyond the ladder (a backbone's cost is counted from the built model: "
          "python -m kcifar.bench --ladder --rungs NAME):")
    for name in BEYOND:
        module = step(name)
        print(f"{name:10} {module.CONFIG.rung:3}  {'-':>7}  {'-':>18}  {module.CONFIG.change}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
