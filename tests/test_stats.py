"""Tests of the seed-sweep engine (jinit/stats/_stats.py): per-seed statistics against numpy and
scipy on the same draws, exact pooling, structured laws, chunk/device independence, tracing,
key handling, and the host-side distributions."""

from __future__ import annotations

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import jinit
from jinit.laws import _laws as L
from jinit.stats._reduction import _KINDS, trace_count
from jinit.stats._results import BINS
from jinit.stats._rounding import (
    cdf_band,
    dkw_threshold,
    dtype_allowance,
    kolmogorov_sf,
    normal_isf,
    systematic_allowance,
)
from jinit.stats._sizing import default_seeds
from jinit.testing import init_stats
from jinit.testing._law_kinds import _gram_tolerance

SHAPE = (16, 8)
SEEDS = 12  # not a multiple of the 4 test devices: the last chunk is padded
KEY = jax.random.key(3)


def _draws(init, shape, dtype, seeds=SEEDS, key=KEY):
    """The sweep's draws, made one by one on the host (draw s uses fold_in(key, s))."""
    return [np.asarray(init(jax.random.fold_in(key, s), shape, dtype)) for s in range(seeds)]


# ---------------------------------------------------------------------------------------------
# Rounding bounds: float results of different computations (float32 on device vs float64 on the
# host, or one chunking/device count vs another) agree only up to these, on any CPU.
# ---------------------------------------------------------------------------------------------

U32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32


def moment_bounds(a: np.ndarray, n_evals: int = 1, rel_a: int = 1) -> np.ndarray:
    r"""Bounds on the error of the float32 power means :math:`r_k = \frac1n\sum a_i^k`,
    ``k = 1..8``, of the values ``a`` (exact, float64), as the sweep computes them.

    One evaluation: :math:`a_i` carries ``rel_a`` roundings (1 for :math:`x - c`, 3 for the
    modulus :math:`|z - c|`) and :math:`a_i^k` up to ``k - 1`` more (relative error
    :math:`\le (k\,\mathrm{rel_a} + k - 1) u`); the sum of ``n`` terms in any order or blocking
    is within :math:`\gamma_{n-1}\sum|t_i| \approx (n - 1) u \sum|t_i|` of the exact sum
    (Higham 2002, eq. 4.4); the division rounds once more. In all
    :math:`(n + k(\mathrm{rel_a} + 1))\,u\,S_k` with :math:`S_k = \frac1n\sum|a_i|^k`. Two
    evaluations with different blocking differ by at most twice that (``n_evals=2``).
    """
    n = a.size
    k = np.arange(1, 9)
    s_abs = np.asarray([np.mean(np.abs(a) ** j) for j in k])
    return n_evals * (n + k * (rel_a + 1)) * U32 * s_abs * 1.01  # 1 %: first-order expansion


def central_bounds(r: np.ndarray, dr: np.ndarray, d: float, dd: float) -> np.ndarray:
    r"""First-order error bounds of the central moments ``central_moments(r, d)`` (orders 0..8) from
    bounds ``dr`` on the power means ``r[1..8]`` and ``dd`` on ``d = mean - c``:
    :math:`\sum_j \binom kj \left(\delta r_j |d|^{k-j} + |r_j|\,(k-j)\,|d|^{k-j-1}\delta d
    \right)`."""
    r = np.concatenate([[1.0], np.abs(r)])
    dr = np.concatenate([[0.0], dr])
    out = []
    for k in range(9):
        t = 0.0
        for j in range(k + 1):
            t += math.comb(k, j) * dr[j] * abs(d) ** (k - j)
            if k > j:
                t += math.comb(k, j) * r[j] * (k - j) * abs(d) ** (k - j - 1) * dd
        out.append(t)
    return np.asarray(out)


