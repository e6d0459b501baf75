"""Exercise checks that teach.

An :class:`Exercise` compares a student's function (or class) with the reference
implementation on several seeded cases, including edge cases. It prints one clear line:

* pass: the student's implementation is handed back and used from then on;
* not attempted (the stub still raises ``NotImplementedError``): the reference is handed
  back so the rest of the notebook runs;
* mismatch: says what differs (type, shape, dtype, a value or a gradient), prints the hint of a
  known mistake when the student's outputs match that mistake on *every* case (else the
  exercise's general hint), and hands back the reference.

Nothing a student writes can make a check raise: a crash, a wrong type, a hook left on a check
model, in-place edits — each ends in ✘ with a message. The student's own line is shown for a crash.

Notebook usage::

    logit_lens = check_logit_lens(logit_lens)

Building blocks for check authors: :class:`Case`, :func:`gradient_case` (also compares the gradients,
for code the notebook trains through), :func:`check_model` (a factory of check models whose hooks and
parameters are reset around every run) and :func:`randomize_parameters` (every parameter random, so
that skipping a LayerNorm's scale or an unembedding bias shows).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import linecache
import math
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PASS, NOT_ATTEMPTED, FAIL = "passed", "not attempted", "failed"
_CRASHED = object()  # what a student's run that raised stands for
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison: ``run(impl)`` builds fresh (seeded) inputs, calls ``impl`` and
    returns what is compared."""

    name: str
    run: Callable[[Callable], Any]


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A plausible wrong implementation, and the hint printed when a student's outputs
    match it on every case."""

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


# ----------------------------------------------------------------------------- gradients
class _NoGradient:
    """Stands for 'no gradient reached this tensor' in a gradient case's result."""

    def __repr__(self) -> str:
        return "no gradient"


NO_GRADIENT = _NoGradient()
GRADIENT_PREFIX = "gradient w.r.t. "


def _tensors(out) -> list:
    import torch

    if torch.is_tensor(out):
        return [out] if out.is_floating_point() else []
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return []


def _detached(out):
    import torch

    if torch.is_tensor(out):
        return out.detach()
    if isinstance(out, (tuple, list)):
        return type(out)(_detached(o) for o in out)
    if isinstance(out, dict):
        return {k: _detached(v) for k, v in out.items()}
    return out


def with_gradients(out, leaves: dict, seed: int = 0) -> dict:
    """``{"output": out, "gradient w.r.t. NAME": d<out, R>/d leaf, ...}`` for a fixed random
    projection R of every floating-point tensor in ``out``: two implementations with the same
    outputs and the same gradients agree on everything a training loop sees."""
    import torch

    result = {"output": _detached(out)}
    grads = [NO_GRADIENT] * len(leaves)
    tensors = [t for t in _tensors(out) if t.requires_grad]
    if tensors:
        g = seeded_generator(seed)
        total = sum((t * torch.randn(t.shape, generator=g).to(t.dtype)).sum() for t in tensors)
        found = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
        grads = [NO_GRADIENT if d is None else d.detach() for d in found]
    result.update({GRADIENT_PREFIX + name: d for name, d in zip(leaves, grads)})
    return result


def gradient_case(name: str, run: Callable[[Callable], tuple], seed: int = 0) -> Case:
    """A case that compares the output *and* its gradients. ``run(impl)`` builds seeded inputs
    (tensors with ``requires_grad=True`` and/or a module's parameters), calls ``impl`` and returns
    ``(output, leaves)`` with ``leaves = {name: tensor}``."""
    def compare(impl):
        import torch

        with torch.enable_grad():
            out, leaves = run(impl)
            return with_gradients(out, leaves, seed)
    return Case(name, compare)


# ----------------------------------------------------------------------------- check models
_CHECK_MODELS: dict = {}  # built once per session, kept (they are tiny)
_SNAPSHOTS: dict[int, dict] = {}


