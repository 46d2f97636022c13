"""Laws: every law type against its closed form, every catalogue entry against >= 10⁶ draws.

* Closed forms. Each law type of :mod:`jinit.laws` against scipy: ``scipy.stats`` moments and
  CDFs, and ``scipy.integrate.quad`` of the defining densities (for the complex laws, the planar
  density integrated over the circle of radius r gives the modulus density). Laws are float64
  host computations, so the comparison is to ~1e-10 relative; CDFs are evaluated under
  ``jax.enable_x64`` so that jax computes them in float64 too.
* Draws. Every entry of ``jinit.catalogue.entries()`` (so entries added later are covered
  automatically) × dtype (float32 always; bfloat16 and complex64 when the entry's ``dtypes`` say
  so) is drawn >= 10⁶ times with one ``jax.jit(jax.vmap(init))`` over split keys and checked
  against ``jinit.law(init, shape, dtype)``. A law type without a check makes the test fail.

Tolerances (all derived, none tuned):

* sample mean within 6 standard errors, SE = sqrt(variance / n);
* sample variance within 6 SE, SE = sqrt((m4 - σ⁴) / n) from the law's fourth central moment;
* Kolmogorov–Smirnov distance below the 10⁻⁶-level critical value ``kstwo.isf(1e-6, n)``;
* plus a quantisation allowance, which is ~1e-7 for float32/complex64 and matters only for
  bfloat16. jax draws bfloat16 from a *bfloat16* uniform, i.e. from 2^7 = 128 levels (a
  ``normal(1.0)`` bfloat16 draw takes only 128 distinct values), then rounds the result to
  bfloat16 again. We therefore (a) compare the empirical CDF of the rounded draws with the CDF
  of the law *rounded to the dtype* (evaluated at the mid-points between adjacent representable
  values), and allow an extra ``δ = eps(dtype) + one rounding cell`` for the source resolution
  ``eps(dtype)`` (2^-7 for bfloat16, 2^-23 for float32) and one intermediate rounding; (b) bound
  the moment shift that a CDF error ``|F_obs - F| <= δ`` can cause, by integration by parts:
  ``|ΔE g(X)| <= δ ∫_lo^hi |g'| + ∫_{x<lo} |g'| F + ∫_{x>hi} |g'| (1 - F)`` over the sample
  range ``[lo, hi]`` (tails bounded by upper Riemann sums of the law's CDF, and by Markov on
  the fourth moment beyond 100σ). This is looser than "eps of the scale" — jax's bfloat16
  normal draws are up to ~0.017σ off in mean and 4 % in fourth moment — but negligible in
  float32.

Draw keys are default (threefry) keys split from one seed: under ``vmap``, rbg keys do not give
independent streams per key, so they would not test i.i.d. draws honestly. Equal
initialisers (aliases such as ``xavier_uniform`` / ``glorot_uniform``) are drawn once.

A deliberately wrong law (2 % off in scale for float32, 10 % for bfloat16) is shown to fail, so
the checks can fail.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

import jinit
from jinit import catalogue
from jinit.laws import _laws as laws

SEED = 20240611
N_MIN = 1_000_000  # draws per (entry, dtype)
KS_ALPHA = 1e-6  # level of the KS critical value
K_SE = 6.0  # standard errors allowed for a moment

F32, BF16, C64 = np.dtype(np.float32), np.dtype(jnp.bfloat16), np.dtype(np.complex64)
DTYPE_TOKENS = {"real": (F32, BF16), "complex": (C64,), "any": (F32, BF16, C64)}


def _declared_dtypes(entry: catalogue.Entry) -> tuple[np.dtype, ...]:
    out: list[np.dtype] = []
    for token in entry.dtypes.split("+"):
        if token not in DTYPE_TOKENS:
            pytest.fail(
                f"catalogue entry {entry.name!r} declares dtypes {entry.dtypes!r}; the token "
                f"{token!r} is not one of {sorted(DTYPE_TOKENS)}: teach tests/test_laws.py it."
            )
        out.extend(d for d in DTYPE_TOKENS[token] if d not in out)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------


def _close(got: float, want: float, rtol: float, atol: float = 0.0, what: str = "") -> None:
    assert abs(got - want) <= atol + rtol * abs(want), f"{what}: got {got!r}, want {want!r}"


def _cdf64(law: laws.ElementwiseLaw, x) -> np.ndarray:
    """The law's CDF computed by jax in float64 (padded to a power of two, so that eager jax
    compiles each operation for a few lengths only)."""
    x = np.asarray(x, np.float64)
    flat = x.ravel()
    size = 1 << max(flat.size - 1, 1).bit_length()
    padded = np.concatenate([flat, np.full(size - flat.size, flat[-1] if flat.size else 0.0)])
    with jax.enable_x64(True):
        out = np.asarray(law.cdf(padded), np.float64)
    return out[: flat.size].reshape(x.shape)


def _quad(f, a: float, b: float) -> float:
    val, _ = integrate.quad(f, a, b, epsabs=0.0, epsrel=1e-13, limit=200)
    return val


def test_truncated_normal_std_is_jax_literal():
    # jax.nn.initializers divides by the literal .87962566103423978 (std of N(0,1) on (-2, 2)).
    assert laws.truncated_normal_std() == 0.87962566103423978
    _close(laws.truncated_normal_std(), stats.truncnorm(-2, 2).std(), 1e-15)
    _close(laws.truncated_normal_std(-1.0, 3.0), stats.truncnorm(-1, 3).std(), 1e-14)


def test_complex_truncated_normal_rms_closed_form():
    want = math.sqrt((1 - 5 * math.exp(-4)) / (1 - math.exp(-4)))
    _close(laws.complex_truncated_normal_rms(), want, 2e-16)
    # |w|^2 of a unit circular normal is Exp(1); conditioned on |w| < ρ it is truncexpon(ρ²).
    for rho in (0.5, 2.0, 3.0):
        _close(
            laws.complex_truncated_normal_rms(rho), stats.truncexpon(rho**2).mean() ** 0.5, 1e-13
        )


@pytest.mark.parametrize("scale, loc", [(1.0, 0.0), (0.02, 0.0), (3.5, -1.25)])
def test_normal_closed_form(scale, loc):
    law = laws.Normal(scale, loc)
    ref = stats.norm(loc, scale)
    m, v, k = (float(t) for t in ref.stats("mvk"))
    _close(law.mean, m, 1e-15, 1e-300, "mean")
    _close(law.variance, v, 1e-14, what="variance")
    _close(law.fourth_moment, (k + 3) * v * v, 1e-14, what="fourth moment")
    lo, hi = loc - 40 * scale, loc + 40 * scale  # the density underflows beyond 40σ
    quad4 = _quad(lambda x: (x - loc) ** 4 * ref.pdf(x), lo, hi)
    _close(law.fourth_moment, quad4, 1e-10, what="∫(x-μ)^4 φ")
    assert law.support == (-math.inf, math.inf)
    x = loc + scale * np.linspace(-8, 8, 101)
    np.testing.assert_allclose(_cdf64(law, x), ref.cdf(x), rtol=1e-10, atol=1e-300)
    # the degenerate law N(loc, 0) is the point mass at loc
    point = laws.Normal(0.0, loc)
    assert point.support == (loc, loc) and point.variance == 0.0
    np.testing.assert_array_equal(_cdf64(point, [loc - 1, loc, loc + 1]), [0.0, 1.0, 1.0])


# (lower, upper): symmetric, asymmetric, one-sided, one-sided far, far in either tail, narrow.
TRUNC_MODERATE = [
    (-2.0, 2.0),
    (-1.0, 3.0),
    (-3.0, -1.0),
    (0.0, math.inf),
    (-math.inf, 0.5),
    (3.0, 6.0),
    (4.0, math.inf),
    (-0.1, 0.1),
    (-30.0, 30.0),
]
# Far tails and narrow intervals: the central-moment recursion loses digits to cancellation, about
# (distance from 0 / width)^4 ulps for the fourth moment; mean and variance stay at 1e-10.
TRUNC_EXTREME = [(-math.inf, -5.0), (6.0, math.inf), (8.0, 9.0), (-9.0, -8.0), (2.5, 2.6)]


def _truncnorm_reference(a: float, b: float) -> tuple[float, float, float]:
    """Mean, variance, fourth central moment of N(0,1) on (a, b) by quadrature."""
    if a + b > 0:  # integrate the mirror image, where the normalising constant is accurate
        m, v, c4 = _truncnorm_reference(-b, -a)
        return -m, v, c4
    z = special.ndtr(b) - special.ndtr(a)
    lo, hi = max(a, -40.0), min(b, 40.0)  # φ(40) = 1e-349 underflows: nothing is cut off
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) / z
    # the mean, as one-signed pieces (quad cannot reach a relative tolerance on a zero integral)
    m = sum(
        _quad(lambda x: x * pdf(x), p, q) for p, q in ((lo, min(hi, 0)), (max(lo, 0), hi)) if p < q
    )
    v = _quad(lambda x: (x - m) ** 2 * pdf(x), lo, hi)
    c4 = _quad(lambda x: (x - m) ** 4 * pdf(x), lo, hi)
    return m, v, c4


@pytest.mark.parametrize(
    "lower, upper, rtol4",
    [(a, b, 1e-10) for a, b in TRUNC_MODERATE] + [(a, b, 1e-6) for a, b in TRUNC_EXTREME],
)
def test_truncated_normal_closed_form(lower, upper, rtol4):
    scale, loc = 1.7, -0.3
    law = laws.TruncatedNormal(scale, lower, upper, loc)
    m, v, c4 = _truncnorm_reference(lower, upper)
    _close(law.mean, loc + scale * m, 1e-10, 1e-14, "mean")
    _close(law.variance, scale**2 * v, 1e-10, what="variance")
    _close(law.fourth_moment, scale**4 * c4, rtol4, what="fourth moment")
    assert law.support == (loc + scale * lower, loc + scale * upper)
    ref = stats.truncnorm(lower, upper, loc=loc, scale=scale)
    if (lower, upper) in TRUNC_MODERATE:  # scipy's own moments are only good to ~1e-8 far out
        rm, rv, rk = (float(t) for t in ref.stats("mvk"))
        _close(law.mean, rm, 1e-10, 1e-14, "mean vs scipy")
        _close(law.variance, rv, 1e-10, what="variance vs scipy")
        _close(law.fourth_moment, (rk + 3) * rv * rv, 1e-9, what="fourth moment vs scipy")
    lo, hi = max(lower, -12.0), min(upper, 12.0)
    x = loc + scale * np.concatenate([np.linspace(lo, hi, 64), [lo - 1, hi + 1]])
    np.testing.assert_allclose(_cdf64(law, x), ref.cdf(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("low, high", [(0.0, 0.01), (-2.5, 2.5), (1.0, 3.0)])
def test_uniform_closed_form(low, high):
    law = laws.Uniform(low, high)
    ref = stats.uniform(low, high - low)
    m, v, k = (float(t) for t in ref.stats("mvk"))
    _close(law.mean, m, 1e-15, what="mean")
    _close(law.variance, v, 1e-14, what="variance")
    _close(law.fourth_moment, (k + 3) * v * v, 1e-13, what="fourth moment")
    assert law.support == (low, high)
    x = np.linspace(low - 1, high + 1, 57)
    np.testing.assert_allclose(_cdf64(law, x), ref.cdf(x), rtol=1e-13, atol=1e-15)
    point = laws.Uniform(1.0, 1.0)
    np.testing.assert_array_equal(_cdf64(point, [0.5, 1.0, 2.0]), [0.0, 1.0, 1.0])


def _planar_modulus_density(planar, r: float) -> float:
    """Density of |z| when z has the rotation-invariant planar density ``planar(|z|)``."""
    return 2 * math.pi * r * planar(r)


def _check_complex_law(law: laws.ElementwiseLaw, planar, r_max: float, scipy_ref) -> None:
    """Moments and modulus CDF of a circular complex law against quadrature and scipy."""
    f = functools.partial(_planar_modulus_density, planar)
    _close(_quad(f, 0, r_max), 1.0, 1e-12, what="total mass")
    _close(law.variance, _quad(lambda r: r**2 * f(r), 0, r_max), 1e-10, what="E|z|^2")
    _close(law.fourth_moment, _quad(lambda r: r**4 * f(r), 0, r_max), 1e-10, what="E|z|^4")
    _close(law.variance, float(scipy_ref.moment(2)), 1e-12, what="E|z|^2 vs scipy")
    _close(law.fourth_moment, float(scipy_ref.moment(4)), 1e-12, what="E|z|^4 vs scipy")
    assert law.mean == 0 and law.is_complex
    r = np.linspace(0.0, min(r_max, 10 * law.std), 41)[1:]
    np.testing.assert_allclose(_cdf64(law, r), [_quad(f, 0, t) for t in r], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(_cdf64(law, r), scipy_ref.cdf(r), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(_cdf64(law, [-1.0, 0.0]), [0.0, 0.0])


@pytest.mark.parametrize("scale", [1.0, 0.05])
def test_complex_normal_closed_form(scale):
    # circular complex normal with E|z|^2 = s²: planar density exp(-|z|²/s²) / (π s²);
    # |z| is then Rayleigh with parameter s/√2.
    law = laws.ComplexNormal(scale)
    planar = lambda r: math.exp(-((r / scale) ** 2)) / (math.pi * scale**2)
    _check_complex_law(law, planar, 40 * scale, stats.rayleigh(scale=scale / math.sqrt(2)))
    assert law.support == (0.0, math.inf)


@pytest.mark.parametrize("radius", [math.sqrt(2.0), 0.3])
def test_complex_disk_uniform_closed_form(radius):
    # uniform on the disk: planar density 1 / (π R²); |z| has density 2r/R² = powerlaw(2).
    law = laws.ComplexDiskUniform(radius)
    planar = lambda r: 1.0 / (math.pi * radius**2) if r <= radius else 0.0
    _check_complex_law(law, planar, radius, stats.powerlaw(2, scale=radius))
    assert law.support == (0.0, radius)


@pytest.mark.parametrize("scale, rho", [(1.0, 2.0), (0.3, 2.0), (1.0, 0.5), (2.0, 4.0)])
def test_complex_truncated_normal_closed_form(scale, rho):
    # s·w, w circular normal with E|w|^2 = 1 conditioned on |w| < ρ: planar density
    # exp(-|z|²/s²) / (π s² (1 - e^{-ρ²})) on |z| < sρ.
    law = laws.ComplexTruncatedNormal(scale, rho)
    mass = -math.expm1(-(rho**2))
    r_max = scale * rho

    def planar(r):
        return math.exp(-((r / scale) ** 2)) / (math.pi * scale**2 * mass) if r < r_max else 0.0

    # scipy reference for the modulus: |z| = s·sqrt(T), T ~ truncexpon(ρ²).
    class _Modulus:
        t = stats.truncexpon(rho**2)

        def moment(self, k):
            return scale**k * self.t.moment(k // 2)

        def cdf(self, r):
            return self.t.cdf((np.asarray(r) / scale) ** 2)

    _check_complex_law(law, planar, r_max, _Modulus())
    assert law.support == (0.0, r_max)


@pytest.mark.parametrize(
    "shape, column_axis, scale",
    [((64, 32), -1, 1.0), ((16, 48), -1, 2.0), ((3, 3, 16, 32), -1, 0.5), ((8, 20), 0, 1.0)],
)
@pytest.mark.parametrize("is_complex", [False, True])
def test_orthogonal_law_marginals(shape, column_axis, scale, is_complex):
    law = laws.OrthogonalLaw(shape, scale, column_axis % len(shape), is_complex)
    n_cols = shape[column_axis]
    n_rows = math.prod(shape) // n_cols
    assert (law.n_rows, law.n_cols) == (n_rows, n_cols)
    n = max(n_rows, n_cols)
    # An entry is s·u₁, u₁ a coordinate of a uniform unit vector of R^n (C^n): u₁² (|u₁|²) is
    # Beta(1/2, (n-1)/2) (Beta(1, n-1)).
    beta = stats.beta(1.0, n - 1.0) if is_complex else stats.beta(0.5, (n - 1) / 2)
    _close(law.variance, scale**2 * beta.moment(1), 1e-12, what="variance")
    _close(law.fourth_moment, scale**4 * beta.moment(2), 1e-12, what="fourth moment")
    assert law.mean == 0
    # The Gram identity on an exactly orthogonal matrix laid out along column_axis.
    rng = np.random.default_rng(0)
    g = rng.standard_normal((max(n_rows, n_cols), min(n_rows, n_cols)))
    q = np.linalg.qr(g)[0] * scale
    m = q if n_rows >= n_cols else q.T
    rest = tuple(np.delete(shape, column_axis % len(shape)))
    w = np.moveaxis(m.reshape(rest + (n_cols,)), -1, column_axis)
    with jax.enable_x64(True):
        np.testing.assert_array_equal(np.asarray(law.matrix(w)), m)
        assert float(law.gram_error(w)) < 1e-12
        assert float(law.gram_error(1.01 * w)) > 0.019 * scale**2


def test_delta_orthogonal_law_slices():
    inner = laws.OrthogonalLaw((4, 6), 1.0, 1)
    law = laws.DeltaOrthogonalLaw((3, 3, 4, 6), (1, 1), inner)
    w = np.zeros((3, 3, 4, 6))
    w[1, 1] = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 4)))[0].T
    assert float(law.off_centre_max(w)) == 0.0
    np.testing.assert_array_equal(np.asarray(law.centre_slice(w)), w[1, 1])
    w[0, 2, 3, 5] = -0.5
    assert float(law.off_centre_max(w)) == 0.5


@pytest.mark.parametrize(
    "nonzero, ref",
    [
        (laws.Normal(0.5, 1.0), stats.norm(1.0, 0.5)),
        (laws.Uniform(1.0, 3.0), stats.uniform(1.0, 2.0)),
        (laws.Normal(0.3), stats.norm(0.0, 0.3)),
    ],
)
def test_sparse_law_mixture_moments(nonzero, ref):
    law = laws.SparseLaw((10, 6), 0, 3, nonzero)
    p = 1 - 3 / 10  # each entry is non-zero with probability 7/10
    _close(law.fraction_zero, 0.3, 1e-15)
    # X = B·Y with B ~ Bernoulli(p) independent of Y: E X = p E Y, E X² = p E Y².
    _close(law.mean, p * ref.moment(1), 1e-14, 1e-15, "mean")
    _close(law.variance, p * ref.moment(2) - (p * ref.moment(1)) ** 2, 1e-13, what="variance")


def test_deterministic_law_moments():
    value = np.arange(12.0).reshape(4, 3)
    law = laws.DeterministicLaw(value, dtype=np.dtype(np.float64))
    _close(float(law.mean), value.mean(), 1e-15)
    _close(law.variance, value.var(), 1e-15)


def _jinit_law_types() -> set[type]:
    catalogue.entries()  # imports every implementation module, so their law types exist

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    return {c for c in walk(laws.Law) if c.__module__.startswith("jinit")}


# Law types with a closed-form test above and a draw check below.
CHECKED_LAW_TYPES = {
    laws.ElementwiseLaw,
    laws.Normal,
    laws.TruncatedNormal,
    laws.Uniform,
    laws.ComplexNormal,
    laws.ComplexDiskUniform,
    laws.ComplexTruncatedNormal,
    laws.DeterministicLaw,
    laws.OrthogonalLaw,
    laws.DeltaOrthogonalLaw,
    laws.SparseLaw,
}


def test_every_law_type_is_checked():
    unknown = _jinit_law_types() - CHECKED_LAW_TYPES
    assert not unknown, f"law types without closed-form and draw tests: {sorted(map(str, unknown))}"


def test_law_rejects_non_jinit():
    with pytest.raises(TypeError, match=r"`jinit.law` needs a jinit initialiser"):
        jinit.law(jax.nn.initializers.he_normal(), (4, 3))


# ---------------------------------------------------------------------------------------------
# Draws
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _draw(keys, init, shape, dtype):
    return jax.vmap(lambda k: init(k, shape, dtype))(keys)


def _draws(init, shape: tuple[int, ...], dtype: np.dtype, n: int) -> np.ndarray:
    # Threefry keys: under vmap, rbg keys do not give independent streams per key.
    keys = jax.random.split(jax.random.key(SEED), n)
    x = _draw(keys, init, shape, dtype)
    chex.assert_shape(x, (n, *shape))
    assert x.dtype == dtype, f"drew {x.dtype}, asked for {dtype}"
    return np.asarray(x)


def _real_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(jnp.finfo(dtype).dtype)


def _eps(dtype: np.dtype) -> float:
    return float(jnp.finfo(dtype).eps)


def _tail_bound(law: laws.ElementwiseLaw, x0: float, x1: float, weight, upper: bool) -> float:
    """An upper bound of ∫_{x0}^{x1} weight(x)·T(x) dx with T = 1 - F (``upper``) or F.

    T is monotone and ``weight`` >= 0 is monotone on the interval, so the sum over a fine grid of
    the cell-wise maxima bounds the integral from above. Infinite ends are cut 100 σ from the
    mean; beyond, Markov on the fourth moment, T(x) <= m4 / (x - μ)⁴, bounds the remainder.
    """
    mu, sd, m4 = abs(complex(law.mean)), law.std, law.fourth_moment
    far_lo, far_hi = mu - 100 * sd, mu + 100 * sd
    rest = 0.0
    if x0 < far_lo:  # only real lower tails reach -inf; weight is 1 or 2|x - μ| there
        x0 = far_lo
        rest += m4 / (3 * (100 * sd) ** 3) + m4 / (100 * sd) ** 2
    if x1 > far_hi:
        x1 = far_hi
        rest += m4 / (3 * (100 * sd) ** 3) + m4 / (100 * sd) ** 2
    if not x0 < x1:
        return rest
    grid = np.linspace(x0, x1, 4001)
    f = _cdf64(law, grid)
    t = 1 - f if upper else f
    w = weight(grid)
    cells = np.maximum(t[:-1], t[1:]) * np.maximum(w[:-1], w[1:])
    return float(np.sum(cells) * (grid[1] - grid[0])) + rest


@dataclasses.dataclass
class Report:
    """Problems found while checking draws against a law (empty: all good)."""

    problems: list[str] = dataclasses.field(default_factory=list)
    margins: dict[str, float] = dataclasses.field(default_factory=dict)  # used / allowed

    def check(self, ok: bool, msg: str) -> None:
        if not ok:
            self.problems.append(msg)

    def within(self, name: str, value: float, limit: float, detail: str = "") -> None:
        """Records ``value / limit`` and a problem when ``value > limit``."""
        self.margins[name] = value / limit if limit > 0 else (0.0 if value == 0 else math.inf)
        self.check(value <= limit, f"{name} {value:.4g} > allowed {limit:.4g} {detail}".strip())

    def merge(self, other: Report, prefix: str) -> None:
        self.problems += [f"{prefix}{p}" for p in other.problems]
        self.margins.update({prefix + k: v for k, v in other.margins.items()})


def _ks_rounded(values: np.ndarray, law: laws.ElementwiseLaw) -> tuple[float, float]:
    """KS distance between the draws and the law rounded to the draws' dtype, and the largest
    probability of one rounding cell among the observed values."""
    v, counts = np.unique(values, return_counts=True)  # sorted, in the sample dtype
    up = np.nextafter(v, np.array(np.inf, v.dtype)).astype(np.float64)
    down = np.nextafter(v, np.array(-np.inf, v.dtype)).astype(np.float64)
    v64 = v.astype(np.float64)
    hi_edge, lo_edge = (v64 + up) / 2, (v64 + down) / 2
    f_hi, f_lo = _cdf64(law, hi_edge), _cdf64(law, lo_edge)
    fn_right = np.cumsum(counts) / values.size
    fn_left = fn_right - counts / values.size
    d = max(np.max(np.abs(fn_right - f_hi)), np.max(np.abs(fn_left - f_lo)))
    return float(d), float(np.max(f_hi - f_lo))


def check_elementwise(x: np.ndarray, law: laws.ElementwiseLaw, dtype: np.dtype) -> Report:
    """Mean, variance, support, KS (and circularity for complex laws) of i.i.d. draws ``x``."""
    rep = Report()
    if law.is_complex:
        z = x.astype(np.complex128).ravel()
        obs = np.abs(x).ravel()  # the modulus, in the sample's real dtype (float32)
    else:
        z = x.astype(np.float64).ravel()
        obs = x.ravel()
    n = z.size
    mu = complex(law.mean) if law.is_complex else float(law.mean)
    var, m4 = law.variance, law.fourth_moment
    lo_sup, hi_sup = law.support
    lo, hi = float(obs.min()), float(obs.max())
    ulp = _eps(dtype)
    rep.check(
        lo >= lo_sup - ulp * abs(lo_sup) and hi <= hi_sup + ulp * abs(hi_sup),
        f"draws span [{lo}, {hi}], outside the support {law.support}",
    )
    if var == 0:
        rep.check(bool(np.all(z == mu)), f"the law is the point {mu} but draws differ")
        return rep
    d, cell = _ks_rounded(obs, law)
    delta = _eps(dtype) + cell  # source resolution + one intermediate rounding
    crit = float(stats.kstwo.isf(KS_ALPHA, n))
    rep.within("KS distance", d, crit + delta, f"(critical {crit:.3g} + rounding {delta:.3g})")

    # Moment allowances from |F_obs - F| <= δm on [lo, hi] (rounding counts once more here),
    # and F_obs = 0 below lo, 1 above hi:
    #   |ΔE g| <= δm ∫_lo^hi |g'| + ∫_{x<lo} |g'| F + ∫_{x>hi} |g'| (1 - F).
    dm = delta + cell
    one = lambda t: np.ones_like(t)
    if law.is_complex:  # g(z) = z (coupling with a shared phase) and g = |z|², on the modulus
        a1 = dm * hi + _tail_bound(law, hi, hi_sup, one, upper=True)
        a2 = (
            dm * (hi**2 - lo**2)
            + _tail_bound(law, 0.0, lo, lambda t: 2 * t, upper=False)
            + _tail_bound(law, hi, hi_sup, lambda t: 2 * t, upper=True)
        )
    else:  # g(x) = x and g = (x - μ)²
        dist = lambda t: 2 * np.abs(t - mu)
        a1 = (
            dm * (hi - lo)
            + _tail_bound(law, lo_sup, lo, one, upper=False)
            + _tail_bound(law, hi, hi_sup, one, upper=True)
        )
        a2 = (
            dm * ((lo - mu) ** 2 + (hi - mu) ** 2)
            + _tail_bound(law, lo_sup, lo, dist, upper=False)
            + _tail_bound(law, hi, hi_sup, dist, upper=True)
        )
    mean = z.mean()
    se_mean = math.sqrt(var / n)
    rep.within(
        "|mean - law mean|",
        abs(mean - mu),
        K_SE * se_mean + a1,
        f"(mean {mean:.6g}, law {mu:.6g}, SE {se_mean:.3g}, rounding {a1:.3g})",
    )
    sample_var = float(np.mean(np.abs(z - mean) ** 2))
    se_var = math.sqrt(max(m4 - var * var, 0.0) / n)
    rep.within(
        "|variance - law variance|",
        abs(sample_var - var),
        K_SE * se_var + a2 + a1**2,
        f"(variance {sample_var:.6g}, law {var:.6g}, SE {se_var:.3g}, rounding {a2 + a1**2:.3g})",
    )
    circular = (laws.ComplexNormal, laws.ComplexDiskUniform, laws.ComplexTruncatedNormal)
    if isinstance(law, circular):
        # A circular law has E z² = 0; SE of the mean of z² is sqrt(E|z|^4 / n).
        pseudo = abs(np.mean((z - mu) ** 2))
        rep.within("|E z²| (circularity)", pseudo, K_SE * math.sqrt(m4 / n))
    return rep


def _gram_tolerance(law: laws.OrthogonalLaw, dtype: np.dtype) -> float:
    """Householder QR in the work precision is orthogonal to O(n·eps); rounding the entries to a
    narrower dtype (relative u) moves each Gram entry by <= (2u + u²)·s² (Cauchy–Schwarz)."""
    n = max(law.n_rows, law.n_cols)
    work = np.dtype(np.float64) if _real_dtype(dtype) == np.float64 else np.dtype(np.float32)
    u = _eps(dtype) / 2 if _eps(dtype) > _eps(work) else 0.0
    return law.scale**2 * (n * _eps(work) + 2 * u + u * u)


def check_orthogonal(w: np.ndarray, law: laws.OrthogonalLaw, dtype: np.dtype) -> Report:
    """``w``: (draws, *law.shape). Gram identity per draw, then the entries' moments."""
    rep = Report()
    n_draws = w.shape[0]
    gram_err = np.asarray(jax.jit(jax.vmap(law.gram_error))(w))
    tol = _gram_tolerance(law, dtype)
    rep.within("Gram error", float(gram_err.max()), tol)
    mats = np.asarray(jax.vmap(law.matrix)(w)).astype(np.complex128)  # (draws, rows, cols)
    n = max(law.n_rows, law.n_cols)
    var, m4 = law.variance, law.fourth_moment
    n_total = mats[0].size * n_draws
    # Haar entries are pairwise uncorrelated with mean 0: SE of the mean is sqrt(var / N).
    mean = abs(mats.mean())
    rep.within("|mean|", mean, K_SE * math.sqrt(var / n_total))
    diag = np.diagonal(mats, axis1=1, axis2=2)  # a QR without the sign fix biases the diagonal
    dmean = abs(diag.mean())
    rep.within("|diagonal mean|", dmean, K_SE * math.sqrt(var / diag.size))
    # Σ|x|² is the trace of the Gram matrix on the smaller side: k·s² up to k·tol, k = N / n.
    second = float(np.mean(np.abs(mats) ** 2))
    rep.within("|E|x|² - law|", abs(second - var), tol / n, f"(law {var:.6g})")
    # Fourth moment: per-draw averages are i.i.d. across draws; SE from their spread, plus the
    # rounding of the entries to the dtype (relative 4u on x⁴).
    per_draw = np.mean(np.abs(mats) ** 4, axis=(1, 2))
    se = per_draw.std(ddof=1) / math.sqrt(n_draws)
    u = _eps(dtype) / 2
    fourth = float(per_draw.mean())
    rep.within(
        "|E|x|⁴ - law|", abs(fourth - m4), K_SE * se + 4 * u * m4, f"(law {m4:.6g}, SE {se:.3g})"
    )
    return rep


