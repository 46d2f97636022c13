"""Constants and simple distributions: bit-identical to ``jax.nn.initializers`` where jax works.

For every (initialiser, shape, real float dtype) of the tables below, the same key and
arguments give the same bytes as jax's namesake. float64 runs under ``jax.enable_x64``.
Where jinit deliberately differs (non-float dtypes, bad hyper-parameters, empty shapes) the
difference is asserted in its own test.
"""

from __future__ import annotations

import jax
import jax.nn.initializers as jnn
import jax.numpy as jnp
import numpy as np
import pytest

import jinit

KEY_SEED = 7
REAL_DTYPES = [jnp.bfloat16, jnp.float16, jnp.float32]
# No fans here, so the rank does not matter beyond 0 vs > 0; every compiled random kernel costs
# ~0.4 s, so all dtypes run on a scalar and a dense shape, and a conv kernel in float32.
CASES = [(s, jnp.dtype(d)) for s in [(), (64, 32)] for d in REAL_DTYPES]
CASES.append(((3, 3, 16, 32), jnp.dtype(jnp.float32)))


def assert_bit_identical(ours: jax.Array, theirs: jax.Array) -> None:
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert np.asarray(ours).tobytes() == np.asarray(theirs).tobytes()


# (id, jinit initialiser, jax initialiser): the same hyper-parameters, positional where jax's
# builders take them positionally.
PAIRS = [
    ("zeros", jinit.zeros, jnn.zeros),
    ("ones", jinit.ones, jnn.ones),
    ("constant(-7)", jinit.constant(-7), jnn.constant(-7)),
    ("constant(0.1)", jinit.constant(0.1), jnn.constant(0.1)),  # rounds per dtype
    ("constant(pi)", jinit.constant(np.pi), jnn.constant(np.pi)),
    ("uniform()", jinit.uniform(), jnn.uniform()),
    ("uniform(3.7)", jinit.uniform(3.7), jnn.uniform(3.7)),
    ("normal()", jinit.normal(), jnn.normal()),
    ("normal(0.37)", jinit.normal(0.37), jnn.normal(0.37)),
    ("truncated_normal()", jinit.truncated_normal(), jnn.truncated_normal()),
    ("truncated_normal(1.3)", jinit.truncated_normal(1.3), jnn.truncated_normal(1.3)),
    (
        "truncated_normal(0.5, None, -1, 3)",
        jinit.truncated_normal(0.5, None, -1.0, 3.0),
        jnn.truncated_normal(0.5, None, -1.0, 3.0),
    ),
]
PAIR_IDS = [p[0] for p in PAIRS]


@pytest.mark.parametrize("shape, dtype", CASES, ids=str)
@pytest.mark.parametrize("name, ours, theirs", PAIRS, ids=PAIR_IDS)
def test_bit_identical_to_jax(name, ours, theirs, shape, dtype):
    key = jax.random.key(KEY_SEED)
    assert_bit_identical(ours(key, shape, dtype), theirs(key, shape, dtype))


@pytest.mark.parametrize("name, ours, theirs", PAIRS, ids=PAIR_IDS)
def test_bit_identical_to_jax_float64(name, ours, theirs):
    key = jax.random.key(KEY_SEED)
    with jax.enable_x64(True):
        for shape in [(64, 32)]:
            assert_bit_identical(ours(key, shape, jnp.float64), theirs(key, shape, jnp.float64))
            # dtype=None is float64 under x64, as in jax.
            assert_bit_identical(ours(key, shape), theirs(key, shape))
            assert ours(key, shape).dtype == jnp.float64


@pytest.mark.parametrize("name, ours, theirs", PAIRS, ids=PAIR_IDS)
def test_bit_identical_with_raw_key_and_default_dtype(name, ours, theirs):
    key = jax.random.PRNGKey(KEY_SEED)  # legacy raw uint32 key
    assert_bit_identical(ours(key, (64, 32)), theirs(key, (64, 32)))


@pytest.mark.parametrize(
    "value, dtype",
    [
        (np.arange(3.0), jnp.float32),  # array value, broadcast along the leading axis
        (np.array([[1.5], [-2.0]]), jnp.bfloat16),
        (1 + 2j, jnp.complex64),
        (True, jnp.float32),
        (3, jnp.int32),  # constants, unlike random draws, may be integers (as in jax)
    ],
    ids=str,
)
def test_constant_values_match_jax(value, dtype):
    key = jax.random.key(0)
    assert_bit_identical(
        jinit.constant(value)(key, (2, 3), dtype), jnn.constant(value)(key, (2, 3), dtype)
    )


def test_builder_dtype_default_matches_jax():
    key = jax.random.key(KEY_SEED)
    for ours, theirs in [
        (jinit.normal(0.5, jnp.bfloat16), jnn.normal(0.5, jnp.bfloat16)),
        (jinit.uniform(2.0, jnp.float16), jnn.uniform(2.0, jnp.float16)),
        (jinit.truncated_normal(1.0, jnp.bfloat16), jnn.truncated_normal(1.0, jnp.bfloat16)),
        (jinit.constant(0.1, jnp.bfloat16), jnn.constant(0.1, jnp.bfloat16)),
    ]:
        assert ours(key, (64, 32)).dtype == jnp.dtype(ours.dtype)
        assert_bit_identical(ours(key, (64, 32)), theirs(key, (64, 32)))
        # An explicit call dtype overrides the builder's.
        assert_bit_identical(ours(key, (64, 32), jnp.float32), theirs(key, (64, 32), jnp.float32))


# ---------------------------------------------------------------------------------------------
# Where jinit is deliberately stricter or better than jax
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("init", [jinit.uniform(), jinit.normal(), jinit.truncated_normal()])
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_], ids=lambda d: str(d))
def test_random_draws_reject_integer_and_bool_dtypes(init, dtype):
    name = jnp.dtype(dtype).name
    with pytest.raises(TypeError, match=rf"`{init.api}`.*{name}"):
        init(jax.random.key(0), (4, 3), dtype)


@pytest.mark.parametrize("build", [jinit.uniform, jinit.truncated_normal])
def test_real_only_draws_reject_complex_dtypes(build):
    with pytest.raises(TypeError, match="complex64"):
        build()(jax.random.key(0), (4, 3), jnp.complex64)


@pytest.mark.parametrize(
    "build, name",
    [(jinit.uniform, "scale"), (jinit.normal, "stddev"), (jinit.truncated_normal, "stddev")],
)
@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), -float("inf")], ids=str)
def test_bad_scale_fails_at_build_time(build, name, bad):
    # jax accepts these when building and returns nan, inf or sign-flipped arrays when called.
    with pytest.raises(ValueError, match=rf"`{build.__name__}`.*`{name}`"):
        build(bad)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0, 2)], ids=str)
@pytest.mark.parametrize("name, ours, theirs", PAIRS, ids=PAIR_IDS)
def test_empty_shapes_match_jax(name, ours, theirs, shape):
    # No fans here, so jax handles empty shapes too (unlike variance scaling: test_variance.py).
    key = jax.random.key(0)
    for dtype in [jnp.float32, jnp.bfloat16]:
        out = ours(key, shape, dtype)
        assert out.shape == shape and out.dtype == dtype
        assert_bit_identical(out, theirs(key, shape, dtype))


def test_zeros_and_ones_init_are_flax_style_builders():
    assert jinit.zeros_init() is jinit.zeros
    assert jinit.ones_init() is jinit.ones
    out = jinit.ones_init()(jax.random.key(0), (2, 2), jnp.bfloat16)
    assert out.dtype == jnp.bfloat16 and bool((out == 1).all())
