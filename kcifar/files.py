"""Files written whole or not at all: a temporary name, then a rename."""

import contextlib
import csv
import io
import json
import os


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same suffix); renames it to
    `path` when the block succeeds, removes it when it fails."""
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp-{os.getpid()}{ext}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    # UTF-8 with "\n" line ends on every system: Windows would write its
    # locale's code page and "\r\n", and a report would differ by system.
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_csv(path, rows, columns):
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, out.getvalue())


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
