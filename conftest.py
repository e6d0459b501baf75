"""Pytest set-up shared by the unit tests and the notebook runs (nbval)."""
import os

# One thread per process: tests run in parallel workers, and small models are fastest on one
# thread (several workers each with several threads oversubscribe the CPU badly).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from course_lib.runner import use_course_kernels  # noqa: E402

use_course_kernels()  # nbval runs the notebooks in the network-blocking 'course-offline' kernel
