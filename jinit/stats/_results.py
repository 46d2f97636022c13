"""What :func:`init_stats` returns: :class:`InitStats` (per-seed host arrays), :class:`PooledStats`
(pooled moments with standard errors) and the sizing constants both are built around."""

from __future__ import annotations

import collections
import math
from typing import Any, NamedTuple

import numpy as np

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
TRACES: collections.Counter = collections.Counter()
# Compiled sweeps (and probes, x4) kept per process before the oldest are dropped.
MAX_CACHED = 64


def describe_init(init: Any) -> str:
    text = repr(init)
    return text if len(text) <= 80 else text[:77] + "..."


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


def central_moments(r: np.ndarray, d: np.ndarray | float) -> list:
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
            f"{describe_init(stats)} of type {type(stats).__name__}."
        )
    count = np.asarray(stats.count, np.float64)
    n_total = float(count.sum())
    if not n_total > 0:
        raise ValueError(
            "`jinit.testing.pool` got statistics of zero values; there is nothing to pool."
        )
    w = count / n_total
    mean_p, is_complex = _pooled_mean(stats, w)
    r = np.concatenate([[1.0], w @ np.asarray(stats.moments, np.float64)])
    c = np.asarray(stats.centre).item()
    m2, m4, m6, m8, skew = _moments_about_mean(r, mean_p, c, is_complex)
    std = math.sqrt(m2)
    var_se = math.sqrt(max(m4 - m2 * m2, 0.0) / n_total)
    kurt, kurt_se = _excess_kurtosis(m2, m4, m6, m8, n_total)
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
        ks_max=_nanmax(stats.ks),
        ks_excess_max=_nanmax(stats.ks_excess),
        gram_error=_nanmax(stats.gram_error),
        exact_error=_nanmax(stats.exact_error),
        zeros_min=int(zmin.min()) if sparse else -1,
        zeros_max=int(np.max(stats.zeros_max)) if sparse else -1,
        zeros_total=int(np.sum(np.asarray(stats.zeros_total, np.int64))) if sparse else -1,
    )


def _pooled_mean(stats: InitStats, w: np.ndarray) -> tuple[float | complex, bool]:
    """``(mean, is_complex)``: the count-weighted mean of the per-seed means (weights ``w``)."""
    mean = np.asarray(stats.mean)
    is_complex = np.iscomplexobj(mean)
    if is_complex:
        mean_p: float | complex = complex(np.sum(w * mean.astype(np.complex128)))
    else:
        mean_p = float(np.sum(w * mean.astype(np.float64)))
    return mean_p, is_complex


def _moments_about_mean(
    r: np.ndarray, mean_p: float | complex, c: Any, is_complex: bool
) -> tuple[float, float, float, float, float]:
    """``(m2, m4, m6, m8, skewness)`` about the pooled mean from raw moments ``r`` about ``c``."""
    if is_complex:
        # E|z - m|^2 = E|z - c|^2 - |m - c|^2 exactly; higher orders stay about c.
        m2 = max(r[2] - abs(mean_p - c) ** 2, 0.0)
        m4, m6, m8 = r[4], r[6], r[8]
        skew = math.nan
    else:
        cm = central_moments(r, mean_p - c)
        m2, m4, m6, m8 = max(cm[2], 0.0), cm[4], cm[6], cm[8]
        skew = cm[3] / m2**1.5 if m2 > 0 else math.nan
    return m2, m4, m6, m8, skew


def _excess_kurtosis(
    m2: float, m4: float, m6: float, m8: float, n_total: float
) -> tuple[float, float]:
    """``(excess kurtosis, its standard error)`` from central moments of ``n_total`` values."""
    if m2 > 0:
        kurt = m4 / m2**2 - 3.0
        # delta method for A / B^2 with A = mean (x-m)^4, B = mean (x-m)^2
        g_a, g_b = 1.0 / m2**2, -2.0 * m4 / m2**3
        var_k = g_a**2 * (m8 - m4 * m4) + 2 * g_a * g_b * (m6 - m4 * m2) + g_b**2 * (m4 - m2 * m2)
        kurt_se = math.sqrt(max(var_k, 0.0) / n_total)
    else:
        kurt, kurt_se = math.nan, math.nan
    return kurt, kurt_se


def _nanmax(x: np.ndarray) -> float:
    """The largest non-NaN value of ``x`` as a float (NaN when all are NaN)."""
    a = np.asarray(x, np.float64)
    return math.nan if np.all(np.isnan(a)) else float(np.nanmax(a))
