"""Checksummed artifacts: one mechanism for every shipped folder in ``data/``.

Each folder has a ``checksums.json`` listing the SHA-256 of *every* file below it (except itself).
:func:`verify` refuses a missing, changed or extra unlisted file with an :class:`ArtifactError`
that names the command which rebuilds the folder; :func:`write_checksums` is called by those
commands after they have written the folder; :func:`read_json` reads a shipped JSON file with
the same kind of error on invalid content.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

CHECKSUMS_FILE = "checksums.json"
_IGNORED = {".DS_Store", ".ipynb_checkpoints", "__pycache__"}


class ArtifactError(RuntimeError):
    """A shipped artifact is missing, damaged or unexpected; the message names the rebuild command."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS_FILE
                  and not _IGNORED.intersection(p.relative_to(folder).parts))


def write_checksums(folder: str | Path) -> dict:
    """Record the SHA-256 of every file below ``folder`` in ``folder/checksums.json``; return them."""
    folder = Path(folder)
    sums = {p.relative_to(folder).as_posix(): sha256(p) for p in _files(folder)}
    (folder / CHECKSUMS_FILE).write_text(json.dumps(sums, indent=2, sort_keys=True) + "\n")
    return sums


def read_json(path: str | Path, rebuild: str):
    """The content of a shipped JSON file, or an :class:`ArtifactError` naming ``rebuild``."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; rebuild it with `{rebuild}`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path} is not valid JSON ({err}); it is damaged: rebuild it with `{rebuild}` "
                            "(or restore it with `git checkout -- data`)") from None


def verify(folder: str | Path, rebuild: str, what: str = "artifact") -> None:
    """Raise :class:`ArtifactError` naming ``rebuild`` unless every file below ``folder`` is exactly
    the one listed in its ``checksums.json`` (none missing, none changed, none extra)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{what} not found: {folder} does not exist; build it with `{rebuild}`")
    sums = read_json(folder / CHECKSUMS_FILE, rebuild)
    if not isinstance(sums, dict):
        raise ArtifactError(f"{folder / CHECKSUMS_FILE} is damaged (expected a JSON object); rebuild with `{rebuild}`")
    for name, digest in sums.items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{what} file {path} is missing; rebuild it with `{rebuild}`")
        if sha256(path) != digest:
            raise ArtifactError(f"{what} file {path} is corrupted (checksum mismatch); rebuild it with "
                                f"`{rebuild}` (or restore it with `git checkout -- {path}`)")
    extra = [p.relative_to(folder).as_posix() for p in _files(folder) if p.relative_to(folder).as_posix() not in sums]
    if extra:
        raise ArtifactError(f"unexpected file(s) in {folder}: {', '.join(extra)} (not in {CHECKSUMS_FILE}); "
                            f"remove them, or rebuild the {what} with `{rebuild}`")


@contextlib.contextmanager
def building(root: str | Path):
    """Build a shipped folder atomically: ``with building(root) as new:`` writes into a fresh hidden
    folder next to ``root``, which replaces ``root`` only when the block ends without an error
    (an interrupted or failed build leaves the old folder as it was, and no half-built one)."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.building-"))
    try:
        yield new
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    old = root.with_name(f".{root.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        root.rename(old)
    new.rename(root)
    shutil.rmtree(old, ignore_errors=True)
