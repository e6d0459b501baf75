"""One source per notebook: the generated student and solution notebooks are up to date, the
student versions contain stubs instead of solutions, and every install cell agrees with
requirements.txt."""
import ast
import re

import nbformat
import pytest

from course_lib import build
from course_lib.paths import REPO_ROOT

SOURCES = build.sources()


def test_there_are_notebook_sources():
    assert SOURCES and SOURCES[0].name.startswith("00_")


def test_generated_notebooks_are_up_to_date():
    stale = build.out_of_date()
    assert not stale, f"regenerate with `make build NB=...` (python -m course_lib build): {stale}"


def test_to_student_replaces_marked_code_with_a_todo_stub():
    code = "def f(x):\n    y = 1\n    # BEGIN SOLUTION: add one\n    return x + y\n    # END SOLUTION\n"
    student = build.to_student(code)
    assert "return x + y" not in student and "y = 1" in student
    assert "    # TODO: add one\n    raise NotImplementedError('Exercise: add one')" in student
    long = "apply " + ", then ".join(f"step {i}" for i in range(20))
    wrapped = build.to_student(f"def f(x):\n    # BEGIN SOLUTION: {long}\n    return x\n    # END SOLUTION\n")
    assert max(map(len, wrapped.splitlines())) <= build.TODO_WIDTH and "#       " in wrapped
    assert " ".join(line.strip("# ").removeprefix("TODO: ") for line in wrapped.splitlines()[1:-1]) == long
    quoted = build.to_student('def f(c):\n    # BEGIN SOLUTION: read c["x"]\n    return c["x"]\n    # END SOLUTION')
    ast.parse(quoted)  # quotes in the TODO text must not break the stub
    assert build.to_solution(code) == "def f(x):\n    y = 1\n    return x + y"


