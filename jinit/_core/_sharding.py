"""Placing an initialiser's output: :func:`settle` and :func:`place` (on the ``out_sharding`` a
caller asked for, inside or outside ``jit``) and :func:`check_out_sharding`, checked up front."""

from __future__ import annotations

import math
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

from jinit._core._checks import OutSharding

# ---------------------------------------------------------------------------------------------
# Placement on the requested sharding
# ---------------------------------------------------------------------------------------------


def settle(x: jax.Array) -> jax.Array:
    """Rounds ``x`` as it stands, so ``jit`` gives the same bits as an eager call.

    Under ``jit`` XLA folds scalar multipliers together: ``random.normal(k) * s`` (where
    ``random.normal`` already computes ``sqrt(2) * erfinv(u)``) becomes ``erfinv(u) *
    (sqrt(2) * s)``, which differs from the eager value in the last bit. An optimisation
    barrier on the standardised draw keeps the eager order of roundings (it is a no-op
    eagerly and composes with ``vmap`` and sharding).
    """
    return jax.lax.optimization_barrier(x)


def place(x: jax.Array, out_sharding: OutSharding, api: str = "initializer") -> jax.Array:
    """Lays ``x`` out with ``out_sharding`` (NamedSharding or PartitionSpec), eager or traced.

    The values never depend on the layout: generation is layout-free and the sharding is
    applied to the result, which XLA's SPMD partitioner propagates back into the generator so
    each device only computes its shard under ``jit``.

    The result's sharding is the one ``jax.nn.initializers`` return for the same call, eager or
    under ``jit`` (equal and equal-hashing): on a mesh with Explicit axes the spec is padded with
    ``None`` to the array's rank (``P('x')`` on a matrix gives ``P('x', None)``); on an all-Auto
    mesh (which jax's initialisers refuse, jinit accepts) it is what ``jit`` returns, trailing
    ``None`` entries dropped. ``out_sharding`` is checked first (:func:`check_out_sharding`).
    """
    if out_sharding is None:
        return x
    traced = isinstance(x, jax.core.Tracer)
    sharding = check_out_sharding(api, out_sharding, tuple(x.shape), traced=traced)
    if traced:
        if isinstance(sharding, NamedSharding):
            mesh = sharding.mesh
        elif isinstance(sharding, PartitionSpec):
            mesh = jax.sharding.get_abstract_mesh()
        else:
            mesh = None
        if mesh is not None and _has_explicit_axes(mesh):
            return jax.sharding.reshard(x, sharding)
        return jax.lax.with_sharding_constraint(x, sharding)
    return jax.device_put(x, sharding)


def check_out_sharding(
    api: str,
    out_sharding: Any,
    shape: tuple[int, ...],
    *,
    traced: bool = False,
    validate_only: bool = False,
) -> Any:
    """Validates ``out_sharding`` against ``shape`` and the mesh, and returns its canonical form.

    Returns a ``NamedSharding`` (eager, or traced with a ``NamedSharding``), a ``PartitionSpec``
    (traced with a bare spec under ``jax.set_mesh``) or any other ``jax.sharding.Sharding``
    unchanged. Raises ``TypeError`` for anything else and ``ValueError`` (jax's types) for a
    spec longer than the rank, an axis name the mesh lacks, an axis used twice, a dimension its
    mesh axes do not divide, ``P.UNCONSTRAINED`` or Auto axes on a mesh with Explicit axes, a
    ``PartitionSpec`` with no mesh set, or a ``NamedSharding`` whose mesh differs from the one
    set with ``jax.set_mesh``. With ``validate_only`` it checks what can be checked without
    knowing whether the call is traced, and returns None.
    """
    if isinstance(out_sharding, PartitionSpec):
        return _check_spec_sharding(api, out_sharding, shape, traced, validate_only)
    if isinstance(out_sharding, NamedSharding):
        return _check_named_sharding(api, out_sharding, shape, traced, validate_only)
    if isinstance(out_sharding, jax.sharding.Sharding):
        return None if validate_only else out_sharding  # SingleDeviceSharding etc.: as given
    raise TypeError(
        f"`{api}` needs `out_sharding` to be a NamedSharding, a PartitionSpec or None; got "
        f"{out_sharding!r} of type {type(out_sharding).__name__}. Pass e.g. "
        f"`NamedSharding(mesh, PartitionSpec('x'))`."
    )


