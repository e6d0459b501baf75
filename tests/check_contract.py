"""What every exercise check must do — the single place that says it (shared by the notebooks' check
tests):

* accept the reference, and every differently written correct implementation (``alternatives``);
* reject each plausible wrong implementation (``wrongs``) with ✘ and its targeted hint (or, where the
  entry's hint is ``None``, the exercise's general hint), handing back the reference;
* hand back the reference for an untouched stub;
* survive a standard battery of junk (returns None, a string, NaN, a generator, raises, leaves a hook on
  a model argument, an object that cannot even be printed): ✘ with a message, never an exception;
* have listed mistakes that the cases tell apart (else a hint could name a mistake the student did not make),
  each of them really wrong.

A test module defines ``CASES = {name: Contract(check, reference, wrongs=[(impl, hint), ...],
alternatives=[impl, ...])}`` and gets the tests with ``globals().update(contract_tests(CASES))``.
"""
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from course_lib.checking import describe_difference

MIN_WRONGS, MIN_ALTERNATIVES = 5, 1


def _stub(*args, **kwargs):
    raise NotImplementedError


@dataclasses.dataclass
class Contract:
    check: Any  # the Exercise
    reference: Callable
    wrongs: list = dataclasses.field(default_factory=list)  # [(implementation, hint fragment or None)]
    alternatives: list = dataclasses.field(default_factory=list)  # correct, differently written
    stub: Callable = _stub


class _Unprintable:
    def __repr__(self):
        raise RuntimeError("repr exploded")

    def __eq__(self, other):
        raise RuntimeError("eq exploded")

    __hash__ = object.__hash__


def _junk(reference):
    """Implementations no check may crash on. ``leaky`` is right but leaves a hook on any model argument."""
    seen_model = []

    def leaky(*args, **kwargs):
        for a in (*args, *kwargs.values()):
            if hasattr(a, "add_hook") and getattr(a, "hook_dict", None):
                seen_model.append(True)
                a.add_hook(next(iter(a.hook_dict)), lambda x, hook: x)
        return reference(*args, **kwargs)

    if isinstance(reference, type):
        class RaisingInit:
            def __init__(self, *args, **kwargs):
                raise ValueError("boom")

        class Empty:
            pass

        return {"raises in __init__": RaisingInit, "empty class": Empty,
                "not a class": lambda *a, **k: None}, None, seen_model
    junk = {
        "returns None": lambda *a, **k: None,
        "returns a string": lambda *a, **k: "42",
        "returns NaN": lambda *a, **k: float("nan"),
        "returns a generator": lambda *a, **k: (i for i in range(3)),
        "raises ValueError": lambda *a, **k: (_ for _ in ()).throw(ValueError("boom")),
        "returns an unprintable object": lambda *a, **k: _Unprintable(),
        "not callable": 42,
    }
    return junk, leaky, seen_model


def contract_tests(cases: dict) -> dict:
    names = list(cases)

    @pytest.mark.parametrize("name", names)
    def test_reference_and_alternatives_pass(name, capsys):
        c = cases[name]
        assert c.check.name == name, "the dict key is the exercise's name"
        assert c.check(c.reference) is c.reference
        assert f"✔ {name} passed" in capsys.readouterr().out
        assert len(c.alternatives) >= MIN_ALTERNATIVES, "give a differently written correct implementation"
        for alt in c.alternatives:
            assert c.check(alt) is alt, "a correct alternative must pass"
            out = capsys.readouterr().out
            assert f"✔ {name} passed" in out, out

    @pytest.mark.parametrize("name", names)
    def test_mistakes_get_their_hint(name, capsys):
        c = cases[name]
        assert len(c.wrongs) >= MIN_WRONGS, f"write at least {MIN_WRONGS} plausible wrong implementations"
        for i, (wrong, hint) in enumerate(c.wrongs):
            assert c.check(wrong) is c.reference, f"wrong #{i} must be rejected (the reference is handed back)"
            out = capsys.readouterr().out
            assert f"✘ {name} failed" in out, f"wrong #{i}: {out}"
            assert "Continuing with the reference implementation" in out
            expected = hint if hint is not None else c.check.hint
            assert expected in out, f"wrong #{i} should get the hint {expected!r}; got:\n{out}"

    @pytest.mark.parametrize("name", names)
    def test_stub_falls_back(name, capsys):
        c = cases[name]
        assert c.check(c.stub) is c.reference
        assert "not implemented yet" in capsys.readouterr().out

    @pytest.mark.parametrize("name", names)
    def test_junk_never_crashes_a_check(name, capsys):
        c = cases[name]
        junk, leaky, seen_model = _junk(c.reference)
        for label, impl in junk.items():
            assert c.check(impl) is c.reference, label
            out = capsys.readouterr().out
            assert f"✘ {name}" in out, f"{label}: {out}"
        if leaky is not None:
            result = c.check(leaky)
            out = capsys.readouterr().out
            if seen_model:
                assert result is c.reference and "left" in out and "hook" in out, out
            else:
                assert result is leaky, out
        assert c.check(c.reference) is c.reference, "a check still works after junk"
        assert f"✔ {name} passed" in capsys.readouterr().out

    @pytest.mark.parametrize("name", names)
    def test_listed_mistakes_are_wrong_and_told_apart(name):
        c = cases[name]
        check = c.check
        cases_ = list(check.cases())
        outputs = []
        for mistake in check.mistakes:
            row = []
            for case in cases_:
                try:
                    row.append(check._run_mistake(case, mistake))
                except Exception as err:  # noqa: BLE001 - a mistake may crash on an edge case
                    row.append(err)
            outputs.append(row)
        reference = [case.run(check.reference) for case in cases_]

        def same(a, b):
            if isinstance(a, Exception) or isinstance(b, Exception):
                return False
            return all(describe_difference(x, y, check.atol, check.rtol) is None for x, y in zip(a, b))

        for i, row in enumerate(outputs):
            assert not same(row, reference), f"listed mistake {check.mistakes[i].hint!r} gives the right answer"
            for j in range(i):
                assert not same(row, outputs[j]), (f"the cases cannot tell mistakes {check.mistakes[j].hint!r} and "
                                                   f"{check.mistakes[i].hint!r} apart: add a case that does")

    return {f.__name__: f for f in (test_reference_and_alternatives_pass, test_mistakes_get_their_hint,
                                    test_stub_falls_back, test_junk_never_crashes_a_check,
                                    test_listed_mistakes_are_wrong_and_told_apart)}
