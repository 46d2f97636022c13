"""Tests of the initialisers beyond jax.nn: identity, dirac, sparse, hadamard, zerO, scaled uniform
orthogonal, bias_prior, transformer_normal and gpt2_residual.

Deterministic initialisers are checked against arrays written out by hand; random ones against
their law with >= 1e6 draws (moments within 6 standard errors computed from the law's fourth
moment, KS distance within the DKW bound, exact zero counts, Gram identities).
"""

from __future__ import annotations

import math
import pickle
import re

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jinit import catalogue
from jinit.initializers._conventions import bias_prior, gpt2_residual, transformer_normal
from jinit.initializers._deterministic import (
    _sylvester_block,
    _sylvester_block_host,
    dirac,
    hadamard,
    identity,
    zerO,
)
from jinit.initializers._dks import scaled_uniform_orthogonal
from jinit.initializers._sparse import sparse
from jinit.laws import _laws as laws

SEED = 1234
KEY = jax.random.key(SEED)
HALF_AND_SINGLE = [jnp.bfloat16, jnp.float16, jnp.float32]
DTYPES = [*HALF_AND_SINGLE, jnp.complex64]


def draws(init, shape, dtype, n, seed=SEED):
    """``n`` independent draws, computed as jit∘vmap over split keys (one compiled call)."""
    keys = jax.random.split(jax.random.key(seed), n)
    return jax.jit(jax.vmap(lambda k: init(k, shape, dtype)))(keys)


def ks_distance(x: np.ndarray, cdf) -> float:
    """Kolmogorov–Smirnov distance between the sample ``x`` and a CDF."""
    x = np.sort(np.asarray(x, np.float64))
    f = np.asarray(cdf(jnp.asarray(x)), np.float64)
    n = x.size
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def dkw_bound(n: int, alpha: float = 1e-9) -> float:
    """Dvoretzky–Kiefer–Wolfowitz: P(KS > eps) <= 2 exp(-2 n eps²); eps at level ``alpha``."""
    return math.sqrt(math.log(2 / alpha) / (2 * n))


def sylvester_kron(n: int) -> np.ndarray:
    """Sylvester's Hadamard matrix by Kronecker products (independent of the library's code)."""
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.kron(np.array([[1.0, 1.0], [1.0, -1.0]]), h)
    return h


# ---------------------------------------------------------------------------------------------
# Deterministic initialisers: exact arrays written out by hand
# ---------------------------------------------------------------------------------------------

H4 = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], float)
R2 = 1 / math.sqrt(2)
Z2 = np.zeros((2, 2))
I2 = np.eye(2)

DETERMINISTIC = [
    # (id, builder, shape, expected array)
    ("identity_rect", lambda: identity(2.0), (2, 3), [[2, 0, 0], [0, 2, 0]]),
    ("identity_tall", identity, (3, 2), [[1, 0], [0, 1], [0, 0]]),
    ("identity_batched", lambda: identity(-0.5), (2, 2, 2), [[[-0.5, 0], [0, -0.5]]] * 2),
    ("hadamard_2", hadamard, (2, 2), [[R2, R2], [R2, -R2]]),
    ("hadamard_4_scaled", lambda: hadamard(3.0), (4, 4), 1.5 * H4),
    ("hadamard_3x4", hadamard, (3, 4), H4[:3] / 2),
    ("hadamard_4x3", hadamard, (4, 3), H4[:, :3] / 2),
    ("hadamard_3x3", hadamard, (3, 3), H4[:3, :3] / 2),
    ("hadamard_conv", hadamard, (3, 1, 2), [[[0, 0]], [[R2, R2]], [[0, 0]]]),
    ("zerO_square", zerO, (3, 3), np.eye(3)),
    ("zerO_narrow", zerO, (3, 2), [[1, 0], [0, 1], [0, 0]]),
    ("zerO_widen_pow2", zerO, (2, 4), [[0.5, 0.5, 0.5, 0.5], [0.5, -0.5, 0.5, -0.5]]),
    ("zerO_widen", zerO, (2, 3), [[0.5, 0.5, 0.5], [0.5, -0.5, 0.5]]),
    ("zerO_widen_1x5", zerO, (1, 5), [[1 / math.sqrt(8)] * 5]),
    ("zerO_conv_even", zerO, (2, 1, 2), [[[0.5**0.5, 0.5**0.5]], [[0, 0]]]),
    ("dirac_odd", dirac, (3, 2, 2), [Z2, I2, Z2]),
    ("dirac_even", dirac, (4, 2, 2), [Z2, I2, Z2, Z2]),
    ("dirac_2d_even", dirac, (2, 2, 1, 1), [[[[1]], [[0]]], [[[0]], [[0]]]]),
    ("dirac_groups", lambda: dirac(2), (1, 1, 4), [[[1, 0, 1, 0]]]),
    ("dirac_in_gt_out", dirac, (1, 3, 2), [[[1, 0], [0, 1], [0, 0]]]),
    ("bias_prior_001", lambda: bias_prior(0.01), (3,), [-4.59511985013459] * 3),
    ("bias_prior_half", lambda: bias_prior(0.5), (2, 2), np.zeros((2, 2))),
    ("bias_prior_scalar", lambda: bias_prior(0.9), (), math.log(9.0)),
]


