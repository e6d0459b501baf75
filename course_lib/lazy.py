"""Cheap package imports: a topic package names where each of its exports lives, and a name is
imported from its module only when first used (``import course_lib.sae`` does not load torch)."""
import importlib
import sys


def lazy_exports(package: str, exports: dict) -> tuple:
    """``(__getattr__, __dir__)`` for the package ``package`` whose name ``n`` lives in its module
    ``exports[n]``. Use in the package's ``__init__``: ``__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)``."""
    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{exports[name]}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
