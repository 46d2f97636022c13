"""Tests of the seed-sweep engine (jinit/_src/stats.py): per-seed statistics against numpy and
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
from jinit._src import laws as L
from jinit._src import stats as S
from jinit.testing import init_stats

SHAPE = (16, 8)
SEEDS = 12  # not a multiple of the 4 test devices: the last chunk is padded
KEY = jax.random.key(3)


def _draws(init, shape, dtype, seeds=SEEDS, key=KEY):
    """The sweep's draws, made one by one on the host (draw s uses fold_in(key, s))."""
    return [np.asarray(init(jax.random.fold_in(key, s), shape, dtype)) for s in range(seeds)]


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
        # float32 sums of 128 values: relative error ~1e-6; atol covers moments near 0
        chex.assert_trees_all_close(got, want, rtol=2e-5, atol=1e-6 * law.variance**2)
        chex.assert_trees_all_close(
            st.moments[s], np.asarray([(a**k).mean() for k in range(1, 9)]), rtol=2e-5, atol=1e-9
        )
        assert float(st.min[s]) == pytest.approx(x.min(), rel=1e-6)
        assert float(st.max[s]) == pytest.approx(x.max(), rel=1e-6)

        def cdf(t):
            return np.asarray(law.cdf(jnp.asarray(t, jnp.float32)), np.float64)

        ks = scipy.stats.kstest(x, cdf).statistic
        chex.assert_scalar_in(float(st.ks[s]), ks - 2e-6, ks + 2e-6)  # float32 CDF values
    assert int(st.count.sum()) == SEEDS * math.prod(SHAPE)
    # the rounding band of float32 is negligible: ks_excess = ks - band
    chex.assert_trees_all_close(st.ks_excess, np.maximum(st.ks - st.band, 0.0))
    assert 0 < float(st.band) < 1e-6


def test_pooled_statistics_are_exact():
    init = jinit.he_normal()
    law = jinit.law(init, SHAPE)
    st = init_stats(init, SHAPE, seeds=SEEDS, key=KEY)
    x = np.concatenate([w.ravel() for w in _draws(init, SHAPE, None)]).astype(np.float64)
    p = st.pooled()
    n = x.size
    assert p.count == n and p.seeds == SEEDS
    m, v = x.mean(), x.var()
    e = x - m
    kurt = (e**4).mean() / v**2 - 3
    chex.assert_trees_all_close(
        [p.mean, p.variance, p.excess_kurtosis, p.min, p.max],
        [m, v, kurt, x.min(), x.max()],
        rtol=1e-5,
        atol=1e-9,
    )
    assert p.variance_se == pytest.approx(math.sqrt(((e**4).mean() - v**2) / n), rel=1e-4)
    # pooled level counts and KS distance, from the law's CDF on the host
    u = np.asarray(law.cdf(jnp.asarray(x, jnp.float32)), np.float64)
    levels = np.arange(1, S.BINS) / S.BINS
    np.testing.assert_array_equal(st.levels, levels)
    np.testing.assert_array_equal(st.levels_le, (u[None, :] <= levels[:, None]).sum(1))
    np.testing.assert_array_equal(st.levels_lt, (u[None, :] < levels[:, None]).sum(1))
    d = max(np.max(st.levels_le / n - levels), np.max(levels - st.levels_lt / n))
    assert float(st.ks_pooled) == pytest.approx(d)
    # the level-restricted distance never exceeds the full KS distance of the pooled sample
    full = scipy.stats.kstest(
        x, lambda t: np.asarray(law.cdf(jnp.asarray(t, jnp.float32)))
    ).statistic
    assert float(st.ks_pooled) <= full + 1e-7


# ---------------------------------------------------------------------------------------------
# Structured laws
# ---------------------------------------------------------------------------------------------


def test_orthogonal_gram_error():
    init = jinit.orthogonal(2.0)
    st = init_stats(init, SHAPE, seeds=SEEDS, key=KEY)
    for s, w in enumerate(_draws(init, SHAPE, None)):
        g = w.astype(np.float64).T @ w.astype(np.float64)
        err = np.abs(g - 4.0 * np.eye(SHAPE[1])).max()
        # float32 Gram of a float32 matrix: both within a few eps * scale^2 of exact
        chex.assert_scalar_in(float(st.gram_error[s]), 0.0, err + 1e-5)
        assert float(st.gram_error[s]) < 1e-5
    assert np.all(np.isnan(st.ks)) and np.all(np.isnan(st.exact_error))
    assert st.levels.size == 0


def test_delta_orthogonal_centre_and_zeros():
    shape = (3, 3, 4, 8)
    st = init_stats(jinit.delta_orthogonal(), shape, seeds=SEEDS, key=KEY)
    np.testing.assert_array_equal(st.exact_error, 0.0)  # nothing off the centre
    assert np.all(st.gram_error < 1e-5)
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
        assert float(st.mean[s]) == pytest.approx(nz.mean(), abs=1e-6)
        ks = scipy.stats.kstest(nz, scipy.stats.norm(0, 0.5).cdf).statistic
        chex.assert_scalar_in(float(st.ks[s]), ks - 2e-6, ks + 2e-6)


# ---------------------------------------------------------------------------------------------
# Independence of the chunk size and the device count; tracing; keys
# ---------------------------------------------------------------------------------------------


