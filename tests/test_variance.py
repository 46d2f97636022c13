"""Variance scaling and its presets: bit-identical to ``jax.nn.initializers``, better where jax
is wrong.

Parity tables (same key, same arguments, same bytes):

* all 4 modes x 3 distributions x {bfloat16, float16, float32} on a dense kernel, and in
  float64 under ``jax.enable_x64``;
* a table of layouts (dense, 1-D/2-D/3-D HWIO conv, stacked with ``batch_axis``, DenseGeneral
  multi-axis in/out tuples, Flax ``Embed``'s ``out_axis=0``, rank 1 with explicit axes, torch
  layout) x every preset (glorot/xavier, he/kaiming, lecun; uniform and normal), and x all
  modes and distributions, in float32; the presets again in bfloat16 and float16 on a 2-D conv.

The layout only enters through the fans (one float), so the shapes are chosen to share compiled
random kernels: 3-D conv (a rank-5 kernel, whose random-bit kernels take seconds to compile) is
exercised with the uniform presets in float32.

Deliberate improvements over jax, each in its own test: exact variance of complex truncated
normals, empty shapes, axes out of range, integer/bool dtypes, bad hyper-parameters at build
time.
"""

from __future__ import annotations

import chex
import jax
import jax.nn.initializers as jnn
import jax.numpy as jnp
import numpy as np
import pytest

import jinit

SEED = 11
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
REAL_DTYPES = [jnp.bfloat16, jnp.float16, jnp.float32]
# xavier_* and kaiming_* are the same objects as glorot_* and he_* (asserted below).
PRESETS = [
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
]


def dtype_id(dtype) -> str:
    return jnp.dtype(dtype).name


def assert_bit_identical(ours: jax.Array, theirs: jax.Array) -> None:
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert np.asarray(ours).tobytes() == np.asarray(theirs).tobytes()


# ---------------------------------------------------------------------------------------------
# Parity with jax
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", REAL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("mode", MODES)
def test_variance_scaling_bit_identical(mode, distribution, dtype):
    key = jax.random.key(SEED)
    shape = (64, 32)  # fans 64 and 32, so the four modes give four different variances
    for scale in (1.0, 0.37):
        # Positional arguments, as jax documents them.
        ours = jinit.variance_scaling(scale, mode, distribution)(key, shape, dtype)
        theirs = jnn.variance_scaling(scale, mode, distribution)(key, shape, dtype)
        assert_bit_identical(ours, theirs)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_variance_scaling_bit_identical_float64(distribution):
    key = jax.random.key(SEED)
    with jax.enable_x64(True):
        for mode in MODES:
            ours = jinit.variance_scaling(0.37, mode, distribution)
            theirs = jnn.variance_scaling(0.37, mode, distribution)
            assert_bit_identical(
                ours(key, (64, 32), jnp.float64), theirs(key, (64, 32), jnp.float64)
            )
            assert ours(key, (64, 32)).dtype == jnp.float64  # dtype=None is float64 under x64
            assert_bit_identical(ours(key, (64, 32)), theirs(key, (64, 32)))