def check_model(factory: Callable) -> Callable:
    """Decorate a zero-argument factory of a check model (a ``torch.nn.Module``). The model is built
    once; the check engine removes every hook from it and restores its parameters before each run
    of the reference and around each run of the student's code."""
    @functools.wraps(factory)
    def cached():
        model = _CHECK_MODELS.get(id(factory))
        if model is None:
            model = factory()
            _CHECK_MODELS[id(factory)] = model
            _SNAPSHOTS[id(model)] = copy.deepcopy(model.state_dict())
        return model
    return cached


def _hook_count(module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in module.modules())


def _reset_check_models() -> int:
    """Remove every hook from the check models and restore their parameters; return how many hooks
    there were."""
    import torch

    left = 0
    for model in list(_CHECK_MODELS.values()):
        left += _hook_count(model)
        if hasattr(model, "reset_hooks"):
            model.reset_hooks(including_permanent=True)
        for m in model.modules():
            for hooks in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks,
                          getattr(m, "_backward_pre_hooks", {})):
                hooks.clear()
        snapshot = _SNAPSHOTS.get(id(model))
        if snapshot is not None:
            with torch.no_grad():
                model.load_state_dict(snapshot)
            for p in model.parameters():
                p.grad = None
    return left


def randomize_parameters(module, seed: int = 0):
    """Give *every* parameter of ``module`` random values around its initial scale (LayerNorm scales
    become ≠ 1, biases ≠ 0), so that an implementation skipping a parameter gives another result.
    Returns the module."""
    import torch

    g = seeded_generator(seed)
    with torch.no_grad():
        for p in module.parameters():
            spread = max(float(p.std()) if p.numel() > 1 else 0.0, 0.2)
            p.copy_(p.mean() + spread * torch.randn(p.shape, generator=g).to(p.dtype))
    return module


# ----------------------------------------------------------------------------- comparing
def _shape(x) -> tuple | None:
    shape = getattr(x, "shape", None)
    try:
        return tuple(shape) if shape is not None else None
    except TypeError:
        return None


def _is_number(x) -> bool:
    import numbers

    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _short(x, width: int = 80) -> str:
    try:
        text = repr(x)
    except Exception:  # a student's object whose repr raises
        text = f"<{type(x).__name__}>"
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_difference(expected: Any, got: Any, atol: float = 1e-5, rtol: float = 1e-4,
                        where: str = "output") -> str | None:
    """Return ``None`` if ``got`` matches ``expected``, else a sentence saying what differs."""
    import numpy as np

    if got is NO_GRADIENT and expected is not NO_GRADIENT:
        leaf = where.split(GRADIENT_PREFIX)[-1].removesuffix("']")
        return (f"no gradient flows back to {leaf}: the output is cut off from it (a .detach(), .item(), "
                "torch.no_grad(), .data or a NumPy round trip?). The notebook trains through this code.")
    if expected is NO_GRADIENT:
        return None if got is NO_GRADIENT else f"{where}: expected no gradient, got one"
    if _shape(expected) == () and _is_number(got):  # a number is fine for a 0-d tensor
        expected = float(expected)
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
            return f"{where}: expected a sequence of length {len(expected)}, got {_short(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            diff = describe_difference(e, g, atol, rtol, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{where}: expected a dict with keys {sorted(expected)}, got {_short(got)}"
        for k in expected:
            diff = describe_difference(expected[k], got[k], atol, rtol,
                                       k if k.startswith(GRADIENT_PREFIX) else f"{where}[{k!r}]")
            if diff:
                return diff
        return None
    if isinstance(expected, float) or (isinstance(expected, int) and isinstance(got, float)):
        if _shape(got) == () and hasattr(got, "item"):  # a 0-d tensor is fine for a number
            got = got.item()
        if not _is_number(got):
            return f"{where}: expected a number, got {type(got).__name__}"
        if math.isnan(expected) and math.isnan(got):
            return None
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return f"{where}: expected {expected:.4g}, got {got:.4g}"
        return None
    try:
        same = bool(got == expected) and type(got) is type(expected) or (
            _is_number(expected) and _is_number(got) and got == expected)
    except Exception:
        same = False
    return None if same else f"{where}: expected {_short(expected)}, got {_short(got)}"


