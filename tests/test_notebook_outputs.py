"""Every solution notebook re-executes (network-blocking kernel) and reproduces its stored outputs
within the tolerances of :mod:`course_lib.outputs`; every student notebook runs top to bottom with
its stubs untouched. The notebook runs are marked ``notebook`` (``make test`` runs them after the
unit tests, two in parallel); the comparer's own unit tests are not."""
import json

import nbformat
import pytest

from course_lib import build, outputs
from course_lib.paths import BUILD_DIR
from course_lib.runner import execute_notebook

SOURCES = build.sources()


def _stream(text, name="stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


def _cell(*outs, tags=None, tolerance=None, source="print(x)"):
    metadata = {}
    if tags:
        metadata["tags"] = tags
    if tolerance:
        metadata["tolerance"] = tolerance
    cell = nbformat.v4.new_code_cell(source, metadata=metadata)
    cell.outputs = list(outs)
    return cell


def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def _compare(stored_text, fresh_text, **cell_kw):
    return outputs.compare_notebooks(_nb(_cell(_stream(stored_text), **cell_kw)),
                                     _nb(_cell(_stream(fresh_text), **cell_kw)))


def test_identical_outputs_agree():
    text = "{'L0': 6.484, 'FVU': 0.159}\n64 of 64 found\nblocks.0.attn.hook_q (1, 6, 4, 32)\n"
    assert _compare(text, text) == []


@pytest.mark.parametrize("stored, fresh", [
    ("L0 6.484", "L0 6.483"),                    # last digit
    ("dead 0.25", "dead 0.251"),                 # Python drops a trailing zero: 0.25 is 0.250
    ("99.6%", "99.5%"),
    ("2.58e+20 FLOPs", "2.59e+20 FLOPs"),
    ("[[ 0.    0.14 -0.  ]]", "[[ 0.01  0.14  0.  ]]"),  # numpy's bare "0." has the array's precision
    ("clean  9.99 |", "clean 10.00 |"),          # a column that widens: spaces collapse
])
def test_untagged_cell_allows_one_unit_in_the_last_digit(stored, fresh):
    assert _compare(stored, fresh) == []


@pytest.mark.parametrize("stored, fresh, problem", [
    ("L0 6.484", "L0 6.482", "6.484 → 6.482"),
    ("64 of 64", "63 of 64", "integer in an untagged cell"),
    ("[[ 0.    0.14 ]]", "[[ 0.02  0.14 ]]", "0. → 0.02"),
    ("found Austin", "found Boston", "text differs"),
    ("blocks.0.attn", "blocks.1.attn", "text differs"),  # digits inside names are text
    ("L0H3 1.5", "L0H2 1.5", "text differs"),
    ("a 1.5", "a 1.5 b 2.5", "text differs"),
])
def test_untagged_cell_rejects_other_changes(stored, fresh, problem):
    differences = _compare(stored, fresh)
    assert len(differences) == 1 and problem in str(differences[0]), differences


def test_trained_cell_uses_its_tolerance():
    # default rel 5 % / abs 0.01
    assert _compare("dead 0.023 FVU 0.106", "dead 0.027 FVU 0.105", tags=["trained"]) == []
    assert _compare("MMCS 0.976 step 3293", "MMCS 0.951 step 3400", tags=["trained"]) == []
    beyond = _compare("MMCS 0.976", "MMCS 0.44", tags=["trained"])
    assert len(beyond) == 1 and "0.976 → 0.44" in str(beyond[0]) and "trained" in str(beyond[0])
    # an explicit tolerance replaces the default
    wide = {"rtol": 0.5, "atol": 0.0}
    assert _compare("MMCS 0.976", "MMCS 0.6", tags=["trained"], tolerance=wide) == []
    assert _compare("MMCS 0.976", "MMCS 0.4", tags=["trained"], tolerance=wide) != []
    assert _compare("ID accuracy 0.99", "ID accuracy 0.99 (memorized)", tags=["trained"]) != []  # text still exact


def test_a_difference_report_names_the_cell_and_shows_a_diff():
    stored = _nb(_cell(_stream("ok\n")), _cell(_stream("L0 6.484\nFVU 0.159\n"), source="print(metrics)"))
    fresh = _nb(_cell(_stream("ok\n")), _cell(_stream("L0 6.484\nFVU 0.170\n"), source="print(metrics)"))
    differences = outputs.compare_notebooks(stored, fresh)
    assert [d.index for d in differences] == [1]
    text = outputs.report(differences)
    assert "cell 1 ('print(metrics)')" in text and "-FVU 0.159" in text and "+FVU 0.170" in text


def test_errors_missing_outputs_and_rich_text_are_compared():
    error = nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])
    assert "error: ValueError: bad" in outputs.report(outputs.compare_notebooks(_nb(_cell()), _nb(_cell(error))))
    missing = outputs.compare_notebooks(_nb(_cell(_stream("x 1.5\n"))), _nb(_cell()))
    assert "missing in the fresh run" in outputs.report(missing)
    figure = nbformat.v4.new_output("display_data", data={"text/plain": "<Figure size 600x260 with 1 Axes>",
                                                          "image/png": "AAAA"})
    other = nbformat.v4.new_output("display_data", data={"text/plain": "<Figure size 600x260 with 2 Axes>",
                                                         "image/png": "BBBB"})
    redrawn = dict(figure, data={**figure.data, "image/png": "C"})  # images are not compared
    assert outputs.compare_notebooks(_nb(_cell(figure)), _nb(_cell(redrawn))) == []
    assert outputs.compare_notebooks(_nb(_cell(figure)), _nb(_cell(other))) != []


