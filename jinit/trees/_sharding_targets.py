"""Where each leaf of :func:`jinit.init_sharded` goes: the target shardings (given, the tree's
own, or replicated) and the checks that make a sharded draw mesh-independent."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec, SingleDeviceSharding

from jinit._core._paths import path_str
from jinit._core._random import is_threefry

API = "jinit.init_sharded"
_SPEC_TYPES = (PartitionSpec, NamedSharding)


# ---------------------------------------------------------------------------------------------
# Target shardings
# ---------------------------------------------------------------------------------------------


def _is_spec(x: Any) -> bool:
    return x is None or isinstance(x, _SPEC_TYPES)


def given_shardings(shardings: Any, paths: Sequence[str], regex: bool) -> dict[str, Any]:
    """``{path: PartitionSpec | NamedSharding}`` from the ``shardings`` argument: a mapping of
    patterns (globs, or regexes with ``regex=True``; the first match wins) or a tree with the
    parameters' structure."""
    if shardings is None:
        return {}
    if isinstance(shardings, Mapping) and all(_is_spec(v) for v in shardings.values()):
        out = {}
        for pattern, spec in shardings.items():
            if not isinstance(pattern, str):
                raise TypeError(
                    f"`{API}` needs the keys of `shardings` to be path patterns (str); got "
                    f"{pattern!r}."
                )
            if regex:
                rx = re.compile(pattern)
                hits = [p for p in paths if rx.fullmatch(p)]
            else:
                hits = [p for p in paths if fnmatch.fnmatchcase(p, pattern)]
            for p in hits:
                out.setdefault(p, spec)
        return {p: s for p, s in out.items() if s is not None}
    flat, _ = jax.tree_util.tree_flatten_with_path(shardings, is_leaf=_is_spec)
    out = {}
    for keypath, spec in flat:
        if not _is_spec(spec):
            raise TypeError(
                f"`{API}` got a `shardings` tree with a {type(spec).__name__} leaf at "
                f"{path_str(keypath)!r}; its leaves must be PartitionSpec, NamedSharding or None "
                f"(or pass a mapping from path patterns to specs)."
            )
        if spec is not None:
            out[path_str(keypath)] = spec
    unknown = sorted(set(out) - set(paths))
    if unknown:
        raise ValueError(
            f"`{API}`: `shardings` names paths the parameters lack: {unknown[:5]}. Its tree must "
            f"have the parameters' structure (or pass a mapping from path patterns to specs)."
        )
    return out


def own_sharding(a: Any, annotation: Any) -> Any:
    """The sharding the tree itself asks for: a concrete array's, a struct's, a Flax box's."""
    sharding = getattr(a, "sharding", None)
    if isinstance(sharding, NamedSharding | SingleDeviceSharding):
        return sharding
    return annotation


def resolve(p: str, shape: tuple[int, ...], want: Any, mesh: Any) -> Any:
    """``want`` (spec, named or single-device sharding, or None) as a concrete sharding."""
    if isinstance(want, SingleDeviceSharding):
        return want
    if isinstance(want, NamedSharding):
        if isinstance(want.mesh, jax.sharding.AbstractMesh):
            if mesh is None:
                raise ValueError(
                    f"`{API}`: {p!r} is sharded on an abstract mesh and no concrete mesh was "
                    f"given. Pass `mesh=` (or call inside `with jax.set_mesh(mesh):`)."
                )
            want = NamedSharding(mesh, want.spec)
        spec, m = want.spec, want.mesh
    else:
        spec = PartitionSpec() if want is None else want
        if mesh is None:
            if any(e is not None for e in spec):
                raise ValueError(
                    f"`{API}`: {p!r} asks for the partition spec {spec} but no mesh was given. "
                    f"Pass `mesh=` (or call inside `with jax.set_mesh(mesh):`)."
                )
            return SingleDeviceSharding(jax.devices()[0])
        m = mesh
    why = spec_problem(spec, shape, m)
    if why is not None:
        raise ValueError(f"`{API}`: the sharding {spec} of {p!r} {shape} {why}.")
    return NamedSharding(m, spec)


def spec_problem(spec: PartitionSpec, shape: tuple[int, ...], mesh: Any) -> str | None:
    """Why ``spec`` cannot lay out an array of ``shape`` on ``mesh`` (axes the mesh lacks, more
    entries than axes), or ``None`` if it can."""
    named = [n for e in spec for n in (e if isinstance(e, tuple) else (e,)) if n is not None]
    missing = [n for n in named if n not in mesh.axis_names]
    if missing:
        return (
            f"names axes {missing} that the mesh {tuple(mesh.axis_names)} lacks (logical names? "
            f"map them with `flax.linen.logical_axis_rules` or the variable's `sharding_rules`)"
        )
    if len(spec) > len(shape):
        return f"has {len(spec)} entries for a rank-{len(shape)} leaf"
    return None


def spec_text(sharding: Any) -> str:
    if isinstance(sharding, NamedSharding):
        return str(tuple(sharding.spec)) if len(sharding.spec) else "replicated"
    return "one device"


def check_partitionable(key: jax.Array, shardings: Sequence[Any]) -> None:
    """Sharded draws are mesh-independent only with partitionable threefry counters."""
    if all(len(s.device_set) == 1 for s in shardings):
        return
    if not is_threefry(key) or not jax.config.jax_threefry_partitionable:
        typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        impl = str(key.dtype) if typed else jax.config.jax_default_prng_impl
        raise ValueError(
            f"`{API}` draws each shard on its own device, which gives the same values on every "
            f"mesh only with partitionable threefry keys; got a {impl} key with "
            f"jax_threefry_partitionable={jax.config.jax_threefry_partitionable}. Use "
            f"`jax.random.key(seed)` and `jax.config.update('jax_threefry_partitionable', "
            f"True)` (jax's default since 0.5)."
        )
