"""Property tests (hypothesis) over shapes × dtypes × axes for every catalogue entry.

For each entry of ``jinit.catalogue.entries()`` hypothesis draws a shape (the entry's rank
± 1, dimensions from a small set so compilations are shared), a dtype the entry declares and,
when the builder takes them, axis arguments (``in_axis``, ``out_axis``, ``batch_axis``,
``column_axis``, ``axis``). Combinations the initialiser rejects (a ``ValueError`` from
``jinit.law``, which runs the same checks as the call) are filtered out.

Properties: the shape and dtype asked for; finite; the same key gives the same bits; a different
key gives a different array (unless the law is deterministic); ``jax.jit`` gives the eager bits;
``jax.vmap`` over keys gives the bits of a loop over the keys. ``jit`` and ``vmap`` compile per
shape, which is what the run time goes to, so there are only two examples per entry (and no
shrinking); the shapes come from a small set of dimensions so that compilations are shared.

Everything is deterministic: ``derandomize=True`` and no example database.
"""

from __future__ import annotations

import functools
import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import jinit
from jinit import catalogue
from jinit.laws import _laws as laws

# A small set, so shapes repeat and compilations are reused. Hypothesis tries the first element
# first: 2, not 0, so that the first example is not an empty array; 0 (an empty array, which is
# returned without drawing) comes up for about one dimension in nine.
DIMS = (2, 3, 1, 5, 2, 3, 1, 5, 0)
AXIS_PARAMS = ("in_axis", "out_axis", "batch_axis", "column_axis", "axis")
DTYPES = {
    "real": (np.dtype(np.float32), np.dtype(jnp.bfloat16), np.dtype(np.float16)),
    "complex": (np.dtype(np.complex64),),
    "any": (np.dtype(np.float32), np.dtype(jnp.bfloat16), np.dtype(np.complex64)),
}
ENTRIES = catalogue.entries()

COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: each new shape recompiles
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _dtypes(entry: catalogue.Entry) -> list[np.dtype]:
    out: list[np.dtype] = []
    for token in entry.dtypes.split("+"):
        out.extend(d for d in DTYPES[token] if d not in out)
    return out


@st.composite
def cases(draw, entry: catalogue.Entry):
    """(init, shape, dtype) for ``entry``; invalid combinations are rejected with ``assume``."""
    base_rank = len(entry.example_shape)
    rank = draw(st.sampled_from((base_rank, base_rank + 1, max(base_rank - 1, 0))))
    if draw(st.integers(0, 2)) == 2:  # a third of the time, the example shape (always valid)
        shape = tuple(entry.example_shape)
        rank = base_rank
    else:
        shape = tuple(draw(st.sampled_from(DIMS)) for _ in range(rank))
    dtype = draw(st.sampled_from(_dtypes(entry)))
    kwargs = {}
    params = inspect.signature(entry.build).parameters
    axes = st.integers(-max(rank, 1), max(rank, 1) - 1)
    for name in AXIS_PARAMS:
        if name in params:
            if name == "batch_axis":
                kwargs[name] = draw(st.one_of(st.just(()), axes))
            else:
                kwargs[name] = draw(axes)
    try:
        init = entry.build(**kwargs)
        law = jinit.law(init, shape, dtype)
    except ValueError:  # e.g. rank too small, axis out of range, in > out for delta_orthogonal
        assume(False)
    return init, shape, dtype, law


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _jit_call(key, init, shape, dtype):
    return init(key, shape, dtype)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _jit_vmap(keys, init, shape, dtype):
    # module-level and keyed on the (hashable) initialiser, so equal initialisers (aliases such
    # as xavier_uniform and glorot_uniform) share the compilation
    return jax.vmap(lambda k: init(k, shape, dtype))(keys)


def _bits(x) -> bytes:
    return np.asarray(x).tobytes()


def _assert_same_bits(got, want, what: str) -> None:
    """Bitwise equality (so -0.0 vs 0.0 and NaN payloads count), with a readable failure."""
    if _bits(got) != _bits(want):
        a, b = np.asarray(got), np.asarray(want)
        diff = np.abs(a.astype(np.complex128) - b.astype(np.complex128))
        raise AssertionError(
            f"{what}: {int(np.sum(a != b))} of {a.size} entries differ, by up to {diff.max():.3g}"
        )


def _assert_finite(x: jax.Array) -> None:
    if jnp.issubdtype(x.dtype, jnp.inexact):
        assert bool(jnp.all(jnp.isfinite(x))), "non-finite values"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
@settings(max_examples=2, **COMMON)
@given(data=st.data())
def test_properties(entry, data):
    init, shape, dtype, law = data.draw(cases(entry), label="case")
    keys = jax.random.split(jax.random.key(0), 3)
    eager = [init(k, shape, dtype) for k in keys]
    w = eager[0]
    # shape and dtype as asked, finite values
    assert isinstance(w, jax.Array)
    assert w.shape == shape and w.dtype == dtype, f"got {w.shape} {w.dtype}"
    _assert_finite(w)
    # deterministic: the same key gives the same bits
    _assert_same_bits(init(keys[0], shape, dtype), w, "same key, different bits")
    # the key matters (8 entries all equal across two keys would not happen by chance)
    degenerate = isinstance(law, laws.DeterministicLaw) or (
        isinstance(law, laws.ElementwiseLaw) and law.variance == 0
    )
    if not degenerate and math.prod(shape) >= 8:
        assert _bits(eager[1]) != _bits(w), "the key is ignored"
    if math.prod(shape) == 0:
        return  # an empty array is returned before anything is traced
    # jit gives the eager bits
    jitted = _jit_call(keys[0], init, shape, dtype)
    assert jitted.dtype == dtype
    _assert_same_bits(jitted, w, "jit differs from eager")
    # vmap over keys gives the bits of the loop over keys
    batched = _jit_vmap(keys, init, shape, dtype)
    assert batched.shape == (3, *shape) and batched.dtype == dtype
    for i, e in enumerate(eager):
        _assert_same_bits(batched[i], e, f"vmap differs from the loop at key {i}")
