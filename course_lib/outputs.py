"""Compare a solution notebook's stored outputs with a fresh run of it, with tolerances for numbers.

Training on another CPU (other SIMD width, other reduction order, another thread count) moves
the last digits of trained results, so the stored outputs cannot be compared byte for byte.
What is compared, per code cell, after sanitising addresses, paths, timings and progress bars:

- the text of the streams (stdout, stderr) and of every ``text/plain`` result, with numbers
  taken out: it must be **identical** (runs of spaces count as one space, so a column that
  widens by a digit does not matter);
- the numbers, in order, numerically:

  * untagged cells: a number with a decimal point (``0.976``, ``99.6%``, ``2.58e+20``) may differ
    by one unit in its last printed digit; integers must be equal;
  * cells tagged ``trained`` (``# %% tags=["trained"]`` in the source) hold trained results:
    ``|fresh - stored| <= atol + rtol * |stored|`` with rtol 5 % and atol 0.01, or the cell's own
    ``tolerance={"rtol": ..., "atol": ...}`` metadata.

An error in any cell fails. Images and widget states are not compared.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re

TRAINED_TAG = "trained"
DEFAULT_TRAINED = {"rtol": 0.05, "atol": 0.01}

SANITIZE = [  # (pattern, replacement), applied in order
    (re.compile(r"0x[0-9a-fA-F]+"), "0xADDRESS"),
    (re.compile(r"(/[\w.\-]+)+/(site-packages|\.venv|tmp)/[\w./\-]*"), "PATH"),
    (re.compile(r"\d+%\|[^|]*\|\s*\d+/\d+\s*\[[^\]]*\]"), "PROGRESS"),
    (re.compile(r"\b\d+(\.\d+)?\s?(s|sec|seconds|ms)\b"), "TIME"),
    (re.compile(r"[\d.?]+\s?(it/s|s/it)"), "RATE"),
]

# A number stands alone: not part of a name (L0H3, blocks.0.attn, 8B) nor of a longer number.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w)(?!\.\w)")


def sanitize(text: str) -> str:
    for pattern, replacement in SANITIZE:
        text = pattern.sub(replacement, text)
    return text


def validate_tolerance(tolerance, where: str = "") -> dict:
    """The ``tolerance`` cell metadata as ``{"rtol": float, "atol": float}`` (defaults filled in)."""
    if not isinstance(tolerance, dict) or not set(tolerance) <= {"rtol", "atol"} or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in tolerance.values()):
        raise ValueError(f"{where}: tolerance must look like {{\"rtol\": 0.05, \"atol\": 0.01}} "
                         f"(non-negative numbers), got {tolerance!r}")
    return {**DEFAULT_TRAINED, **tolerance}


def cell_tolerance(cell) -> dict | None:
    """The cell's tolerance for trained results, or None for an untagged cell (last-digit rule)."""
    metadata = cell.get("metadata", {})
    if TRAINED_TAG not in metadata.get("tags", []):
        return None
    return validate_tolerance(metadata.get("tolerance", {}), f"cell {cell.get('id', '?')}")


def _decimals(token: str) -> int | None:
    """Digits after the decimal point of a printed number, None for an integer."""
    mantissa = re.split(r"[eE]", token)[0]
    if "." not in mantissa and mantissa == token:
        return None
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _unit(token: str, decimals_if_bare_point: int) -> float:
    """One unit in the last printed digit (``0.976`` → 0.001, ``2.58e+20`` → 1e18, ``3e-05`` → 1e-05)."""
    parts = re.split(r"[eE]", token)
    exponent = int(parts[1]) if len(parts) > 1 else 0
    decimals = _decimals(token)
    if parts[0].endswith(".") and decimals == 0:  # numpy's "0." in an array printed to N decimals
        decimals = decimals_if_bare_point
    return 10.0 ** (exponent - decimals)


def _split(text: str) -> tuple[list[str], list[str]]:
    """Text pieces (spaces collapsed) and the number tokens between them."""
    pieces, numbers = [], []
    last = 0
    for match in NUMBER.finditer(text):
        pieces.append(text[last:match.start()])
        numbers.append(match.group())
        last = match.end()
    pieces.append(text[last:])
    return [re.sub(r"[ \t]+", " ", p) for p in pieces], numbers