# (id, shape, axes keywords). Shapes are shared between layouts to share compiled kernels.
LAYOUTS = [
    ("dense", (64, 32), {}),
    ("conv1d", (4, 16, 32), {}),
    ("conv2d", (3, 3, 16, 32), {}),
    ("stacked", (4, 16, 32), {"batch_axis": 0}),
    ("stacked_conv", (3, 3, 16, 32), {"batch_axis": 0, "in_axis": 2, "out_axis": 3}),
    ("dense_general_in", (4, 16, 32), {"in_axis": (0, 1), "out_axis": 2}),  # (heads, hd, out)
    ("dense_general_out", (4, 16, 32), {"in_axis": 0, "out_axis": (1, 2)}),  # (in, heads, hd)
    ("dense_general_both", (3, 3, 16, 32), {"in_axis": (0, 1), "out_axis": (-2, -1)}),
    ("embed", (64, 32), {"out_axis": 0}),  # flax.linen.Embed's default embedding_init
    ("rank1", (7,), {"in_axis": 0, "out_axis": 0}),
    ("rank1_bias", (7,), {"in_axis": (), "out_axis": 0}),
    ("torch_layout", (64, 32), {"in_axis": 1, "out_axis": 0}),
]
LAYOUT_IDS = [c[0] for c in LAYOUTS]


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("layout, shape, axes", LAYOUTS, ids=LAYOUT_IDS)
def test_presets_bit_identical_per_layout(layout, shape, axes, name):
    key = jax.random.key(SEED)
    ours = getattr(jinit, name)(**axes)
    theirs = getattr(jnn, name)(**axes)
    assert_bit_identical(ours(key, shape), theirs(key, shape))  # default dtype float32


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=dtype_id)
@pytest.mark.parametrize("name", PRESETS)
def test_presets_bit_identical_half_precision(name, dtype):
    key = jax.random.key(SEED)
    shape = (3, 3, 16, 32)  # HWIO
    assert_bit_identical(
        getattr(jinit, name)()(key, shape, dtype), getattr(jnn, name)()(key, shape, dtype)
    )
    # A builder dtype is honoured as jax's is.
    assert_bit_identical(
        getattr(jinit, name)(dtype=dtype)(key, shape), getattr(jnn, name)(dtype=dtype)(key, shape)
    )


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("layout, shape, axes", LAYOUTS, ids=LAYOUT_IDS)
def test_variance_scaling_bit_identical_per_layout(layout, shape, axes, distribution):
    key = jax.random.key(SEED)
    for mode in MODES:
        ours = jinit.variance_scaling(2.0, mode, distribution, **axes)
        theirs = jnn.variance_scaling(2.0, mode, distribution, **axes)
        assert_bit_identical(ours(key, shape), theirs(key, shape))


@pytest.mark.parametrize(
    "name, axes",
    [
        ("glorot_uniform", {}),
        ("he_uniform", {}),
        ("lecun_uniform", {"batch_axis": 0}),  # a stack of two 3x3 2-D kernels
        ("he_uniform", {"in_axis": (0, 1, 2, 3), "out_axis": 4}),  # flattened dense
    ],
    ids=str,
)
def test_conv3d_bit_identical(name, axes):
    # One distribution (one compiled rank-5 kernel): the layout only changes the fans.
    key = jax.random.key(SEED)
    shape = (2, 3, 3, 4, 8)  # DHWIO
    ours = getattr(jinit, name)(**axes)(key, shape)
    assert_bit_identical(ours, getattr(jnn, name)(**axes)(key, shape))


def test_presets_are_one_line_specialisations():
    # he_normal == variance_scaling(2, fan_in, truncated_normal) etc.: equal hyper-parameters.
    expected = {
        "glorot_uniform": (1.0, "fan_avg", "uniform"),
        "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
        "he_uniform": (2.0, "fan_in", "uniform"),
        "he_normal": (2.0, "fan_in", "truncated_normal"),
        "lecun_uniform": (1.0, "fan_in", "uniform"),
        "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    }
    for name, args in expected.items():
        assert getattr(jinit, name)() == jinit.variance_scaling(*args)
        assert getattr(jinit, name)(0, 1, (), jnp.float16) == jinit.variance_scaling(
            *args, 0, 1, (), jnp.float16
        )
    assert jinit.xavier_uniform is jinit.glorot_uniform
    assert jinit.xavier_normal is jinit.glorot_normal
    assert jinit.kaiming_uniform is jinit.he_uniform
    assert jinit.kaiming_normal is jinit.he_normal


# ---------------------------------------------------------------------------------------------
# Where jinit is deliberately better than jax
# ---------------------------------------------------------------------------------------------


def _mean_energy_times_fan(init, shape: tuple[int, ...], fan: float, n_keys: int):
    """E|w|^2 · fan estimated over n_keys · prod(shape) draws, with its standard error."""
    keys = jax.random.split(jax.random.key(SEED), n_keys)
    draws = jax.jit(jax.vmap(lambda k: init(k, shape, jnp.complex64)))(keys)
    energy = np.abs(np.asarray(draws, dtype=np.complex128)).ravel() ** 2 * fan
    return float(energy.mean()), float(energy.std(ddof=1) / np.sqrt(energy.size))


def test_complex_truncated_normal_has_the_requested_variance():
    shape = (256, 256)  # fan_in = 256
    n_keys = 16  # 16 · 65536 = 1 048 576 draws
    ours = jinit.variance_scaling(1.0, "fan_in", "truncated_normal")
    theirs = jnn.variance_scaling(1.0, "fan_in", "truncated_normal")
    m_ours, se_ours = _mean_energy_times_fan(ours, shape, 256.0, n_keys)
    m_theirs, se_theirs = _mean_energy_times_fan(theirs, shape, 256.0, n_keys)
    # jinit: within 6 standard errors of the requested variance (se ≈ 8e-4).
    chex.assert_scalar_in(m_ours, 1.0 - 6 * se_ours, 1.0 + 6 * se_ours)
    # jax divides by 0.9531 instead of the exact RMS 0.96197 of a unit circular normal truncated
    # at |z| < 2, so its variance is (0.96197 / 0.9531)² = 1.0187 times too large: > 20 SE off.
    chex.assert_scalar_in(m_theirs, 1.0187 - 6 * se_theirs, 1.0187 + 6 * se_theirs)
    assert m_theirs - 1.0 > 6 * se_theirs  # the test can tell the two apart


@pytest.mark.parametrize("name", ["he_normal", "glorot_uniform", "lecun_normal"])
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (3, 3, 0, 8), (0,)], ids=str)
def test_zero_size_shapes_give_empty_arrays(name, shape):
    axes = {"in_axis": 0, "out_axis": 0} if len(shape) == 1 else {}
    key = jax.random.key(0)
    for dtype in (jnp.float32, jnp.bfloat16):
        out = getattr(jinit, name)(**axes)(key, shape, dtype)
        assert out.shape == shape and out.dtype == dtype
    with pytest.raises(ZeroDivisionError):  # what jax does
        getattr(jnn, name)(**axes)(key, shape, jnp.float32)


