import subprocess
import sys

import pytest

from kcifar import cost
from kcifar.bench import flops
from kcifar.experiments import RUNGS, rung
from kcifar.models import build_network

CASES = [(name, {}) for name in RUNGS] + [("trick8", {"downsample": "stride"}), ("trick9", {"downsample": "stride"}),
                                          ("trick8", {"convs_per_stage": 3, "widths": (16, 24, 40, 72)})]


@pytest.mark.parametrize("name,changes", CASES)
def test_forward_flops_match_the_built_network(name, changes):
    config = rung(name).CONFIG.replace(**changes)
    total, _ = flops.model_flops(build_network(config, [0.0] * 3, [1.0] * 3))
    assert cost.forward_flops(config) == total


def test_training_flops_scale_with_images_and_epochs():
    config = rung("trick7").CONFIG
    one = cost.training_flops(config.replace(epochs=1), 1)
    assert one == cost.TRAIN_FACTOR * cost.forward_flops(config)
    assert cost.training_flops(config.replace(epochs=3), 10) == 30 * one


def test_rungs_are_ordered_costliest_first_ties_later_rung_first():
    configs = {name: rung(name).CONFIG for name in RUNGS}
    # 0-6: one network, whose later rungs add layers that operations do not count
    assert cost.costliest_first(configs, 45000) == ["trick9", "trick8", "trick7", *reversed(RUNGS[:7])]
    shuffled = {name: configs[name] for name in ("trick2", "baseline", "trick6", "trick9")}
    assert cost.costliest_first(shuffled) == ["trick9", "trick6", "trick2", "baseline"]
    assert cost.costliest_first({n: configs[n] for n in ("baseline", "trick9")}) == ["trick9", "baseline"]


def test_the_full_resolution_rung_9_costs_four_times_rung_7():
    # The rung table's claim: rung 9 (rung 8's full-resolution stages, widths doubled) ~4x rung 7.
    ratio = cost.forward_flops(rung("trick9").CONFIG) / cost.forward_flops(rung("trick7").CONFIG)
    assert 3.9 < ratio < 4.2


def test_costing_a_rung_imports_no_backend():
    code = ("import sys; from kcifar import cost; from kcifar.experiments import RUNGS, rung; "
            "[cost.training_flops(rung(n).CONFIG, 45000) for n in RUNGS]; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_readme_rung_table_states_each_rungs_cost():
    import os
    import re

    from helpers import REPO

    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    stated = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| \d \| `(\w+)` \|.*\| (\d+) \|$", readme, re.M)}
    assert stated == {name: round(cost.forward_flops(rung(name).CONFIG) / 1e6) for name in RUNGS}
