"""Factories used as initialisers: :func:`factory` makes ``jinit.he_normal(key, shape)`` (a
factory called like an initialiser) raise a TypeError that names the fix, and
:func:`missing_call_args` does the same for an initialiser called without its arguments."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jinit._core._checks import PRNGKey, Shape, canonical_shape, raw_key_shape

# ---------------------------------------------------------------------------------------------
# Factories used as initialisers, initialisers called without arguments
# ---------------------------------------------------------------------------------------------


def _looks_like_key(x: Any) -> bool:
    """A typed PRNG key (or array of keys), or a raw uint32 key of the default implementation.

    Works on tracers too (their dtype and shape are known), so the check is the same inside
    ``jit`` and ``model.init``.
    """
    dt = getattr(x, "dtype", None)
    if dt is None or not isinstance(x, (jax.Array, np.ndarray)):
        return False
    try:
        if jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
            return True
    except TypeError:  # pragma: no cover - an exotic dtype
        return False
    raw = raw_key_shape(str(jax.config.jax_default_prng_impl))
    return np.dtype(dt) == np.uint32 and tuple(x.shape) == raw


def _looks_like_shape(x: Any) -> bool:
    try:
        canonical_shape("", x)
    except (TypeError, ValueError):
        return False
    return True


def _init_slot(name: str) -> str:
    """The Flax argument a factory's initialiser usually goes to (for the example in messages)."""
    if "bias" in name:
        return "bias_init"
    if "embedding" in name:
        return "embedding_init"
    return "kernel_init"


def refuse_initializer_call(public: str, args: Sequence[Any], needs_args: bool) -> None:
    """Raises if a factory is being called the way an *initialiser* is called.

    ``kernel_init=jinit.he_normal`` (the factory, uncalled) makes Flax call
    ``he_normal(key, shape, dtype)``, which would otherwise fail deep inside with a message
    about ``in_axis``. ``args`` are the factory's first positional arguments: a PRNG key first
    (a typed key, or a raw uint32 key followed by a shape) means it was used as an initialiser.

    Args:
      public: the factory's public name, e.g. ``"jinit.he_normal"``.
      args: its positional arguments (at least the first two, when given).
      needs_args: whether the factory has required parameters (the example then shows ``...``).

    Raises:
      TypeError: the factory was called with a PRNG key first.
    """
    if not args or not _looks_like_key(args[0]):
        return
    typed = jax.dtypes.issubdtype(args[0].dtype, jax.dtypes.prng_key)
    if not typed and not (len(args) >= 2 and _looks_like_shape(args[1])):
        return  # a uint32 array of two entries not followed by a shape: not a key for sure
    slot = _init_slot(public.rpartition(".")[2])
    shape = (
        f" and shape {tuple(canonical_shape('', args[1]))}"
        if len(args) >= 2 and (_looks_like_shape(args[1]))
        else ""
    )
    example = f"{public}({'...' if needs_args else ''})"
    raise TypeError(
        f"`{public}` is an initialiser factory: call it, e.g. `{slot}={example}`. It was called "
        f"the way an initialiser is called, with a PRNG key{shape}, which happens when the "
        f"factory itself is passed (e.g. `{slot}={public}`) and Flax calls it as "
        f"`{slot}(key, shape, dtype)`."
    )


def factory(fn: Any) -> Any:
    """Decorates a public initialiser factory with :func:`refuse_initializer_call`.

    The wrapper keeps ``fn``'s name, docstring and signature (``inspect.signature`` follows
    ``__wrapped__``). The public name is ``jinit.torch.<name>`` for the factories of
    ``jinit.torch`` and ``jinit.<name>`` otherwise, read when the error is raised so a
    renamed wrapper reports its new name.
    """

    needs_args = any(
        p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in inspect.signature(fn).parameters.values()
    )
    prefix = "jinit.torch." if fn.__module__.startswith("jinit.torch") else "jinit."

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if args:
            refuse_initializer_call(prefix + wrapper.__name__, args[:2], needs_args=needs_args)
        return fn(*args, **kwargs)

    return wrapper


class _Required:
    """The default of ``key`` and ``shape`` in :meth:`Initializer.__call__`: a call without them
    gets a jinit message (``jinit.zeros()`` is a slip for ``jinit.zeros``) instead of Python's
    bare "missing 2 required positional arguments". The public signature still shows them as
    required (see ``_PROTOCOL``)."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


def protocol_call(self, key: PRNGKey, shape: Shape, dtype=None, out_sharding=None):  # noqa: ANN202
    """The ``jax.nn.initializers.Initializer`` call signature (for ``__signature__``)."""


def missing_call_args(init: Any, key: Any, shape: Any) -> TypeError:
    label = init._label
    public = label if label.startswith("jinit.") else "jinit." + label
    missing = " and ".join(f"`{n}`" for n, v in (("key", key), ("shape", shape)) if v is REQUIRED)
    if getattr(init, "name", "") in ("zeros", "ones"):
        name = init.name
        return TypeError(
            f"`{public}` is itself an initialiser (like `jax.nn.initializers.{name}`), not a "
            f"factory: pass it uncalled, e.g. `bias_init={public}`, or call it as "
            f"`{public}(key, shape)`; got no {missing}."
        )
    return TypeError(
        f"`{public}` built an initialiser, which is called as `init(key, shape, dtype=None, "
        f"out_sharding=None)`; got no {missing}. Pass e.g. `init(jax.random.key(0), (64, 32))`, "
        f"or pass `init` uncalled where Flax expects an initialiser (`kernel_init=init`)."
    )
