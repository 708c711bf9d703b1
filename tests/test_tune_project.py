"""kcifar.tune.project: a search folder is continued only by the same search,
and nothing is deleted without --overwrite."""

import json
import os
import shutil
import subprocess

import pytest

from helpers import folder_contents
from kcifar.tune import project

SETTINGS = {"rung": "trick4", "epochs": 2, "seed": 0, "widths": (32, 64), "max_trials": 2}


def test_new_project_is_written_then_continued(tmp_path):
    folder = str(tmp_path / "p")
    assert project.prepare(folder, SETTINGS) is False
    saved = json.load(open(os.path.join(folder, project.SETTINGS_FILE)))
    assert saved["format"] == project.FORMAT
    assert saved["keras_tuner"] == project.keras_tuner_version()
    assert saved["settings"]["widths"] == [32, 64]
    assert project.prepare(folder, dict(SETTINGS)) is True  # tuples compare as they read back


def test_more_trials_extend_a_search(tmp_path):
    folder = str(tmp_path / "p")
    project.prepare(folder, SETTINGS)
    assert project.prepare(folder, {**SETTINGS, "max_trials": 5}) is True
    assert project.read_settings(folder)["max_trials"] == 5


@pytest.mark.parametrize("change, named", [
    ({"epochs": 3}, "epochs"),
    ({"seed": 1, "rung": "trick5"}, "rung, seed"),
    ({"widths": (32, 32)}, "widths"),
])
def test_other_settings_are_refused_and_nothing_is_touched(tmp_path, change, named):
    folder = str(tmp_path / "p")
    project.prepare(folder, SETTINGS)
    before = folder_contents(folder)
    with pytest.raises(project.SearchError, match=f"other settings \\({named} differ\\)"):
        project.prepare(folder, {**SETTINGS, **change})
    assert folder_contents(folder) == before


def test_a_search_that_recorded_the_data_by_its_path_is_continued(tmp_path):
    old = {**SETTINGS, "data": {"description": "image-folder at /any/where/c10.tar.xz (JPEG mirror: lossy pixels), "
                                               "sha256:c155818c7600a777", "train": 5000}}
    new = {**SETTINGS, "data": {"description": "image-folder at c10.tar.xz (JPEG mirror: lossy pixels), "
                                               "sha256:c155818c7600a777", "train": 5000}}
    folder = str(tmp_path / "p")
    project.prepare(folder, old)
    assert project.prepare(folder, new) is True
    other = {**new, "data": {**new["data"], "description": new["data"]["description"].replace("c10", "d10")}}
    with pytest.raises(project.SearchError, match="data differ"):
        project.prepare(folder, other)


def test_a_search_on_pngs_marked_lossy_by_an_older_version_is_continued(tmp_path):
    marked = {**SETTINGS, "data": {"description": "image-folder at pngs (JPEG mirror: lossy pixels), sha256:0123abcd",
                                   "train": 5000}}
    folder = str(tmp_path / "p")
    project.prepare(folder, marked)
    unmarked = {**marked, "data": {**marked["data"], "description": "image-folder at pngs, sha256:0123abcd"}}
    assert project.prepare(folder, unmarked) is True


@pytest.mark.parametrize("content, message", [
    ({"format": 99, "keras_tuner": "1.4.8", "settings": {}}, "format 99"),
    ({"format": 1, "keras_tuner": "0.9.0", "settings": SETTINGS}, "keras-tuner 0.9.0"),
    ([1, 2], "format None"),
    ("not json", "unreadable"),
])
def test_incompatible_folder_is_refused_and_kept(tmp_path, content, message):
    folder = tmp_path / "p"
    (folder / "trial_0").mkdir(parents=True)
    (folder / "trial_0" / "trial.json").write_text("{}")
    text = content if isinstance(content, str) else json.dumps(content)
    (folder / project.SETTINGS_FILE).write_text(text)
    before = folder_contents(str(folder))
    with pytest.raises(project.SearchError, match=message):
        project.prepare(str(folder), SETTINGS)
    assert folder_contents(str(folder)) == before


