"""Drawing one leaf for :func:`reinit`: the rule's initialiser in the leaf's dtype and layout,
placed on the leaf's sharding (concrete, traced or annotated)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jinit._core._layout import draw
from jinit._core._paths import (
    is_shape,
)
from jinit.trees._leaf_checks import dtype_kind
from jinit.trees._rules import CheckedRule, Contextual, LeafInfo
from jinit.trees._sharding_targets import spec_problem

# ---------------------------------------------------------------------------------------------
# Drawing one leaf and placing it
# ---------------------------------------------------------------------------------------------


def draw_leaf(api: str, rule: CheckedRule, key, info: LeafInfo, annotation: Any = None) -> Any:
    """Draws one leaf with ``info.dtype`` and returns it in the leaf's exact dtype.

    A numpy leaf stays a numpy array (so a float64 leaf keeps float64 even with x64 off); a jax
    leaf is placed with its sharding (eagerly; under ``jit`` where the tracer's type carries it,
    i.e. on a mesh with Explicit axes); a ``jax.ShapeDtypeStruct`` leaf becomes an array of its
    shape and dtype, with its ``sharding`` if it has one. A leaf with a :class:`jinit.Layout`
    is drawn as its layer draws it (:func:`jinit._core._layout.draw`). A draw of the wrong kind
    (a complex draw for a real leaf, a real or integer one for a complex leaf, an integer one for
    a float leaf) raises instead of being cast; a float draw of another precision is rounded to
    the leaf's. Where the leaf's own sharding is unknown (a tracer on an Auto mesh, a struct
    without one), the Flax box's sharding ``annotation`` places it (:func:`_annotated`).
    """
    path, shape, dtype, old = info.path, info.shape, info.dtype, info.value
    leaf_dtype = np.dtype(old.dtype)
    where = f"rule {rule.index} ({rule.pattern!r} -> {rule.init!r})"
    out = _call_init(api, rule, key, info, leaf_dtype, where)
    out = _check_drawn(api, where, info, leaf_dtype, out)
    if is_shape(old):
        out = jnp.asarray(out).astype(dtype)
        known = _concrete(api, path, getattr(old, "sharding", None), out)
        return _place(out, known or _annotated(api, path, shape, annotation, out))
    if isinstance(old, np.ndarray):
        if not isinstance(out, jax.core.Tracer):
            return np.asarray(out).astype(leaf_dtype, copy=False)
        if dtype != leaf_dtype:
            raise ValueError(
                f"`{api}`: {path!r} is a numpy {leaf_dtype.name} leaf drawn under a jax "
                f"transformation (jit/vmap) while jax_enable_x64 is off, so it cannot be "
                f"returned as {leaf_dtype.name}. Call reinit outside the transformation, run "
                f'`jax.config.update("jax_enable_x64", True)`, or cast the leaf to float32.'
            )
    if isinstance(out, np.ndarray):
        out = jnp.asarray(out.astype(dtype, copy=False))
    if out.dtype != dtype:
        out = out.astype(dtype)
    if isinstance(old, jax.core.Tracer):
        return _place(out, _traced_sharding(old) or _annotated(api, path, shape, annotation, out))
    if isinstance(old, jax.Array):
        return _place(out, old.sharding)
    return out


def _call_init(
    api: str, rule: CheckedRule, key: Any, info: LeafInfo, leaf_dtype: np.dtype, where: str
) -> Any:
    """The rule's raw draw for the leaf; an error gets a note naming the leaf and the rule."""
    path, shape, dtype = info.path, info.shape, info.dtype
    try:
        if isinstance(rule.init, Contextual):
            return rule.init(key, info)
        if info.layout is not None:
            return draw(rule.init, key, info.layout, dtype)
        return rule.init(key, shape, dtype)
    except Exception as e:
        if hasattr(e, "add_note"):  # Python >= 3.11
            e.add_note(f"{api}: while drawing {path!r} {shape} {leaf_dtype.name} with {where}")
        raise


