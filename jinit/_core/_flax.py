"""Flax hooks shared by the sweeps and LSUV: which modules are layers, and the layer calls of
an nnx model."""

from __future__ import annotations

import contextlib
from typing import Any

FLAX_LAYER_TYPES = frozenset(
    {
        "Dense",
        "DenseGeneral",
        "Conv",
        "ConvTranspose",
        "ConvLocal",
        "Einsum",
        "Linear",
        "LinearGeneral",
    }
)


def default_is_layer(module: Any) -> bool:
    """Whether ``module`` is one of Flax's own weight layers (:data:`FLAX_LAYER_TYPES`)."""
    cls = type(module)
    return cls.__name__ in FLAX_LAYER_TYPES and cls.__module__.startswith("flax.")


def check_layers(api: str, layers: Any):
    """``layers`` (None, a module type, a tuple of types or a predicate) as a predicate
    ``module -> bool``; None means :func:`default_is_layer`."""
    if layers is None:
        return default_is_layer
    if isinstance(layers, type) or (
        isinstance(layers, tuple) and all(isinstance(t, type) for t in layers)
    ):
        types = layers
        return lambda m: isinstance(m, types)
    if callable(layers):
        return layers
    raise TypeError(
        f"`{api}` needs `layers` to be None, a module type, a tuple of types or a predicate "
        f"`module -> bool`; got {layers!r}."
    )


@contextlib.contextmanager
def nnx_layer_calls(model, is_layer, hook):
    """Within the block, every call of a layer of the nnx ``model`` (a sub-module with
    ``is_layer(module)``) returns ``hook(path, args, out)`` instead of its output ``out``; ``path``
    is the module's path (a tuple of str). A layer called from inside its own call is not hooked
    again. Works by patching the layer classes' ``__call__`` (restored on exit), so it is not
    thread-safe; the shared mechanism of nnx sweeps and :func:`jinit.lsuv`.
    """
    from flax import nnx

    registry = {
        id(mod): tuple(str(c) for c in path)
        for path, mod in nnx.iter_modules(model)
        if is_layer(mod)
    }
    classes = {type(mod) for _, mod in nnx.iter_modules(model) if id(mod) in registry}
    originals = {c: c.__dict__.get("__call__") for c in classes}
    lookups = {c: c.__call__ for c in classes}
    active: set[int] = set()

    def make(cls):
        orig = lookups[cls]

        def wrapped(module_self, *args, **kwargs):
            mid = id(module_self)
            if mid not in registry or mid in active:
                return orig(module_self, *args, **kwargs)
            active.add(mid)
            try:
                out = orig(module_self, *args, **kwargs)
            finally:
                active.discard(mid)
            return hook(registry[mid], args, out)

        return wrapped

    try:
        for c in classes:
            c.__call__ = make(c)
        yield
    finally:
        for c, orig in originals.items():
            if orig is None:
                del c.__call__
            else:
                c.__call__ = orig
