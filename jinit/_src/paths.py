"""Parameter paths: one '/'-joined name per array leaf of any parameter tree.

The tree tools (re-initialisation by rules, summaries, LSUV, µP) all address parameters by the
same path strings, built from :func:`jax.tree_util.tree_flatten_with_path`:

* dict keys (linen ``params`` dicts, haiku ``"mlp/~/linear_0"`` dicts, ``nnx.State``) give the key,
* attributes (equinox modules, dataclasses) give the attribute name,
* sequence positions give the index,

so a linen Dense kernel is ``"Dense_0/kernel"``, an nnx one ``"linear1/kernel"``, an equinox one
``"layers/0/weight"``. ``nnx.Variable`` boxes and linen metadata boxes (``nn.Partitioned``,
``nn.LogicallyPartitioned``) count as one leaf: their path stops at the box (no trailing
``value``). Leaves that are not arrays (equinox activations, ``None``) are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

__all__ = ["is_array", "is_shape", "key_name", "named_leaves", "path_str"]


def key_name(k: Any) -> str:
    """The path component of one jax key entry (``DictKey``, ``GetAttrKey``, ``SequenceKey``...)."""
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def path_str(keypath: tuple[Any, ...]) -> str:
    """'/'-join a jax key path.

    Examples:
        >>> import jax
        >>> tree = {"Dense_0": {"kernel": 1.0, "bias": 2.0}}
        >>> [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
        ['Dense_0/bias', 'Dense_0/kernel']
    """
    return "/".join(key_name(k) for k in keypath)


def is_array(x: Any) -> bool:
    """True for jax/numpy arrays (what a parameter tree's parameters are)."""
    return isinstance(x, jax.Array | np.ndarray)


def is_nnx_module(x: Any) -> bool:
    """True for a ``flax.nnx.Module`` (the one check reinit, recipes and layouts share)."""
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(x, nnx.Module)


def _is_variable(x: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(x, nnx.Variable)


def _unbox(x: Any) -> Any:
    return x.get_value() if hasattr(x, "get_value") else x.value


def _is_axis_metadata(x: Any) -> bool:
    """A linen metadata box (``nn.Partitioned``, ``nn.LogicallyPartitioned``)."""
    try:
        from flax.core import meta
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(x, meta.AxisMetadata)


def is_box(x: Any) -> bool:
    """An ``nnx.Variable`` or a linen metadata box: one leaf holding one array."""
    return _is_variable(x) or _is_axis_metadata(x)


def unbox(x: Any) -> Any:
    """The array inside a box (:func:`is_box`), or ``x`` itself."""
    if _is_variable(x):
        return _unbox(x)
    if _is_axis_metadata(x):
        return x.unbox()
    return x


def rebox(x: Any) -> Callable[[Any], Any]:
    """A function putting a new array into a box like ``x`` (same type and metadata)."""
    return x.replace if _is_variable(x) else x.replace_boxed


def is_shape(x: Any) -> bool:
    """True for a ``jax.ShapeDtypeStruct`` (a leaf of a ``jax.eval_shape`` tree)."""
    return isinstance(x, jax.ShapeDtypeStruct)


def named_leaves(
    tree: Any, *, shapes: bool = False
) -> list[tuple[str, Any, Callable[[Any], Any] | None]]:
    """List ``(path, array, box)`` for every array leaf of ``tree`` in tree-flatten order.

    ``box`` is ``None`` for plain arrays and, for an ``nnx.Variable``, a function that wraps a new
    array in a variable of the same type and metadata (so a rebuilt ``nnx.State`` stays valid).
    With ``shapes=True``, ``jax.ShapeDtypeStruct`` leaves (from ``jax.eval_shape``) are listed
    too, as they are.

    Examples:
        >>> import jax.numpy as jnp
        >>> [(p, a.shape) for p, a, _ in named_leaves({"a": {"w": jnp.ones((2, 3))}, "f": None})]
        [('a/w', (2, 3))]
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_box)
    out = []
    for keypath, leaf in flat:
        if is_box(leaf):
            value = unbox(leaf)
            if is_array(value) or (shapes and is_shape(value)):
                out.append((path_str(keypath), value, rebox(leaf)))
        elif is_array(leaf) or (shapes and is_shape(leaf)):
            out.append((path_str(keypath), leaf, None))
    return out
