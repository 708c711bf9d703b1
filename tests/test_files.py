import os

import pytest

from kcifar import files


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "model.keras"
    with files.atomic_path(str(target)) as tmp:
        assert tmp.endswith(".keras") and tmp != str(target)  # Keras needs the suffix
        open(tmp, "w").write("whole")
    assert target.read_text() == "whole" and os.listdir(tmp_path) == ["model.keras"]


def test_atomic_path_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(str(target)) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]


def test_json_and_csv_round_trip(tmp_path):
    files.write_json(tmp_path / "a.json", {"b": 1, "a": [1.5]})
    assert files.read_json(tmp_path / "a.json") == {"a": [1.5], "b": 1}
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]
    files.write_csv(tmp_path / "h.csv", rows, ["epoch", "loss"])
    assert files.read_csv(tmp_path / "h.csv") == [{"epoch": "1", "loss": "0.5"}, {"epoch": "2", "loss": "0.25"}]
