"""Generate the student and solution notebooks from one source per notebook.

Sources live in ``notebooks/src/NN_topic.py`` (jupytext percent format). Solution code is
marked inside a code cell::

    def logit_lens(model, resid):
        # BEGIN SOLUTION: apply the final LayerNorm, then the unembedding
        return model.unembed(model.ln_final(resid))
        # END SOLUTION

The student notebook replaces the marked lines with a TODO (the text after the colon, wrapped)
and a ``raise NotImplementedError``; the solution notebook keeps them and is executed so that it
stores its outputs. Both get the same first cell: the Colab set-up, which clones the published
repository (``[project.urls] Repository`` in ``pyproject.toml``: the one setting for where the
course lives, also used by the README's badges) and installs ``requirements.txt`` there.
"""
from __future__ import annotations

import re
from pathlib import Path

from .paths import NOTEBOOKS_DIR, REPO_ROOT, SOLUTIONS_DIR, SOURCES_DIR

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?::\s*(?P<todo>.*))?$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
CARRIED_METADATA = ("tags", "tolerance")  # cell metadata copied from the source into both notebooks
TODO_WIDTH = 88  # student stubs: TODO comments wrap at this column

COLAB_CELL = """\
# Google Colab only: installs the course. Anywhere else, skip this cell (it does nothing).
import sys
if "google.colab" in sys.modules:  # keeps Colab's own torch, installs the other pins
    import subprocess
    REPO = "{repo}"
    subprocess.run(f"git clone -q --depth 1 {{REPO}} /content/course && cd /content/course && "
                   "grep -v '^torch==' requirements.txt > /tmp/reqs.txt && "
                   "pip install -q -r /tmp/reqs.txt && pip install -q --no-deps -e .", shell=True, check=True)
    sys.path.insert(0, "/content/course")
"""


def course_repo(pyproject: Path | str = REPO_ROOT / "pyproject.toml") -> str:
    """Where the course is published: ``[project.urls] Repository`` in pyproject.toml, a GitHub URL.
    Colab's first cell clones it; the README's Binder and Colab badges point at it (a test checks)."""
    text = Path(pyproject).read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        match = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        found = match and re.search(r'^Repository\s*=\s*"([^"]*)"', match.group(1), re.M)
        url = found.group(1) if found else None
    else:
        url = tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository")
    if not url or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"pyproject.toml: set [project.urls] Repository = \"https://github.com/OWNER/NAME\" "
                         f"(where the course is published), got {url!r}")
    return url


def github_slug() -> str:
    """``OWNER/NAME`` of the published repository."""
    return course_repo().removeprefix("https://github.com/")


def requirement_pins(path: Path | str = REPO_ROOT / "requirements.txt") -> list[str]:
    """The pinned requirements, one per entry, without comments and pip options."""
    lines = (line.split("#")[0].strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def colab_cell_source() -> str:
    return COLAB_CELL.format(repo=course_repo())


def sources() -> list[Path]:
    return sorted(SOURCES_DIR.glob("[0-9][0-9]_*.py"))


def _todo_stub(indent: str, todo: str) -> list[str]:
    """``# TODO: ...`` wrapped at :data:`TODO_WIDTH`, then the ``raise`` (with the TODO as its
    message when that fits on one line)."""
    import textwrap

    lines = textwrap.wrap(todo, width=max(TODO_WIDTH - len(indent) - len("# TODO: "), 30),
                          break_long_words=False, break_on_hyphens=False) or [todo]
    out = [f"{indent}# TODO: {lines[0]}", *(f"{indent}#       {line}" for line in lines[1:])]
    raise_line = f"{indent}raise NotImplementedError({'Exercise: ' + todo!r})"
    if len(raise_line) > TODO_WIDTH:
        raise_line = f"{indent}raise NotImplementedError('Exercise: see the TODO above')"
    return [*out, raise_line]


def to_student(code: str, where: str = "") -> str:
    """Replace every ``# BEGIN SOLUTION`` … ``# END SOLUTION`` block by a TODO stub."""
    out, inside = [], False
    for line in code.splitlines():
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise ValueError(f"{where}: nested '# BEGIN SOLUTION'")
            inside = True
            out += _todo_stub(begin["indent"], begin["todo"] or "your code here")
        elif END.match(line):
            if not inside:
                raise ValueError(f"{where}: '# END SOLUTION' without '# BEGIN SOLUTION'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '# BEGIN SOLUTION' is never closed")
    return "\n".join(out)


def to_solution(code: str) -> str:
    return "\n".join(line for line in code.splitlines() if not (BEGIN.match(line) or END.match(line)))


def cell_metadata(cell, where: str = "") -> dict:
    """The source cell's metadata that the generated notebooks carry: ``tags`` and ``tolerance``
    (what the output comparison of :mod:`course_lib.outputs` reads)."""
    from .outputs import TRAINED_TAG, validate_tolerance

    kept = {key: cell.metadata[key] for key in CARRIED_METADATA if key in cell.metadata}  # jupytext checks tags
    if "tolerance" in kept:
        if TRAINED_TAG not in kept.get("tags", []):
            raise ValueError(f"{where}: a tolerance is given but the cell is not tagged {TRAINED_TAG!r}")
        validate_tolerance(kept["tolerance"], where)
    return kept


def _notebook(src: Path | str, student: bool):
    import jupytext
    import nbformat

    src = Path(src)
    nb = jupytext.read(src)
    cells = [nbformat.v4.new_code_cell(colab_cell_source())]
    for cell in nb.cells:
        if cell.cell_type == "code":
            source = to_student(cell.source, src.name) if student else to_solution(cell.source)
            where = f"{src.name}, cell starting {cell.source.strip()[:40]!r}"
            cells.append(nbformat.v4.new_code_cell(source, metadata=cell_metadata(cell, where)))
        else:
            cells.append(nbformat.v4.new_markdown_cell(cell.source))
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:03d}"  # stable ids keep the generated files diffable
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC,
                                                           "language_info": {"name": "python"}})