def check_sparse(w: np.ndarray, law: laws.SparseLaw, dtype: np.dtype) -> Report:
    """``w``: (draws, *law.shape). Exact zero count per unit, uniform positions, non-zero law."""
    rep = Report()
    zero = w == 0
    counts = zero.sum(axis=law.axis + 1)
    rep.check(
        bool(np.all(counts == law.zeros_per_unit)),
        f"zeros per unit range over {np.unique(counts)}, law says exactly {law.zeros_per_unit}",
    )
    f, n_draws = law.fraction_zero, w.shape[0]
    if 0 < f < 1:  # each position is zero in a fraction f of the draws (binomial SE)
        freq = zero.mean(axis=0)
        dev = float(np.max(np.abs(freq - f)))
        rep.within("zero-frequency deviation", dev, K_SE * math.sqrt(f * (1 - f) / n_draws))
    if f < 1:
        rep.merge(check_elementwise(w[~zero], law.nonzero, dtype), "non-zeros: ")
    return rep


def _n_draws(elements_per_draw: int) -> int:
    return max(-(-N_MIN // max(elements_per_draw, 1)), 1)


def check_law(init, shape: tuple[int, ...], dtype: np.dtype, law: laws.Law) -> Report:
    """Draws ``init`` >= N_MIN times and checks them against ``law``; fails on unknown types."""
    size = math.prod(shape)
    if isinstance(law, laws.DeterministicLaw):
        rep = Report()
        w = _draws(init, shape, dtype, 4)
        value = np.asarray(law.value)
        rep.check(value.dtype == dtype, f"law value has dtype {value.dtype}, not {dtype}")
        for i in range(w.shape[0]):
            rep.check(
                np.array_equal(w[i], value.astype(dtype), equal_nan=True),
                f"draw {i} differs from the deterministic law",
            )
        return rep
    if isinstance(law, laws.ElementwiseLaw):
        return check_elementwise(_draws(init, shape, dtype, _n_draws(size)), law, dtype)
    if isinstance(law, laws.OrthogonalLaw):
        return check_orthogonal(_draws(init, shape, dtype, _n_draws(size)), law, dtype)
    if isinstance(law, laws.DeltaOrthogonalLaw):
        rep = Report()
        w = _draws(init, shape, dtype, _n_draws(math.prod(law.inner.shape)))
        off = np.asarray(jax.jit(jax.vmap(law.off_centre_max))(w))
        rep.check(bool(np.all(off == 0)), f"non-zero off the centre: max {off.max()}")
        inner = w[(slice(None), *law.centre)]
        rep.merge(check_orthogonal(inner, law.inner, dtype), "centre: ")
        return rep
    if isinstance(law, laws.SparseLaw):
        elements = max(round(size * (1 - law.fraction_zero)), 1)
        return check_sparse(_draws(init, shape, dtype, _n_draws(elements)), law, dtype)
    pytest.fail(
        f"no draw check for law type {type(law).__name__}: add one to tests/test_laws.py "
        f"(and a closed-form test)."
    )


@functools.cache
def _checked(init, shape: tuple[int, ...], dtype: np.dtype) -> Report:
    """Cached by (init, shape, dtype): aliases (xavier_uniform == glorot_uniform) draw once."""
    return check_law(init, shape, dtype, jinit.law(init, shape, dtype))


CASES = [
    pytest.param(entry, dtype, id=f"{entry.name}-{dtype.name}")
    for entry in catalogue.entries()
    for dtype in _declared_dtypes(entry)
]


@pytest.mark.parametrize("entry, dtype", CASES)
def test_entry_draws_follow_law(entry, dtype):
    init = entry.build()
    shape = tuple(entry.example_shape)
    law = jinit.law(init, shape, dtype)
    assert isinstance(law, laws.Law), f"{entry.name}: jinit.law gave {law!r}"
    assert law.dtype == dtype, f"{entry.name}: law.dtype is {law.dtype}, not {dtype}"
    try:
        rep = _checked(init, shape, dtype)
    except TypeError as e:  # an unhashable initialiser: no caching
        if "unhashable" not in str(e):
            raise
        rep = check_law(init, shape, dtype, law)
    assert not rep.problems, f"{entry.name} {dtype.name}: " + "; ".join(rep.problems)


@pytest.mark.parametrize("entry", catalogue.entries(), ids=lambda e: e.name)
def test_entry_undeclared_dtypes_rejected(entry):
    """A dtype the entry does not declare is refused with a TypeError (complex for real-only)."""
    init = entry.build()
    for dtype in (F32, BF16, C64):
        if dtype in _declared_dtypes(entry):
            continue
        with pytest.raises(TypeError, match=dtype.name):
            init(jax.random.key(0), entry.example_shape, dtype)


# ---------------------------------------------------------------------------------------------
# The checks can fail
# ---------------------------------------------------------------------------------------------


def _entry_draws(name: str, dtype: np.dtype):
    """The draws of catalogue entry ``name`` exactly as its own test makes them (same compile)."""
    (entry,) = [e for e in catalogue.entries() if e.name == name]
    init, shape = entry.build(), tuple(entry.example_shape)
    return _draws(init, shape, dtype, _n_draws(math.prod(shape))), jinit.law(init, shape, dtype)


@pytest.mark.parametrize("dtype, factor", [(F32, 1.02), (F32, 1 / 1.02), (BF16, 1.1), (C64, 1.02)])
def test_checker_rejects_a_wrong_scale(dtype, factor):
    x, law = _entry_draws("normal", dtype)
    assert not check_elementwise(x, law, dtype).problems
    wrong = dataclasses.replace(law, scale=law.scale * factor)
    assert check_elementwise(x, wrong, dtype).problems


def test_checker_rejects_a_shifted_mean():
    x, law = _entry_draws("uniform", F32)
    shift = 0.005 * (law.high - law.low)
    wrong = laws.Uniform(law.low + shift, law.high + shift)
    problems = check_elementwise(x, wrong, F32).problems
    assert any("mean" in p for p in problems) and any("KS" in p for p in problems)


def test_checker_rejects_wrong_orthogonal_law():
    w, law = _entry_draws("orthogonal", F32)
    assert not check_orthogonal(w, law, F32).problems
    assert check_orthogonal(w, dataclasses.replace(law, scale=law.scale * 1.01), F32).problems
    # i.i.d. normal entries of the right variance are not orthogonal
    g = np.asarray(jax.random.normal(jax.random.key(1), w.shape)) * math.sqrt(law.variance)
    assert check_orthogonal(g, law, F32).problems


def test_checker_rejects_unknown_law_type():
    @dataclasses.dataclass(frozen=True)
    class Mystery(laws.Law):
        pass

    with pytest.raises(pytest.fail.Exception, match="no draw check for law type Mystery"):
        check_law(jinit.normal(), (4, 3), F32, Mystery())


# ---------------------------------------------------------------------------------------------
# Laws answer for themselves: the law of c·W
# ---------------------------------------------------------------------------------------------

SCALED = [
    laws.Normal(0.5, 0.25),
    laws.TruncatedNormal(0.7, -1.0, 3.0, 0.1),
    laws.Uniform(-0.2, 0.6),
]


@pytest.mark.parametrize("c", [2.0, -0.5])
@pytest.mark.parametrize("law", SCALED, ids=lambda lw: type(lw).__name__)
def test_scaled_elementwise_laws(law, c):
    """c·W has mean c·E[W], variance c²·Var[W], the same kurtosis and the support mapped by c;
    checked against a 200 000-sample Monte Carlo of c·W (6 standard errors)."""
    s = law.scaled(c)
    assert type(s) is type(law) and s.kind == law.kind
    np.testing.assert_allclose(s.mean, c * law.mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s.variance, c * c * law.variance, rtol=1e-12)
    np.testing.assert_allclose(s.excess_kurtosis, law.excess_kurtosis, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sorted(c * np.asarray(law.support)), s.support, rtol=1e-12)
    rng = np.random.default_rng(0)
    u = rng.uniform(size=200_000)
    grid = np.linspace(*law.support, 20001) if np.all(np.isfinite(law.support)) else None
    if grid is not None:  # inverse-CDF samples of W, scaled
        w = np.interp(u, np.asarray(law.cdf(grid)), grid)
        x = c * w
        assert abs(x.mean() - s.mean) < 6 * s.std / math.sqrt(x.size)


def test_scaled_structured_laws():
    o = laws.OrthogonalLaw((4, 3), 1.5)
    assert o.scaled(-2.0) == laws.OrthogonalLaw((4, 3), -3.0)
    d = laws.DeterministicLaw(np.array([1.0, -2.0], np.float32))
    np.testing.assert_array_equal(d.scaled(3.0).value, [3.0, -6.0])
    with pytest.raises(NotImplementedError, match="no closed-form law for c·W"):
        laws.SparseLaw((4, 4), 0, 1, laws.Normal(1.0)).scaled(2.0)
