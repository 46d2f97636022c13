"""jinit initialisers inside Flax modules (linen and nnx).

Each module is built twice from the same rng, once with a jinit initialiser and once with its
``jax.nn.initializers`` namesake: the parameters must be bit-identical. A recording wrapper
also captures the key, shape and dtype Flax passes, and the parameter must equal the jinit
initialiser called directly with them (for nnx, the key is the documented ``rngs.params()``
stream).
"""

from __future__ import annotations

import jax
import jax.nn.initializers as jnn
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen, nnx

import jinit

SEED = 0


def assert_bit_identical(ours: jax.Array, theirs: jax.Array) -> None:
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert np.asarray(ours).tobytes() == np.asarray(theirs).tobytes()


def assert_trees_bit_identical(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert_bit_identical(x, y)


class Recorder:
    """Wraps an initialiser and records every (key, shape, dtype) it is called with."""

    def __init__(self, init):
        self.init, self.calls = init, []

    def __call__(self, key, shape, dtype=jnp.float32):
        self.calls.append((key, tuple(shape), dtype))
        return self.init(key, shape, dtype)


# (id, jinit kernel initialiser, jax namesake, jinit bias initialiser, jax namesake)
KERNEL_PAIRS = [
    ("lecun_normal", jinit.lecun_normal(), jnn.lecun_normal(), jinit.zeros, jnn.zeros),
    ("he_uniform", jinit.he_uniform(), jnn.he_uniform(), jinit.normal(0.1), jnn.normal(0.1)),
    ("glorot_normal", jinit.glorot_normal(), jnn.glorot_normal(), jinit.ones, jnn.ones),
    (
        "variance_scaling",
        jinit.variance_scaling(0.5, "fan_avg", "uniform"),
        jnn.variance_scaling(0.5, "fan_avg", "uniform"),
        jinit.uniform(0.2),
        jnn.uniform(0.2),
    ),
    (
        "orthogonal",
        jinit.orthogonal(1.5),
        jnn.orthogonal(1.5),
        jinit.constant(0.3),
        jnn.constant(0.3),
    ),
]
KERNEL_IDS = [p[0] for p in KERNEL_PAIRS]
PARAM_DTYPES = [jnp.float32, jnp.bfloat16]


# ---------------------------------------------------------------------------------------------
# flax.linen
# ---------------------------------------------------------------------------------------------


def _jax_fails(name: str, param_dtype) -> bool:
    """jax's orthogonal has no half-precision QR; jinit's works (see test_structured.py)."""
    return name == "orthogonal" and jnp.dtype(param_dtype).itemsize == 2


def _linen_pair(make, x, ours_kernel, theirs_kernel, ours_bias, theirs_bias, jax_fails=False):
    key = jax.random.key(SEED)
    recorder = Recorder(ours_kernel)
    ours = make(recorder, ours_bias).init(key, x)["params"]
    if jax_fails:
        with pytest.raises(NotImplementedError):
            make(theirs_kernel, theirs_bias).init(key, x)
    else:
        theirs = make(theirs_kernel, theirs_bias).init(key, x)["params"]
        assert_trees_bit_identical(ours, theirs)
    # The kernel is the jinit initialiser called with the key, shape and dtype Flax passed.
    ((k, shape, dtype),) = recorder.calls
    return ours, ours_kernel(k, shape, dtype)


@pytest.mark.parametrize("param_dtype", PARAM_DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name, ok, tk, ob, tb", KERNEL_PAIRS, ids=KERNEL_IDS)
def test_linen_dense(name, ok, tk, ob, tb, param_dtype):
    def make(kernel_init, bias_init):
        return linen.Dense(
            32, kernel_init=kernel_init, bias_init=bias_init, param_dtype=param_dtype
        )

    fails = _jax_fails(name, param_dtype)
    params, direct = _linen_pair(make, jnp.ones((2, 64)), ok, tk, ob, tb, fails)
    assert params["kernel"].shape == (64, 32) and params["kernel"].dtype == param_dtype
    assert params["bias"].shape == (32,) and params["bias"].dtype == param_dtype
    assert_bit_identical(params["kernel"], direct)


@pytest.mark.parametrize("name, ok, tk, ob, tb", KERNEL_PAIRS, ids=KERNEL_IDS)
def test_linen_conv(name, ok, tk, ob, tb):
    def make(kernel_init, bias_init):
        return linen.Conv(32, (3, 3), kernel_init=kernel_init, bias_init=bias_init)

    params, direct = _linen_pair(make, jnp.ones((1, 8, 8, 16)), ok, tk, ob, tb)
    assert params["kernel"].shape == (3, 3, 16, 32)  # HWIO
    assert_bit_identical(params["kernel"], direct)


@pytest.mark.parametrize("name, ok, tk, ob, tb", KERNEL_PAIRS[:4], ids=KERNEL_IDS[:4])
def test_linen_dense_general_multi_axis(name, ok, tk, ob, tb):
    def make(kernel_init, bias_init):
        return linen.DenseGeneral(
            features=(4, 8), axis=(-2, -1), kernel_init=kernel_init, bias_init=bias_init
        )

    params, direct = _linen_pair(make, jnp.ones((2, 3, 16)), ok, tk, ob, tb)
    # DenseGeneral calls kernel_init with the flattened (in, out) = (48, 32) shape, then reshapes.
    assert params["kernel"].shape == (3, 16, 4, 8) and params["bias"].shape == (4, 8)
    assert_bit_identical(params["kernel"], direct.reshape(3, 16, 4, 8))
    # The flattened fans equal the multi-axis fans of the unflattened kernel.
    assert jinit.fans((48, 32)) == jinit.fans((3, 16, 4, 8), in_axis=(0, 1), out_axis=(2, 3))


EMBED_PAIRS = [
    (
        "flax_default",  # linen.Embed's own default, written with jinit
        jinit.variance_scaling(1.0, "fan_in", "normal", out_axis=0),
        linen.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0),
    ),
    ("normal", jinit.normal(0.02), jnn.normal(0.02)),
    ("truncated_normal", jinit.truncated_normal(1.0), jnn.truncated_normal(1.0)),
]


@pytest.mark.parametrize("name, ours, theirs", EMBED_PAIRS, ids=[e[0] for e in EMBED_PAIRS])
def test_linen_embed(name, ours, theirs):
    key, tokens = jax.random.key(SEED), jnp.arange(5)
    recorder = Recorder(ours)
    a = linen.Embed(100, 16, embedding_init=recorder).init(key, tokens)["params"]["embedding"]
    b = linen.Embed(100, 16, embedding_init=theirs).init(key, tokens)["params"]["embedding"]
    assert a.shape == (100, 16)
    assert_bit_identical(a, b)
    ((k, shape, dtype),) = recorder.calls
    assert_bit_identical(a, ours(k, shape, dtype))
    if name == "flax_default":
        default = linen.Embed(100, 16).init(key, tokens)["params"]["embedding"]
        assert_bit_identical(a, default)


# ---------------------------------------------------------------------------------------------
# flax.nnx
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("param_dtype", PARAM_DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name, ok, tk, ob, tb", KERNEL_PAIRS, ids=KERNEL_IDS)
def test_nnx_linear(name, ok, tk, ob, tb, param_dtype):
    def make(kernel_init, bias_init):
        return nnx.Linear(
            64,
            32,
            kernel_init=kernel_init,
            bias_init=bias_init,
            param_dtype=param_dtype,
            rngs=nnx.Rngs(SEED),
        )

    ours = make(ok, ob)
    assert ours.kernel[...].shape == (64, 32) and ours.kernel[...].dtype == param_dtype
    if _jax_fails(name, param_dtype):
        with pytest.raises(NotImplementedError):
            make(tk, tb)
    else:
        theirs = make(tk, tb)
        assert_bit_identical(ours.kernel[...], theirs.kernel[...])
        assert_bit_identical(ours.bias[...], theirs.bias[...])
    # nnx draws the kernel key, then the bias key, from rngs.params().
    rngs = nnx.Rngs(SEED)
    assert_bit_identical(ours.kernel[...], ok(rngs.params(), (64, 32), param_dtype))
    assert_bit_identical(ours.bias[...], ob(rngs.params(), (32,), param_dtype))


@pytest.mark.parametrize("name, ok, tk, ob, tb", KERNEL_PAIRS, ids=KERNEL_IDS)
def test_nnx_conv(name, ok, tk, ob, tb):
    def make(kernel_init, bias_init):
        return nnx.Conv(
            16, 32, (3, 3), kernel_init=kernel_init, bias_init=bias_init, rngs=nnx.Rngs(SEED)
        )

    ours, theirs = make(ok, ob), make(tk, tb)
    assert ours.kernel[...].shape == (3, 3, 16, 32)
    assert_bit_identical(ours.kernel[...], theirs.kernel[...])
    assert_bit_identical(ours.bias[...], theirs.bias[...])
    assert_bit_identical(ours.kernel[...], ok(nnx.Rngs(SEED).params(), (3, 3, 16, 32)))


@pytest.mark.parametrize("name, ours, theirs", EMBED_PAIRS, ids=[e[0] for e in EMBED_PAIRS])
def test_nnx_embed(name, ours, theirs):
    a = nnx.Embed(100, 16, embedding_init=ours, rngs=nnx.Rngs(SEED)).embedding[...]
    b = nnx.Embed(100, 16, embedding_init=theirs, rngs=nnx.Rngs(SEED)).embedding[...]
    assert a.shape == (100, 16)
    assert_bit_identical(a, b)
    assert_bit_identical(a, ours(nnx.Rngs(SEED).params(), (100, 16)))
    if name == "flax_default":
        default = nnx.Embed(100, 16, rngs=nnx.Rngs(SEED)).embedding[...]
        assert_bit_identical(a, default)


def test_linen_module_init_under_jit():
    # model.init is usually jitted; the parameters are the eager ones.
    model = linen.Dense(32, kernel_init=jinit.he_normal(), bias_init=jinit.normal(0.1))
    key, x = jax.random.key(SEED), jnp.ones((2, 64))
    eager = model.init(key, x)
    jitted = jax.jit(model.init)(key, x)
    assert_trees_bit_identical(eager, jitted)
