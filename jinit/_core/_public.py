"""Public homes: objects re-exported by a public module say so in ``__module__``.

``repr``, ``help()``, tracebacks, pickling and documentation then name ``jinit.he_normal``
rather than the private module that happens to define it (as jax and optax do).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def set_public_home(namespace: Mapping[str, Any], names: Iterable[str], home: str) -> None:
    """Sets ``__module__ = home`` on each object ``namespace[name]`` that a *private* jinit
    module defines under that same name (so ``home.name`` finds it again); objects that already
    have a public home, and aliases (another ``__qualname__``), are left alone."""
    for name in names:
        obj = namespace.get(name)
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str) or not module.startswith("jinit.") or not _private(module):
            continue
        if getattr(obj, "__qualname__", None) != name:
            continue
        if isinstance(obj, type):
            _keep_method_doctests(obj, module)
        try:
            obj.__module__ = home
        except (AttributeError, TypeError):  # pragma: no cover - immutable objects
            pass


def _keep_method_doctests(cls: type, module: str) -> None:
    """doctest finds a class's methods through the module named by ``cls.__module__`` but only
    keeps functions whose globals are that module's: once the class is re-homed its methods'
    examples would silently stop running. They are listed in the defining module's
    ``__test__`` instead (the class docstring itself runs in its public home)."""
    tests = sys.modules[module].__dict__.setdefault("__test__", {})
    for attr, val in vars(cls).items():
        fn = getattr(val, "__func__", val)
        if isinstance(val, property):
            fn = val.fget
        if callable(fn) and ">>>" in (getattr(fn, "__doc__", None) or ""):
            tests[f"{cls.__name__}.{attr}"] = fn