def per_seed_bounds(z: np.ndarray, c: complex, n_evals: int = 1) -> dict[str, np.ndarray]:
    """Bounds on the float32 sweep's mean, variance, m3, m4 and moments of one draw ``z``
    (exact float64/complex128 values) about the centre ``c``, for ``n_evals`` evaluations (1:
    against the exact values, 2: between two blockings)."""
    n = z.size
    if np.iscomplexobj(z):
        a = np.abs(z - c)  # moments of moduli; the mean is of real and imaginary parts
        dr = moment_bounds(a, n_evals, rel_a=3)
        r = np.asarray([np.mean(a**k) for k in range(1, 9)])
        d_mean = n_evals * math.sqrt(2) * (n + 1) * U32 * np.mean(np.abs(z)) * 1.01
        # variance = r_2 - |mean - c|^2, m3 = r_3, m4 = r_4 (about c)
        dvar = dr[1] + 2 * abs(z.mean() - c) * d_mean + d_mean**2
        return {"moments": dr, "mean": d_mean, "variance": dvar, "m3": dr[2], "m4": dr[3]}
    a = z - c
    r = np.asarray([np.mean(a**k) for k in range(1, 9)])
    dr = moment_bounds(a, n_evals)
    mean = float(a.mean()) + c
    d_mean = dr[0] + n_evals * U32 * abs(mean)  # mean = fl(r_1 + c)
    cm = central_bounds(r, dr, mean - c, d_mean)
    return {"moments": dr, "mean": d_mean, "variance": cm[2], "m3": cm[3], "m4": cm[4]}


# A CDF value u in [0, 1] computed in float32 by the same elementwise code: equal up to a few
# ulps (FMA contraction may differ between vectorised and scalar code): 8 ulps of 1.
CDF_TOL = 8 * 2 * U32
# A drawn value: the same elementwise ops (threefry bits, then a transform such as erf_inv):
# a few ulps at most for the same reason.
DRAW_RTOL = 8 * 2 * U32


