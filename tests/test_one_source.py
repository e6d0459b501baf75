"""One copy of every solution: the solution a notebook shows (the function or class around a
``# BEGIN SOLUTION`` block in ``notebooks/src``) and the reference its check compares against
(``Exercise.reference`` in ``course_lib``) are the same code — the same syntax tree, once the
docstring and the imports at the top of the body are set aside (the library imports lazily).
Comments and formatting may differ; nothing else."""
import ast
import importlib
import inspect
import pkgutil
import textwrap

import jupytext
import pytest

import course_lib
from course_lib.build import sources
from course_lib.checking import Exercise


def _exercises() -> dict:
    found = {}
    for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Exercise):
                found.setdefault(value.name, set()).add(id(value))
                found[(value.name, "obj")] = value
    duplicates = [k for k, v in found.items() if isinstance(k, str) and len(v) > 1]
    assert not duplicates, f"two different exercises share a name: {duplicates}"
    return {k[0]: v for k, v in found.items() if isinstance(k, tuple)}


def _normalised(node: ast.AST) -> str:
    """The definition without its docstring and without the imports that open a function body."""
    node = ast.parse(ast.unparse(node)).body[0]  # a copy
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = n.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            if not isinstance(n, ast.ClassDef):
                while body and isinstance(body[0], (ast.Import, ast.ImportFrom)):
                    body = body[1:]
            n.body = body or [ast.Pass()]
    return ast.dump(node, include_attributes=False)


def _solutions() -> list:
    """(notebook, name, definition node) for every definition holding a solution block."""
    found = []
    for src in sources():
        for cell in jupytext.read(src).cells:
            if cell.cell_type != "code" or "# BEGIN SOLUTION" not in cell.source:
                continue
            lines = cell.source.splitlines()
            tree = ast.parse(cell.source)
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    span = lines[node.lineno - 1: node.end_lineno]
                    if any("# BEGIN SOLUTION" in line for line in span):
                        found.append((src.stem, node.name, node))
            inside = sum("# BEGIN SOLUTION" in line for line in lines)
            held = sum(any("# BEGIN SOLUTION" in line for line in lines[n.lineno - 1: n.end_lineno])
                       for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
            assert inside == held or held, f"{src.name}: a solution block outside any function or class"
    return found


SOLUTIONS = _solutions()


def test_every_solution_has_an_exercise_and_every_exercise_a_solution():
    exercises = _exercises()
    names = [name for _, name, _ in SOLUTIONS]
    missing = [f"{nb}: {name}" for nb, name, _ in SOLUTIONS if name not in exercises]
    assert not missing, f"notebook solutions without an Exercise of that name in course_lib: {missing}"
    unused = sorted(set(exercises) - set(names))
    assert not unused, f"Exercises no notebook uses: {unused}"
    assert len(names) == len(set(names)), "a solution name appears in two notebooks"


@pytest.mark.parametrize("notebook,name,node", SOLUTIONS, ids=[f"{nb}:{name}" for nb, name, _ in SOLUTIONS])
def test_notebook_solution_is_the_reference(notebook, name, node):
    exercise = _exercises().get(name)
    assert exercise is not None, f"{notebook}: no Exercise named {name!r}"
    reference = ast.parse(textwrap.dedent(inspect.getsource(exercise.reference))).body[0]
    assert reference.name == name, f"the reference of {name!r} is called {reference.name!r}"
    assert _normalised(node) == _normalised(reference), (
        f"{notebook}: the notebook's {name} and the reference "
        f"{exercise.reference.__module__}.{exercise.reference.__qualname__} differ:\n"
        f"--- notebook\n{ast.unparse(node)}\n--- course_lib\n{ast.unparse(reference)}")
