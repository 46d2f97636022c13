r"""Rounding allowances of low-precision dtypes, and small distributions evaluated on the host.

Low precision. jax draws every distribution from a uniform variate with as many random bits as
the dtype has mantissa bits and rounds intermediate values to the dtype, so a bfloat16 draw takes
at most a few hundred distinct values. The CDF :math:`G` of what is actually sampled is only
close to the law's :math:`F`:

.. math::
    |G(t) - F(t)| \\le \\delta_u = 2\varepsilon + \varepsilon \\sup_t |t| f(t)

(:func:`cdf_band`), with :math:`\varepsilon` the dtype's machine epsilon: :math:`2\varepsilon`
for the :math:`2^{-p}` resolution of the uniform variate plus the rounding of intermediate
values in probability, and :math:`\varepsilon |t|` for rounding the value itself (two roundings
of :math:`\varepsilon/2`), which moves the CDF by at most :math:`\varepsilon |t| f(t)`. Measured:
:math:`\\sup|G - F| \approx 1.4\\,\varepsilon` for jax's bfloat16 and float16 samplers. KS
statistics are also reported beyond this band (``ks_excess``), and moment tolerances add the bias
the band allows, :math:`|E\\,g(x') - E\\,g(x)| \\le \\int |g'(t)|\\,|G(t) - F(t)|\\,dt`
(:func:`systematic_allowance`). For float32 and float64 the band is below :math:`10^{-6}`.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit.laws import _laws as L

# Default sweep size: 2**18 values put a 3 % error of the std > 20 standard errors off and let
# the pooled KS test separate families of equal variance (power measured by
# benchmarks/calibration.py). At least 16 seeds, so a sign flipped in a bfloat16 orthogonal
# matrix is caught; at most 4096. A (512, 512) check stays well under 2 s on a 2-core CPU
# (benchmarks/stats_speed.py).


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
      >>> from jinit.stats._rounding import dtype_allowance
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
      >>> from jinit.stats._rounding import cdf_band
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
      >>> from jinit.stats._rounding import systematic_allowance
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
      >>> from jinit.stats._rounding import normal_isf
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
      >>> from jinit.stats._rounding import kolmogorov_sf
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
      >>> from jinit.stats._rounding import dkw_threshold
      >>> round(dkw_threshold(10_000, 0.05), 4)
      0.0136

    References:
      Massart, "The tight constant in the Dvoretzky–Kiefer–Wolfowitz inequality", 1990.
      Wei & Dudley, "Two-sample Dvoretzky–Kiefer–Wolfowitz inequalities", 2012.
    """
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n_eff))
