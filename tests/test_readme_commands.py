"""The README's commands as a new user runs them: in order, in an empty
folder, on the tests' tiny data. The quick start, the evaluation of the
model it trained and predictions on two image files, the hyperparameter
search and the training of the configuration it exports all run, with fewer
training images, epochs and trials. The commands that would train for hours
(a rung's full run, the ladder) are read by the commands' own code, which
checks every flag before it loads a backend or starts a run, and stopped
there."""

import glob
import os
import re
import shlex
import subprocess
import sys
import tomllib

import pytest
from helpers import REPO, subprocess_env, write_run

from kcifar import files

# The sections whose commands the test runs or reads, in the README's order.
SECTIONS = ("Quick start", "Using a trained model", "Searching hyperparameters", "Running a rung")
# In these sections a rung command without --limit-train is a full run:
# read, not run (the quick start runs its quick variant). The search's
# second command is run: only training it shows that the rung takes the
# best_config.json the search exported.
FULL_RUNS_READ = ("Quick start", "Running a rung")
LIMIT_TRAIN = "50"  # of the tiny data's 108 training images
SHORTER = {"--limit-train": LIMIT_TRAIN, "--epochs": "1"}
SHORTER_SEARCH = {**SHORTER, "--max-trials": "1"}
IMAGE_FILE = re.compile(r".+\.(jpe?g|png)$", re.I)
TIMEOUT = 600