@pytest.mark.parametrize(
    "axes",
    [
        {"in_axis": 2},
        {"out_axis": -3},
        {"batch_axis": 5},
        {"in_axis": (0, 2)},
        {"out_axis": (1, -4)},
    ],
    ids=str,
)
def test_axes_out_of_range_raise_value_error(axes):
    init = jinit.variance_scaling(1.0, "fan_in", "normal", **axes)
    name = next(iter(axes))
    with pytest.raises(ValueError, match=rf"`variance_scaling`.*`{name}="):
        init(jax.random.key(0), (4, 5))


def test_overlapping_axes_keep_jax_meaning():
    # Flax Embed: variance_scaling(1, fan_in, normal, out_axis=0) on (vocab, features); in_axis
    # stays -2, the same axis as out_axis, and jax's arithmetic gives fan_in = features.
    init = jinit.variance_scaling(1.0, "fan_in", "normal", out_axis=0)
    assert init.fans((1000, 64)) == jinit.Fans(64.0, 64.0)
    assert jinit.law(init, (1000, 64)).variance == pytest.approx(1 / 64, rel=1e-6)
    key = jax.random.key(SEED)
    theirs = jnn.variance_scaling(1.0, "fan_in", "normal", out_axis=0)
    assert_bit_identical(init(key, (1000, 64)), theirs(key, (1000, 64)))


BUILDERS = {
    "variance_scaling": lambda **kw: jinit.variance_scaling(1.0, "fan_in", "normal", **kw),
    "he_normal": jinit.he_normal,
    "glorot_uniform": jinit.glorot_uniform,
}


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, jnp.uint32, jnp.bool_], ids=dtype_id)
@pytest.mark.parametrize("name", list(BUILDERS))
def test_integer_and_bool_dtypes_raise_type_error(name, dtype):
    # jax silently returns garbage (all zeros for he_normal in int32) or fails deep inside.
    message = rf"`{name}`.*{jnp.dtype(dtype).name}"
    with pytest.raises(TypeError, match=message):  # at call time
        BUILDERS[name]()(jax.random.key(0), (4, 5), dtype)
    with pytest.raises(TypeError, match=message):  # as a builder default
        BUILDERS[name](dtype=dtype)


@pytest.mark.parametrize(
    "args, word",
    [
        ((1.0, "fan_sum", "normal"), "mode"),
        ((1.0, "FAN_IN", "normal"), "mode"),
        ((1.0, "fan_in", "gaussian"), "distribution"),
        ((1.0, "fan_in", "truncated"), "distribution"),
        ((-1.0, "fan_in", "normal"), "scale"),
        ((float("nan"), "fan_in", "normal"), "scale"),
        ((float("inf"), "fan_in", "normal"), "scale"),
    ],
    ids=str,
)
def test_bad_hyper_parameters_fail_at_build_time(args, word):
    # jax accepts all of these when building; bad names fail only at call time, bad scales never.
    jnn.variance_scaling(*args)
    with pytest.raises(ValueError, match=rf"`variance_scaling`.*`{word}`"):
        jinit.variance_scaling(*args)
