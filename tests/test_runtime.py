"""Device, seeding and import cost."""
import subprocess
import sys

import pytest
import torch

from course_lib import get_device, set_seed
from course_lib.paths import REPO_ROOT


def test_device_is_cuda_when_available_else_cpu():
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert get_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'cpu', 'cuda' or None"):
        get_device("tpu")


def test_set_seed_repeats_and_rejects_bad_seeds():
    set_seed(3)
    a = torch.rand(3)
    set_seed(3)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError, match="non-negative int"):
        set_seed(-1)


def test_import_course_lib_is_lazy():
    code = "import sys, course_lib; print(sorted(m for m in ('torch', 'transformer_lens', 'sae_lens') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_resolve_device_says_what_is_wrong_and_what_to_do():
    from course_lib.runtime import resolve_device

    assert resolve_device() == get_device()
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        for cuda in ("cuda", "cuda:0", torch.device("cuda")):
            with pytest.raises(ValueError, match="use device='cpu', or leave the device out"):
                resolve_device(cuda)
        with pytest.raises(ValueError, match="use device='cpu'"):
            get_device("cuda")
    else:
        with pytest.raises(ValueError, match="CUDA GPU"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    for bad in ("tpu", "gpu", 3.5, "meta"):
        with pytest.raises(ValueError, match="device"):
            resolve_device(bad)


def test_set_seed_accepts_numpy_integers():
    import numpy as np

    set_seed(np.int64(3))
    a = torch.rand(3)
    set_seed(3)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError, match="non-negative int"):
        set_seed(True)


def test_setup_picks_the_cpu_torch_build_without_an_nvidia_gpu(monkeypatch, tmp_path):
    from course_lib import setup_env

    monkeypatch.setattr(setup_env.platform, "system", lambda: "Linux")
    monkeypatch.setattr(setup_env, "has_nvidia_gpu", lambda: False)
    assert setup_env.torch_choice("auto") == "cpu"
    monkeypatch.setattr(setup_env, "has_nvidia_gpu", lambda: True)
    assert setup_env.torch_choice("auto") == "cuda"
    assert setup_env.torch_choice("cpu") == "cpu"
    monkeypatch.setattr(setup_env.platform, "system", lambda: "Darwin")
    assert setup_env.torch_choice("auto") == "pypi"
    with pytest.raises(SystemExit, match="TORCH must be"):
        setup_env.torch_choice("rocm")
    # the stamp records the choice, so that a changed choice rebuilds the environment
    (tmp_path / ".installed").write_text("cuda\n# torch build installed: cuda\n")
    assert setup_env.installed_choice(tmp_path) == "cuda"
    assert setup_env.installed_choice(tmp_path / "missing") is None


def test_an_unreachable_index_is_detected_quickly():
    import time

    from course_lib import setup_env

    start = time.perf_counter()
    assert setup_env.reachable("http://127.0.0.1:9/whl/cpu", timeout=2) is False
    assert time.perf_counter() - start < 5
