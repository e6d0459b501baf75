"""Students work in ``work/``: a git-ignored copy of the student notebooks, made on first use.

``python -m course_lib work`` (run by ``make lab`` and ``make update-work``) copies every student
notebook that ``work/`` does not have yet, and refreshes a copy only while it is exactly as it was
copied (never opened and saved): a notebook you have edited or run and saved is never touched, so
``git pull`` and the update never conflict with your work. ``work/.course-copies.json`` records
what was copied.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from .paths import NOTEBOOKS_DIR, WORK_DIR

MANIFEST = ".course-copies.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def update_work(work: Path | str = WORK_DIR, source: Path | str = NOTEBOOKS_DIR) -> dict[str, str]:
    """Bring ``work`` up to date with the student notebooks in ``source``; return what happened to
    each notebook: ``new``, ``updated``, ``unchanged`` or ``kept`` (edited by you: left alone)."""
    work, source = Path(work), Path(source)
    work.mkdir(parents=True, exist_ok=True)
    manifest_path = work / MANIFEST
    copied = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    actions = {}
    for notebook in sorted(source.glob("[0-9][0-9]_*.ipynb")):
        target, fresh = work / notebook.name, _sha256(notebook)
        if not target.exists():
            action = "new"
        elif _sha256(target) != copied.get(notebook.name):
            actions[notebook.name] = "kept"
            continue
        else:
            action = "unchanged" if fresh == copied[notebook.name] else "updated"
        if action != "unchanged":
            shutil.copyfile(notebook, target)
        copied[notebook.name] = fresh
        actions[notebook.name] = action
    manifest_path.write_text(json.dumps(copied, indent=1, sort_keys=True) + "\n")
    return actions


def main() -> int:
    actions = update_work()
    for name, action in actions.items():
        if action == "new":
            print(f"work/{name}: copied")
        elif action == "updated":
            print(f"work/{name}: updated to the course's new version (you had not changed it)")
        elif action == "kept":
            print(f"work/{name}: kept as you left it (the course's version is notebooks/{name})")
    return 0