def student_notebook(src: Path | str):
    return _notebook(src, student=True)


def solution_notebook(src: Path | str):
    return _notebook(src, student=False)


def student_path(src: Path | str) -> Path:
    return NOTEBOOKS_DIR / f"{Path(src).stem}.ipynb"


def solution_path(src: Path | str) -> Path:
    return SOLUTIONS_DIR / f"{Path(src).stem}.ipynb"


def select(only: list[str] | None = None) -> list[Path]:
    """The sources whose name starts with one of ``only`` (all of them for None or []); a
    selector that matches no source is an error that lists the notebooks there are."""
    chosen = sources()
    if only:
        unknown = [o for o in only if not any(src.stem.startswith(str(o)) for src in chosen)]
        if unknown:
            there = ", ".join(src.stem for src in chosen)
            raise ValueError(f"no notebook source matches {', '.join(map(repr, unknown))} "
                             f"in {SOURCES_DIR.relative_to(REPO_ROOT)}/ (there are: {there})")
        chosen = [src for src in chosen if any(src.stem.startswith(str(o)) for o in only)]
    return chosen


def _cell_sources(nb) -> list[tuple[str, str, dict]]:
    return [(c.cell_type, c.source, {k: c.metadata[k] for k in CARRIED_METADATA if k in c.metadata}) for c in nb.cells]


def out_of_date() -> list[str]:
    """Generated notebooks whose cells (type, source, tags, tolerance) differ from what their source
    generates now."""
    import nbformat

    stale = []
    for src in sources():
        for path, fresh in ((student_path(src), student_notebook(src)), (solution_path(src), solution_notebook(src))):
            if not path.exists() or _cell_sources(nbformat.read(path, 4)) != _cell_sources(fresh):
                stale.append(str(path.relative_to(REPO_ROOT)))
    return stale


def with_stored_outputs(fresh, path: Path):
    """``fresh`` (a generated solution notebook) with the outputs stored in ``path``, for a rebuild
    that changes only metadata, markdown or cells without outputs (no execution). A code cell
    whose source changed and that had outputs needs an executing build: that is an error."""
    import nbformat

    stored = nbformat.read(path, 4)
    if len(stored.cells) != len(fresh.cells):
        raise ValueError(f"{path.name}: {len(stored.cells)} cells stored, {len(fresh.cells)} now: build with execution")
    changed = []
    for i, (old, new) in enumerate(zip(stored.cells, fresh.cells)):
        if new.cell_type != "code" or old.cell_type != "code":
            continue
        if old.source == new.source:
            new.outputs, new.execution_count = old.outputs, old.execution_count
        elif old.get("outputs"):
            changed.append(i)
    if changed:
        raise ValueError(f"{path.name}: cells {changed} changed and had outputs: build with execution")
    return fresh


def build(only: list[str] | None = None, execute: bool = True, keep_outputs: bool = False) -> None:
    """Write the student notebook and the (executed) solution notebook of each source; with
    ``keep_outputs``, the solution keeps its stored outputs instead (see :func:`with_stored_outputs`)."""
    import nbformat

    from .runner import execute_notebook

    chosen = select(only)
    SOLUTIONS_DIR.mkdir(parents=True, exist_ok=True)
    for src in chosen:
        nbformat.write(student_notebook(src), student_path(src))
        solution = solution_notebook(src)
        if keep_outputs:
            solution = with_stored_outputs(solution, solution_path(src))
        elif execute:
            run = execute_notebook(solution, cwd=SOLUTIONS_DIR)
            solution = run.notebook
            print(f"built {src.stem}: {run.wall_s:.1f} s, peak {run.peak_mb:.0f} MB, "
                  f"{run.rss_mb or 0:.0f} MB held after the last cell")
        nbformat.write(solution, solution_path(src))