def test_foreign_folder_is_refused_even_with_overwrite(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(project.SearchError, match="not a kcifar.tune project"):
        project.prepare(str(folder), SETTINGS)
    with pytest.raises(project.SearchError, match="deletes only those"):
        project.prepare(str(folder), SETTINGS, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("marker", [project.SETTINGS_FILE, "oracle.json"])
def test_overwrite_deletes_a_tuner_project(tmp_path, marker):
    folder = tmp_path / "p"
    (folder / "trial_3").mkdir(parents=True)
    (folder / marker).write_text(json.dumps({"format": 99}))
    assert project.prepare(str(folder), SETTINGS, overwrite=True) is False
    assert sorted(os.listdir(folder)) == [project.SETTINGS_FILE]


REFUSALS = [  # (what the folder holds, settings of the new command): each refused
    ({"format": 1, "keras_tuner": project.keras_tuner_version(), "settings": SETTINGS}, {**SETTINGS, "epochs": 3}),
    ({"format": 99, "settings": {}}, SETTINGS),
    ({"format": 1, "keras_tuner": "0.9.0", "settings": SETTINGS}, SETTINGS),
    ("not json", SETTINGS),
]


def _search(folder, content):
    (folder / "trial_0").mkdir(parents=True)
    (folder / "summary.csv").write_text("trial\n0\n")
    (folder / project.SETTINGS_FILE).write_text(content if isinstance(content, str) else json.dumps(content))


@pytest.mark.parametrize("content, settings", REFUSALS)
def test_a_refused_search_names_overwrite_with_what_it_deletes(tmp_path, content, settings):
    _search(tmp_path / "p", content)
    with pytest.raises(project.SearchError) as refused:
        project.prepare(str(tmp_path / "p"), settings)
    assert str(refused.value).endswith("choose another --project or --out; --overwrite deletes this search")


git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@git
@pytest.mark.parametrize("content, settings", REFUSALS)
def test_committed_results_are_never_offered_to_overwrite_nor_deleted_by_it(tmp_path, content, settings):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    folder = tmp_path / "tuner_runs" / "p"
    _search(folder, content)
    subprocess.run(["git", "add", "tuner_runs"], cwd=tmp_path, check=True)
    before = folder_contents(str(folder))
    with pytest.raises(project.SearchError) as refused:
        project.prepare(str(folder), settings)
    assert "--overwrite" not in str(refused.value)
    assert str(refused.value).endswith("choose another --project or --out (its files are committed to git)")
    with pytest.raises(project.SearchError, match="committed to git, which --overwrite never deletes; "
                                                  "choose another --project or --out"):
        project.prepare(str(folder), settings, overwrite=True)
    assert folder_contents(str(folder)) == before
    # Files git does not track beside them change nothing: the folder is still committed results.
    (folder / "oracle.json").write_text("{}")
    with pytest.raises(project.SearchError, match="never deletes"):
        project.prepare(str(folder), settings, overwrite=True)


@git
def test_an_untracked_search_in_a_git_checkout_may_be_overwritten(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    folder = tmp_path / "tuner_runs" / "p"
    _search(folder, "not json")
    assert not project.committed(str(folder))
    assert project.prepare(str(folder), SETTINGS, overwrite=True) is False
    assert os.listdir(folder) == [project.SETTINGS_FILE]


def test_a_foreign_folder_is_not_offered_to_overwrite(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("mine")
    with pytest.raises(project.SearchError) as refused:
        project.prepare(str(tmp_path / "p"), SETTINGS)
    assert str(refused.value) == (f"{tmp_path / 'p'} is not a kcifar.tune project (no {project.SETTINGS_FILE}); "
                                  "choose another --project or --out")


def test_worker_needs_the_chiefs_folder(tmp_path):
    folder = str(tmp_path / "p")
    with pytest.raises(project.SearchError, match="shared filesystem"):
        project.prepare(folder, SETTINGS, create=False)
    assert not os.path.exists(folder)
    project.prepare(folder, SETTINGS)
    before = folder_contents(folder)
    assert project.prepare(folder, {**SETTINGS, "max_trials": 9}, create=False) is True
    assert folder_contents(folder) == before  # a worker writes no settings


@pytest.mark.parametrize("name, ok", [
    ("trick4-random-jax", True), ("a.b_c-1", True),
    ("", False), ("..", False), ("-x", False), ("a/b", False), ("a b", False), (".hidden", False),
])
def test_check_name(name, ok):
    if ok:
        assert project.check_name(name) == name
    else:
        with pytest.raises(project.SearchError, match="--project must be"):
            project.check_name(name)


def test_trial_ids_in_trial_order(tmp_path):
    for trial_id in ("10", "9", "02", "1"):
        (tmp_path / f"trial_{trial_id}").mkdir()
        (tmp_path / f"trial_{trial_id}" / "trial.json").write_text("{}")
    (tmp_path / "trial_7").mkdir()  # created, no trial.json yet: not a trial
    assert project.trial_ids(str(tmp_path)) == ["1", "02", "9", "10"]