def _check_spec_sharding(
    api: str,
    out_sharding: PartitionSpec,
    shape: tuple[int, ...],
    traced: bool,
    validate_only: bool,
) -> Any:
    """:func:`check_out_sharding` of a bare ``PartitionSpec`` (on the mesh set in context)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh is None or mesh.empty:
        raise ValueError(
            f"`{api}` got `out_sharding={out_sharding}`, which is a PartitionSpec but no "
            f"mesh is set. Use `with jax.set_mesh(mesh):` or pass a "
            f"`NamedSharding(mesh, spec)`."
        )
    spec = _canonical_spec(api, out_sharding, shape, mesh, traced)
    if validate_only:
        return None
    if traced:
        return spec
    concrete = jax.sharding.get_mesh()
    if concrete is None or concrete.empty or not isinstance(concrete, jax.sharding.Mesh):
        raise ValueError(
            f"`{api}` got `out_sharding={out_sharding}` under an abstract mesh only; an "
            f"eager call needs devices. Use `with jax.set_mesh(mesh):` with a concrete "
            f"`jax.make_mesh(...)` mesh, or pass a `NamedSharding(mesh, spec)`."
        )
    return NamedSharding(concrete, spec)


def _check_named_sharding(
    api: str,
    out_sharding: NamedSharding,
    shape: tuple[int, ...],
    traced: bool,
    validate_only: bool,
) -> NamedSharding | None:
    """:func:`check_out_sharding` of a ``NamedSharding`` (its mesh against the one in context)."""
    mesh = out_sharding.mesh
    context = jax.sharding.get_abstract_mesh()
    if (
        context is not None
        and not context.empty
        and mesh.abstract_mesh != context
        and not (mesh.abstract_mesh.are_all_axes_auto and context.are_all_axes_auto)
    ):
        raise ValueError(
            f"`{api}` got `out_sharding` on mesh {mesh.abstract_mesh}, but the mesh set "
            f"with `jax.set_mesh` is {context}. Build the sharding on the mesh you set."
        )
    spec = _canonical_spec(api, out_sharding.spec, shape, mesh, traced)
    if validate_only:
        return None
    if traced and _has_explicit_axes(mesh) and (context is None or context.empty):
        raise ValueError(
            f"`{api}` got `out_sharding` on a mesh with Explicit axes inside `jit` but no "
            f"mesh is set; jax needs one to reshard. Wrap the call in "
            f"`with jax.set_mesh(mesh):`."
        )
    if not traced and not isinstance(mesh, jax.sharding.Mesh):
        mesh = _concrete_mesh_for(api, mesh)
    return NamedSharding(mesh, spec, memory_kind=out_sharding.memory_kind)


def _concrete_mesh_for(api: str, mesh: Any) -> jax.sharding.Mesh:
    """The concrete mesh set in context for the abstract ``mesh`` of an eager call, or raises."""
    concrete = jax.sharding.get_mesh()
    if isinstance(concrete, jax.sharding.Mesh) and concrete.abstract_mesh == mesh:
        return concrete
    raise ValueError(
        f"`{api}` got `out_sharding` on the abstract mesh {mesh}; an eager call "
        f"needs devices. Build the NamedSharding on a `jax.make_mesh(...)` mesh."
    )


def _canonical_spec(
    api: str, spec: PartitionSpec, shape: tuple[int, ...], mesh: Any, traced: bool
) -> PartitionSpec:
    """Checks ``spec`` against ``shape`` and ``mesh``; pads (Explicit) or trims (Auto) it."""
    rank = len(shape)
    where = f"`out_sharding` spec {spec}"
    if len(spec) > rank:
        raise ValueError(
            f"`{api}` got {where} with {len(spec)} entries for an array of shape {shape} (rank "
            f"{rank}). Give at most one entry per dimension, e.g. `PartitionSpec('x')`."
        )
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True))
    explicit = _has_explicit_axes(mesh)
    unconstrained = PartitionSpec.UNCONSTRAINED
    seen: set[str] = set()
    for dim, entry in enumerate(spec):
        if entry is None:
            continue
        if entry is unconstrained:
            if explicit:
                raise ValueError(
                    f"`{api}` got {where}, which holds `P.UNCONSTRAINED`, on a mesh with "
                    f"Explicit axes. Name the axis or pass None for a replicated dimension."
                )
            continue
        names = entry if isinstance(entry, tuple) else (entry,)
        _check_axis_names(api, where, names, mesh, sizes, seen)
        parts = math.prod(sizes[n] for n in names)
        if shape[dim] % parts:
            raise ValueError(
                f"`{api}` got {where}: dimension {dim} of shape {shape} has size {shape[dim]}, "
                f"which its mesh axes {names} (together {parts} devices) do not divide. Shard a "
                f"dimension divisible by {parts}, or pass None for that dimension."
            )
    if spec.unreduced or spec.reduced:
        return spec
    return _padded_or_trimmed(spec, rank, explicit, traced)


def _check_axis_names(
    api: str, where: str, names: tuple, mesh: Any, sizes: dict[str, int], seen: set[str]
) -> None:
    """Checks the axes ``names`` of one spec entry (known, unused, Explicit); adds to ``seen``."""
    types = dict(zip(mesh.axis_names, mesh.axis_types, strict=True))
    explicit = _has_explicit_axes(mesh)
    for name in names:
        if name not in sizes:
            raise ValueError(
                f"`{api}` got {where}, which names the axis {name!r}; the mesh has axes "
                f"{tuple(mesh.axis_names)}. Use one of those names."
            )
        if name in seen:
            raise ValueError(
                f"`{api}` got {where}, which uses the mesh axis {name!r} twice. A mesh "
                f"axis can shard at most one dimension."
            )
        if explicit and types[name] != jax.sharding.AxisType.Explicit:
            raise ValueError(
                f"`{api}` got {where}, which names the {types[name]} axis {name!r} of a "
                f"mesh with Explicit axes (jax shards only over its Explicit axes there). "
                f"Use an Explicit axis, or make the whole mesh Auto."
            )
        seen.add(name)


def _padded_or_trimmed(
    spec: PartitionSpec, rank: int, explicit: bool, traced: bool
) -> PartitionSpec:
    """``spec`` padded with None to ``rank`` (Explicit), or trimmed of trailing None (Auto)."""
    entries = list(spec)
    if explicit:
        return PartitionSpec(*entries, *([None] * (rank - len(entries))))
    if traced:
        return spec
    entries = [None if e is PartitionSpec.UNCONSTRAINED else e for e in entries]
    while entries and entries[-1] is None:
        entries.pop()
    return PartitionSpec(*entries)


def _has_explicit_axes(mesh) -> bool:
    """Whether a mesh has Explicit axes (then ``reshard``; Auto axes take a sharding constraint)."""
    return any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types)