@dataclasses.dataclass(frozen=True)
class SparseInit:
    """A test initialiser: exactly ``zeros`` zeros per column (axis 0), the rest N(0, std^2).
    ``claimed`` is the zero count its law reports (a wrong claim tests the check)."""

    zeros: int = 3
    std: float = 0.5
    claimed: int | None = None

    def __call__(self, key, shape, dtype=None):
        dtype = dtype or jnp.float32
        k1, k2 = jax.random.split(key)
        w = self.std * jax.random.normal(k1, shape, dtype)
        rank = jnp.argsort(jnp.argsort(jax.random.uniform(k2, shape), axis=0), axis=0)
        return jnp.where(rank < self.zeros, jnp.zeros((), dtype), w)

    def law(self, shape, dtype=None):
        z = self.zeros if self.claimed is None else self.claimed
        dtype = np.dtype(dtype or np.float32)
        return L.SparseLaw(tuple(shape), 0, z, L.Normal(self.std, dtype=dtype), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Element-wise laws: every per-seed statistic against numpy/scipy on the same draws
# ---------------------------------------------------------------------------------------------

ELEMENTWISE = [
    ("he_normal", jinit.he_normal(), np.float32),
    ("normal_complex64", jinit.normal(1.0), np.complex64),
]


@pytest.mark.parametrize("name,init,dtype", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_per_seed_statistics_match_numpy(name, init, dtype):
    law = jinit.law(init, SHAPE, dtype)
    st = init_stats(init, SHAPE, seeds=SEEDS, key=KEY, dtype=dtype)
    chex.assert_shape([st.mean, st.variance, st.m3, st.m4, st.min, st.max, st.ks], (SEEDS,))
    chex.assert_shape(st.moments, (SEEDS, 8))
    draws = _draws(init, SHAPE, dtype)
    for s, w in enumerate(draws):
        z = w.ravel().astype(np.complex128 if np.iscomplexobj(w) else np.float64)
        x = np.abs(z) if np.iscomplexobj(z) else z  # moduli for complex laws
        a = np.abs(z - law.mean) if np.iscomplexobj(z) else z - law.mean
        mean = z.mean()
        e = np.abs(z - mean) if np.iscomplexobj(z) else z - mean
        if np.iscomplexobj(z):  # m3, m4 of complex values are about the law's centre
            want = [mean, (e**2).mean(), (a**3).mean(), (a**4).mean()]
        else:
            want = [mean, (e**2).mean(), (e**3).mean(), (e**4).mean()]
        got = [np.asarray(st.mean[s]), st.variance[s], st.m3[s], st.m4[s]]
        # float32 sums of n values against exact float64 ones: the bounds of the computation
        b = per_seed_bounds(z, law.mean)
        for g, w_, name_ in zip(got, want, ("mean", "variance", "m3", "m4"), strict=True):
            assert abs(g - w_) <= b[name_] + 1e-300, (name_, g, w_, b[name_])
        exact = np.asarray([(a**k).mean() for k in range(1, 9)])
        assert np.all(np.abs(st.moments[s] - exact) <= b["moments"]), (st.moments[s], exact)
        # extremes are drawn values, unchanged by the reduction
        assert abs(float(st.min[s]) - x.min()) <= DRAW_RTOL * abs(x.min())
        assert abs(float(st.max[s]) - x.max()) <= DRAW_RTOL * abs(x.max())

        def cdf(t):
            return np.asarray(law.cdf(jnp.asarray(t, jnp.float32)), np.float64)

        ks = scipy.stats.kstest(x, cdf).statistic
        # the same float32 CDF values, up to a few ulps; i/n exact up to one rounding
        chex.assert_scalar_in(float(st.ks[s]), ks - CDF_TOL, ks + CDF_TOL)
    assert int(st.count.sum()) == SEEDS * math.prod(SHAPE)
    # the rounding band of float32 is negligible: ks_excess = ks - band
    chex.assert_trees_all_close(st.ks_excess, np.maximum(st.ks - st.band, 0.0))
    assert 0 < float(st.band) < 1e-6


def test_pooled_statistics_are_exact():
    init = jinit.he_normal()
    law = jinit.law(init, SHAPE)
    st = init_stats(init, SHAPE, seeds=SEEDS, key=KEY)
    draws = [w.ravel().astype(np.float64) for w in _draws(init, SHAPE, None)]
    x = np.concatenate(draws)
    p = st.pooled()
    n = x.size
    assert p.count == n and p.seeds == SEEDS
    m, v = x.mean(), x.var()
    e = x - m
    m4 = (e**4).mean()
    kurt = m4 / v**2 - 3
    # Pooling is exact (float64 on the host); the error comes from the float32 per-seed sums:
    # the pooled power means are the average of the per-seed ones, so are their error bounds.
    c = float(law.mean)
    per = [per_seed_bounds(d, c) for d in draws]
    dr = np.mean([b["moments"] for b in per], axis=0)
    dd = float(np.mean([b["mean"] for b in per]))
    r = np.asarray([np.mean((x - c) ** k) for k in range(1, 9)])
    cm = central_bounds(r, dr, m - c, dd)
    assert abs(p.mean - m) <= dd
    assert abs(p.variance - v) <= cm[2]
    dk = cm[4] / v**2 + 2 * m4 * cm[2] / v**3  # kurtosis m4 / m2^2 - 3, first order
    assert abs(p.excess_kurtosis - kurt) <= dk
    assert abs(p.min - x.min()) <= DRAW_RTOL * abs(x.min())
    assert abs(p.max - x.max()) <= DRAW_RTOL * abs(x.max())
    se = math.sqrt((m4 - v**2) / n)
    d_se = se * (cm[4] + 2 * v * cm[2]) / (2 * (m4 - v**2))  # sqrt((m4 - m2^2) / n)
    assert abs(p.variance_se - se) <= d_se
    # pooled level counts and KS distance, from the law's CDF on the host: the float32 CDF
    # values agree up to CDF_TOL, so a count can move only by the values that close to a level
    u = np.asarray(law.cdf(jnp.asarray(x, jnp.float32)), np.float64)
    levels = np.arange(1, BINS) / BINS
    np.testing.assert_array_equal(st.levels, levels)
    near = (np.abs(u[None, :] - levels[:, None]) <= CDF_TOL).sum(axis=1)
    assert np.all(np.abs(st.levels_le - (u[None, :] <= levels[:, None]).sum(1)) <= near)
    assert np.all(np.abs(st.levels_lt - (u[None, :] < levels[:, None]).sum(1)) <= near)
    d = max(np.max(st.levels_le / n - levels), np.max(levels - st.levels_lt / n))
    assert float(st.ks_pooled) == d  # the same counts, the same float64 arithmetic
    # the level-restricted distance never exceeds the full KS distance of the pooled sample
    full = scipy.stats.kstest(
        x, lambda t: np.asarray(law.cdf(jnp.asarray(t, jnp.float32)))
    ).statistic
    assert float(st.ks_pooled) <= full + CDF_TOL


# ---------------------------------------------------------------------------------------------
# Structured laws
# ---------------------------------------------------------------------------------------------


def test_orthogonal_gram_error():
    init = jinit.orthogonal(2.0)
    st = init_stats(init, SHAPE, seeds=SEEDS, key=KEY)
    for s, w in enumerate(_draws(init, SHAPE, None)):
        g = w.astype(np.float64).T @ w.astype(np.float64)
        err = np.abs(g - 4.0 * np.eye(SHAPE[1])).max()
        # the sweep's Gram is a float32 product: each entry, a sum of n_rows terms of
        # |w_ki w_kj| with sum <= scale^2 (unit columns), is within (n_rows + 1) u scale^2
        rounding = (SHAPE[0] + 1) * U32 * 4.0
        assert abs(float(st.gram_error[s]) - err) <= rounding
        # and the draw itself satisfies the identity the testing check allows
        assert err <= _gram_tolerance(jinit.law(init, SHAPE), np.dtype(np.float32))
    assert np.all(np.isnan(st.ks)) and np.all(np.isnan(st.exact_error))
    assert st.levels.size == 0


def test_delta_orthogonal_centre_and_zeros():
    shape = (3, 3, 4, 8)
    st = init_stats(jinit.delta_orthogonal(), shape, seeds=SEEDS, key=KEY)
    np.testing.assert_array_equal(st.exact_error, 0.0)  # nothing off the centre
    inner = jinit.law(jinit.delta_orthogonal(), shape).inner
    rounding = (inner.n_rows + 1) * U32 * inner.scale**2  # float32 Gram (see above)
    assert np.all(st.gram_error <= _gram_tolerance(inner, np.dtype(np.float32)) + rounding)
    np.testing.assert_array_equal(st.count, 4 * 8)  # statistics of the centre matrix


def test_deterministic_exact_error():
    init = jinit.constant(0.5)
    st = init_stats(init, (4, 3), seeds=SEEDS, key=KEY)
    np.testing.assert_array_equal(st.exact_error, 0.0)
    wrong = L.DeterministicLaw(np.full((4, 3), 0.25, np.float32), dtype=np.dtype(np.float32))
    st = init_stats(init, (4, 3), seeds=SEEDS, key=KEY, law=wrong)
    np.testing.assert_array_equal(st.exact_error, 0.25)


def test_sparse_zero_counts_and_nonzero_statistics():
    init = SparseInit(zeros=3, std=0.5)
    st = init_stats(init, SHAPE, seeds=SEEDS, key=KEY)
    np.testing.assert_array_equal(st.zeros_min, 3)
    np.testing.assert_array_equal(st.zeros_max, 3)
    np.testing.assert_array_equal(st.zeros_total, 3 * SHAPE[1])
    np.testing.assert_array_equal(st.count, math.prod(SHAPE) - 3 * SHAPE[1])
    for s, w in enumerate(_draws(init, SHAPE, None)):
        nz = w[w != 0].astype(np.float64)
        # a masked float32 mean of the nonzero values (the zeros add exactly 0)
        assert abs(float(st.mean[s]) - nz.mean()) <= per_seed_bounds(nz, 0.0)["mean"]
        ks = scipy.stats.kstest(nz, scipy.stats.norm(0, 0.5).cdf).statistic
        # float32 CDF values of float32 draws against float64 ones: a few ulps
        chex.assert_scalar_in(float(st.ks[s]), ks - CDF_TOL, ks + CDF_TOL)


# ---------------------------------------------------------------------------------------------
# Independence of the chunk size and the device count; tracing; keys
# ---------------------------------------------------------------------------------------------


def test_results_do_not_depend_on_chunks_or_devices():
    # The same draws reduced with another chunk size or device count: integer results and
    # extremes agree exactly (up to a few ulps of a drawn value), float sums up to the rounding
    # bounds of two evaluations with different blocking (per_seed_bounds(..., n_evals=2)).
    init = jinit.he_normal()
    law = jinit.law(init, SHAPE)
    ref = init_stats(init, SHAPE, seeds=SEEDS, key=KEY)
    assert len(jax.local_devices()) == 4  # tests/conftest.py
    draws = [w.ravel().astype(np.float64) for w in _draws(init, SHAPE, None)]
    bounds = [per_seed_bounds(x, float(law.mean), n_evals=2) for x in draws]
    pooled = np.concatenate(draws)
    u = np.asarray(law.cdf(jnp.asarray(pooled, jnp.float32)), np.float64)
    levels = np.arange(1, BINS) / BINS
    # a level count can only move by the values whose u lies within CDF_TOL of the level
    near = (np.abs(u[None, :] - levels[:, None]) <= CDF_TOL).sum(axis=1)
    for other in (
        init_stats(init, SHAPE, seeds=SEEDS, key=KEY, chunk_size=4),
        init_stats(init, SHAPE, seeds=SEEDS, key=KEY, devices=jax.local_devices()[:1]),
    ):
        for field in ("seeds", "count", "zeros_min", "zeros_max", "zeros_total"):
            np.testing.assert_array_equal(getattr(ref, field), getattr(other, field), field)
        for field in ("min", "max", "sketch"):
            a, b = getattr(ref, field), getattr(other, field)
            np.testing.assert_array_less(np.abs(a - b), DRAW_RTOL * np.abs(a) + 1e-300, field)
        for field in ("gram_error", "exact_error"):  # not applicable: NaN in both
            assert np.all(np.isnan(getattr(ref, field))) and np.all(np.isnan(getattr(other, field)))
        for field in ("ks", "ks_excess"):
            np.testing.assert_array_less(np.abs(ref.ks - other.ks), CDF_TOL, field)
        for s_, b in enumerate(bounds):
            for field in ("mean", "variance", "m3", "m4", "moments"):
                diff = np.abs(
                    np.asarray(getattr(ref, field)[s_], np.float64) - getattr(other, field)[s_]
                )
                assert np.all(diff <= b[field]), (field, s_, diff, b[field])
        assert np.all(np.abs(ref.levels_le - other.levels_le) <= near)
        assert np.all(np.abs(ref.levels_lt - other.levels_lt) <= near)


def test_raw_and_int_keys_give_the_same_draws():
    init = jinit.he_normal()
    typed = init_stats(init, SHAPE, seeds=SEEDS, key=jax.random.key(3))
    raw = init_stats(init, SHAPE, seeds=SEEDS, key=jax.random.PRNGKey(3))
    as_int = init_stats(init, SHAPE, seeds=SEEDS, key=3)
    np.testing.assert_array_equal(typed.variance, raw.variance)
    np.testing.assert_array_equal(typed.variance, as_int.variance)
    # seed indices, any order: the same draws (another chunk size, so the variance is equal up
    # to the rounding bounds of two blockings)
    explicit = init_stats(init, SHAPE, seeds=[5, 0], key=3)
    np.testing.assert_array_equal(explicit.seeds, [5, 0])
    law = jinit.law(init, SHAPE)
    for j, s_ in enumerate([5, 0]):
        d_sk = np.abs(explicit.sketch[j] - typed.sketch[s_])
        assert np.all(d_sk <= DRAW_RTOL * np.abs(typed.sketch[s_]))
        x = _draws(init, SHAPE, None, seeds=s_ + 1, key=jax.random.key(3))[s_].ravel()
        b = per_seed_bounds(x.astype(np.float64), float(law.mean), n_evals=2)
        assert abs(explicit.variance[j] - typed.variance[s_]) <= b["variance"]


def test_int_shape_is_a_1d_shape():
    # as jax.nn.initializers: an int n is the shape (n,)
    as_int = init_stats(jinit.normal(1.0), 64, seeds=SEEDS, key=KEY)
    as_tuple = init_stats(jinit.normal(1.0), (64,), seeds=SEEDS, key=KEY)
    np.testing.assert_array_equal(as_int.count, 64)
    np.testing.assert_array_equal(as_int.sketch, as_tuple.sketch)  # identical computations


def test_sweep_is_traced_once():
    chex.clear_trace_counter()

    # the probe of the output dtype traces once, the sweep once; later calls reuse both
    @chex.assert_max_traces(n=2)
    def plain_normal(key, shape, dtype=jnp.float32):
        return 0.5 * jax.random.normal(key, shape, dtype)

    first = init_stats(plain_normal, SHAPE, seeds=SEEDS, key=KEY)
    init_stats(plain_normal, SHAPE, seeds=SEEDS - 2, key=jax.random.key(9))  # same chunk
    assert trace_count(plain_normal) == 1
    assert np.all(np.isnan(first.ks))  # no law: moments and extremes only
    assert first.levels.size == BINS - 1  # levels of the reference transform


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_rbg_keys_are_refused(impl):
    with pytest.raises(ValueError, match=f"refuses a `{impl}` key"):
        init_stats(jinit.he_normal(), SHAPE, key=jax.random.key(0, impl=impl))


class MyLaw(L.Law):
    pass


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(shape=(0, 3)), ValueError, "no entries"),
        (dict(seeds=0), ValueError, "seeds` >= 1"),
        (dict(seeds=[-1]), ValueError, r"seed indices in \[0, 2\*\*32\)"),
        (dict(seeds=True), TypeError, "int or a sequence"),
        (dict(chunk_size=0), ValueError, "chunk_size` >= 1"),
        (dict(law="bogus"), ValueError, "'auto', None or a law"),
        (dict(law=MyLaw()), TypeError, "does not know the law type MyLaw"),
        (dict(dtype=jnp.complex64, law=L.Normal(1.0)), TypeError, "returns complex values"),
        (dict(key="k"), TypeError, "JAX PRNG key"),
        (dict(key=jax.random.split(KEY, 2)), TypeError, "one PRNG key"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    kwargs = {"shape": SHAPE, **kwargs}
    shape = kwargs.pop("shape")
    with pytest.raises(error, match=match):
        init_stats(jinit.normal(1.0), shape, **kwargs)


def test_every_law_type_is_handled():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    known = [t for t in subclasses(L.Law) if t.__module__.startswith("jinit.laws")]
    assert len(known) >= 11, f"law types found: {known}"
    for t in known:
        assert t.kind in _KINDS, f"{t.__name__} has no statistics plan (kind {t.kind!r})"
        assert t.values_complex is not L.Law.values_complex, f"{t.__name__}: values_complex"


# ---------------------------------------------------------------------------------------------
# Host-side distributions and allowances
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.4, 0.025, 1e-3, 1e-7, 1e-12])
def test_normal_isf_matches_scipy(p):
    assert normal_isf(p) == pytest.approx(scipy.stats.norm.isf(p), rel=1e-9)