@pytest.mark.parametrize("code, problem", [
    ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "without"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "nested"),
])
def test_unbalanced_markers_are_errors(code, problem):
    with pytest.raises(ValueError, match=problem):
        build.to_student(code, "nb.py")


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_has_stubs_and_no_solutions(src):
    student = nbformat.read(build.student_path(src), 4)
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    n_exercises = src.read_text().count("# BEGIN SOLUTION")
    assert text.count("raise NotImplementedError") == n_exercises >= 4
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    for cell in student.cells:
        if cell.cell_type == "code":
            ast.parse(cell.source)  # every stub cell is valid Python


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_solution_notebook_has_outputs(src):
    solution = nbformat.read(build.solution_path(src), 4)
    assert any(c.get("outputs") for c in solution.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", sorted(REPO_ROOT.glob("notebooks/**/[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_colab_cell_clones_the_published_repo_and_installs_requirements_without_torch(path):
    first = nbformat.read(path, 4).cells[0].source
    assert first == build.colab_cell_source()
    assert f'REPO = "{build.course_repo()}"' in first and "grep -v '^torch==' requirements.txt" in first
    assert first.startswith("# Google Colab only") and "skip this cell" in first.splitlines()[0]
    assert max(map(len, first.splitlines())) <= 110
    assert "torch==2.13.0" in build.requirement_pins(), "torch must stay pinned (an unpinned torch pulls GBs of CUDA wheels)"


def test_published_location_is_one_setting_that_the_badges_follow():
    slug = build.github_slug()
    readme = (REPO_ROOT / "README.md").read_text()
    binder = re.findall(r"mybinder\.org/v2/gh/([^/]+/[^/]+)/", readme)
    colab = re.findall(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/", readme)
    assert binder and colab, "the README has a Binder badge and Colab badges"
    assert set(binder) == set(colab) == {slug}, (
        f"README badges point at {set(binder) | set(colab)}, pyproject.toml's [project.urls] Repository at {slug}")
    for name in re.findall(r"colab\.research\.google\.com/github/[^/]+/[^/]+/blob/main/(notebooks/[\w.]+\.ipynb)", readme):
        assert (REPO_ROOT / name).exists(), f"a Colab badge opens {name}, which does not exist"


def test_published_location_must_be_a_github_url(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n\n[project.urls]\nRepository = "https://example.com/x"\n')
    with pytest.raises(ValueError, match="set \\[project.urls\\] Repository"):
        build.course_repo(pyproject)
    pyproject.write_text('[project]\nname = "x"\n\n[project.urls]\nRepository = "https://github.com/me/course"\n')
    assert build.course_repo(pyproject) == "https://github.com/me/course"


def test_requirements_are_pinned_and_locked():
    constraints = (REPO_ROOT / "constraints.txt").read_text().splitlines()
    locked = {line.split("==")[0].lower().replace("_", "-"): line for line in constraints if "==" in line}
    for pin in build.requirement_pins():
        name, version = pin.split("==")
        assert locked[name.lower().replace("_", "-")].split("==")[1].split("+")[0] == version, pin
    assert int(locked["transformer-lens"].split("==")[1].split(".")[0]) < 4, "sae-lens needs transformer-lens < 4"


def test_binder_installs_the_same_pins_with_a_cpu_torch():
    binder = (REPO_ROOT / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements.txt" in binder and "-c ../constraints.txt" in binder
    assert "download.pytorch.org/whl/cpu" in binder
    assert "pip install" in (REPO_ROOT / "binder" / "postBuild").read_text()


def test_cell_tags_and_tolerance_reach_both_notebooks(tmp_path):
    src = tmp_path / "07_demo.py"
    src.write_text('# %%\nx = 1\n\n# %% tags=["trained"] tolerance={"rtol": 0.1, "atol": 0.02}\nprint(0.5)\n'
                   '\n# %% tags=["trained"]\nprint(0.25)\n')
    for nb in (build.student_notebook(src), build.solution_notebook(src)):
        metadata = [dict(c.metadata) for c in nb.cells[1:]]
        assert metadata == [{}, {"tags": ["trained"], "tolerance": {"rtol": 0.1, "atol": 0.02}}, {"tags": ["trained"]}]
    # the stale check sees a changed tag or tolerance
    before = build._cell_sources(build.solution_notebook(src))
    src.write_text(src.read_text().replace('"rtol": 0.1', '"rtol": 0.2'))
    assert build._cell_sources(build.solution_notebook(src)) != before


@pytest.mark.parametrize("header, problem", [
    ('# %% tolerance={"rtol": 0.1}', "not tagged 'trained'"),
    ('# %% tags=["trained"] tolerance={"rel": 0.1}', "tolerance must look like"),
])
def test_bad_cell_metadata_is_an_error(tmp_path, header, problem):
    src = tmp_path / "07_demo.py"
    src.write_text(f"{header}\nprint(1)\n")
    with pytest.raises(ValueError, match=problem):
        build.solution_notebook(src)


def test_build_of_an_unknown_notebook_is_an_error(capsys):
    from course_lib.__main__ import main

    with pytest.raises(ValueError, match="no notebook source matches '99'.*there are: 00_"):
        build.select(["99"])
    assert main(["build", "99"]) == 2
    assert "no notebook source matches '99'" in capsys.readouterr().err
    assert [p.stem for p in build.select(["0"])] == [p.stem for p in SOURCES]


def test_paths_may_be_strings(tmp_path):
    src = SOURCES[0]
    assert build.student_path(str(src)) == build.student_path(src)
    assert build.solution_path(str(src)) == build.solution_path(src)
    assert build._cell_sources(build.student_notebook(str(src))) == build._cell_sources(build.student_notebook(src))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\nsix==1.16.0  # comment\n--extra-index-url x\n")
    assert build.requirement_pins(str(requirements)) == ["six==1.16.0"]


def test_keep_outputs_rebuild_copies_stored_outputs_and_refuses_changed_cells(tmp_path):
    src = tmp_path / "07_demo.py"
    src.write_text("# %%\nprint(1)\n\n# %% [markdown]\n# text\n")
    stored = build.solution_notebook(src)
    stored.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    path = tmp_path / "07_demo.ipynb"
    nbformat.write(stored, path)
    src.write_text('# %% tags=["trained"]\nprint(1)\n\n# %% [markdown]\n# other text\n')
    kept = build.with_stored_outputs(build.solution_notebook(src), path)
    assert kept.cells[1].outputs[0]["text"] == "1\n" and kept.cells[1].metadata["tags"] == ["trained"]
    src.write_text("# %%\nprint(2)\n\n# %% [markdown]\n# text\n")
    with pytest.raises(ValueError, match="changed and had outputs: build with execution"):
        build.with_stored_outputs(build.solution_notebook(src), path)


def test_work_copies_are_made_once_and_never_overwritten_when_edited(tmp_path):
    from course_lib.workspace import update_work

    source, work = tmp_path / "notebooks", tmp_path / "work"
    source.mkdir()
    (source / "00_a.ipynb").write_text("v1")
    (source / "01_b.ipynb").write_text("v1")
    assert update_work(work, source) == {"00_a.ipynb": "new", "01_b.ipynb": "new"}
    (work / "00_a.ipynb").write_text("my edits")
    (source / "00_a.ipynb").write_text("v2")
    (source / "01_b.ipynb").write_text("v2")
    (source / "02_c.ipynb").write_text("v1")
    assert update_work(work, source) == {"00_a.ipynb": "kept", "01_b.ipynb": "updated", "02_c.ipynb": "new"}
    assert (work / "00_a.ipynb").read_text() == "my edits" and (work / "01_b.ipynb").read_text() == "v2"
    assert update_work(str(work), str(source))["01_b.ipynb"] == "unchanged"
    assert "work/" in (REPO_ROOT / ".gitignore").read_text().split()
