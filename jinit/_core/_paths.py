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
from jax.sharding import NamedSharding, PartitionSpec

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


def is_variable(x: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(x, nnx.Variable)


def variable_value(x: Any) -> Any:
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
    return is_variable(x) or _is_axis_metadata(x)


def unbox(x: Any) -> Any:
    """The array inside a box (:func:`is_box`), or ``x`` itself."""
    if is_variable(x):
        return variable_value(x)
    if _is_axis_metadata(x):
        # the value as stored: linen's Partitioned.unbox() would also apply its sharding as a
        # constraint under a mesh (reading a leaf must not move it, nor fail on its annotation)
        from flax.core import meta

        if isinstance(x, meta.Partitioned):
            return x.unbox(apply_constraint=False)
        return x.unbox()
    return x


def rebox(x: Any) -> Callable[[Any], Any]:
    """A function putting a new array into a box like ``x`` (same type and metadata)."""
    return x.replace if is_variable(x) else x.replace_boxed


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


def map_named(fn: Callable[[str, Any], Any], tree: Any) -> Any:
    """Maps ``fn(path, array)`` over the array leaves of ``tree`` (jax or numpy arrays and
    ``jax.ShapeDtypeStruct``), keeping ``nnx.Variable`` boxes; other leaves pass through.

    Examples:
      >>> import numpy as np
      >>> map_named(lambda path, x: x * 2, {"a": {"w": np.ones(2)}, "n": None})
      {'a': {'w': array([2., 2.])}, 'n': None}
    """

    def mapped(path: str, x: Any) -> Any:
        return fn(path, x) if is_array(x) or isinstance(x, jax.ShapeDtypeStruct) else x

    def f(keypath: tuple[Any, ...], leaf: Any) -> Any:
        if is_variable(leaf):
            value = variable_value(leaf)
            new = mapped(path_str(keypath), value)
            return leaf if new is value else leaf.replace(new)
        return mapped(path_str(keypath), leaf)

    return jax.tree_util.tree_map_with_path(f, tree, is_leaf=is_variable)


def sharding_annotation(box: Any) -> Any:
    """The sharding a Flax box asks for: a ``NamedSharding`` (the annotation names its mesh), a
    ``PartitionSpec`` (over the mesh the caller sets) or ``None`` (no annotation, not a box).

    * ``nnx.Variable``: its ``out_sharding`` metadata (``sharding_names`` / ``sharding`` in older
      Flax), as ``nnx.with_partitioning`` sets it, renamed by its ``sharding_rules`` metadata and
      the logical axis rules in context (as nnx does when it creates the variable), on its
      ``mesh`` metadata if any.
    * ``nn.Partitioned``: its ``names`` on its ``mesh`` if any.
    * ``nn.LogicallyPartitioned``: its logical ``names`` mapped to mesh axes by its ``rules`` or
      the ``nn.logical_axis_rules`` in context (no rules: replicated, as linen unboxes it).

    Examples:
        >>> import flax.linen as nn, jax.numpy as jnp
        >>> sharding_annotation(nn.Partitioned(jnp.zeros((2, 4)), names=(None, "model")))
        P(None, 'model')
        >>> sharding_annotation(jnp.zeros(3)) is None
        True
    """

    if is_variable(box):
        meta = box.get_metadata()
        names = next(
            (meta[k] for k in ("out_sharding", "sharding_names", "sharding") if meta.get(k)), None
        )
        if names is None:
            return None
        if isinstance(names, NamedSharding):
            return names
        spec = names if isinstance(names, PartitionSpec) else PartitionSpec(*names)
        from flax.core import spmd

        spec = spmd.apply_rules(spec, meta.get("sharding_rules"))
        mesh = meta.get("mesh")
    elif _is_axis_metadata(box):
        from flax import linen as nn

        if isinstance(box, nn.LogicallyPartitioned):
            spec = nn.logical_to_mesh_axes(box.names, box.rules)
        elif isinstance(box, nn.Partitioned):
            spec = box.get_partition_spec()
        else:  # another AxisMetadata box: no sharding it asks for
            return None
        mesh = box.mesh
    else:
        return None
    return spec if mesh is None else NamedSharding(mesh, spec)


def sharding_annotations(tree: Any) -> dict[str, Any]:
    """``{path: annotation}`` for every box of ``tree`` with a :func:`sharding_annotation`."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_box)
    out = {}
    for keypath, leaf in flat:
        if is_box(leaf):
            ann = sharding_annotation(leaf)
            if ann is not None:
                out[path_str(keypath)] = ann
    return out