@pytest.mark.parametrize("x", [0.1, 0.29, 0.31, 0.8, 1.2238, 1.3581, 2.0, 3.0])
def test_kolmogorov_sf_matches_scipy(x):
    assert kolmogorov_sf(x) == pytest.approx(scipy.stats.kstwobign.sf(x), rel=1e-7, abs=1e-15)


@pytest.mark.parametrize("n", [10, 100, 1000, 100_000])
@pytest.mark.parametrize("alpha", [0.05, 1e-3, 1e-6])
def test_dkw_threshold_bounds_the_exact_ks_tail(n, alpha):
    eps = dkw_threshold(n, alpha)
    assert eps == pytest.approx(math.sqrt(math.log(2 / alpha) / (2 * n)))
    # Massart: P(D_n > eps) <= alpha for the exact finite-n distribution of D_n
    assert scipy.stats.kstwo.sf(eps, n) <= alpha


def test_dtype_allowance_and_band():
    eps16 = float(jnp.finfo(jnp.bfloat16).eps)
    assert dtype_allowance(jnp.bfloat16) == (2 * eps16, eps16)
    assert dtype_allowance(jnp.complex64) == dtype_allowance(jnp.float32)
    # sup |t| phi(t) = phi(1) for a centred normal; the band adds 10 % margin to it
    sup = scipy.stats.norm.pdf(1.0)
    band = cdf_band(L.Normal(1.0), jnp.bfloat16)
    assert band == pytest.approx(2 * eps16 + eps16 * 1.1 * sup, rel=1e-3)
    assert cdf_band(L.Uniform(-1.0, 1.0), jnp.float16) == pytest.approx(
        2 * 2**-10 + 2**-10 * 1.1 * 0.5, rel=1e-3
    )


@pytest.mark.parametrize(
    "lo,hi,k,c", [(-2.0, 3.0, 1, 0.0), (-2.0, 3.0, 4, 0.5), (1.0, 2.0, 2, 0.0)]
)
def test_systematic_allowance_is_the_integral(lo, hi, k, c):
    t = np.linspace(lo, hi, 200_001)
    want = 0.01 * np.trapezoid(k * np.abs(t - c) ** (k - 1), t)
    assert systematic_allowance(0.01, lo, hi, k, c) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(
    "shape,seeds",
    [((512, 512), 16), ((64, 32), 128), ((4, 3), 4096), ((2**18,), 16), ((100,), 2622)],
)
def test_default_seeds(shape, seeds):
    assert default_seeds(shape) == seeds
