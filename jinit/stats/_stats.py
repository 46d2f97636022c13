r"""Seed sweeps: statistics of an initialiser over many independent keys, in one compiled sweep.

:func:`init_stats` draws ``init(key_s, shape, dtype)`` for ``S`` keys
``key_s = jax.random.fold_in(key, s)`` and reduces every draw on device to a handful of numbers:
power sums (hence mean and central moments), extremes, the Kolmogorov–Smirnov distance to the
law's CDF, the Gram error of orthogonal laws, exact errors of deterministic ones, zero counts of
sparse ones, and counts of the probability-integral transform :math:`u = F(x)` in 512 bins for a
pooled KS statistic over all :math:`S\,n` values. The reduction is one
``jax.jit(jax.vmap(...))`` per ``(init, shape, dtype, law, chunk)`` — traced once (see
:func:`trace_count`), then called on chunks of keys, so memory is bounded by the chunk, not by
``S`` — with the keys of a chunk sharded over the local devices. Per-seed results do not depend
on the device count or the chunk size, except for the rounding of float sums, which XLA may block
differently (at most :math:`\approx 2 n u \frac1n\sum|x|^k` for a moment of ``n`` values, unit
roundoff :math:`u`). Every argument is checked, and the memory a call needs is estimated
(:func:`sweep_memory`), before anything is compiled.

The result is an :class:`InitStats` (a ``NamedTuple`` of per-seed host arrays);
:meth:`InitStats.pooled` pools it into a :class:`PooledStats` with standard errors.
:mod:`jinit.testing` builds calibrated assertions on top.

Low precision. jax draws every distribution from a uniform variate with as many random bits as
the dtype has mantissa bits and rounds intermediate values to the dtype, so a bfloat16 draw takes
at most a few hundred distinct values. The CDF :math:`G` of what is actually sampled is only
close to the law's :math:`F`:

.. math::
    |G(t) - F(t)| \le \delta_u = 2\varepsilon + \varepsilon \sup_t |t| f(t)

(:func:`cdf_band`), with :math:`\varepsilon` the dtype's machine epsilon: :math:`2\varepsilon`
for the :math:`2^{-p}` resolution of the uniform variate plus the rounding of intermediate
values in probability, and :math:`\varepsilon |t|` for rounding the value itself (two roundings
of :math:`\varepsilon/2`), which moves the CDF by at most :math:`\varepsilon |t| f(t)`. Measured:
:math:`\sup|G - F| \approx 1.4\,\varepsilon` for jax's bfloat16 and float16 samplers. KS
statistics are also reported beyond this band (``ks_excess``), and moment tolerances add the bias
the band allows, :math:`|E\,g(x') - E\,g(x)| \le \int |g'(t)|\,|G(t) - F(t)|\,dt`
(:func:`systematic_allowance`). For float32 and float64 the band is below :math:`10^{-6}`.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from jinit._core._checks import canonical_shape
from jinit._core._seeds import SeedPlan, check_devices, refuse_rbg, rounded_chunk
from jinit.laws import _laws as L

# Default sweep size: 2**18 values put a 3 % error of the std > 20 standard errors off and let
# the pooled KS test separate families of equal variance (power measured by
# benchmarks/calibration.py). At least 16 seeds, so a sign flipped in a bfloat16 orthogonal
# matrix is caught; at most 4096. A (512, 512) check stays well under 2 s on a 2-core CPU
# (benchmarks/stats_speed.py).
DEFAULT_TARGET_VALUES = 2**18
MIN_SEEDS = 16
MAX_SEEDS = 4096
# Values per compiled chunk: bounds device memory (a few float32 arrays of this size).
CHUNK_VALUES = 2**21
# The pooled KS statistic compares F_N and F at the levels j / BINS, j = 1 .. BINS - 1.
BINS = 512

# Values of each draw kept for the independence-across-keys check (InitStats.sketch).
SKETCH = 256
# Device bytes per drawn value of one compiled call, in units of the working dtype's size (of
# each of the real and imaginary parts for complex dtypes), on top of the draw itself: the
# sorted copy and its integer view, u = F(x), the KS deviation columns, the moment columns.
# Measured with `compiled.memory_analysis()` on XLA:CPU (temp bytes per value / 4 bytes, shapes
# (64, 32) to (512, 512)): 9.0 to 10.1 for float32, 7.5 to 8.1 per part for complex64; 12 keeps
# a margin for other backends and kernel choices. Plus the per-seed outputs (level counts,
# sketch, statistics: 5.2 KB float32, 6.2 KB complex64), counted as 8 KiB.
DEVICE_WORDS_PER_VALUE = 12
DEVICE_BYTES_PER_SEED = 8192
# Host bytes kept per seed besides the sketch: 23 per-seed numbers and 8 moments (float64 or
# int64 after conversion), the seed index, and the level counts of a chunk (2 x 511 int64).
HOST_BYTES_PER_SEED = 8 * (23 + 8) + 12
HOST_BYTES_PER_SEED_IN_CHUNK = 2 * (BINS - 1) * (4 + 8)

# Times each compiled sweep was traced, keyed like the compile cache (see trace_count).
_TRACES: collections.Counter = collections.Counter()


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


class InitStats(NamedTuple):
    r"""Per-seed statistics of ``init(jax.random.fold_in(key, s), shape, dtype)``.

    Fields from ``seeds`` to ``moments`` have a leading axis of size ``S`` (host numpy arrays);
    the rest are pooled over the seeds. For complex dtypes ``mean`` is complex and the other
    statistics are those of moduli: ``min``, ``max`` and ``ks`` of :math:`|z|`, moments of
    :math:`|z - c|` (as :mod:`jinit.laws` defines complex laws). Fields that do not apply to the
    law are NaN (floats) or -1 (integers).

    Attributes:
      seeds: the seed indices ``s``; draw ``s`` used ``jax.random.fold_in(key, s)``.
      count: number of values in the statistics: all entries; the centre slice of a
        delta-orthogonal kernel; the nonzero entries of a sparse one.
      mean: sample mean.
      variance: sample variance :math:`\frac1n\sum (x - \bar x)^2`.
      m3: third central moment :math:`\frac1n\sum (x - \bar x)^3` (complex: about ``centre``).
      m4: fourth central moment (complex: about ``centre``).
      min: smallest value.
      max: largest value.
      ks: Kolmogorov–Smirnov distance :math:`D_n = \sup_t |F_n(t) - F(t)|` to the law's CDF
        (each draw sorted on device), NaN without a CDF.
      ks_excess: :math:`\max(D_n - \delta_u, 0)`, the distance beyond the dtype's rounding band
        ``band``.
      gram_error: orthogonal laws: :math:`\max|M^\top M - s^2 I|` (delta-orthogonal: of the
        centre matrix).
      exact_error: deterministic laws: :math:`\max|w - w_{law}|`; delta-orthogonal: the largest
        magnitude off the centre.
      zeros_min: sparse laws: fewest zeros in one unit.
      zeros_max: sparse laws: most zeros in one unit.
      zeros_total: sparse laws: zeros in the whole array.
      moments: shape ``(S, 8)``, :math:`\frac1n\sum (x - c)^k` for ``k = 1..8`` (complex:
        :math:`|z - c|^k`), for exact pooling.
      centre: the centre ``c`` of ``moments`` (the law's mean), shape ``()``.
      band: :math:`\delta_u` of :func:`cdf_band` (NaN without a law CDF), shape ``()``.
      levels: the probability levels :math:`p_j = j/512` of the pooled comparison, shape
        ``(M,)`` (``M = 0`` for laws without an element-wise CDF).
      levels_le: :math:`\#\{u \le p_j\}` over all seeds, with :math:`u = F(x)` (or, without a
        law, :math:`u = \Phi((x - m)/s)` for the ``reference`` ``(m, s)``), shape ``(M,)``.
      levels_lt: :math:`\#\{u < p_j\}` over all seeds, shape ``(M,)``.
      ks_pooled: :math:`\max_j \max(\#\{u \le p_j\}/N - p_j,\; p_j - \#\{u < p_j\}/N)`, the
        pooled KS distance on the levels (NaN without a law CDF), shape ``()``.
      ks_pooled_excess: ``max(ks_pooled - band, 0)``, shape ``()``.
      sketch: shape ``(S, m)``: the values of each draw at ``m = min(n, 256)`` fixed, evenly
        spread positions of the flattened array (of the centre matrix for delta-orthogonal
        laws; ``m = 0`` for deterministic laws), in the working precision (exact for
        16-bit dtypes). Comparing the sketches of different seeds tests that draws of
        different keys are not equal (:func:`jinit.testing.check_law`).
    """

    seeds: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    m3: np.ndarray
    m4: np.ndarray
    min: np.ndarray
    max: np.ndarray
    ks: np.ndarray
    ks_excess: np.ndarray
    gram_error: np.ndarray
    exact_error: np.ndarray
    zeros_min: np.ndarray
    zeros_max: np.ndarray
    zeros_total: np.ndarray
    moments: np.ndarray
    centre: np.ndarray
    band: np.ndarray
    levels: np.ndarray
    levels_le: np.ndarray
    levels_lt: np.ndarray
    ks_pooled: np.ndarray
    ks_pooled_excess: np.ndarray
    sketch: np.ndarray

    @property
    def num_seeds(self) -> int:
        """The number of seeds ``S``."""
        return int(self.seeds.shape[0])

    def pooled(self) -> PooledStats:
        """All seeds pooled into one sample, with standard errors (see :func:`pool`)."""
        return pool(self)


_PER_SEED_FIELDS = InitStats._fields[: InitStats._fields.index("moments") + 1] + ("sketch",)


class PooledStats(NamedTuple):
    r"""All seeds pooled into one sample of ``count`` values (host floats).

    The standard errors are estimated from the data (sample moments up to order 8), so they
    assume no law; :mod:`jinit.testing` uses the law's own moments instead.

    Attributes:
      seeds: the number of seeds.
      count: the number of values ``N``.
      mean: the pooled mean (complex for complex dtypes).
      mean_se: its standard error :math:`\sqrt{m_2/N}`.
      variance: the pooled variance :math:`m_2` (about the pooled mean).
      variance_se: :math:`\sqrt{(m_4 - m_2^2)/N}`.
      std: :math:`\sqrt{m_2}`.
      std_se: ``variance_se / (2 std)``.
      skewness: :math:`m_3/m_2^{3/2}` (NaN for complex dtypes).
      excess_kurtosis: :math:`m_4/m_2^2 - 3`.
      excess_kurtosis_se: its delta-method standard error (uses :math:`m_6` and :math:`m_8`).
      min: the smallest value.
      max: the largest value.
      ks_pooled: pooled KS distance to the law (NaN without a law CDF).
      ks_pooled_excess: the same beyond the dtype's rounding band.
      ks_max: the largest per-seed KS distance.
      ks_excess_max: the largest per-seed KS distance beyond the rounding band.
      gram_error: the largest Gram error (NaN if not orthogonal).
      exact_error: the largest exact error (NaN if not deterministic or delta-orthogonal).
      zeros_min: the fewest zeros in one unit (-1 if not sparse).
      zeros_max: the most zeros in one unit (-1 if not sparse).
      zeros_total: all zeros over all seeds (-1 if not sparse).
    """

    seeds: int
    count: int
    mean: float | complex
    mean_se: float
    variance: float
    variance_se: float
    std: float
    std_se: float
    skewness: float
    excess_kurtosis: float
    excess_kurtosis_se: float
    min: float
    max: float
    ks_pooled: float
    ks_pooled_excess: float
    ks_max: float
    ks_excess_max: float
    gram_error: float
    exact_error: float
    zeros_min: int
    zeros_max: int
    zeros_total: int


def _central(r: np.ndarray, d: np.ndarray | float) -> list:
    """Central moments 0..8 from raw moments ``r[0..8]`` about c, with ``d = mean - c``."""
    return [sum(math.comb(k, j) * r[j] * (-d) ** (k - j) for j in range(k + 1)) for k in range(9)]


def pool(stats: InitStats) -> PooledStats:
    r"""Pools the per-seed statistics of :func:`init_stats` into one sample.

    Each seed carries :math:`\frac1n\sum (x - c)^k` about a common centre ``c``, so the pooled
    moments are exact count-weighted averages, shifted to the pooled mean by the binomial
    formula (in float64).

    Args:
      stats: the result of :func:`init_stats`.

    Returns:
      A :class:`PooledStats`.

    Examples:
      >>> import jinit
      >>> from jinit.testing import init_stats
      >>> p = init_stats(jinit.normal(1.0), (32, 32), seeds=16).pooled()
      >>> p.count, round(p.std, 1)
      (16384, 1.0)
    """
    if not isinstance(stats, InitStats):
        raise TypeError(
            f"`jinit.testing.pool` needs the `InitStats` that `jinit.init_stats` returns; got "
            f"{_describe(stats)} of type {type(stats).__name__}."
        )
    count = np.asarray(stats.count, np.float64)
    n_total = float(count.sum())
    if not n_total > 0:
        raise ValueError(
            "`jinit.testing.pool` got statistics of zero values; there is nothing to pool."
        )
    w = count / n_total
    mean = np.asarray(stats.mean)
    is_complex = np.iscomplexobj(mean)
    if is_complex:
        mean_p: float | complex = complex(np.sum(w * mean.astype(np.complex128)))
    else:
        mean_p = float(np.sum(w * mean.astype(np.float64)))
    r = np.concatenate([[1.0], w @ np.asarray(stats.moments, np.float64)])
    c = np.asarray(stats.centre).item()
    if is_complex:
        # E|z - m|^2 = E|z - c|^2 - |m - c|^2 exactly; higher orders stay about c.
        m2 = max(r[2] - abs(mean_p - c) ** 2, 0.0)
        m4, m6, m8 = r[4], r[6], r[8]
        skew = math.nan
    else:
        cm = _central(r, mean_p - c)
        m2, m4, m6, m8 = max(cm[2], 0.0), cm[4], cm[6], cm[8]
        skew = cm[3] / m2**1.5 if m2 > 0 else math.nan
    std = math.sqrt(m2)
    var_se = math.sqrt(max(m4 - m2 * m2, 0.0) / n_total)
    if m2 > 0:
        kurt = m4 / m2**2 - 3.0
        # delta method for A / B^2 with A = mean (x-m)^4, B = mean (x-m)^2
        g_a, g_b = 1.0 / m2**2, -2.0 * m4 / m2**3
        var_k = g_a**2 * (m8 - m4 * m4) + 2 * g_a * g_b * (m6 - m4 * m2) + g_b**2 * (m4 - m2 * m2)
        kurt_se = math.sqrt(max(var_k, 0.0) / n_total)
    else:
        kurt, kurt_se = math.nan, math.nan

    def fmax(x: np.ndarray) -> float:
        a = np.asarray(x, np.float64)
        return math.nan if np.all(np.isnan(a)) else float(np.nanmax(a))

    zmin = np.asarray(stats.zeros_min)
    sparse = bool(np.all(zmin >= 0))
    return PooledStats(
        seeds=stats.num_seeds,
        count=int(n_total),
        mean=mean_p,
        mean_se=math.sqrt(m2 / n_total),
        variance=m2,
        variance_se=var_se,
        std=std,
        std_se=var_se / (2 * std) if std > 0 else math.nan,
        skewness=skew,
        excess_kurtosis=kurt,
        excess_kurtosis_se=kurt_se,
        min=float(np.min(np.asarray(stats.min, np.float64))),
        max=float(np.max(np.asarray(stats.max, np.float64))),
        ks_pooled=float(stats.ks_pooled),
        ks_pooled_excess=float(stats.ks_pooled_excess),
        ks_max=fmax(stats.ks),
        ks_excess_max=fmax(stats.ks_excess),
        gram_error=fmax(stats.gram_error),
        exact_error=fmax(stats.exact_error),
        zeros_min=int(zmin.min()) if sparse else -1,
        zeros_max=int(np.max(stats.zeros_max)) if sparse else -1,
        zeros_total=int(np.sum(np.asarray(stats.zeros_total, np.int64))) if sparse else -1,
    )


# ---------------------------------------------------------------------------------------------
# Rounding allowances of low-precision dtypes
# ---------------------------------------------------------------------------------------------


def real_dtype(dtype: Any) -> np.dtype:
    """The real dtype of ``dtype`` (float32 for complex64)."""
    return np.dtype(jnp.finfo(dtype).dtype)


def dtype_allowance(dtype: Any) -> tuple[float, float]:
    r"""The rounding allowance ``(delta, rel)`` of ``dtype``: :math:`(2\varepsilon, \varepsilon)`.

    ``delta`` bounds, in probability, the effect of the :math:`\varepsilon = 2^{-p}` resolution of
    the uniform variate a ``dtype`` sampler starts from and of rounded intermediate values;
    ``rel`` bounds the relative rounding of each value (two roundings of :math:`\varepsilon/2`).

    Args:
      dtype: the sampled dtype (complex dtypes use their real part's epsilon).

    Returns:
      ``(delta, rel)`` as floats.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit.stats._stats import dtype_allowance
      >>> dtype_allowance(jnp.bfloat16)
      (0.015625, 0.0078125)
    """
    eps = float(jnp.finfo(real_dtype(dtype)).eps)
    return 2.0 * eps, eps


def _law_grid(law: L.ElementwiseLaw, size: int = 16385) -> tuple[np.ndarray, np.ndarray]:
    """A grid over the bulk of ``law`` (support, or mean ± 12 std) and its CDF there."""
    mu = abs(law.mean) if law.is_complex else float(law.mean)
    sd = math.sqrt(max(law.variance, 0.0))
    slo, shi = law.support
    lo = slo if math.isfinite(slo) else mu - 12 * sd
    hi = shi if math.isfinite(shi) else mu + 12 * sd
    if law.is_complex:
        lo = max(lo, 0.0)
    if not hi > lo:
        return np.asarray([lo]), np.asarray([1.0])
    t = np.linspace(lo, hi, size)
    # one compiled call rather than an eager op (and its compile) per step of the CDF
    return t, np.asarray(jax.jit(law.cdf)(jnp.asarray(t, jnp.float32)), np.float64)


def cdf_band(law: L.ElementwiseLaw, dtype: Any) -> float:
    r""":math:`\delta_u = 2\varepsilon + \varepsilon\,\sup_t |t|\,f(t)`: how far the CDF of
    ``law`` sampled in ``dtype`` may be from the law's CDF (see the module docstring).

    :math:`\sup_t |t| f(t)` is estimated from the CDF by finite differences (with a 10 %
    margin); it is 0.24 for a centred normal, 0.5 for a symmetric uniform.

    Args:
      law: an element-wise law (for complex laws, of the modulus).
      dtype: the sampled dtype.

    Returns:
      :math:`\delta_u`, at most 1.

    Examples:
      >>> import jax.numpy as jnp, jinit
      >>> from jinit.stats._stats import cdf_band
      >>> round(cdf_band(jinit.laws.Normal(1.0), jnp.bfloat16) / 2**-7, 2)
      2.27
    """
    delta, rel = dtype_allowance(dtype)
    if not law.variance > 0:
        return delta  # a point mass at a representable value: only the probability term
    try:
        sup_tf = _sup_tf_cached(law)
    except TypeError:  # an unhashable law
        sup_tf = _sup_tf(law)
    return min(1.0, delta + rel * sup_tf)


def _sup_tf(law: L.ElementwiseLaw) -> float:
    r""":math:`1.1 \sup_t |t| f(t)` by finite differences of the CDF on a fine grid."""
    t, f = _law_grid(law)
    slope = np.diff(f) / np.diff(t)
    mid = 0.5 * (t[1:] + t[:-1])
    return float(np.max(np.abs(mid) * slope)) * 1.1


_sup_tf_cached = functools.lru_cache(maxsize=256)(_sup_tf)


def systematic_allowance(
    band: float, lo: float, hi: float, power: int, centre: float = 0.0
) -> float:
    r"""Bound on the rounding bias of :math:`E|x - c|^k` (``k = power``) for a CDF band.

    If :math:`|G(t) - F(t)| \le \delta_u` (:func:`cdf_band`), then for :math:`g(t) = |t - c|^k`,
    :math:`|E_G\,g - E_F\,g| \le \int |g'(t)|\,|G(t) - F(t)|\,dt \le \delta_u
    \int_{lo}^{hi} k|t - c|^{k-1}\,dt`, integrated over the observed range ``[lo, hi]`` (under
    the law, the mass outside it is of order :math:`1/N` and belongs to the sampling error):
    :math:`\delta_u(|hi - c|^k + |lo - c|^k)` when ``c`` is inside the range.

    Args:
      band: :math:`\delta_u`.
      lo: the smallest observed value.
      hi: the largest observed value.
      power: ``k`` (1 for the mean, 2 for the variance, 4 for the fourth moment).
      centre: ``c``.

    Returns:
      The bound (``inf`` if the range is not finite).

    Examples:
      >>> from jinit.stats._stats import systematic_allowance
      >>> systematic_allowance(0.01, -2.0, 2.0, 2)
      0.08
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return math.inf
    a, b = abs(lo - centre) ** power, abs(hi - centre) ** power
    return band * (a + b if lo <= centre <= hi else abs(b - a))


# ---------------------------------------------------------------------------------------------
# Small distributions on the host
# ---------------------------------------------------------------------------------------------


def normal_isf(p: float) -> float:
    """``z`` with :math:`P(Z > z) = p` for a standard normal ``Z`` (bisection on ``erfc``).

    Examples:
      >>> from jinit.stats._stats import normal_isf
      >>> round(normal_isf(0.025), 4)
      1.96
    """
    if not 0 < p < 1:
        raise ValueError(f"`normal_isf` needs 0 < p < 1; got {p!r}.")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(mid / math.sqrt(2.0)) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def kolmogorov_sf(x: float) -> float:
    r""":math:`P(K > x) = 2\sum_{k \ge 1} (-1)^{k-1} e^{-2k^2x^2}`, the Kolmogorov distribution
    (the limit law of :math:`\sqrt n\,D_n`).

    Examples:
      >>> from jinit.stats._stats import kolmogorov_sf
      >>> round(kolmogorov_sf(1.3581), 3)
      0.05
    """
    if x <= 0:
        return 1.0
    if x < 0.3:  # the theta-function form converges fast for small x
        s = sum(math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x)) for k in range(1, 8))
        return 1.0 - math.sqrt(2 * math.pi) / x * s
    terms = (2 * (-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))
    return min(1.0, max(0.0, sum(terms)))


