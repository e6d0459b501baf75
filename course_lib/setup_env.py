"""Set up the course's virtual environment (``make setup``; ``make lab`` and ``make test`` call it).

Runs with the system Python and the standard library only (nothing is installed yet)::

    python3 -m course_lib.setup_env choice [auto|cpu|cuda|pypi]   # prints the torch build to install
    python3 -m course_lib.setup_env install --venv .venv --torch cpu [--index URL]

Which torch build (``TORCH=auto``, the default):

- Linux without an NVIDIA GPU → ``cpu``: the CPU build from https://download.pytorch.org/whl/cpu
  (about 0.2 GB instead of about 2.7 GB of CUDA packages). Where that index cannot be reached
  (checked with a 5-second timeout) pip installs from the package index alone;
- Linux with an NVIDIA GPU → ``cuda``: PyPI's default build, with CUDA;
- macOS (and anything else) → ``pypi``: PyPI's build, which is CPU/Apple-GPU there anyway.

The choice is written to the stamp file ``.venv/.installed``; when it changes (``make lab
TORCH=cuda``, a GPU added) the next ``make`` rebuilds the environment instead of keeping the old one.
"""
from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CHOICES = ("cpu", "cuda", "pypi")
REPO_ROOT = Path(__file__).resolve().parent.parent
KERNEL_DIR = Path(__file__).resolve().parent / "jupyter" / "kernels" / "course-offline"


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is loaded (Linux) or ``nvidia-smi`` lists a GPU."""
    if Path("/proc/driver/nvidia/version").exists():
        return True
    smi = shutil.which("nvidia-smi") or ("/usr/lib/wsl/lib/nvidia-smi" if Path("/usr/lib/wsl/lib/nvidia-smi").exists()
                                         else None)
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def torch_choice(requested: str = "auto") -> str:
    """``cpu``, ``cuda`` or ``pypi`` (see the module docstring)."""
    if requested in CHOICES:
        return requested
    if requested != "auto":
        raise SystemExit(f"TORCH must be auto, {', '.join(CHOICES)}; got {requested!r}")
    if platform.system() != "Linux":
        return "pypi"
    return "cuda" if has_nvidia_gpu() else "cpu"


def reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "/", method="HEAD"), timeout=timeout):
            return True
    except Exception:  # no route, no DNS, refused, proxy, TLS: all mean "not reachable"
        return False


def installed_choice(venv: Path) -> str | None:
    """The choice the environment was made with (its stamp), or, for an environment made before
    stamps recorded it, the build of the torch it holds (``cuda`` or ``cpu``; None if unknown)."""
    stamp = venv / ".installed"
    if stamp.exists() and stamp.read_text().strip():
        return stamp.read_text().split()[0]
    python = venv / "bin" / "python"
    if not python.exists() or platform.system() != "Linux":
        return None
    out = subprocess.run([str(python), "-c", "import torch; print('cuda' if torch.version.cuda else 'cpu')"],
                         capture_output=True, text=True)
    return out.stdout.strip() or None if out.returncode == 0 else None


def _run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def install(venv: Path, choice: str, index: str | None = None) -> None:
    """Create ``venv`` (from scratch if it holds another torch choice), install the pins and
    course_lib, register the course kernel, and write the stamp."""
    start = time.perf_counter()
    previous = installed_choice(venv)
    if index is None and choice == "cpu":
        if reachable(CPU_INDEX):
            index = CPU_INDEX
        else:
            print(f"note: {CPU_INDEX} cannot be reached: installing torch from the package index alone", flush=True)
    print(f"Setting up {venv}/ with the {choice} build of torch"
          f"{f' (from {index})' if index else ''}. This takes about 2 minutes with a fast connection "
          f"with the CPU build (2.2 GB on disk); the CUDA build downloads about 2.7 GB more.",
          flush=True)
    if previous is not None and previous != choice:
        print(f"torch build changed ({previous} → {choice}): rebuilding {venv}/ from scratch", flush=True)
        _run([sys.executable, "-m", "venv", "--clear", str(venv)])
    else:
        _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    extra = ["--extra-index-url", index] if index else []
    _run([python, "-m", "pip", "install", "--progress-bar", "on", *extra,
          "-r", str(REPO_ROOT / "requirements.txt"), "-c", str(REPO_ROOT / "constraints.txt")])
    _run([python, "-m", "pip", "install", "--no-deps", "-e", str(REPO_ROOT)])
    register_kernel(python)
    build = subprocess.run([python, "-c", "import torch; print('cuda' if torch.version.cuda else 'cpu')"],
                           capture_output=True, text=True).stdout.strip()
    (venv / ".installed").write_text(f"{choice}\n# torch build installed: {build}; index: {index or 'package index'}\n")
    print(f"{venv}/ is ready ({time.perf_counter() - start:.0f} s; torch {build} build).", flush=True)


LAB_SETTINGS = {  # JupyterLab defaults for the course's environment (overrides.json)
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},  # no "Select Kernel" dialog
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"},  # no "Jupyter news?" pop-up
}


def register_kernel(python: str) -> None:
    """Install the course kernel into the environment (``--sys-prefix``) under its own name and as
    ``python3``: the notebooks name ``python3`` (what Colab and Binder know), so inside the
    course's environment they open in the course kernel (one thread, seeded hashing, network
    blocked), and anywhere else in the ordinary Python 3 kernel. Also sets JupyterLab's defaults
    for the environment: start the notebook's kernel without asking, no news pop-up."""
    import json

    for name in ("course-offline", "python3"):
        _run([python, "-m", "jupyter", "kernelspec", "install", "--sys-prefix", "--replace", "--name", name,
              str(KERNEL_DIR)])
    prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                            check=True).stdout.strip()
    overrides = Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True, exist_ok=True)
    settings = json.loads(overrides.read_text()) if overrides.exists() else {}
    for plugin, values in LAB_SETTINGS.items():
        settings.setdefault(plugin, {}).update(values)
    overrides.write_text(json.dumps(settings, indent=2) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.setup_env", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    choice = sub.add_parser("choice", help="print the torch build that setup would install")
    choice.add_argument("torch", nargs="?", default="auto")
    inst = sub.add_parser("install", help="create the environment")
    inst.add_argument("--venv", type=Path, default=REPO_ROOT / ".venv")
    inst.add_argument("--torch", default="auto", help="auto, cpu, cuda or pypi")
    inst.add_argument("--index", default=None, help="an extra package index for torch (overrides the choice's)")
    kernel = sub.add_parser("kernel", help="register the course kernel in an environment")
    kernel.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    if args.command == "choice":
        print(torch_choice(args.torch))
    elif args.command == "install":
        install(args.venv, torch_choice(args.torch), args.index or None)
    else:
        register_kernel(args.python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