# One case per initialiser is also checked in every other dtype (the code path is dtype-free).
ALL_DTYPE_CASES = {"identity_rect", "hadamard_2", "zerO_widen", "dirac_groups", "bias_prior_001"}


@pytest.mark.parametrize(
    "name,build,shape,expected", DETERMINISTIC, ids=[c[0] for c in DETERMINISTIC]
)
def test_deterministic_exact(name, build, shape, expected):
    init = build()
    for dtype in DTYPES if name in ALL_DTYPE_CASES else [jnp.float32]:
        want = np.asarray(expected, np.float64).astype(dtype)
        w = init(KEY, shape, dtype)
        assert w.dtype == dtype and w.shape == shape
        np.testing.assert_array_equal(np.asarray(w), want)
        law = init.law(shape, dtype)
        assert isinstance(law, laws.DeterministicLaw)
        np.testing.assert_array_equal(law.value, want)
    # The key is ignored: any other key gives the same array.
    np.testing.assert_array_equal(np.asarray(init(jax.random.key(7), shape, dtype)), want)
    if name in ALL_DTYPE_CASES:
        with jax.enable_x64(True):
            w = init(KEY, shape, jnp.float64)
            assert w.dtype == jnp.float64
            # float64 literals: exact, up to the last ulp of values such as 1/√2.
            np.testing.assert_allclose(np.asarray(w), np.asarray(expected, float), rtol=1e-15)


def test_bias_prior_value():
    b = bias_prior(0.01)
    assert round(b.value, 5) == -4.59512
    assert b.value == pytest.approx(math.log(0.01 / 0.99), rel=1e-15)
    assert 1 / (1 + math.exp(-b.value)) == pytest.approx(0.01, rel=1e-14)


# ---------------------------------------------------------------------------------------------
# Hadamard and ZerO properties
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4, 8, 32, 128])
def test_sylvester_hadamard(n):
    h = sylvester_kron(n)
    np.testing.assert_array_equal(h @ h.T, n * np.eye(n))  # H Hᵀ = n I, exactly
    np.testing.assert_array_equal(_sylvester_block_host(n, n), h)
    np.testing.assert_array_equal(np.asarray(_sylvester_block(n, n, np.float32)), h)
    w = hadamard()(KEY, (n, n), jnp.float32)
    np.testing.assert_array_equal(np.asarray(w), (h / math.sqrt(n)).astype(np.float32))


@pytest.mark.parametrize(
    "shape,scale",
    [((64, 64), 1.0), ((16, 64), 2.0), ((64, 16), 0.5), ((1, 128), 1.0), ((100, 128), 1.0)],
)
def test_hadamard_gram_identity_when_larger_side_is_pow2(shape, scale):
    w = np.asarray(hadamard(scale)(KEY, shape, jnp.float32))
    n_in, n_out = shape
    g = w @ w.T if n_in <= n_out else w.T @ w
    # Entries ±scale/√p are exact in float32; sums of p products of them are exact to ~p·eps.
    np.testing.assert_allclose(g, scale**2 * np.eye(min(shape)), atol=1e-6 * max(shape))


