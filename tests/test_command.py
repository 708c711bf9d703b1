"""The command-line kit every command stands on: a flag refused in one line,
the one error form, and nothing of kcifar imported with it."""

import subprocess
import sys

import pytest

from kcifar.command import Parser, UsageError, error


def test_a_bad_flag_is_a_usage_error_of_one_line_not_argparses_usage_block(capsys):
    p = Parser(prog="python -m kcifar.something")
    p.add_argument("--count", type=int)
    with pytest.raises(UsageError) as refused:
        p.parse_args(["--count", "many"])
    assert str(refused.value) == "argument --count: invalid int value: 'many'"
    assert capsys.readouterr() == ("", "")


def test_the_error_line_is_argparses_form_on_stderr_and_gives_the_status(capsys):
    assert error("python -m kcifar.something", UsageError("no such file"), 2) == 2
    assert error("python -m kcifar.something", "stopped", status=1) == 1
    assert capsys.readouterr() == ("", "python -m kcifar.something: error: no such file\n"
                                       "python -m kcifar.something: error: stopped\n")


def test_the_kit_and_the_data_command_import_no_higher_kcifar_module():
    code = ("import sys, kcifar.command; first = sorted(m for m in sys.modules if m.startswith('kcifar.'))\n"
            "import kcifar.data.__main__\n"
            "print(first, 'kcifar.cli' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["['kcifar.command']", "False"], done.stderr[-2000:]
