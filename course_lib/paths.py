"""Where the course's files live (relative to the repository, so a clone works anywhere)."""
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DATA_DIR = REPO_ROOT / "data"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
SOLUTIONS_DIR = NOTEBOOKS_DIR / "solutions"
SOURCES_DIR = NOTEBOOKS_DIR / "src"
BUILD_DIR = REPO_ROOT / "build"
WORK_DIR = REPO_ROOT / "work"  # students' own copies of the notebooks (git-ignored; course_lib.workspace)
KERNELS_DIR = PACKAGE_DIR / "jupyter"  # holds kernels/course-offline/kernel.json
OFFLINE_KERNEL = "course-offline"
