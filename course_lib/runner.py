"""Run the course headless: execute notebooks, keep executed copies and HTML, and measure
wall time and peak memory per notebook (the project's performance benchmark).

    python -m course_lib run              # every solution notebook
    python -m course_lib run 00 01        # some of them
    python -m course_lib run --student    # the student notebooks (stubs fall back to references)
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .paths import BUILD_DIR, KERNELS_DIR, OFFLINE_KERNEL, REPO_ROOT

BUDGET_S, BUDGET_MB, IMPORT_BUDGET_S, LOAD_BUDGET_S = 180.0, 1024.0, 3.0, 2.0
# Appended to every executed notebook, then removed: the kernel's peak and its steady-state memory
# (what it still holds after the notebook has run, after a garbage collection), in MB.
_MEMORY_PROBE = """\
import gc as _gc, json as _json, resource as _resource, sys as _sys
_gc.collect()
_peak = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / (1024 if _sys.platform != "darwin" else 1024 ** 2)
try:
    with open("/proc/self/statm") as _f:
        _rss = int(_f.read().split()[1]) * _resource.getpagesize() / 1024 ** 2
except OSError:
    _rss = None
print(_json.dumps({"peak_mb": _peak, "rss_mb": _rss}))
"""


@dataclasses.dataclass
class Run:
    notebook: object  # the executed nbformat notebook
    wall_s: float
    peak_mb: float
    rss_mb: float | None  # steady state: what the kernel still holds after the last cell (None off Linux)


def use_course_kernels() -> None:
    """Make the course's network-blocking kernel visible to Jupyter in this process."""
    paths = os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
    if str(KERNELS_DIR) not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(KERNELS_DIR), *filter(None, paths)])


def execute_notebook(nb, cwd: Path | str, timeout: int = 900) -> Run:
    """Execute ``nb`` in the offline kernel (raises ``CellExecutionError`` at the first cell error);
    return it with its wall time and the kernel's peak and steady-state memory."""
    import nbformat
    from nbclient import NotebookClient

    use_course_kernels()
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # work on a copy
    nb.cells.append(nbformat.v4.new_code_cell(_MEMORY_PROBE))
    start = time.perf_counter()
    NotebookClient(nb, kernel_name=OFFLINE_KERNEL, timeout=timeout,
                   resources={"metadata": {"path": str(Path(cwd))}}).execute()
    wall = time.perf_counter() - start
    probe = nb.cells.pop()
    memory = json.loads(probe.outputs[-1]["text"].strip().splitlines()[-1])
    return Run(nb, wall, memory["peak_mb"], memory["rss_mb"])


def measure_import_time() -> float:
    """Seconds for a fresh interpreter to ``import course_lib`` (minus the interpreter's start)."""
    def timed(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
        return time.perf_counter() - start

    return max(0.0, timed("import course_lib") - timed("pass"))


def measure_world_load_time() -> float | None:
    """Seconds for ``load_world_model()`` once torch and TransformerLens are imported (None if not built)."""
    code = ("import time, transformer_lens\nfrom course_lib.world import load_world_model\n"
            "t = time.perf_counter(); load_world_model(device='cpu'); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    return float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None


def measure_sae_trainers() -> dict | None:
    """Tokens/s of the from-scratch SAE trainer and of sae-lens's SAETrainer on the same data."""
    out = subprocess.run([sys.executable, "-m", "course_lib.sae", "bench"], capture_output=True, text=True,
                         cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout) if out.returncode == 0 else None


_GROKKING_BENCH = ("import json\nfrom course_lib.implicit_reasoning.bench import bench\n"
                   "print('RESULT ' + json.dumps(bench()))")


def measure_grokking_recipes() -> dict | None:
    """Notebook 06's shipped and live recipes side by side (``python -m course_lib.implicit_reasoning bench``:
    steps to the thresholds on 3 seeds, steps/s, ratios live / shipped); prints its table."""
    out = subprocess.run([sys.executable, "-c", _GROKKING_BENCH], capture_output=True, text=True,
                         cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        print(f"grokking benchmark failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    lines = out.stdout.splitlines()
    print("\n".join(line for line in lines if not line.startswith("RESULT ")))
    return json.loads(next(line for line in lines if line.startswith("RESULT "))[len("RESULT "):])


def _to_html(nb, path: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")


def run_course(only: list[str] | None = None, student: bool = False,
               out: Path | str = BUILD_DIR / "course") -> list[dict]:
    """Execute the notebooks, write executed copies + HTML to ``out`` and print the benchmark table."""
    import nbformat

    from .build import select, solution_path, student_path

    paths = [student_path(src) if student else solution_path(src) for src in select(only)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        print(f"running {path.relative_to(REPO_ROOT)} …", flush=True)
        run = execute_notebook(nbformat.read(path, 4), cwd=path.parent)
        nbformat.write(run.notebook, out / path.name)
        _to_html(run.notebook, out / f"{path.stem}.html")
        rows.append({"notebook": path.stem, "wall_s": round(run.wall_s, 1), "peak_mb": round(run.peak_mb),
                     "steady_mb": run.rss_mb and round(run.rss_mb),
                     "within_budget": run.wall_s <= BUDGET_S and run.peak_mb <= BUDGET_MB})
    import_s, load_s = measure_import_time(), measure_world_load_time()
    sae = measure_sae_trainers() if any(r["notebook"].startswith("02") for r in rows) else None
    grokking = measure_grokking_recipes() if any(r["notebook"].startswith("06") for r in rows) else None
    (out / "benchmark.json").write_text(json.dumps({"notebooks": rows, "import_course_lib_s": round(import_s, 2),
                                                    "load_world_model_s": load_s and round(load_s, 2),
                                                    "sae_trainers": sae, "grokking_recipes": grokking,
                                                    "cpu_count": os.cpu_count()}, indent=2) + "\n")
    print(f"\n{'notebook':<40}{'wall (s)':>10}{'peak (MB)':>11}{'after (MB)':>12}  "
          f"budget ({BUDGET_S:.0f} s, {BUDGET_MB:.0f} MB peak)")
    for r in rows:
        print(f"{r['notebook']:<40}{r['wall_s']:>10.1f}{r['peak_mb']:>11}{r['steady_mb'] or '?':>12}  "
              f"{'ok' if r['within_budget'] else 'OVER'}")
    print("'after': the kernel's memory once its notebook has run (what an open notebook keeps holding)")
    print(f"{'import course_lib':<40}{import_s:>10.2f}{'':>11}  {'ok' if import_s <= IMPORT_BUDGET_S else 'OVER'} "
          f"(budget {IMPORT_BUDGET_S:.0f} s)")
    if load_s is not None:
        print(f"{'load_world_model()':<40}{load_s:>10.2f}{'':>11}  {'ok' if load_s <= LOAD_BUDGET_S else 'OVER'} "
              f"(budget {LOAD_BUDGET_S:.0f} s)")
    if sae is not None:
        print(f"SAE training throughput (tokens/s, one thread): {json.dumps(sae)}")
    print(f"\nexecuted notebooks, HTML and benchmark.json are in {out}")
    return rows