def _finest_decimals(numbers: list[str]) -> int:
    return max((d for d in map(_decimals, numbers) if d is not None), default=0)


def compare_text(stored: str, fresh: str, tolerance: dict | None) -> list[str]:
    """Problems found between two sanitised texts; empty when they agree."""
    stored_pieces, stored_numbers = _split(stored)
    fresh_pieces, fresh_numbers = _split(fresh)
    if stored_pieces != fresh_pieces:
        return ["the text differs (not only numbers)"]
    stored_finest, fresh_finest = _finest_decimals(stored_numbers), _finest_decimals(fresh_numbers)
    problems = []
    for s, f in zip(stored_numbers, fresh_numbers):
        a, b = float(f), float(s)
        if a == b:
            continue
        if math.isnan(a) or math.isnan(b):
            problems.append(f"{s} → {f}")
            continue
        if tolerance is None:
            if _decimals(s) is None and _decimals(f) is None:
                problems.append(f"{s} → {f} (an integer in an untagged cell must be equal)")
                continue
            allowed = max(_unit(s, stored_finest), _unit(f, fresh_finest))
            why = "one unit in the last digit (cell not tagged 'trained')"
        else:
            allowed = tolerance["atol"] + tolerance["rtol"] * abs(b)
            why = f"trained: atol {tolerance['atol']:g} + rtol {tolerance['rtol']:g} × |stored|"
        if abs(a - b) > allowed * (1 + 1e-9):
            problems.append(f"{s} → {f} (differs by {abs(a - b):.3g}, allowed {allowed:.3g}: {why})")
    return problems


def cell_texts(cell) -> dict[str, str]:
    """What is compared of a code cell: the streams by name, then the text/plain results in order."""
    texts: dict[str, str] = {}
    plain = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            texts[output["name"]] = texts.get(output["name"], "") + output["text"]
        elif "text/plain" in output.get("data", {}):
            plain.append(output["data"]["text/plain"])
    for i, text in enumerate(plain):
        texts[f"result {i + 1}"] = text
    return {name: sanitize(text) for name, text in texts.items()}


def cell_errors(cell) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in cell.get("outputs", []) if o["output_type"] == "error"]


@dataclasses.dataclass
class CellDifference:
    index: int
    source: str
    problems: list[str]
    diff: str

    def __str__(self) -> str:
        first_line = self.source.strip().splitlines()[0] if self.source.strip() else ""
        lines = [f"cell {self.index} ({first_line[:70]!r}):", *(f"  - {p}" for p in self.problems)]
        if self.diff:
            lines += ["  stored → fresh:", *("    " + line for line in self.diff.splitlines())]
        return "\n".join(lines)


def compare_notebooks(stored, fresh) -> list[CellDifference]:
    """Every code cell whose fresh outputs differ from the stored ones beyond the tolerances."""
    if len(stored.cells) != len(fresh.cells):
        raise ValueError(f"the notebooks have {len(stored.cells)} and {len(fresh.cells)} cells")
    differences = []
    for index, (old, new) in enumerate(zip(stored.cells, fresh.cells)):
        if old.cell_type != "code":
            continue
        problems = [f"stored output has an error: {e}" for e in cell_errors(old)]
        problems += [f"error: {e}" for e in cell_errors(new)]
        old_texts, new_texts = cell_texts(old), cell_texts(new)
        tolerance = cell_tolerance(old)
        diff = []
        for name in sorted(set(old_texts) | set(new_texts)):
            if name not in new_texts or name not in old_texts:
                problems.append(f"{name}: {'missing in the fresh run' if name in old_texts else 'new in the fresh run'}")
                found = [name]
            else:
                found = compare_text(old_texts[name], new_texts[name], tolerance)
                problems += [f"{name}: {p}" for p in found]
            if found:
                diff += difflib.unified_diff(old_texts.get(name, "").splitlines(), new_texts.get(name, "").splitlines(),
                                             f"stored {name}", f"fresh {name}", lineterm="", n=0)
        if problems:
            differences.append(CellDifference(index, old.source, problems, "\n".join(diff)))
    return differences


def report(differences: list[CellDifference]) -> str:
    return "\n\n".join(map(str, differences))