# ----------------------------------------------------------------------------- explaining a crash
def _describe_value(x) -> str:
    shape = _shape(x)
    if shape is not None and hasattr(x, "dtype"):
        return f"{type(x).__name__} of shape {list(shape)} ({str(x.dtype).replace('torch.', '')})"
    cfg = getattr(x, "cfg", None)
    if cfg is not None and hasattr(cfg, "d_model"):
        return f"{type(x).__name__} (n_layers={cfg.n_layers}, d_model={cfg.d_model}, d_vocab={cfg.d_vocab})"
    return _short(x, 60)


def _student_line(err: BaseException) -> str:
    """The last line of the traceback that is the student's own code (not course_lib, not a library)."""
    frames = traceback.extract_tb(err.__traceback__)
    own = [f for f in frames if not f.filename.startswith(_PACKAGE_DIR) and "site-packages" not in f.filename
           and "/lib/python" not in f.filename]
    if not own:
        return ""
    f = own[-1]
    line = (f.line or linecache.getline(f.filename, f.lineno)).strip()
    return f"\n  In your code, line {f.lineno} of {f.name}: {line}" if line else ""


class _Recorder:
    """Wraps a student's function to remember the arguments of its last call."""

    def __init__(self, impl: Callable):
        self.impl, self.args = impl, None

    def __call__(self, *args, **kwargs):
        self.args = (args, kwargs)
        return self.impl(*args, **kwargs)

    def describe(self) -> str:
        if self.args is None:
            return ""
        args, kwargs = self.args
        parts = [_describe_value(a) for a in args] + [f"{k}={_describe_value(v)}" for k, v in kwargs.items()]
        return f"\n  It was called with: {', '.join(parts)}"


# ----------------------------------------------------------------------------- the exercise
def _torch_state():
    """Torch's global settings a student's function could change and leave changed (None: no torch)."""
    torch = sys.modules.get("torch")
    return None if torch is None else (torch.is_grad_enabled(), torch.get_default_dtype())


def _restore_torch_state(state) -> str:
    """Restore what :func:`_torch_state` saved; name what had changed ('' if nothing)."""
    torch = sys.modules.get("torch")
    if state is None or torch is None:
        return ""
    grad, dtype = state
    changed = []
    if torch.is_grad_enabled() != grad:
        changed.append("gradient mode (torch.set_grad_enabled)")
        torch.set_grad_enabled(grad)
    if torch.get_default_dtype() != dtype:
        changed.append("default dtype (torch.set_default_dtype)")
        torch.set_default_dtype(dtype)
    return " and ".join(changed)