def test_results_do_not_depend_on_chunks_or_devices():
    init = jinit.he_normal()
    ref = init_stats(init, SHAPE, seeds=SEEDS, key=KEY)
    assert len(jax.local_devices()) == 4  # tests/conftest.py
    for other in (
        init_stats(init, SHAPE, seeds=SEEDS, key=KEY, chunk_size=4),
        init_stats(init, SHAPE, seeds=SEEDS, key=KEY, devices=jax.local_devices()[:1]),
    ):
        for field in S._PER_SEED_FIELDS:
            a, b = getattr(ref, field), getattr(other, field)
            # same draws; reductions may be fused differently: float rounding only
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12, err_msg=field)
        np.testing.assert_array_equal(ref.levels_le, other.levels_le)


def test_raw_and_int_keys_give_the_same_draws():
    init = jinit.he_normal()
    typed = init_stats(init, SHAPE, seeds=SEEDS, key=jax.random.key(3))
    raw = init_stats(init, SHAPE, seeds=SEEDS, key=jax.random.PRNGKey(3))
    as_int = init_stats(init, SHAPE, seeds=SEEDS, key=3)
    np.testing.assert_array_equal(typed.variance, raw.variance)
    np.testing.assert_array_equal(typed.variance, as_int.variance)
    explicit = init_stats(init, SHAPE, seeds=[5, 0], key=3)  # seed indices, any order
    np.testing.assert_array_equal(explicit.variance, typed.variance[[5, 0]])


def test_sweep_is_traced_once():
    chex.clear_trace_counter()

    # the probe of the output dtype traces once, the sweep once; later calls reuse both
    @chex.assert_max_traces(n=2)
    def plain_normal(key, shape, dtype=jnp.float32):
        return 0.5 * jax.random.normal(key, shape, dtype)

    first = init_stats(plain_normal, SHAPE, seeds=SEEDS, key=KEY)
    init_stats(plain_normal, SHAPE, seeds=SEEDS - 2, key=jax.random.key(9))  # same chunk
    assert S.trace_count(plain_normal) == 1
    assert np.all(np.isnan(first.ks))  # no law: moments and extremes only
    assert first.levels.size == S.BINS - 1  # levels of the reference transform


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

    known = [t for t in subclasses(L.Law) if t.__module__ == L.__name__]
    assert known, "no law types found"
    for t in known:
        assert issubclass(t, S._KNOWN_LAWS), f"{t.__name__} has no statistics plan"


# ---------------------------------------------------------------------------------------------
# Host-side distributions and allowances
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.4, 0.025, 1e-3, 1e-7, 1e-12])
def test_normal_isf_matches_scipy(p):
    assert S.normal_isf(p) == pytest.approx(scipy.stats.norm.isf(p), rel=1e-9)


@pytest.mark.parametrize("x", [0.1, 0.29, 0.31, 0.8, 1.2238, 1.3581, 2.0, 3.0])
def test_kolmogorov_sf_matches_scipy(x):
    assert S.kolmogorov_sf(x) == pytest.approx(scipy.stats.kstwobign.sf(x), rel=1e-7, abs=1e-15)


@pytest.mark.parametrize("n", [10, 100, 1000, 100_000])
@pytest.mark.parametrize("alpha", [0.05, 1e-3, 1e-6])
def test_dkw_threshold_bounds_the_exact_ks_tail(n, alpha):
    eps = S.dkw_threshold(n, alpha)
    assert eps == pytest.approx(math.sqrt(math.log(2 / alpha) / (2 * n)))
    # Massart: P(D_n > eps) <= alpha for the exact finite-n distribution of D_n
    assert scipy.stats.kstwo.sf(eps, n) <= alpha


def test_dtype_allowance_and_band():
    eps16 = float(jnp.finfo(jnp.bfloat16).eps)
    assert S.dtype_allowance(jnp.bfloat16) == (2 * eps16, eps16)
    assert S.dtype_allowance(jnp.complex64) == S.dtype_allowance(jnp.float32)
    # sup |t| phi(t) = phi(1) for a centred normal; the band adds 10 % margin to it
    sup = scipy.stats.norm.pdf(1.0)
    band = S.cdf_band(L.Normal(1.0), jnp.bfloat16)
    assert band == pytest.approx(2 * eps16 + eps16 * 1.1 * sup, rel=1e-3)
    assert S.cdf_band(L.Uniform(-1.0, 1.0), jnp.float16) == pytest.approx(
        2 * 2**-10 + 2**-10 * 1.1 * 0.5, rel=1e-3
    )


@pytest.mark.parametrize(
    "lo,hi,k,c", [(-2.0, 3.0, 1, 0.0), (-2.0, 3.0, 4, 0.5), (1.0, 2.0, 2, 0.0)]
)
def test_systematic_allowance_is_the_integral(lo, hi, k, c):
    t = np.linspace(lo, hi, 200_001)
    want = 0.01 * np.trapezoid(k * np.abs(t - c) ** (k - 1), t)
    assert S.systematic_allowance(0.01, lo, hi, k, c) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(
    "shape,seeds",
    [((512, 512), 16), ((64, 32), 128), ((4, 3), 4096), ((2**18,), 16), ((100,), 2622)],
)
def test_default_seeds(shape, seeds):
    assert S.default_seeds(shape) == seeds
