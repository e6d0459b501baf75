"""Exercise checks that teach.

An :class:`Exercise` compares a student's function (or class) with the reference
implementation on several seeded cases, including edge cases. It prints one clear line:

* pass: the student's implementation is handed back and used from then on;
* not attempted (the stub still raises ``NotImplementedError``): the reference is handed
  back so the rest of the notebook runs;
* mismatch: says what differs (type, shape, dtype or a value), prints a targeted hint when
  the output matches a known mistake, and hands back the reference.

Notebook usage::

    logit_lens = check_logit_lens(logit_lens)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

PASS, NOT_ATTEMPTED, FAIL = "passed", "not attempted", "failed"


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison: ``run(impl)`` builds fresh (seeded) inputs, calls ``impl`` and
    returns what is compared."""

    name: str
    run: Callable[[Callable], Any]


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A plausible wrong implementation, and the hint printed when a student's output
    matches it."""

    hint: str
    impl: Callable


@dataclasses.dataclass(frozen=True)
class CheckResult:
    status: str  # PASS, NOT_ATTEMPTED or FAIL
    message: str
    hint: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASS


def _shape(x) -> tuple | None:
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else None


def describe_difference(expected: Any, got: Any, atol: float = 1e-5, rtol: float = 1e-4,
                        where: str = "output") -> str | None:
    """Return ``None`` if ``got`` matches ``expected``, else a sentence saying what differs."""
    import numpy as np

    if _shape(expected) is not None:  # torch tensor or numpy array
        if _shape(got) is None:
            return f"{where}: expected an array/tensor of shape {_shape(expected)}, got {type(got).__name__}"
        if _shape(got) != _shape(expected):
            return f"{where}: shape differs: expected {_shape(expected)}, got {_shape(got)}"
        if type(got).__module__.split(".")[0] != type(expected).__module__.split(".")[0]:
            return f"{where}: expected a {type(expected).__name__}, got a {type(got).__name__}"
        if hasattr(expected, "dtype") and str(got.dtype) != str(expected.dtype):
            return f"{where}: dtype differs: expected {expected.dtype}, got {got.dtype}"
        e = np.asarray(expected.detach().cpu() if hasattr(expected, "detach") else expected, dtype=float)
        g = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=float)
        bad = ~np.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return (f"{where}: values differ at index {idx}: expected {e[idx]:.4g}, got {g[idx]:.4g} "
                    f"({int(bad.sum())} of {bad.size} entries differ)")
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{where}: expected a sequence of length {len(expected)}, got {got!r:.80}"
        for i, (e, g) in enumerate(zip(expected, got)):
            diff = describe_difference(e, g, atol, rtol, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{where}: expected a dict with keys {sorted(expected)}, got {got!r:.80}"
        for k in expected:
            diff = describe_difference(expected[k], got[k], atol, rtol, f"{where}[{k!r}]")
            if diff:
                return diff
        return None
    if isinstance(expected, float) or (isinstance(expected, int) and isinstance(got, float)):
        if _shape(got) == ():  # a 0-d tensor is fine for a number
            got = got.item()
        if not isinstance(got, (int, float)):
            return f"{where}: expected a number, got {type(got).__name__}"
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return f"{where}: expected {expected:.4g}, got {got:.4g}"
        return None
    if got != expected:
        return f"{where}: expected {expected!r:.80}, got {got!r:.80}"
    return None


class Exercise:
    """A check: ``check(student_impl)`` prints the verdict and returns the implementation to use."""

    def __init__(self, name: str, reference: Callable, cases: Callable[[], Sequence[Case]],
                 mistakes: Sequence[Mistake] = (), hint: str | None = None,
                 atol: float = 1e-5, rtol: float = 1e-4):
        self.name, self.reference, self.cases = name, reference, cases
        self.mistakes, self.hint, self.atol, self.rtol = tuple(mistakes), hint, atol, rtol

    def _diff(self, expected, got) -> str | None:
        return describe_difference(expected, got, self.atol, self.rtol)

    def _hint_for(self, case: Case, got) -> str | None:
        for mistake in self.mistakes:
            try:
                if self._diff(case.run(mistake.impl), got) is None:
                    return mistake.hint
            except Exception:  # a mistake that cannot run on this case simply does not match
                continue
        return self.hint

    def evaluate(self, impl: Callable) -> CheckResult:
        cases = self.cases()
        for case in cases:
            expected = case.run(self.reference)
            try:
                got = case.run(impl)
            except NotImplementedError:
                return CheckResult(NOT_ATTEMPTED, f"{self.name}: not implemented yet (the stub raises "
                                   "NotImplementedError). Using the reference implementation so the rest "
                                   "of the notebook runs; come back to it!")
            except Exception as err:  # a crash is a finding, not a reason to stop the notebook
                return CheckResult(FAIL, f"{self.name} failed on case '{case.name}': it raised "
                                   f"{type(err).__name__}: {err}", self.hint)
            diff = self._diff(expected, got)
            if diff:
                return CheckResult(FAIL, f"{self.name} failed on case '{case.name}': {diff}",
                                   self._hint_for(case, got))
        return CheckResult(PASS, f"{self.name} passed: matches the reference on all {len(cases)} "
                           f"cases ({', '.join(c.name for c in cases)}).")

    def __call__(self, impl: Callable) -> Callable:
        result = self.evaluate(impl)
        if result.status == PASS:
            print(f"✔ {result.message}")
            return impl
        if result.status == NOT_ATTEMPTED:
            print(f"… {result.message}")
            return self.reference
        print(f"✘ {result.message}")
        if result.hint:
            print(f"  Hint: {result.hint}")
        print("  Continuing with the reference implementation so the rest of the notebook runs.")
        return self.reference


def seeded_generator(seed: int):
    """A torch.Generator with a fixed seed, for building check inputs."""
    import torch

    return torch.Generator().manual_seed(seed)