@pytest.mark.parametrize("shape", [(8, 8), (8, 32), (5, 16), (1, 64), (32, 8), (7, 3)])
def test_zerO_preserves_norms(shape):
    """‖xW‖ = ‖x‖: for all x when in <= out and out is a power of two (W Wᵀ = I); for x in the
    span of the kept coordinates when narrowing (Wᵀ W = I)."""
    w = np.asarray(zerO()(KEY, shape, jnp.float32), np.float64)
    n_in, n_out = shape
    x = np.random.default_rng(SEED).normal(size=(50, n_in))
    if n_in > n_out:
        x[:, n_out:] = 0.0
    np.testing.assert_allclose(np.linalg.norm(x @ w, axis=1), np.linalg.norm(x, axis=1), 1e-6)


def test_zerO_widening_to_non_pow2_is_not_isometric():
    # p = 4 for out = 3: W = H4[:2, :3]/2, W Wᵀ = [[3, 1], [1, 3]]/4 (written by hand).
    w = np.asarray(zerO()(KEY, (2, 3), jnp.float32))
    np.testing.assert_array_equal(w @ w.T, [[0.75, 0.25], [0.25, 0.75]])


@pytest.mark.parametrize("shape", [(8, 8), (3, 8, 8), (3, 3, 4, 4), (2, 3, 1, 5, 5)])
def test_zerO_square_conv_is_dirac(shape):
    np.testing.assert_array_equal(
        np.asarray(zerO()(KEY, shape)),
        np.asarray((dirac() if len(shape) > 2 else identity())(KEY, shape)),
    )


# ---------------------------------------------------------------------------------------------
# dirac: the convolution with it is the identity
# ---------------------------------------------------------------------------------------------

CONV_CASES = [  # (kernel size, groups): 1-D, 2-D, 3-D; odd, even and mixed sizes
    ((3,), 1),
    ((4,), 3),
    ((3, 3), 3),
    ((4, 2), 1),
    ((3, 2, 4), 3),
]