def dkw_threshold(n_eff: float, alpha: float) -> float:
    r"""The distance :math:`\varepsilon` with :math:`P(D_n > \varepsilon) \le \alpha`:
    :math:`\sqrt{\ln(2/\alpha) / (2 n)}`.

    Massart's tight Dvoretzky–Kiefer–Wolfowitz inequality :math:`P(\sqrt n\,D_n > x) \le
    2e^{-2x^2}` holds for every ``n`` and every law (for laws with atoms :math:`D_n` is only
    smaller); it is the first term of the Kolmogorov series, so at small ``alpha`` this is the
    asymptotic Kolmogorov test, valid at finite ``n``. For two samples pass
    :math:`n_{\mathrm{eff}} = n_a n_b / (n_a + n_b)` (Wei & Dudley 2012).

    Examples:
      >>> from jinit.stats._stats import dkw_threshold
      >>> round(dkw_threshold(10_000, 0.05), 4)
      0.0136

    References:
      Massart, "The tight constant in the Dvoretzky–Kiefer–Wolfowitz inequality", 1990.
      Wei & Dudley, "Two-sample Dvoretzky–Kiefer–Wolfowitz inequalities", 2012.
    """
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n_eff))


# ---------------------------------------------------------------------------------------------
# Plans: what the sweep computes for each law type
# ---------------------------------------------------------------------------------------------

