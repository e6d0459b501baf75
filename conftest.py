"""Pytest set-up shared by the unit tests, the notebook runs and the browser test."""
import os

# One thread per process: tests run in parallel workers, and small models are fastest on one
# thread (several workers each with several threads oversubscribe the CPU badly).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from course_lib.runner import use_course_kernels  # noqa: E402

use_course_kernels()  # notebooks run in the network-blocking 'course-offline' kernel


def pytest_configure(config):
    config.addinivalue_line("markers", "notebook: executes a whole notebook (make test runs these after the unit tests)")
    config.addinivalue_line("markers", "browser: drives JupyterLab in a real browser (make test-browser)")