@pytest.mark.parametrize("kernel,groups", CONV_CASES, ids=str)
def test_dirac_flax_conv_is_identity(kernel, groups):
    channels = 6
    conv = nn.Conv(
        channels,
        kernel,
        padding="SAME",
        feature_group_count=groups,
        use_bias=False,
        kernel_init=dirac(groups),
    )
    spatial = tuple(5 + i for i in range(len(kernel)))
    x = jax.random.normal(jax.random.key(1), (2, *spatial, channels))
    params = conv.init(KEY, x)
    assert params["params"]["kernel"].shape == (*kernel, channels // groups, channels)
    # Each output is 1·x plus exact zeros: the convolution reproduces x bit for bit.
    chex.assert_trees_all_equal(conv.apply(params, x), x)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_dirac_lax_conv_1d_and_centre(k):
    x = jnp.arange(1.0, 11.0)[None, :, None]
    w = dirac()(KEY, (k, 1, 1))
    y = jax.lax.conv_general_dilated(x, w, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"))
    chex.assert_trees_all_equal(y, x)
    # Same centre as jax's delta_orthogonal, (k - 1) // 2 (torch's dirac_ uses k // 2).
    d = jax.nn.initializers.delta_orthogonal()(KEY, (k, 1, 1))
    assert np.flatnonzero(np.asarray(w)).tolist() == np.flatnonzero(np.asarray(d)).tolist()
    assert np.flatnonzero(np.asarray(w)).tolist() == [(k - 1) // 2]


@pytest.mark.parametrize(
    "kernel,cin,cout,groups",
    [((3,), 4, 4, 1), ((3, 3), 2, 6, 3), ((5, 3), 4, 6, 2), ((3,), 2, 6, 1), ((1, 3, 5), 5, 3, 1)],
)
def test_dirac_matches_torch_for_odd_kernels(kernel, cin, cout, groups):
    t = torch.empty(cout, cin, *kernel)
    torch.nn.init.dirac_(t, groups)
    want = np.moveaxis(t.numpy(), (0, 1), (-1, -2))  # (out, in, *k) -> (*k, in, out)
    w = dirac(groups)(KEY, (*kernel, cin, cout))
    np.testing.assert_array_equal(np.asarray(w), want)


# ---------------------------------------------------------------------------------------------
# sparse
# ---------------------------------------------------------------------------------------------

SPARSE_COUNTS = [
    # (kwargs, shape, exact zeros per unit)
    (dict(nonzeros=15), (64, 32), 49),
    (dict(nonzeros=5, in_axis=-1), (20, 48), 43),
    (dict(nonzeros=8), (8, 3), 0),
    (dict(sparsity=0.07), (100, 16), 8),  # torch's float arithmetic: ceil(7.000000000000001)
    (dict(sparsity=0.25, in_axis=1), (16, 64), 16),
    (dict(sparsity=1.0), (10, 4), 10),
]


SPARSE_COUNT_CASES = [  # drawn: each dtype and axis once; the others are law-only below
    (*SPARSE_COUNTS[0], jnp.float32),
    (*SPARSE_COUNTS[1], jnp.complex64),
    (*SPARSE_COUNTS[2], jnp.float32),
    (*SPARSE_COUNTS[4], jnp.bfloat16),
    (*SPARSE_COUNTS[5], jnp.float32),
]


@pytest.mark.parametrize("kwargs,shape,zeros", SPARSE_COUNTS, ids=str)
def test_sparse_law_zero_count(kwargs, shape, zeros):
    law = sparse(**kwargs).law(shape)
    assert isinstance(law, laws.SparseLaw) and law.zeros_per_unit == zeros
    assert law.axis == kwargs.get("in_axis", -2) % 2
    assert law.fraction_zero == zeros / shape[law.axis]


@pytest.mark.parametrize("kwargs,shape,zeros,dtype", SPARSE_COUNT_CASES, ids=str)
def test_sparse_exact_zero_count_per_unit(kwargs, shape, zeros, dtype):
    init = sparse(**kwargs)
    law = init.law(shape, dtype)
    assert isinstance(law, laws.SparseLaw) and law.zeros_per_unit == zeros
    w = np.asarray(draws(init, shape, dtype, 32))
    counts = (w == 0).sum(axis=1 + law.axis)  # per draw and unit
    assert counts.shape == (32, shape[1 - law.axis])
    assert np.all(counts == zeros)


@pytest.mark.parametrize(
    "rows,cols,sparsity", [(30, 16, 0.1), (100, 8, 0.07), (64, 8, 0.3), (7, 5, 0.5)]
)
def test_sparse_zero_count_matches_torch(rows, cols, sparsity):
    """torch counts zeros down each column of its (out, in) weight: jinit's in_axis=-1."""
    torch.manual_seed(SEED)
    t = torch.empty(rows, cols)
    torch.nn.init.sparse_(t, sparsity)
    torch_zeros = set((t == 0).sum(dim=0).tolist())
    law = sparse(sparsity=sparsity, in_axis=-1).law((cols, rows))
    assert torch_zeros == {law.zeros_per_unit}


def test_sparse_zero_positions_uniform():
    """Each position of a unit is zero with probability z/n (pooled over units and draws)."""
    n, units, n_draws, k = 64, 32, 400, 15
    w = np.asarray(draws(sparse(nonzeros=k), (n, units), jnp.float32, n_draws))
    freq = (w == 0).mean(axis=(0, 2))  # per position along the fan axis
    p = (n - k) / n
    se = math.sqrt(p * (1 - p) / (units * n_draws))  # binomial; exact counts only lower it
    assert np.max(np.abs(freq - p)) < 6 * se, (freq.min(), freq.max(), p)
    # Different units get different patterns (independent permutations).
    assert not np.all((w[0, :, 0] == 0) == (w[0, :, 1] == 0))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
def test_sparse_law_statistics(dtype):
    stddev, shape, n_draws = 0.5, (64, 32), 700  # 1.43e6 entries, 1.08e6 non-zeros
    init = sparse(nonzeros=48, stddev=stddev)
    law = init.law(shape, dtype)
    w = np.asarray(draws(init, shape, dtype, n_draws)).ravel()
    n = w.size
    # Whole array: E|w|² against the law. Var(|w|²) = (1-f)·m4 - var² with m4 the non-zero
    # fourth moment; the fixed zero count per unit makes the indicators negatively correlated,
    # so this i.i.d. standard error is conservative.
    m2 = float(np.mean(np.abs(w.astype(np.complex128)) ** 2))
    keep = 1 - law.fraction_zero
    # SparseLaw.variance comes out as a complex number (zero imaginary part) for complex
    # non-zero laws (it squares the mean 0j instead of taking |mean|²); use its real part.
    var = float(np.real(law.variance))
    assert var == pytest.approx(keep * stddev**2, rel=1e-6)
    se = math.sqrt((keep * law.nonzero.fourth_moment - var**2) / n)
    assert abs(m2 - var) < 6 * se
    se_mean = math.sqrt(var / n)
    assert abs(np.mean(w.real)) < 6 * se_mean and abs(np.mean(w.imag)) < 6 * se_mean
    # Non-zeros: moments and KS distance against the non-zero law.
    nz = w[w != 0]
    assert nz.size == round(n * keep)
    v = float(np.mean(np.abs(nz.astype(np.complex128)) ** 2))
    nzl = law.nonzero
    assert abs(v - nzl.variance) < 6 * math.sqrt((nzl.fourth_moment - nzl.variance**2) / nz.size)
    x = np.abs(nz) if law.nonzero.is_complex else nz
    assert ks_distance(x, nzl.cdf) < dkw_bound(nz.size)


# ---------------------------------------------------------------------------------------------
# scaled uniform orthogonal
# ---------------------------------------------------------------------------------------------

SUO_CASES = [
    # (kwargs, shape, effective scale)
    (dict(), (16, 64), 2.0),  # widening: √(64/16)
    (dict(), (64, 16), 1.0),
    (dict(scale=0.5), (32, 32), 0.5),
    (dict(delta=False, axis=0), (32, 8), 2.0),  # out = shape[0] = 32, in = 8
    (dict(delta=False), (2, 8, 200), math.sqrt(200 / 16)),
    (dict(delta=False), (3, 3, 8, 32), 1.0),  # in = 72 > out
    (dict(), (3, 3, 8, 32), 2.0),  # delta: in = 8, out = 32
    (dict(scale=1.5), (5, 16, 8), 1.5),
    (dict(), (3, 1, 5, 4, 4), 1.0),
]


@pytest.mark.parametrize("kwargs,shape,s", SUO_CASES, ids=str)
def test_suo_effective_scale_and_law(kwargs, shape, s):
    init = scaled_uniform_orthogonal(**kwargs)
    assert init.effective_scale(shape) == pytest.approx(s, rel=1e-15)
    for dtype in (jnp.float32, jnp.complex64):
        law = init.law(shape, dtype)
        delta = len(shape) > 2 and init.delta
        inner = law.inner if delta else law
        assert isinstance(law, laws.DeltaOrthogonalLaw if delta else laws.OrthogonalLaw)
        assert inner.scale == pytest.approx(s, rel=1e-15)
        assert inner.is_complex == (dtype == jnp.complex64)
        if delta:
            assert law.centre == tuple((k - 1) // 2 for k in shape[:-2])
            assert inner.shape == shape[-2:]


SUO_DRAW_CASES = [  # float32 widening without delta is drawn in test_suo_entry_moments
    (*SUO_CASES[0], jnp.complex64),
    (*SUO_CASES[3], jnp.float32),
    (*SUO_CASES[6], jnp.bfloat16),
    (*SUO_CASES[8], jnp.float32),
]


@pytest.mark.parametrize("kwargs,shape,s,dtype", SUO_DRAW_CASES, ids=str)
def test_suo_gram_identity_and_support(kwargs, shape, s, dtype):
    init = scaled_uniform_orthogonal(**kwargs)
    law = init.law(shape, dtype)
    delta = len(shape) > 2 and init.delta
    inner = law.inner if delta else law
    w = draws(init, shape, dtype, 8)
    assert w.dtype == dtype and w.shape == (8, *shape)
    if delta:
        off = jax.vmap(law.off_centre_max)(w)
        assert float(jnp.max(off)) == 0.0  # centre-only support, exactly
        w = jax.vmap(law.centre_slice)(w)
    err = float(jnp.max(jax.vmap(inner.gram_error)(w)))
    # float32 QR: orthogonality error ~ n·eps (n <= 200 here, eps 1.2e-7 -> < 3e-5); bfloat16
    # rounds every entry to 2^-9 relative, so the Gram entries move by up to ~2^-8·s².
    tol = (1e-4 if dtype != jnp.bfloat16 else 2**-6) * s**2
    assert err < tol, err


def test_suo_entry_moments():
    """Entries of s·(Haar 16×64): variance s²/n and fourth moment 3s⁴/(n(n+2)), n = 64."""
    shape, n_draws = (16, 64), 1000  # 1.02e6 entries
    init = scaled_uniform_orthogonal()
    law = init.law(shape)
    w = np.asarray(draws(init, shape, jnp.float32, n_draws), np.float64)
    # Gram identity of every draw: W Wᵀ = s² I_16 with s = √(64/16) = 2 (float32 QR, ~n·eps).
    gram = np.einsum("bij,bkj->bik", w, w)
    np.testing.assert_allclose(gram, np.broadcast_to(4 * np.eye(16), gram.shape), atol=4e-4)
    w = w.ravel()
    n, s = 64, law.scale
    assert law.variance == pytest.approx(s**2 / n) and law.fourth_moment == pytest.approx(
        3 * s**4 / (n * (n + 2))
    )
    # E x^8 of a sphere coordinate: 105 s⁸/(n(n+2)(n+4)(n+6)). Squares and fourth powers of
    # distinct coordinates are negatively correlated, so i.i.d. standard errors are conservative.
    m8 = 105 * s**8 / (n * (n + 2) * (n + 4) * (n + 6))
    se2 = math.sqrt((law.fourth_moment - law.variance**2) / w.size)
    se4 = math.sqrt((m8 - law.fourth_moment**2) / w.size)
    assert abs(np.mean(w**2) - law.variance) < 6 * se2
    assert abs(np.mean(w**4) - law.fourth_moment) < 6 * se4
    assert abs(np.mean(w)) < 6 * math.sqrt(law.variance / w.size)


# ---------------------------------------------------------------------------------------------
# transformer conventions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "init,std",
    [
        (transformer_normal(), 0.02),
        (transformer_normal(0.1), 0.1),
        (gpt2_residual(12), 0.02 / math.sqrt(24)),
        (gpt2_residual(48, 0.01), 0.01 / math.sqrt(96)),
    ],
)
def test_normal_recipes_std(init, std):
    assert init.effective_stddev() == pytest.approx(std, rel=1e-15)
    for dtype, cls in ((jnp.float32, laws.Normal), (jnp.complex64, laws.ComplexNormal)):
        law = init.law((8, 8), dtype)
        assert isinstance(law, cls)
        assert law.std == pytest.approx(std, rel=1e-7)  # rounded to float32 like the sampler


@pytest.mark.parametrize(
    "init,dtype",
    [(transformer_normal(), jnp.float32), (gpt2_residual(12), jnp.complex64)],
)
def test_normal_recipes_law(init, dtype):
    law = init.law((64, 64), dtype)
    w = np.asarray(draws(init, (64, 64), dtype, 250)).ravel()  # 1.02e6 draws
    n = w.size
    assert abs(np.mean(w.real)) < 6 * math.sqrt(law.variance / n)
    m2 = float(np.mean(np.abs(w.astype(np.complex128)) ** 2))
    assert abs(m2 - law.variance) < 6 * math.sqrt((law.fourth_moment - law.variance**2) / n)
    x = np.abs(w) if law.is_complex else w
    assert ks_distance(x, law.cdf) < dkw_bound(n)


@pytest.mark.parametrize(
    "init,std",
    [(transformer_normal(), 0.02), (gpt2_residual(12), 0.02 / math.sqrt(2 * 12))],
)
def test_normal_recipes_bit_identical_to_jax(init, std):
    for dtype in (jnp.float32, jnp.bfloat16):
        want = jax.nn.initializers.normal(std)(KEY, (32, 48), dtype)
        chex.assert_trees_all_equal(init(KEY, (32, 48), dtype), want)


# ---------------------------------------------------------------------------------------------
# Every catalogue entry: dtypes, jit/vmap, empty shapes, sharding, raw keys, equality
# ---------------------------------------------------------------------------------------------

EXTRA = (
    identity,
    dirac,
    sparse,
    hadamard,
    zerO,
    scaled_uniform_orthogonal,
    bias_prior,
    transformer_normal,
    gpt2_residual,
)
ENTRIES = [e for e in catalogue.entries() if (e.builder or e.build) in EXTRA]


def test_every_extra_initialiser_has_a_catalogue_entry():
    assert len(ENTRIES) == len(EXTRA), [e.name for e in ENTRIES]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_catalogue_entry_contract(entry):
    init, shape = entry.build(), entry.example_shape
    assert repr(init).startswith(f"jinit.{entry.name}(") and init.api == entry.name
    assert init == entry.build() and hash(init) == hash(entry.build())
    assert init.family == entry.family
    assert pickle.loads(pickle.dumps(init)) == init
    keys = jax.random.split(KEY, 3)

    def everything(key, raw_key, keys):
        return (
            [init(key, shape, dtype) for dtype in DTYPES],
            init(raw_key, shape),  # a raw uint32 key works as well
            jax.vmap(lambda k: init(k, shape))(keys),
        )

    by_dtype, raw, batch = jax.jit(everything)(KEY, jax.random.PRNGKey(0), keys)
    jitted = by_dtype[DTYPES.index(jnp.float32)]  # the default dtype
    for dtype, w in zip(DTYPES, by_dtype, strict=True):
        assert w.shape == shape and w.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(w)))
    assert raw.shape == shape
    with jax.enable_x64(True):
        assert jax.eval_shape(lambda k: init(k, shape, jnp.float64), KEY).dtype == jnp.float64
    eager = init(KEY, shape)
    # Same values under jit; XLA may fuse the normal sampler's float32 arithmetic differently
    # from op-by-op execution, moving a draw by a few ulp (rtol 1e-6 ~ 8 ulp).
    chex.assert_trees_all_close(jitted, eager, rtol=1e-6)
    # vmap over keys: one draw per key, each the draw of that key.
    chex.assert_shape(batch, (3, *shape))
    chex.assert_trees_all_close(batch[1], init(keys[1], shape), rtol=1e-6)
    # Empty shapes give zeros of that shape; their law is the (empty) deterministic array.
    empty = (*shape[:-1], 0)
    assert init(KEY, empty).shape == empty
    assert isinstance(init.law(empty), laws.DeterministicLaw)


@pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 devices (tests/conftest.py)")
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_catalogue_entry_out_sharding(entry):
    init, shape = entry.build(), entry.example_shape
    mesh = jax.make_mesh((4,), ("x",), axis_types=(jax.sharding.AxisType.Auto,))
    sharding = NamedSharding(mesh, P(*([None] * (len(shape) - 1)), "x"))
    plain = np.asarray(init(KEY, shape))
    w = init(KEY, shape, out_sharding=sharding)
    assert w.sharding == sharding
    chex.assert_trees_all_equal(np.asarray(w), plain)
    jitted = jax.jit(lambda k: init(k, shape, out_sharding=sharding))(KEY)
    assert jitted.sharding.is_equivalent_to(sharding, len(shape))
    # The layout never changes the values (up to the jit-vs-eager ulp noted above).
    chex.assert_trees_all_close(np.asarray(jitted), plain, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Bad inputs: each error names the function
# ---------------------------------------------------------------------------------------------

BAD_BUILDS = [
    ("identity", lambda: identity(float("nan")), ValueError),
    ("identity", lambda: identity("1"), TypeError),
    ("dirac", lambda: dirac(0), ValueError),
    ("dirac", lambda: dirac(1.5), TypeError),
    ("sparse", lambda: sparse(), ValueError),
    ("sparse", lambda: sparse(nonzeros=3, sparsity=0.5), ValueError),
    ("sparse", lambda: sparse(sparsity=1.5), ValueError),
    ("sparse", lambda: sparse(sparsity=-0.1), ValueError),
    ("sparse", lambda: sparse(nonzeros=0), ValueError),
    ("sparse", lambda: sparse(nonzeros=2.5), TypeError),
    ("sparse", lambda: sparse(nonzeros=3, stddev=-1.0), ValueError),
    ("sparse", lambda: sparse(nonzeros=3, in_axis=2), ValueError),
    ("hadamard", lambda: hadamard(-1.0), ValueError),
    ("hadamard", lambda: hadamard(1.0, jnp.int32), TypeError),
    ("zerO", lambda: zerO(jnp.int8), TypeError),
    ("scaled_uniform_orthogonal", lambda: scaled_uniform_orthogonal(axis=0), ValueError),
    ("scaled_uniform_orthogonal", lambda: scaled_uniform_orthogonal(delta="y"), TypeError),
    ("scaled_uniform_orthogonal", lambda: scaled_uniform_orthogonal(math.inf), ValueError),
    ("bias_prior", lambda: bias_prior(0.0), ValueError),
    ("bias_prior", lambda: bias_prior(1.0), ValueError),
    ("bias_prior", lambda: bias_prior(1.5), ValueError),
    ("bias_prior", lambda: bias_prior(True), TypeError),
    ("transformer_normal", lambda: transformer_normal(-0.1), ValueError),
    ("gpt2_residual", lambda: gpt2_residual(0), ValueError),
    ("gpt2_residual", lambda: gpt2_residual(2.0), TypeError),
    ("gpt2_residual", lambda: gpt2_residual(12, math.nan), ValueError),
]


@pytest.mark.parametrize("name,build,error", BAD_BUILDS, ids=[b[0] for b in BAD_BUILDS])
def test_bad_hyper_parameters(name, build, error):
    with pytest.raises(error, match=re.escape(f"`{name}`")):
        build()


BAD_CALLS = [
    ("identity", identity(), (5,), None, ValueError),
    ("identity", identity(), (2, 2), jnp.int32, TypeError),
    ("dirac", dirac(), (3, 3), None, ValueError),
    ("dirac", dirac(), (1, 1, 1, 1, 1, 2, 2), None, ValueError),
    ("dirac", dirac(4), (3, 2, 6), None, ValueError),
    ("sparse", sparse(nonzeros=15), (10, 4), None, ValueError),
    ("sparse", sparse(nonzeros=15, in_axis=-1), (40, 10), None, ValueError),
    ("sparse", sparse(nonzeros=1), (3, 3, 3), None, ValueError),
    ("hadamard", hadamard(), (2,) * 6, None, ValueError),
    ("zerO", zerO(), (4,), None, ValueError),
    (
        "scaled_uniform_orthogonal",
        scaled_uniform_orthogonal(),
        (4, 4, 8, 8),
        None,
        ValueError,
    ),
    ("scaled_uniform_orthogonal", scaled_uniform_orthogonal(), (8,), None, ValueError),
    (
        "scaled_uniform_orthogonal",
        scaled_uniform_orthogonal(delta=False, axis=3),
        (4, 4),
        None,
        ValueError,
    ),
    ("bias_prior", bias_prior(0.1), (3,), jnp.int32, TypeError),
    ("gpt2_residual", gpt2_residual(2), (3,), jnp.uint8, TypeError),
]


@pytest.mark.parametrize(
    "name,init,shape,dtype,error", BAD_CALLS, ids=[f"{b[0]}-{b[2]}" for b in BAD_CALLS]
)
def test_bad_calls(name, init, shape, dtype, error):
    with pytest.raises(error, match=re.escape(f"`{name}`")):
        init(KEY, shape, dtype)
    with pytest.raises(error, match=re.escape(f"`{name}`")):
        init.law(shape, dtype)


def test_sparse_empty_shapes_do_not_check_counts():
    # No unit, or no weight: nothing to hold the non-zeros, so zeros of the shape come back.
    init = sparse(nonzeros=15)
    assert init(KEY, (0, 4)).shape == (0, 4)
    assert init(KEY, (5, 0)).shape == (5, 0)