def test_streams_split_differently_and_volatile_text_still_agree():
    stored = _nb(_cell(_stream("a 1\n"), _stream("b 2\n")))
    fresh = _nb(_cell(_stream("a 1\nb 2\n")))
    assert outputs.compare_notebooks(stored, fresh) == []
    volatile = ("<object at 0x7f3a2b> took 1.52 s  40%|████      | 4/10 [00:01<00:02,  3.1it/s] "
                "/home/u/.venv/lib/python3.11/site-packages/x.py\n")
    again = ("<object at 0x55aa10> took 0.98 s  70%|███████   | 7/10 [00:02<00:01,  2.5it/s] "
             "/root/.venv/lib/python3.11/site-packages/x.py\n")
    assert _compare(volatile, again) == []


def test_tolerance_metadata_is_validated():
    assert outputs.validate_tolerance({"rtol": 0.1}) == {"rtol": 0.1, "atol": 0.01}
    for bad in ({"rel": 0.1}, {"rtol": -1}, {"rtol": "5%"}, [0.1]):
        with pytest.raises(ValueError, match="tolerance must look like"):
            outputs.validate_tolerance(bad, "cell")


@pytest.mark.notebook
@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_solution_notebook_reproduces_its_stored_outputs(src):
    path = build.solution_path(src)
    stored = nbformat.read(path, 4)
    run = execute_notebook(stored, cwd=path.parent)
    _record(path, "solution", run)
    differences = outputs.compare_notebooks(stored, run.notebook)
    assert not differences, (f"{path.name}: {len(differences)} cell(s) differ from the stored outputs "
                             f"(tag a cell that prints trained results `# %% tags=[\"trained\"]`; "
                             f"see course_lib/outputs.py)\n\n" + outputs.report(differences))


@pytest.mark.notebook
@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_runs_with_its_stubs(src):
    path = build.student_path(src)
    run = execute_notebook(nbformat.read(path, 4), cwd=path.parent)  # raises CellExecutionError on any error
    _record(path, "student", run)


def _record(path, kind, run):
    """Wall time, peak memory and the memory the kernel still holds after the run (what an open
    notebook keeps on Binder), in build/notebook-runs/."""
    folder = BUILD_DIR / "notebook-runs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{path.stem}.{kind}.json").write_text(json.dumps(
        {"wall_s": round(run.wall_s, 1), "peak_mb": round(run.peak_mb), "after_mb": run.rss_mb and round(run.rss_mb)}))