# the law kinds the per-seed reduction knows (each law says its own: `Law.kind`)
_KINDS = ("elementwise", "orthogonal", "delta", "sparse", "deterministic")


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The hashable recipe of the per-seed reduction for one law (or none)."""

    kind: str  # "elementwise" | "orthogonal" | "delta" | "deterministic" | "sparse" | "free"
    law: Any  # None for "free"; a hashable stand-in for "deterministic" (value passed at run)

    @property
    def values_law(self) -> Any:
        """The element-wise law of the values in the statistics, if there is one."""
        if self.kind == "sparse":
            return self.law.nonzero
        if self.kind == "elementwise":
            return self.law
        return None

    @property
    def binned(self) -> bool:
        """Whether u = F(x) (or the reference transform) is binned for a pooled KS."""
        return self.kind in ("elementwise", "sparse", "free")


def _plan(law: Any, is_complex: bool, api: str) -> _Plan:
    if law is None:
        return _Plan("free", None)
    kind = getattr(law, "kind", "")
    if kind not in _KINDS:
        raise TypeError(
            f"`{api}` does not know the law type {type(law).__name__} ({law!r}): its `kind` is "
            f"{kind!r}, not one of {', '.join(map(repr, _KINDS))}. Pass a law from "
            f"`jinit.laws` (or a subclass of one, which inherits its kind) as `law=`."
        )
    if kind == "deterministic":
        return _Plan("deterministic", ("deterministic", np.asarray(law.value).shape))
    if kind == "sparse" and getattr(law.nonzero, "kind", "") != "elementwise":
        raise TypeError(
            f"`{api}` needs the `nonzero` part of a SparseLaw to be an element-wise law; got "
            f"{type(law.nonzero).__name__}."
        )
    law_complex = law.values_complex
    if bool(law_complex) != bool(is_complex):
        got = "complex" if is_complex else "real"
        raise TypeError(
            f"`{api}`: the initialiser returns {got} values but the law {law!r} is for "
            f"{'complex' if law_complex else 'real'} ones. Pass the law of the dtype you draw, "
            f"`jinit.law(init, shape, dtype)`."
        )
    try:
        hash(law)
    except TypeError:
        law = _Unhashable(law)
    return _Plan(kind, law)


@dataclasses.dataclass(frozen=True, eq=False)
class _Unhashable:
    """Wraps an unhashable law; compares by identity (the sweep is then traced per law object)."""

    law: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.law, name)


# ---------------------------------------------------------------------------------------------
# The per-seed reduction (traced once per cache key)
# ---------------------------------------------------------------------------------------------


def _sort(x: jax.Array) -> jax.Array:
    """Ascending sort of floats through an order-preserving integer view (4x faster on CPU)."""
    itype = {4: jnp.int32, 8: jnp.int64}[x.dtype.itemsize]
    flip = jnp.array(np.iinfo(itype).max, itype)
    bits = jax.lax.bitcast_convert_type(x, itype)
    keys = jax.lax.sort(jnp.where(bits < 0, bits ^ flip, bits), is_stable=False)
    return jax.lax.bitcast_convert_type(jnp.where(keys < 0, keys ^ flip, keys), x.dtype)


def _value_stats(
    v: jax.Array,
    mask: jax.Array | None,
    *,
    centre: jax.Array,
    reference: jax.Array,
    cdf: Callable[[jax.Array], jax.Array] | None,
    binned: bool,
    work: Any,
    atoms: bool = False,
) -> dict[str, jax.Array]:
    """Power sums, extremes, KS and level counts of the flat values ``v`` (where ``mask``).

    Extremes and KS deviations are reduced as one ``(n, K)`` stack over the element axis, which
    XLA:CPU compiles faster than ``K`` separate reductions.
    """
    if jnp.iscomplexobj(v):
        v = v.astype(jnp.result_type(work, jnp.complex64))
        x = jnp.abs(v).astype(work)  # moduli: extremes, KS
        a = jnp.abs(v - centre.astype(v.dtype)).astype(work)  # |z - c|: moments
        extra_cols = [jnp.real(v).astype(work), jnp.imag(v).astype(work)]
    else:
        x = v.astype(work)
        a = x - centre.astype(work)
        extra_cols = []
    n = x.shape[0]
    a2 = a * a
    a4 = a2 * a2
    cols = [a, a2, a2 * a, a4, a4 * a, a4 * a2, a4 * a2 * a, a4 * a4, *extra_cols]
    if mask is None:
        count = jnp.asarray(n, jnp.int32)
    else:
        count = jnp.sum(mask, dtype=jnp.int32)
        cols = [jnp.where(mask, c, 0.0) for c in cols]
    k = jnp.maximum(count, 1).astype(work)
    sums = jnp.stack([jnp.sum(c) for c in cols]) / k  # one multi-output fusion
    out = {"count": count, "moments": sums[:8]}
    if extra_cols:
        out["mean"] = jax.lax.complex(sums[8], sums[9])
    else:
        out["mean"] = sums[0] + centre.astype(work)
    nan = jnp.asarray(jnp.nan, work)
    out["ks"] = nan
    if cdf is not None:  # sorted: extremes and the per-seed KS distance
        xs = _sort(x if mask is None else jnp.where(mask, x, jnp.inf))
        out["min"] = xs[0]
        out["max"] = xs[-1] if mask is None else xs[jnp.maximum(count, 1) - 1]
        i = jnp.arange(1, n + 1, dtype=work)
        u = jnp.clip(jnp.asarray(cdf(xs), work), 0.0, 1.0)
        # D- needs F just below each value; F is continuous except for degenerate laws
        u_left = u
        if atoms:
            below = jnp.nextafter(xs, jnp.asarray(-jnp.inf, work))
            u_left = jnp.clip(jnp.asarray(cdf(below), work), 0.0, 1.0)
        dev = jnp.stack([i / k - u, u_left - (i - 1) / k], axis=-1)
        if mask is not None:
            dev = jnp.where((i <= k)[:, None], dev, -jnp.inf)
        dev = jnp.max(dev, axis=0)
        out["ks"] = jnp.maximum(dev[0], dev[1])
        valid = None if mask is None else (i <= k)
    else:
        ext = jnp.stack([x, -x], axis=-1)
        if mask is not None:
            ext = jnp.where(mask[:, None], ext, -jnp.inf)
        ext = jnp.max(ext, axis=0)
        out["min"], out["max"] = -ext[1], ext[0]
        u = ndtr((x - reference[0].astype(work)) / reference[1].astype(work)) if binned else None
        valid = mask
    if binned and cdf is not None:
        # u is sorted: #(u <= p) and #(u < p) = #(u <= the float below p) by binary search.
        p = jnp.arange(1, BINS, dtype=work) / BINS
        below = jnp.nextafter(p, jnp.asarray(-jnp.inf, work))
        found = jnp.searchsorted(u, jnp.concatenate([p, below]), side="right").astype(jnp.int32)
        out["hist"] = found
    elif binned:
        # #(u < j/B) = #(floor(B u) < j), #(u <= j/B) = #(ceil(B u) <= j); B u is exact.
        bu = jnp.nan_to_num(u, nan=1.0) * BINS
        idx = jnp.concatenate([jnp.floor(bu), jnp.ceil(bu) + (BINS + 1)]).astype(jnp.int32)
        ones = jnp.ones((n,), jnp.int32) if valid is None else valid.astype(jnp.int32)
        hist = jnp.zeros((2 * (BINS + 1),), jnp.int32).at[idx].add(jnp.tile(ones, 2))
        lt = jnp.cumsum(hist[: BINS + 1])[: BINS - 1]
        le = jnp.cumsum(hist[BINS + 1 :])[1:BINS]
        out["hist"] = jnp.concatenate([le, lt])
    else:
        out["hist"] = jnp.zeros((0,), jnp.int32)
    return out


def _make_sweep(init, shape, dtype, plan: _Plan, cache_key):
    """The jitted ``(key, seeds[chunk], valid[chunk], aux) -> per-seed dict``: draw ``s`` uses
    ``fold_in(key, seeds[s])``; everything is vmapped over the seeds of the chunk."""
    work = np.dtype(np.float64) if real_dtype(dtype) == np.float64 else np.dtype(np.float32)
    vlaw = plan.values_law
    cdf = vlaw.cdf if vlaw is not None else None
    law = plan.law

    def per_seed(key, aux):
        w = init(key, shape, dtype)
        nan = jnp.asarray(jnp.nan, work)
        none = jnp.asarray(-1, jnp.int32)
        extra = {"gram_error": nan, "exact_error": nan}
        extra.update(zeros_min=none, zeros_max=none, zeros_total=none)
        mask = None
        values = w.ravel()
        if plan.kind == "orthogonal":
            extra["gram_error"] = law.gram_error(w).astype(work)
        elif plan.kind == "delta":
            centre_matrix = law.centre_slice(w)
            extra["gram_error"] = law.inner.gram_error(centre_matrix).astype(work)
            extra["exact_error"] = law.off_centre_max(w).astype(work)
            values = centre_matrix.ravel()
        elif plan.kind == "deterministic":
            value = aux["value"]
            same = (w == value) | (jnp.isnan(w) & jnp.isnan(value))
            diff = jnp.abs(w - value).astype(work)
            extra["exact_error"] = jnp.max(jnp.where(same, 0.0, jnp.nan_to_num(diff, nan=jnp.inf)))
        elif plan.kind == "sparse":
            zero = w == 0
            per_unit = jnp.sum(zero, axis=law.axis, dtype=jnp.int32)
            extra["zeros_min"] = jnp.min(per_unit)
            extra["zeros_max"] = jnp.max(per_unit)
            extra["zeros_total"] = jnp.sum(per_unit)
            mask = ~zero.ravel()
        out = _value_stats(
            values,
            mask,
            centre=aux["centre"],
            reference=aux["reference"],
            cdf=cdf,
            binned=plan.binned,
            work=work,
            atoms=vlaw is not None and not vlaw.variance > 0,
        )
        out.update(extra)
        if plan.kind == "deterministic":
            out["sketch"] = jnp.zeros((0,), work)
        else:  # values at fixed spread positions, compared across seeds on the host
            size = values.shape[0]
            m = min(size, SKETCH)
            pos = (np.arange(m, dtype=np.int64) * size) // m
            sk_dtype = jnp.result_type(work, jnp.complex64) if jnp.iscomplexobj(w) else work
            out["sketch"] = values[pos].astype(sk_dtype)
        return out

    def sweep(key, seeds, valid, aux):
        _TRACES[cache_key] += 1  # a Python side effect: runs once per trace, not per call
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, seeds)
        # Every output is per seed: a reduction over seeds would need a cross-device collective,
        # which can deadlock XLA:CPU when there are more devices than cores.
        del valid
        return jax.vmap(per_seed, in_axes=(0, None))(keys, aux)

    return jax.jit(sweep)


_SWEEPS: collections.OrderedDict = collections.OrderedDict()
_MAX_CACHED = 64


def _get_sweep(init, shape, dtype, plan: _Plan, chunk: int, devices: tuple):
    """The compiled sweep from an LRU cache keyed by everything that shapes the trace."""
    cache_key = (init, shape, dtype, plan, chunk, devices)
    try:
        hash(cache_key)
    except TypeError:  # an unhashable initialiser: compile without caching
        return _make_sweep(init, shape, dtype, plan, ("uncached", id(init), shape, dtype))
    fn = _SWEEPS.get(cache_key)
    if fn is None:
        fn = _SWEEPS[cache_key] = _make_sweep(init, shape, dtype, plan, cache_key)
        while len(_SWEEPS) > _MAX_CACHED:
            _SWEEPS.popitem(last=False)
    else:
        _SWEEPS.move_to_end(cache_key)
    return fn


def trace_count(init: Any = None) -> int:
    """How many times sweep functions were traced: in total, or for ``init`` only.

    A second :func:`init_stats` call with the same initialiser, shape, dtype and chunk size
    reuses the compiled sweep, so this does not grow.

    Examples:
      >>> import jinit
      >>> from jinit.stats._stats import init_stats, trace_count
      >>> init = jinit.normal(0.5)
      >>> _ = init_stats(init, (8, 8), seeds=16)
      >>> _ = init_stats(init, (8, 8), seeds=16, key=1)
      >>> trace_count(init)
      1
    """
    if init is None:
        return sum(_TRACES.values())
    total = 0
    for k, v in _TRACES.items():
        try:
            if k[0] is init or k[0] == init:
                total += v
        except Exception:  # exotic __eq__
            continue
    return total


# ---------------------------------------------------------------------------------------------
# Keys, seeds, sizes
# ---------------------------------------------------------------------------------------------


def _is_int_scalar_array(x: Any) -> bool:
    """A 0-d numpy or jax array of an integer dtype (not a PRNG key)."""
    if not isinstance(x, (jax.Array, np.ndarray)) or x.shape != ():
        return False
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return False
    return bool(np.issubdtype(np.dtype(x.dtype), np.integer))


def check_sweep_key(key: Any, api: str) -> jax.Array:
    """A typed threefry key from ``key``: None -> ``key(0)``; an int (or a 0-d integer array) is
    a seed for ``jax.random.key``; raw ``uint32`` key data of shape ``(2,)`` is wrapped."""
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(
            f"`{api}` needs `key` to be a JAX PRNG key or an int seed; got the bool {key!r}. "
            f"Pass e.g. `key=jax.random.key(0)` or `key=0`."
        )
    if isinstance(key, (int, np.integer)) or _is_int_scalar_array(key):
        seed = int(key)
        if not -(2**63) <= seed < 2**64:
            # jax.random.key raises OverflowError for the same int
            raise OverflowError(
                f"`{api}` got the int seed `key={seed}`, which does not fit in 64 bits (jax "
                f"converts seeds to int64/uint64). Pass a seed in [-2**63, 2**64)."
            )
        return jax.random.key(seed if seed < 2**63 else seed - 2**64)
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(
            f"`{api}` needs `key` to be a JAX PRNG key or an int seed; got {key!r} of type "
            f"{type(key).__name__}. Pass e.g. `key=jax.random.key(0)`."
        )
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.dtype != np.uint32 or key.shape != (2,):
            what = (
                "a batch of raw keys"
                if key.dtype == np.uint32 and key.ndim == 2
                else "raw key data of the wrong shape"
                if key.dtype == np.uint32
                else "not a key"
            )
            raise TypeError(
                f"`{api}` needs `key` to be a single JAX PRNG key (raw threefry key data is "
                f"uint32 of shape (2,)); got an array of dtype {key.dtype} and shape "
                f"{tuple(key.shape)} ({what}). Pass e.g. `key=jax.random.key(0)`."
            )
        key = jax.random.wrap_key_data(jnp.asarray(key), impl="threefry2x32")
    if key.shape != ():
        raise TypeError(
            f"`{api}` needs one PRNG key as `key`; got an array of keys of shape {key.shape}. "
            f"The sweep derives one key per seed with `jax.random.fold_in`; pass one key, "
            f"e.g. `key=keys[0]`."
        )
    impl = str(jax.random.key_impl(key))
    refuse_rbg(api, impl, "Pass a threefry key, e.g. `key=jax.random.key(0, impl='threefry2x32')`.")
    return key


def default_seeds(shape: Sequence[int]) -> int:
    r"""The default number of seeds for ``shape``:
    :math:`S = \min(4096, \max(16, \lceil 2^{18} / n \rceil))`, ``n = prod(shape)``.

    Args:
      shape: the shape to draw (a sequence of ints, or an int for a 1-D shape).

    Examples:
      >>> from jinit.testing import default_seeds
      >>> default_seeds((512, 512)), default_seeds((64, 32)), default_seeds((4, 3))
      (16, 128, 4096)
    """
    shape = canonical_shape("jinit.testing.default_seeds", shape)
    n = max(1, math.prod(shape))
    return int(min(MAX_SEEDS, max(MIN_SEEDS, -(-DEFAULT_TARGET_VALUES // n))))


def seed_spec(seeds: Any, shape: tuple[int, ...], api: str) -> int | np.ndarray:
    """``seeds`` checked: a count (int), or distinct seed indices (uint32 array). The count is not
    expanded here, so a huge count can be refused by the memory check before any allocation."""
    if seeds is None:
        return default_seeds(shape)
    fix = "Pass a count such as `seeds=256` or distinct indices such as `seeds=[0, 1, 2]`."
    if isinstance(seeds, (bool, np.bool_)):
        raise TypeError(f"`{api}` needs `seeds` to be an int or a sequence of ints; got {seeds!r}.")
    if isinstance(seeds, (int, np.integer)) or _is_int_scalar_array(seeds):
        count = int(seeds)
        if count < 1:
            raise ValueError(f"`{api}` needs `seeds` >= 1; got {count}. {fix}")
        if count > 2**32:
            raise ValueError(
                f"`{api}` got `seeds={count}`, more than the 2**32 distinct seed indices "
                f"(`jax.random.fold_in` takes a uint32). Pass at most 2**32 seeds."
            )
        return count
    if isinstance(seeds, (str, bytes, float, complex, np.floating)) or not isinstance(
        seeds, (Sequence, np.ndarray, jax.Array, range)
    ):
        raise TypeError(
            f"`{api}` needs `seeds` to be an int (how many) or a sequence of seed indices; got "
            f"{seeds!r} of type {type(seeds).__name__}. {fix}"
        )
    try:
        idx = np.asarray(seeds)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{api}` needs `seeds` to be a sequence of ints; got {seeds!r}. {fix}"
        ) from None
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(
            f"`{api}` needs seed indices to be ints; got {_short(seeds)} of dtype {idx.dtype}. "
            f"{fix}"
        )
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError(
            f"`{api}` needs `seeds` to be a count or a non-empty 1-D sequence of seed indices; "
            f"got {_short(seeds)} (shape {idx.shape}). {fix}"
        )
    if np.any(idx < 0) or np.any(idx >= 2**32):
        bad = idx[(idx < 0) | (idx >= 2**32)]
        raise ValueError(
            f"`{api}` needs seed indices in [0, 2**32) (`jax.random.fold_in` takes a uint32); "
            f"got {_short(bad.tolist())} among `seeds`. {fix}"
        )
    uniq, counts = np.unique(idx, return_counts=True)
    if uniq.size != idx.size:
        dup = uniq[counts > 1]
        raise ValueError(
            f"`{api}` got duplicate seed indices {_short(dup.tolist())} in `seeds`: a repeated "
            f"index repeats the same draw, which the statistics would count as an independent "
            f"one (and a correct initialiser would then fail). Pass distinct indices, e.g. "
            f"`seeds=np.unique(seeds)`, or a count `seeds={idx.size}`."
        )
    return idx.astype(np.uint32)


def _short(x: Any, limit: int = 8) -> str:
    """``x`` as text, long lists cut after ``limit`` items."""
    if isinstance(x, (list, tuple)) and len(x) > limit:
        return "[" + ", ".join(repr(v) for v in x[:limit]) + f", ... ({len(x)} in all)]"
    text = repr(x)
    return text if len(text) <= 120 else text[:117] + "..."


def seed_indices(seeds: Any, shape: tuple[int, ...], api: str) -> np.ndarray:
    """``seeds`` (None, a count, or distinct indices) as a uint32 array of seed indices.

    Raises:
      TypeError: ``seeds`` is not an int or a sequence of ints.
      ValueError: a count below 1 or above 2**32, an empty or multi-dimensional sequence,
        indices outside [0, 2**32), or duplicate indices (a repeated draw is not independent).
    """
    spec = seed_spec(seeds, shape, api)
    return np.arange(spec, dtype=np.uint32) if isinstance(spec, int) else spec


def check_chunk_size(chunk_size: Any, api: str) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, (bool, np.bool_)) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(
            f"`{api}` needs `chunk_size` to be an int (seeds per compiled call) or None; got "
            f"{chunk_size!r}. Pass e.g. `chunk_size=64`."
        )
    if chunk_size < 1:
        raise ValueError(
            f"`{api}` needs `chunk_size` >= 1 (seeds per compiled call); got {chunk_size}. Pass "
            f"e.g. `chunk_size=64`, or None for the default."
        )
    return int(chunk_size)


def plan_chunk_size(chunk_size: int | None, n_values: int, n_seeds: int, n_dev: int) -> int:
    """Seeds per compiled call: a power of two up to the value budget (or ``chunk_size``), at
    most the number of seeds, rounded up to a multiple of ``n_dev`` (the seeds engine's rule)."""
    if chunk_size is None:
        budget = max(1, CHUNK_VALUES // max(n_values, 1))
        chunk = min(budget, MAX_SEEDS, 1 << max(0, (n_seeds - 1).bit_length()))
    else:
        chunk = min(chunk_size, n_seeds)  # more than the seeds only pads
    return rounded_chunk(chunk, n_dev)


def check_stats_dtype(dtype: Any, api: str) -> Any:
    if dtype is None:
        return None
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"`{api}` got `dtype={dtype!r}`, which is not a dtype. Pass a floating or complex "
            f"dtype such as `jnp.float32`, `'bfloat16'` or `jnp.complex64`."
        ) from None
    if not jnp.issubdtype(dt, jnp.inexact):
        raise TypeError(
            f"`{api}` needs a floating or complex `dtype` (initialisers draw real or complex "
            f"values); got {dt.name}. Pass e.g. `dtype=jnp.float32`."
        )
    return dtype


def _check_reference(reference: Any, api: str) -> tuple[float, float] | None:
    if reference is None:
        return None
    try:
        m_ref, s_ref = (float(r) for r in reference)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{api}` needs `reference` to be a pair of floats `(m, s)`; got {reference!r}."
        ) from None
    if not (math.isfinite(m_ref) and s_ref > 0 and math.isfinite(s_ref)):
        raise ValueError(
            f"`{api}` needs `reference=(m, s)` finite with s > 0; got {reference!r}. Pass e.g. "
            f"`reference=(0.0, 1.0)`."
        )
    return m_ref, s_ref


def _gib(b: float) -> str:
    """Bytes as a short human-readable size."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{int(b)} B"


def available_memory() -> int | None:
    """Host memory available to a new allocation, in bytes: ``MemAvailable`` of
    ``/proc/meminfo`` (Linux), else free physical pages (``os.sysconf``); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _device_free(device: jax.Device) -> int | None:
    """Free memory of an accelerator (None for host devices, which share host memory)."""
    if device.platform == "cpu":
        return None
    try:
        ms = device.memory_stats() or {}
    except Exception:  # a backend without memory statistics
        return None
    if "bytes_limit" not in ms:
        return None
    return int(ms["bytes_limit"]) - int(ms.get("bytes_in_use", 0))


def sweep_memory(
    n_values: int, dtype: Any, num_seeds: int, chunk: int, pilot: bool = False
) -> tuple[int, int]:
    r"""Estimated bytes of an :func:`init_stats` call: ``(device, host)``.

    * device, per compiled call of ``chunk`` seeds:
      :math:`\mathrm{chunk}\,(n\,(b + 12\,b_w) + 8192)`: the draws (``b`` bytes per value),
      the working copies (sorted values and their integer view, :math:`F(x)`, KS deviations,
      moment columns; :math:`b_w` bytes of the working dtype, float32 or float64, per value and
      per real or imaginary part) and the per-seed outputs;
    * host: :math:`S\,(260 + m\,b_s)` kept for ``S`` seeds (per-seed statistics, the sketch of
      :math:`m = \min(n, 256)` values of :math:`b_s` bytes), plus
      :math:`\mathrm{chunk}\,(12\,264 + m\,b_s)` for the outputs of one call (level counts)
      and, without a law, a pilot draw (:math:`16 n`).

    The factor 12 is the measured XLA:CPU temporary memory (9 to 10 working words per value)
    with a margin. :func:`init_stats` refuses, before compiling, a call that needs more than
    the devices (accelerators) or the host (:func:`available_memory`) have free.

    Args:
      n_values: values per draw, ``prod(shape)``.
      dtype: the drawn dtype.
      num_seeds: ``S``.
      chunk: seeds per compiled call.
      pilot: whether a pilot draw is made (no law).

    Returns:
      ``(device_bytes, host_bytes)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit.stats._stats import sweep_memory
      >>> dev, host = sweep_memory(512 * 512, jnp.float32, 16, 8)
      >>> dev // 2**20, host // 2**10
      (104, 123)
    """
    dt = np.dtype(jnp.dtype(dtype))
    real = real_dtype(dt)
    work = 8 if real == np.float64 else 4
    is_complex = jnp.issubdtype(dt, jnp.complexfloating)
    sketch_item = 2 * work if is_complex else work
    words = DEVICE_WORDS_PER_VALUE * (2 if is_complex else 1)
    device = chunk * (n_values * (dt.itemsize + words * work) + DEVICE_BYTES_PER_SEED)
    m = min(n_values, SKETCH)
    host = num_seeds * (HOST_BYTES_PER_SEED + m * sketch_item)
    host += chunk * (HOST_BYTES_PER_SEED_IN_CHUNK + m * sketch_item)
    if pilot:
        host += 16 * n_values
    return int(device), int(host)


def check_memory(
    api: str,
    shape: tuple[int, ...],
    dtype: Any,
    num_seeds: int,
    chunk: int,
    devs: tuple,
    pilot: bool,
) -> None:
    """Refuses, before any compile, a call whose estimated memory (:func:`sweep_memory`)
    exceeds what the accelerators or the host have free, with the fix that would make it fit."""
    n = math.prod(shape)
    device, host = sweep_memory(n, dtype, num_seeds, chunk, pilot)
    nd = len(devs)
    free = [_device_free(d) for d in devs]
    accel = all(f is not None for f in free)
    host_avail = available_memory()
    least_dev, _ = sweep_memory(n, dtype, 1, nd, pilot)  # nd seeds per call, one per device
    _, host_one = sweep_memory(n, dtype, 1, chunk, pilot)
    _, host_two = sweep_memory(n, dtype, 2, chunk, pilot)
    per_seed_host = host_two - host_one
    if accel:
        budget, shared = min(free), 0
        per_call = device // nd
        least_call = least_dev // nd
    else:  # host devices: the compiled calls use host memory too
        budget, shared = host_avail, device
        per_call, least_call = device, least_dev
    if budget is not None and per_call > budget:
        if least_call <= budget:
            fix = (
                f"Pass a smaller `chunk_size` (at {nd} seed(s) per call it needs about "
                f"{_gib(least_call)}) or a smaller shape."
            )
        else:
            fix = (
                f"Even one seed per device needs about {_gib(least_call)}: pass a smaller shape "
                f"(or run on a machine with more memory)."
            )
        where = "per device" if accel else "for each compiled call"
        raise ValueError(
            f"`{api}` would need about {_gib(per_call)} {where} ({chunk} seed(s) per call, shape "
            f"{shape}, {n:,} values each); {_gib(budget)} is free. {fix}"
        )
    if host_avail is not None and host + shared > host_avail:
        fit = max(0, (host_avail - shared - host_one) // max(per_seed_host, 1) + 1)
        raise ValueError(
            f"`{api}` would need about {_gib(host + shared)} of memory for {num_seeds:,} seeds of "
            f"shape {shape} ({_gib(host)} kept on the host, {_gib(device)} per compiled call of "
            f"{chunk} seed(s)); {_gib(host_avail)} is available. Pass fewer `seeds` (about "
            f"{fit:,} fit), or measure in several calls with disjoint seed indices."
        )


def _levels(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Levels j/B (j = 1..B-1) and the summed counts #(u <= p_j), #(u < p_j)."""
    if hist.size == 0:
        empty = np.zeros((0,), np.int64)
        return np.zeros((0,), np.float64), empty, empty
    m = BINS - 1
    return np.arange(1, BINS) / BINS, hist[:m].astype(np.int64), hist[m:].astype(np.int64)


def pooled_ks(levels: np.ndarray, le: np.ndarray, lt: np.ndarray, total: int) -> float:
    r"""Pooled KS distance on the levels:
    :math:`\max_j \max(\#\{u \le p_j\}/N - p_j,\ p_j - \#\{u < p_j\}/N)`.

    It is :math:`\sup_t |F_N(t) - F(t)|` restricted to the quantiles :math:`F^{-1}(p_j)`, so it
    never exceeds the full KS distance and the DKW bound applies unchanged.
    """
    if levels.size == 0 or total <= 0:
        return math.nan
    return float(max(np.max(le / total - levels), np.max(levels - lt / total), 0.0))


_PROBES: collections.OrderedDict = collections.OrderedDict()


def _probe(init: Callable[..., jax.Array], shape: tuple[int, ...], dtype: Any, api: str):
    """``(result dtype, uses custom calls)`` of ``init(key, shape, dtype)``, checking the shape
    and (when ``dtype`` is given) the dtype of what it returns.

    One abstract trace of ``init``, cached per ``(init, shape, dtype)``. A ``TypeError`` or
    ``ValueError`` raised by ``init`` itself is re-raised with the call that raised it.
    """
    want = None if dtype is None else np.dtype(jnp.dtype(dtype))
    cache_key = (init, shape, want)
    try:
        hit = _PROBES.get(cache_key)
    except TypeError:
        hit, cache_key = None, None
    call = f"{_describe(init)}(key, {shape}, {'None' if want is None else want.name})"
    if hit is None:
        try:
            lowered = jax.jit(lambda k: init(k, shape, dtype)).lower(jax.random.key(0))
        except (TypeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise type(e)(
                f"`{api}`: the initialiser raised {type(e).__name__} when called as {call}: {first}"
            ) from e
        probe = lowered.out_info
        if not hasattr(probe, "shape") or tuple(probe.shape) != shape:
            got = (
                f"an array of shape {tuple(probe.shape)} and dtype {probe.dtype}"
                if hasattr(probe, "shape")
                else f"{type(probe).__name__} {probe!r}"
            )
            raise ValueError(
                f"`{api}`: {call} returned {got}, not an array of shape {shape}; "
                f"it is not an initialiser `init(key, shape, dtype)`."
            )
        hit = (np.dtype(probe.dtype), "custom_call" in lowered.as_text())
        if cache_key is not None:
            _PROBES[cache_key] = hit
            while len(_PROBES) > 4 * _MAX_CACHED:
                _PROBES.popitem(last=False)
    if not jnp.issubdtype(hit[0], jnp.inexact):
        raise TypeError(
            f"`{api}` needs a floating or complex result; {call} returned dtype {hit[0]}."
        )
    if want is not None and hit[0] != want:
        raise TypeError(
            f"`{api}`: {call} returned dtype {hit[0].name}, not the {want.name} it was asked "
            f"for; the statistics would be those of another dtype. Fix the initialiser to honour "
            f"`dtype`, or pass `dtype={hit[0].name!r}`."
        )
    return hit


def _describe(init: Any) -> str:
    text = repr(init)
    return text if len(text) <= 80 else text[:77] + "..."


def result_dtype(init: Callable[..., jax.Array], shape: tuple[int, ...], dtype: Any, api: str):
    """The dtype ``init(key, shape, dtype)`` returns (checks the shape; cached)."""
    return _probe(init, shape, dtype, api)[0]


# ---------------------------------------------------------------------------------------------
# The public sweep
# ---------------------------------------------------------------------------------------------


def init_stats(
    init: Callable[..., jax.Array],
    shape: Sequence[int],
    *,
    seeds: int | Sequence[int] | None = None,
    key: Any = None,
    dtype: Any = None,
    law: Any = "auto",
    chunk_size: int | None = None,
    reference: tuple[float, float] | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> InitStats:
    r"""Statistics of ``init(key_s, shape, dtype)`` over many independent keys, per seed.

    Seed ``s`` uses ``key_s = jax.random.fold_in(key, s)``, so any one draw can be reproduced
    alone. All draws are reduced on device by one ``jax.jit(jax.vmap(...))``, traced once per
    ``(init, shape, dtype, law, chunk_size)`` and called on chunks of keys sharded over
    ``devices``; memory is bounded by ``chunk_size``, not by the number of seeds. Per seed it
    records the count-weighted power sums :math:`\frac1n\sum(x-c)^k` (``k <= 8``), the mean and
    central moments, extremes, and the Kolmogorov–Smirnov distance
    :math:`D_n = \sup_t|F_n(t) - F(t)|` to the law's CDF (each draw sorted on device; the
    modulus CDF for complex laws); depending on the law also the Gram error
    :math:`\max|M^\top M - s^2 I|` (orthogonal), the exact error (deterministic; the
    off-centre magnitude of delta-orthogonal kernels) and zero counts per unit (sparse). Over all
    seeds it counts :math:`u = F(x)` at the levels :math:`j/512` for a pooled KS distance over
    all :math:`N = S n` values.

    Args:
      init: an initialiser ``init(key, shape, dtype) -> Array`` (any such callable).
      shape: the shape to draw (at least one entry): a sequence of ints, or an int for a 1-D
        shape, as ``jax.nn.initializers`` accept.
      seeds: how many seeds (default :func:`default_seeds`, at most ``2**32``), or a sequence
        of distinct seed indices in ``[0, 2**32)`` (a repeated index would repeat a draw).
      key: the base key: a threefry PRNG key, raw ``uint32`` key data of shape ``(2,)``, or an
        int seed for ``jax.random.key`` (default ``jax.random.key(0)``). rbg and unsafe_rbg
        keys are refused: under ``vmap`` they do not give independent streams.
      dtype: the dtype to draw (default: the initialiser's).
      law: the law to compare with: ``"auto"`` (default) for ``jinit.law(init, shape, dtype)``
        when ``init`` has a law, else none; ``None`` for none (moments and extremes only); or a
        law from :mod:`jinit.laws`.
      chunk_size: seeds per compiled call (default: a power of two with about ``2**21`` values
        per call, rounded up to a multiple of the device count). Results do not depend on it.
      reference: without a law, ``(m, s)`` of the transform :math:`u = \Phi((x - m)/s)` used for
        the pooled level counts (default: mean and std of a pilot draw). Two sweeps compared
        with each other must share it.
      devices: the local devices to shard seeds over: None (all local devices), a count n (the
        first n) or a list of distinct devices.

    Returns:
      An :class:`InitStats`; ``.pooled()`` gives a :class:`PooledStats`.

    Raises:
      ValueError: an rbg key, a bad seed count or duplicate/out-of-range seed indices, a shape
        with no entries, a draw of the wrong shape, or a call whose estimated memory
        (:func:`sweep_memory`) exceeds what the devices or the host have free. Every argument
        is checked before anything is compiled.
      TypeError: a non-callable ``init``, a shape, key, seeds, chunk size, dtype or devices of
        the wrong type, a result of another dtype than ``dtype``, an unknown law type, or a
        real law for a complex dtype (or vice versa).
      OverflowError: an int ``key`` that does not fit in 64 bits (as ``jax.random.key``).

    Examples:
      >>> import jax, jinit
      >>> from jinit.testing import init_stats
      >>> st = init_stats(jinit.he_normal(), (64, 32), seeds=64, key=jax.random.key(1))
      >>> st.variance.shape, st.ks.shape
      ((64,), (64,))
      >>> p = st.pooled()
      >>> bool(abs(p.std - jinit.law(jinit.he_normal(), (64, 32)).std) < 6 * p.std_se)
      True
    """
    return run_init_stats(
        init,
        shape,
        seeds=seeds,
        key=key,
        dtype=dtype,
        law=law,
        chunk_size=chunk_size,
        reference=reference,
        devices=devices,
        api="jinit.init_stats",
    )


def check_init(init: Any, api: str, name: str = "init") -> None:
    """Refuses a non-callable initialiser with the fix."""
    if not callable(init):
        raise TypeError(
            f"`{api}` needs `{name}` to be a callable initialiser `init(key, shape, dtype)`, "
            f"e.g. `jinit.he_normal()`; got {_describe(init)} of type {type(init).__name__}."
            + (" Did you pass the factory without calling it?" if init is None else "")
        )


def run_init_stats(
    init: Callable[..., jax.Array],
    shape: Any,
    *,
    seeds: Any,
    key: Any,
    dtype: Any,
    law: Any,
    chunk_size: Any,
    reference: Any,
    devices: Any,
    api: str,
) -> InitStats:
    """:func:`init_stats` with errors naming ``api`` (the public function called)."""
    # Every argument is checked before anything is traced, compiled or drawn.
    check_init(init, api)
    shape = canonical_shape(api, shape)
    if math.prod(shape) == 0:
        raise ValueError(
            f"`{api}` got shape {shape} with no entries; there is nothing to measure. Pass a shape "
            f"with at least one entry."
        )
    dtype = check_stats_dtype(dtype, api)
    key = check_sweep_key(key, api)
    spec = seed_spec(seeds, shape, api)
    num_seeds = spec if isinstance(spec, int) else int(spec.size)
    chunk_size = check_chunk_size(chunk_size, api)
    devs = tuple(check_devices(api, devices, allow_global=False))
    reference = _check_reference(reference, api)
    if isinstance(law, str):
        if law != "auto":
            raise ValueError(
                f"`{api}` needs `law` to be 'auto', None or a law from `jinit.laws`; got {law!r}."
            )
        has_law = hasattr(init, "law") and callable(init.law)
        law = init.law(shape, dtype) if has_law else None
    out_dtype, custom_calls = _probe(init, shape, dtype, api)
    is_complex = bool(jnp.issubdtype(out_dtype, jnp.complexfloating))
    plan = _plan(law, is_complex, api)
    if custom_calls and len(devs) > 1 and all(d.platform == "cpu" for d in devs):
        # XLA:CPU can deadlock running a program with LAPACK custom calls (QR, ...) sharded
        # over several host devices; such sweeps (orthogonal laws) use one device.
        devs = devs[:1]
    chunk = plan_chunk_size(chunk_size, math.prod(shape), num_seeds, len(devs))
    check_memory(api, shape, out_dtype, num_seeds, chunk, devs, plan.kind == "free")
    idx = np.arange(spec, dtype=np.uint32) if isinstance(spec, int) else spec
    sweep = _get_sweep(init, shape, out_dtype, plan, chunk, devs)

    # Runtime arguments (not baked into the compiled function).
    work = np.dtype(np.float64) if real_dtype(out_dtype) == np.float64 else np.dtype(np.float32)
    ctype = np.complex128 if is_complex else np.float64
    vlaw = plan.values_law
    if plan.kind == "free":
        pilot = np.asarray(init(jax.random.fold_in(key, np.uint32(2**32 - 1)), shape, out_dtype))
        pilot = pilot.astype(ctype)
        centre = pilot.mean()
        if reference is None:
            mod = np.abs(pilot) if is_complex else pilot
            sd = float(mod.std())
            reference = (float(mod.mean()), sd if sd > 0 else 1.0)
    elif plan.kind == "deterministic":
        centre = np.asarray(law.value).astype(ctype).mean()
    elif vlaw is not None:
        centre = vlaw.mean
    else:
        centre = 0.0
    if reference is None:
        reference = (0.0, 1.0)
    m_ref, s_ref = reference
    centre = np.asarray(centre, ctype)
    aux = {
        "centre": jnp.asarray(
            centre.astype(np.result_type(work, np.complex64) if is_complex else work)
        ),
        "reference": jnp.asarray(np.asarray([m_ref, s_ref], work)),
    }
    if plan.kind == "deterministic":
        aux["value"] = jnp.asarray(np.asarray(law.value).astype(out_dtype))

    engine = SeedPlan.create(devs, idx.size, chunk)
    pieces: list[dict[str, np.ndarray]] = []
    hist = None
    for block in engine.blocks(idx.astype(np.uint32)):
        out = engine.fetch(sweep(key, *engine.put((block.index, block.mask)), aux), block.valid)
        h = np.asarray(out.pop("hist"), np.int64).sum(axis=0)
        hist = h if hist is None else hist + h
        pieces.append(out)
    per = {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}

    # Per-seed central moments from the power sums (float64 on the host).
    r = np.asarray(per["moments"], np.float64).T  # (8, S)
    r = np.concatenate([np.ones((1, r.shape[1])), r])
    if is_complex:
        d2 = np.abs(per["mean"].astype(np.complex128) - centre) ** 2
        variance, m3, m4 = np.maximum(r[2] - d2, 0.0), r[3], r[4]
    else:
        cm = _central(r, per["mean"].astype(np.float64) - float(centre))
        variance, m3, m4 = np.maximum(cm[2], 0.0), cm[3], cm[4]

    total = int(per["count"].astype(np.int64).sum())
    levels, le, lt = _levels(hist)
    band = cdf_band(vlaw, out_dtype) if vlaw is not None else math.nan
    ks_p = pooled_ks(levels, le, lt, total) if vlaw is not None else math.nan
    ks = per["ks"].astype(np.float64)
    return InitStats(
        seeds=idx.astype(np.int64),
        count=per["count"],
        mean=per["mean"],
        variance=variance,
        m3=m3,
        m4=m4,
        min=per["min"],
        max=per["max"],
        ks=ks,
        ks_excess=np.maximum(ks - band, 0.0) if vlaw is not None else ks,
        gram_error=per["gram_error"],
        exact_error=per["exact_error"],
        zeros_min=per["zeros_min"],
        zeros_max=per["zeros_max"],
        zeros_total=per["zeros_total"],
        moments=per["moments"],
        centre=centre,
        band=np.asarray(band),
        levels=levels,
        levels_le=le,
        levels_lt=lt,
        ks_pooled=np.asarray(ks_p),
        ks_pooled_excess=np.asarray(max(ks_p - band, 0.0) if vlaw is not None else math.nan),
        sketch=per["sketch"],
    )