def section(readme, heading):
    start = readme.index(f"\n## {heading}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:] if end == -1 else readme[start:end]


def commands(readme, heading):
    """The command lines of section `heading`'s ```bash blocks, in order,
    each as (its leading VAR=value assignments, its words); comments dropped."""
    blocks = re.findall(r"^```bash\n(.*?)^```", section(readme, heading), re.S | re.M)
    found = []
    for line in "".join(blocks).replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        env = {}
        while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
            key, value = words.pop(0).split("=", 1)
            env[key] = value
        if words:
            found.append((env, words))
    return found


def action(heading, words):
    """What the test does with a command: export, pip (installed already:
    its extras are checked), help, read (its flags, not run) or run."""
    if words[0] in ("export", "pip"):
        return words[0]
    assert words[:2] == ["python", "-m"], f"the test does not know how to run {shlex.join(words)}"
    if "--help" in words or "-h" in words:
        return "help"
    if words[2] == "kcifar.ladder":
        # Hours of training, and no shorter variant: --budget refuses --epochs
        # and --limit-train, and the small budget's 5000 training images are
        # more than the tiny data holds.
        return "read"
    if words[2].startswith("kcifar.experiments.") and heading in FULL_RUNS_READ and "--limit-train" not in words:
        return "read"
    return "run"


def steps(readme):
    """(section, action, env, words) of every command of SECTIONS, in order."""
    return [(heading, action(heading, words), env, words) for heading in SECTIONS
            for env, words in commands(readme, heading)]


def with_flags(words, values):
    """`words` with each flag of `values` set to its value: replaced where
    the command gives it, added where not."""
    words = list(words)
    for flag, value in values.items():
        if flag in words:
            words[words.index(flag) + 1] = value
        else:
            words += [flag, value]
    return words


def flag(words, name, default=None):
    return words[words.index(name) + 1] if name in words else default


# A command that is read, not run, goes through its module's own entry point
# in this process (kcifar.cli.run_rung, kcifar.ladder's main), which parses
# and checks every flag before it loads a backend or starts a run; the step
# after those checks is replaced by a stop. A bad flag then fails the test
# with the command's own error line. Running it with a data path that cannot
# load would not tell its refusal of a flag from the expected data error
# (both exit 2), and --help reads no flag at all.
class Read(Exception):
    """Raised where a rung command would load its backend: its flags are read
    and checked by then (kcifar.cli checks them all first)."""


class NewUser:
    """A shell in an empty folder: its environment, its exports, and the run
    folders its commands wrote."""

    def __init__(self, folder, env, data, monkeypatch, capsys):
        self.folder, self.env, self.data = folder, env, data
        self.monkeypatch, self.capsys = monkeypatch, capsys
        self.backend = env.get("KERAS_BACKEND")
        self.written = []  # run folders, relative to the folder
        self.readme = None

    def path(self, relative):
        return os.path.join(self.folder, relative)

    def words(self, words):
        """The command as the test gives it: the tiny data for any data path,
        no [placeholder] words."""
        words = [w for w in words if not re.fullmatch(r"\[.*\]", w)]
        return with_flags(words, {"--data": self.data}) if "--data" in words else words

    def expanded(self, words):
        """`words` with their shell globs expanded in the folder, as bash does."""
        out = []
        for word in words:
            matches = sorted(os.path.relpath(p, self.folder) for p in glob.glob(self.path(word)))
            out += matches if "*" in word and matches else [word]
        return out

    def export(self, words):
        for assignment in words[1:]:
            key, value = assignment.split("=", 1)
            self.env[key] = self.data if key == "KCIFAR_DATA" else value

    def pip(self, words):
        """Everything is installed; the extras the command names must exist."""
        with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
            extras = tomllib.load(f)["project"]["optional-dependencies"]
        for word in words:
            named = re.fullmatch(r"\.\[(.*)\]", word)
            for extra in named.group(1).split(",") if named else ():
                assert extra in extras, f"{shlex.join(words)}: pyproject.toml has no extra {extra!r}"

    def run(self, env, words):
        """Runs the command; it must exit 0. Returns its stdout."""
        for name in [flag(words, "--config")] + [w for w in words if w.endswith(".keras")]:
            assert name is None or os.path.isfile(self.path(name)), \
                f"{shlex.join(words)} reads {name}, which the commands before it did not write"
        done = subprocess.run([sys.executable, *self.expanded(words)[1:]], env={**self.env, **env}, cwd=self.folder,
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert done.returncode == 0, (f"{shlex.join(words)} exited {done.returncode}:\n"
                                      f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def run_folder(self, env, words):
        """The run folder a rung command writes (README, "Running a rung")."""
        backend = env.get("KERAS_BACKEND", self.backend)
        name = words[2].rsplit(".", 1)[1]
        return os.path.join(flag(words, "--out", "runs"), f"{name}-{backend}-seed{flag(words, '--seed', '0')}")

    def train(self, env, words):
        self.run(env, words)
        run_dir = self.run_folder(env, words)
        for name in ("metrics.json", "model.keras"):
            assert os.path.isfile(self.path(os.path.join(run_dir, name))), f"{shlex.join(words)}: no {run_dir}/{name}"
        if "--config" in words:  # it trained the configuration it was given, but for --epochs
            changes = files.read_json(self.path(flag(words, "--config")))["changes"]
            changes.pop("epochs", None)
            config = files.read_json(self.path(os.path.join(run_dir, "settings.json")))["config"]
            assert {k: config[k] for k in changes} == changes, f"{shlex.join(words)} trained {config}"
        self.written.append(run_dir)

    def search(self, env, words):
        self.run(env, words)
        assert glob.glob(self.path(os.path.join(flag(words, "--out", "tuner_runs"), "*", "best_config.json"))), \
            f"{shlex.join(words)} exported no best_config.json"

    def evaluate(self, env, words):
        out = self.run(env, words)
        assert "test accuracy:" in out and "per-class accuracy:" in out and "confusion matrix" in out, out

    def predict(self, env, words):
        from PIL import Image

        images = [w for w in words[4:] if IMAGE_FILE.fullmatch(w)]
        for i, name in enumerate(images):  # the user's own photos: any size, not square
            Image.new("RGB", (48 + 16 * i, 36), (200, 40 * i, 30)).save(self.path(name))
        lines = self.run(env, words).splitlines()
        top = int(flag(words, "--top", "1"))
        for name in images:
            (line,) = [line for line in lines if line.startswith(f"{name}: ")]
            assert len(line.split(", ")) == top, line

    def report(self, env, words):
        self.run(env, words)
        holder = os.path.dirname(words[3]) if "*" in words[3] else words[3]  # runs/* reports into runs/report/
        page = os.path.join(holder, "report", "README.md")
        assert os.path.isfile(self.path(page)), f"{shlex.join(words)} wrote no {page}"

    def read_rung(self, env, words):
        """A rung command read by kcifar.cli.run_rung up to where it would load
        its backend: its flags parsed and checked, its config made."""
        from kcifar import cli
        from kcifar.experiments import step

        seen = {}
        checked_flags = cli.checked_flags

        def record(config, args):
            seen["config"], seen["seeds"] = checked_flags(config, args)
            seen["args"] = args
            return seen["config"], seen["seeds"]

        def stop(quiet=False):
            raise Read

        with self.monkeypatch.context() as m:
            m.setattr(cli, "checked_flags", record)
            m.setattr(cli, "check_backend", stop)
            try:
                cli.run_rung(step(words[2].rsplit(".", 1)[1]).CONFIG, words[3:])
            except Read:
                pass
            except SystemExit as e:
                pytest.fail(f"{shlex.join(words)} exited {e.code}: {self.capsys.readouterr().err}")
        backend = env.get("KERAS_BACKEND", self.backend)
        folders = [cli.run_dir_of(seen["args"], seen["config"], seed, backend) for seed in seen["seeds"]]
        assert not set(map(os.path.normpath, folders)) & set(map(os.path.normpath, self.written)), \
            f"{shlex.join(words)} would train in a folder a command before it wrote"

    def read_ladder(self, env, words):
        """The ladder command read by kcifar.ladder's main up to where it would
        start its runs: its range and the rung flags checked for every rung
        (kcifar.ladder.runner.plan). Its runs are stood in for by made-up
        finished ones in the folders it would write, for the commands after it."""
        from kcifar.ladder import __main__ as ladder
        from kcifar.ladder import runner

        seen = {}

        def plan_only(names, flags, jobs=1, devices=None, out=None):
            seen["jobs"], seen["args"] = runner.plan(names, flags, jobs)
            seen["backend"] = runner.children_backend()
            return 0

        with self.monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            m.setattr(runner, "run", plan_only)
            status = ladder.main(words[3:])
        assert status == 0, f"{shlex.join(words)} exited {status}: {self.capsys.readouterr().err}"
        for job in seen["jobs"]:
            write_run(self.path(os.path.dirname(job.run_dir)), name=job.name, seed=job.seed, backend=seen["backend"],
                      epochs=job.epochs, budget=seen["args"].budget, folder=os.path.basename(job.run_dir))

    def help(self, heading, env, words):
        """The help lists every flag of the section's flag table."""
        out = self.run(env, words)
        table = [line.split("|")[1] for line in section(self.readme, heading).splitlines() if line.startswith("| `")]
        flags = [f for cell in table for f in re.findall(r"`(-[-\w]+)", cell)]
        missing = [f for f in flags if not re.search(rf"(?<![-\w]){re.escape(f)}(?![-\w])", out)]
        assert flags and not missing, f"{shlex.join(words)} does not list {missing}"

    def follow(self, readme):
        """Every command of SECTIONS, in order."""
        self.readme = readme
        for heading, what, env, words in steps(readme):
            if what in ("export", "pip"):
                getattr(self, what)(words)
                continue
            words = self.words(words)
            module = words[2]
            if what == "help":
                self.help(heading, env, words)
            elif what == "read":
                (self.read_ladder if module == "kcifar.ladder" else self.read_rung)(env, words)
            elif module.startswith("kcifar.experiments."):
                self.train(env, with_flags(words, SHORTER))
            elif module == "kcifar.tune":
                self.search(env, with_flags(words, SHORTER_SEARCH))
            elif module in ("kcifar.evaluate", "kcifar.predict", "kcifar.report"):
                getattr(self, module.split(".")[1])(env, words)
            else:
                self.run(env, words)


def readme_backend(readme):
    """The backend the README's commands that the test runs name (KERAS_BACKEND=...)."""
    named = {env["KERAS_BACKEND"] for _, what, env, _ in steps(readme) if what == "run" and "KERAS_BACKEND" in env}
    assert len(named) == 1, f"the README's commands name backends {sorted(named)}; the test expects one"
    return named.pop()


@pytest.mark.slow
def test_the_readme_commands_work_in_order(tiny_dir, tmp_path, tmp_path_factory, monkeypatch, capsys):
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    backend = readme_backend(readme)
    # The commands set their backend themselves, so every pass of the suite
    # (one per KERAS_BACKEND) would run the same thing: run them in the pass
    # of theirs alone. The commands that name none (evaluate, predict) then
    # run on it too.
    if os.environ.get("KERAS_BACKEND") != backend:
        pytest.skip(f"the README's commands run on {backend}; this pass is KERAS_BACKEND="
                    f"{os.environ.get('KERAS_BACKEND')}")
    folder = tmp_path / "user"
    folder.mkdir()
    NewUser(str(folder), subprocess_env(tmp_path_factory), tiny_dir, monkeypatch, capsys).follow(readme)
