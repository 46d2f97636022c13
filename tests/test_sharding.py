"""``out_sharding`` is honoured by every catalogue initialiser, and never changes the values.

conftest.py forces 4 CPU host devices, arranged here as a 2 x 2 mesh ``('x', 'y')``, once with
Explicit axes and once with Auto axes. Every entry of ``jinit.catalogue.entries()`` (the
core families and whatever other modules register, so new initialisers are covered without
editing this file) is drawn with a spec that splits its first two even dimensions, and must

* carry that sharding, and
* be bit-identical to the eager, unsharded call with the same key.

The placement itself is one function shared by every initialiser (``base.place``), with two
paths under ``jit`` (``reshard`` for Explicit axes, a sharding constraint for Auto axes) and one
eager path (``device_put``). So every entry runs under ``jit`` on both paths (Explicit mesh with
a ``NamedSharding`` inside ``jax.set_mesh``; Auto mesh with a bare ``PartitionSpec`` inside
``jax.set_mesh``) and eagerly, and the core entries also run under the other two combinations
(Explicit + ``PartitionSpec``; Auto + ``NamedSharding`` without a mesh context). Each mode traces
one ``jit`` drawing all its entries, to keep compile time down; assertions list the entries
that fail. Entries that are the same initialiser (aliases) are drawn once.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import jinit
from jinit import catalogue

# a 2 x 2 mesh needs four devices (JINIT_TEST_DEVICES=1..3 runs the rest of the suite)
pytestmark = pytest.mark.skipif(
    len(jax.devices()) < 4, reason="needs 4 devices for the 2 x 2 mesh (JINIT_TEST_DEVICES < 4)"
)

SEED = 17
CORE_FAMILIES = ("constant", "simple", "variance scaling", "orthogonal")


def _unique(entries):
    seen, out = set(), []
    for e in entries:
        if e.build() not in seen:
            seen.add(e.build())
            out.append(e)
    return out


ALL = _unique(catalogue.entries())
CORE = [e for e in ALL if e.family in CORE_FAMILIES]


def _shape(entry: catalogue.Entry) -> tuple[int, ...]:
    """(64, 32) where the entry accepts it (compiled kernels are then shared), else its own."""
    try:
        jax.eval_shape(lambda k: entry.build()(k, (64, 32)), jax.random.key(0))
    except (ValueError, TypeError):
        return entry.example_shape
    return (64, 32)


def spec_for(shape: tuple[int, ...]) -> PartitionSpec:
    """Splits the first two even dimensions over 'x' and 'y' (others replicated)."""
    names, out = ["x", "y"], []
    for d in shape:
        out.append(names.pop(0) if names and d % 2 == 0 else None)
    return PartitionSpec(*out)


@functools.cache
def mesh(kind: str) -> jax.sharding.Mesh:
    axis_type = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}[kind]
    return jax.make_mesh((2, 2), ("x", "y"), axis_types=(axis_type, axis_type))


@functools.cache
def reference(entry: catalogue.Entry) -> jax.Array:
    """The eager, unsharded draw that every sharded draw must reproduce."""
    return entry.build()(jax.random.key(SEED), _shape(entry))


def failures(entries, outs, mesh_: jax.sharding.Mesh) -> list[str]:
    bad = []
    for e, out in zip(entries, outs, strict=True):
        ref, shape = reference(e), _shape(e)
        expected = NamedSharding(mesh_, spec_for(shape))
        if not out.sharding.is_equivalent_to(expected, len(shape)):
            bad.append(f"{e.name}: sharding {out.sharding} != {expected}")
        elif out.dtype != ref.dtype or np.asarray(out).tobytes() != np.asarray(ref).tobytes():
            bad.append(f"{e.name}: values differ from the unsharded draw")
    return bad


def draw_all(entries, key, sharding_of):
    return [e.build()(key, _shape(e), out_sharding=sharding_of(_shape(e))) for e in entries]


def test_catalogue_covers_the_core():
    assert {e.family for e in CORE} == set(CORE_FAMILIES)
    assert spec_for((3, 3, 16, 32)) == PartitionSpec(None, None, "x", "y")
    assert spec_for((64, 32)) == PartitionSpec("x", "y")


# (mesh kind, spec as NamedSharding or bare PartitionSpec, under jax.set_mesh, entries)
JIT_MODES = [
    ("explicit", "named", True, ALL),
    ("auto", "spec", True, ALL),
    ("explicit", "spec", True, CORE),
    ("auto", "named", False, CORE),
]


@pytest.mark.parametrize(
    "kind, how, in_context, entries",
    JIT_MODES,
    ids=[f"{m[0]}-{m[1]}-{len(m[3])}" for m in JIT_MODES],
)
def test_under_jit(kind, how, in_context, entries):
    m = mesh(kind)
    if how == "named":

        def sharding_of(shape):
            return NamedSharding(m, spec_for(shape))
    else:
        sharding_of = spec_for
    fn = jax.jit(lambda k: draw_all(entries, k, sharding_of))
    if in_context:
        with jax.set_mesh(m):
            outs = fn(jax.random.key(SEED))
    else:
        outs = fn(jax.random.key(SEED))
    bad = failures(entries, outs, m)
    assert not bad, bad


def test_eager_named_sharding():
    m = mesh("explicit")
    outs = draw_all(ALL, jax.random.key(SEED), lambda shape: NamedSharding(m, spec_for(shape)))
    bad = failures(ALL, outs, m)
    assert not bad, bad


def test_eager_partition_spec_in_mesh_context():
    # Under jax.set_mesh eager ops compile again (the mesh is part of their cache key), so this
    # mode runs on the core entries only.
    m = mesh("auto")
    with jax.set_mesh(m):
        outs = draw_all(CORE, jax.random.key(SEED), spec_for)
    bad = failures(CORE, outs, m)
    assert not bad, bad


@pytest.mark.parametrize(
    "init", [jinit.he_normal(), jinit.normal(0.3), jinit.orthogonal(), jinit.zeros], ids=repr
)
def test_empty_shape_with_sharding(init):
    m = mesh("auto")
    sharding = NamedSharding(m, PartitionSpec("x", "y"))
    out = init(jax.random.key(0), (0, 32), out_sharding=sharding)
    assert out.shape == (0, 32) and out.sharding.is_equivalent_to(sharding, 2)


def test_partition_spec_without_mesh_is_an_error():
    with pytest.raises(ValueError, match="no mesh"):
        jinit.he_normal()(jax.random.key(0), (8, 8), out_sharding=PartitionSpec("x"))


def test_sharding_never_changes_values_across_layouts():
    # The same draws under four layouts of the same mesh, in one jit.
    key, shape = jax.random.key(SEED), (64, 32)
    m = mesh("auto")
    specs = [
        PartitionSpec("x", "y"),
        PartitionSpec("y", "x"),
        PartitionSpec(("x", "y")),
        PartitionSpec(None, "y"),
    ]
    initializers = [jinit.he_normal(), jinit.normal(0.3), jinit.orthogonal()]

    @jax.jit
    def draw(k):
        return [
            [i(k, shape, out_sharding=NamedSharding(m, spec)) for spec in specs]
            for i in initializers
        ]

    for init, row in zip(initializers, draw(key), strict=True):
        ref = np.asarray(init(key, shape))
        for spec, out in zip(specs, row, strict=True):
            assert out.sharding.is_equivalent_to(NamedSharding(m, spec), 2)
            np.testing.assert_array_equal(np.asarray(out), ref)