def _check_drawn(api: str, where: str, info: LeafInfo, leaf_dtype: np.dtype, out: Any) -> Any:
    """``out`` as an array (numpy for host values) after checking its type, shape and kind."""
    path, shape, dtype = info.path, info.shape, info.dtype
    if isinstance(out, np.ndarray | np.generic | int | float | complex) and not isinstance(
        out, bool
    ):
        out = np.asarray(out)
    elif isinstance(out, jax.Array):
        pass
    else:
        raise TypeError(
            f"`{api}`: {where} returned {type(out).__name__} for {path!r}, not an array. An "
            f"initialiser must return an array of the shape and dtype it is given."
        )
    if out.shape != shape:
        raise ValueError(
            f"`{api}`: {where} returned shape {out.shape} for {path!r}, whose shape is {shape}. "
            f"An initialiser must return the shape it is given (a contextual one: `leaf.shape`)."
        )
    got, want = dtype_kind(out.dtype), dtype_kind(leaf_dtype)
    if got != want:
        lost = {
            ("complex", "real floating"): "casting would drop the imaginary parts",
            ("real floating", "complex"): "its imaginary parts would all be zero",
        }.get((got, want), f"casting would turn {got} values into {want} ones")
        raise ValueError(
            f"`{api}`: {where} returned {np.dtype(out.dtype).name} values for {path!r}, a "
            f"{leaf_dtype.name} leaf: {lost}. An initialiser must return the dtype it is given "
            f"({dtype.name}); use one whose law covers {want} numbers, or give the leaf "
            f"another rule."
        )
    return out


def _traced_sharding(x: Any) -> Any:
    """The sharding a traced leaf is known to have: its type's sharding on a mesh with Explicit
    axes (jax's sharding in types); ``None`` otherwise (on an Auto mesh a tracer carries no
    partition spec: pass ``out_shardings`` to ``jit`` or use ``jax.eval_shape`` structs with a
    sharding)."""
    try:
        sharding = jax.typeof(x).sharding
    except AttributeError:  # pragma: no cover - older jax
        return None
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty:
        return None
    if not any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types):
        return None
    return sharding


def _concrete(api: str, path: str, sharding: Any, out: Any) -> Any:
    """``sharding`` usable for ``out``: a struct's sharding on an ``AbstractMesh`` (from
    ``jax.eval_shape`` / ``nnx.eval_shape`` under ``jax.set_mesh``) is put on the concrete mesh set
    with ``jax.set_mesh`` when the array is eager; without that mesh, a ValueError says so."""
    mesh = getattr(sharding, "mesh", None)
    if not isinstance(mesh, jax.sharding.AbstractMesh) or isinstance(out, jax.core.Tracer):
        return sharding
    concrete = jax.sharding.get_mesh()
    if concrete is None or getattr(concrete, "empty", True) or concrete.abstract_mesh != mesh:
        raise ValueError(
            f"`{api}`: {path!r} is a shape struct sharded on an abstract mesh {mesh} and no "
            f"matching concrete mesh is set, so it cannot be placed on devices. Call `{api}` "
            f"inside `with jax.set_mesh(mesh):` (the mesh the shapes were traced under)."
        )
    return jax.sharding.NamedSharding(concrete, sharding.spec)


def _annotated(api: str, path: str, shape: tuple[int, ...], annotation: Any, out: Any) -> Any:
    """The sharding a Flax box's annotation (:func:`jinit._core._paths.sharding_annotation`) gives
    a new leaf: a ``NamedSharding`` as it is; a ``PartitionSpec`` on the mesh the caller set with
    ``jax.set_mesh`` (traced: its abstract mesh; eager: the mesh itself). ``None`` without an
    annotation or a mesh (nothing says where the leaf lives). An annotation naming axes the
    mesh lacks, or more axes than the leaf has, raises a ValueError naming the leaf."""

    if annotation is None or isinstance(annotation, NamedSharding):
        return annotation
    traced = isinstance(out, jax.core.Tracer)
    mesh = jax.sharding.get_abstract_mesh() if traced else jax.sharding.get_mesh()
    if mesh is None or getattr(mesh, "empty", True):
        return None
    spec = annotation if isinstance(annotation, PartitionSpec) else PartitionSpec(*annotation)
    why = spec_problem(spec, shape, mesh)
    if why is not None:
        raise ValueError(
            f"`{api}`: the sharding annotation {spec} of {path!r} {shape} {why}. Fix the "
            f"annotation, or call `{api}` on a tree without sharding metadata."
        )
    return NamedSharding(mesh, spec)


def _place(out: Any, sharding: Any) -> Any:
    """``out`` laid out with ``sharding`` (eagerly ``device_put``; traced a reshard on a mesh
    with Explicit axes, else a sharding constraint); unchanged for ``None``."""
    if sharding is None:
        return out
    if isinstance(out, jax.core.Tracer):
        mesh = getattr(sharding, "mesh", None)
        if mesh is not None and any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types):
            return jax.sharding.reshard(out, sharding)
        return jax.lax.with_sharding_constraint(out, sharding)
    if getattr(out, "sharding", None) != sharding:
        return jax.device_put(out, sharding)
    return out