class Exercise:
    """A check: ``check(student_impl)`` prints the verdict and returns the implementation to use.

    ``hint`` (required) explains the idea; it is shown when no listed mistake matches."""

    def __init__(self, name: str, reference: Callable, cases: Callable[[], Sequence[Case]],
                 mistakes: Sequence[Mistake] = (), hint: str | None = None,
                 atol: float = 1e-5, rtol: float = 1e-4):
        if not callable(reference) or not callable(cases):
            raise TypeError("Exercise(name, reference, cases, ...): reference and cases must be callable")
        if not hint:
            raise ValueError(f"Exercise {name!r}: give a general hint that explains the idea")
        self.name, self.reference, self.cases = name, reference, cases
        self.mistakes, self.hint, self.atol, self.rtol = tuple(mistakes), hint, atol, rtol

    def _diff(self, expected, got) -> str | None:
        try:
            return describe_difference(expected, got, self.atol, self.rtol)
        except Exception as err:  # a student's object the comparison cannot handle
            return f"output: cannot be compared with the expected {type(expected).__name__} ({type(err).__name__})"

    def _run_student(self, case: Case, impl: Callable, first: bool = True):
        """``(output, None)`` or ``(_CRASHED, message)``; a stub's NotImplementedError on the first case
        is raised through (not attempted); on a later case it is a crash like any other."""
        _reset_check_models()
        recorder = impl if isinstance(impl, type) else _Recorder(impl)
        state = _torch_state()
        try:
            got = case.run(recorder)
        except NotImplementedError:
            if first:
                raise
            return _CRASHED, ("it raised NotImplementedError on this case, after running on the earlier ones: "
                              "every input the exercise describes must be handled")
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # SystemExit (exit()) included: nothing a student writes ends the check
            where = recorder.describe() if isinstance(recorder, _Recorder) else ""
            return _CRASHED, (f"it raised {type(err).__name__}: {_short(str(err), 300)}"
                          f"{_student_line(err)}{where}")
        finally:
            left = _reset_check_models()
            changed = _restore_torch_state(state)
        if left:
            return _CRASHED, (f"your code left {left} hook(s) on the model. Remove hooks when you are done "
                          "(model.reset_hooks(), or use model.hooks(...) / run_with_hooks, which remove them).")
        if changed:
            return _CRASHED, (f"your code changed torch's global {changed} and left it changed: every later "
                              "cell would run with it (use a `with torch.no_grad():` block, or pass dtype= to "
                              "the tensors you create, instead of changing the global setting)")
        return got, None

    def _matching_hint(self, cases, outputs: list) -> str:
        """The hint of the first listed mistake whose outputs equal the student's on every case."""
        for mistake in self.mistakes:
            try:
                if all(got is not _CRASHED and self._diff(self._run_mistake(case, mistake), got) is None
                       for case, got in zip(cases, outputs)):
                    return mistake.hint
            except Exception:  # a mistake that cannot run on a case does not match
                continue
        return self.hint

    @staticmethod
    def _run_mistake(case: Case, mistake: Mistake):
        _reset_check_models()
        try:
            return case.run(mistake.impl)
        finally:
            _reset_check_models()

    def _evaluate(self, impl: Callable) -> CheckResult:
        cases = list(self.cases())
        failure, outputs = None, []
        for case in cases:
            _reset_check_models()
            expected = case.run(self.reference)
            try:
                got, crash = self._run_student(case, impl, first=not outputs)
            except NotImplementedError:
                return CheckResult(NOT_ATTEMPTED, f"{self.name}: not implemented yet (the stub raises "
                                   "NotImplementedError). Using the reference implementation so the rest "
                                   "of the notebook runs; come back to it!")
            outputs.append(got)
            if failure is None:
                if crash:
                    return CheckResult(FAIL, f"{self.name} failed on case '{case.name}': {crash}", self.hint)
                diff = self._diff(expected, got)
                if diff:
                    failure = f"{self.name} failed on case '{case.name}': {diff}"
        if failure:
            return CheckResult(FAIL, failure, self._matching_hint(cases, outputs))
        return CheckResult(PASS, f"{self.name} passed: matches the reference on all {len(cases)} "
                           f"cases ({', '.join(c.name for c in cases)}).")

    def evaluate(self, impl: Callable) -> CheckResult:
        if not callable(impl):
            return CheckResult(FAIL, f"{self.name}: expected a function (or class), got {type(impl).__name__}",
                               self.hint)
        try:
            return self._evaluate(impl)
        except NotImplementedError:
            return CheckResult(NOT_ATTEMPTED, f"{self.name}: not implemented yet. Using the reference.")
        except Exception as err:  # never let a check crash the notebook
            return CheckResult(FAIL, f"{self.name}: could not be checked ({type(err).__name__}: "
                               f"{_short(str(err), 200)}){_student_line(err)}", self.hint)
        finally:
            _reset_check_models()

    def __call__(self, impl: Callable) -> Callable:
        result = self.evaluate(impl)
        if result.status == PASS:
            print(f"✔ {result.message}")
            return impl
        if result.status == NOT_ATTEMPTED:
            print(f"… {result.message}")
            return self.reference
        print(f"✘ {result.message}")
        print(f"  Hint: {result.hint}")
        print("  Continuing with the reference implementation so the rest of the notebook runs.")
        return self.reference


def seeded_generator(seed: int):
    """A torch.Generator with a fixed seed, for building check inputs."""
    import torch

    return torch.Generator().manual_seed(int(seed))
