"""course_lib: helpers, reference implementations and exercise checks for the course
*Understanding the Mechanism of LLMs*.

Importing it is cheap: torch, TransformerLens and sae-lens are imported only when used.
"""
from .paths import DATA_DIR, REPO_ROOT
from .runtime import get_device, set_seed

__all__ = ["DATA_DIR", "REPO_ROOT", "get_device", "set_seed"]
__version__ = "0.1.0"
