"""The checks each kind of law asks for, on the statistics of one sample: moments and KS for
element-wise laws, Gram errors for orthogonal ones, collisions across keys, quantiles."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from jinit.laws import _laws as L
from jinit.laws._sampled import atom_moments, exact_atoms
from jinit.stats._results import InitStats, PooledStats
from jinit.stats._rounding import (
    dkw_threshold,
    dtype_allowance,
    normal_isf,
    real_dtype,
    systematic_allowance,
)
from jinit.testing._report import KURTOSIS_MIN_VALUES, Check, binom_upper, within

# ---------------------------------------------------------------------------------------------
# One sample against a law
# ---------------------------------------------------------------------------------------------


class _Target(NamedTuple):
    """The moments, support and rounding allowances an element-wise sample is checked against."""

    mu: Any  # the mean (complex for complex laws)
    sigma2: float
    m4: float
    kappa: float
    s_lo: float
    s_hi: float
    b1: float  # the rounding allowances of the 1st, 2nd and 4th moments
    b2: float
    b4: float
    probs: np.ndarray | None  # the exact atoms' probabilities (16-bit samplers), else None

    @property
    def sigma(self) -> float:
        """The standard deviation (0 for a negative rounding of the variance)."""
        return math.sqrt(max(self.sigma2, 0.0))


def _exact_target(values: np.ndarray, probs: np.ndarray, rel: float, exclude_zero: bool) -> _Target:
    """The exact discrete law of a 16-bit sampler, allowing each value one ulp (``rel``)."""
    if exclude_zero:  # the non-zero entries of a sparse law: condition on x != 0
        keep = values != 0
        values, probs = values[keep], probs[keep] / probs[keep].sum()
    mu, sigma2, m4 = atom_moments(values, probs)
    kappa = m4 / (sigma2 * sigma2) - 3.0 if sigma2 > 0 else 0.0
    s_lo, s_hi = float(values[0]), float(values[-1])
    b1 = rel * float(np.sum(np.abs(values) * probs))
    b2 = 2 * rel * sigma2
    b4 = 4 * rel * m4
    return _Target(mu, sigma2, m4, kappa, s_lo, s_hi, b1, b2, b4, probs)


def _elementwise_target(
    law: L.ElementwiseLaw,
    st: InitStats,
    p: PooledStats,
    rel: float,
    finite: bool,
    exclude_zero: bool,
) -> _Target:
    """What to check the values against: the exact 16-bit sampler's law where there is one,
    else ``law`` with allowances for the rounding band over the sample's range."""
    s_lo, s_hi = law.support
    lo, hi = (p.min, p.max) if finite else (math.nan, math.nan)
    atoms = exact_atoms(law)
    if atoms is not None:
        # A 16-bit sampler: test against the exact discrete law it samples (jinit.laws._sampled),
        # allowing each value one ulp for a compiled sweep that rounds differently.
        return _exact_target(*atoms, rel, exclude_zero)
    c = 0.0 if law.is_complex else float(law.mean)
    band = float(st.band)
    b1 = systematic_allowance(band, lo, hi, 1, c)
    b2 = systematic_allowance(band, lo, hi, 2, c)
    b4 = systematic_allowance(band, lo, hi, 4, c) if finite else math.inf
    sigma2, m4 = float(law.variance), float(law.fourth_moment)
    return _Target(law.mean, sigma2, m4, law.excess_kurtosis, s_lo, s_hi, b1, b2, b4, None)


def _mean_check(
    law: L.ElementwiseLaw,
    p: PooledStats,
    t: _Target,
    zq: Callable[[int], float],
    alpha_k: Callable[[], float],
    note: str,
) -> Check:
    """The mean: two-sided normal for real laws, a circular (modulus) bound for complex ones."""
    n, sigma = p.count, t.sigma
    if law.is_complex:
        dev = abs(complex(p.mean) - complex(t.mu))
        tol = sigma * math.sqrt(math.log(1.0 / alpha_k()) / n) + t.b1
        return Check("|mean|", dev, 0.0, tol, sigma / math.sqrt(n), dev <= tol, True, "circular")
    se = sigma / math.sqrt(n)
    tol = zq(2) * se + t.b1
    ok = within(p.mean - t.mu, -tol, tol)
    return Check("mean", float(p.mean), float(t.mu), tol, se, ok, True, note)


def _std_check(p: PooledStats, t: _Target, zq: Callable[[int], float], note: str) -> Check:
    """The std, tested on the variance about the law's mean."""
    sigma = t.sigma
    v_hat = p.variance + abs(complex(p.mean) - complex(t.mu)) ** 2
    se_v = math.sqrt(max(t.m4 - t.sigma2 * t.sigma2, 0.0) / p.count)
    tol_v = zq(2) * se_v + t.b2
    ok = within(v_hat - t.sigma2, -tol_v, tol_v)
    tol_s = math.sqrt(t.sigma2 + tol_v) - sigma if math.isfinite(tol_v) else math.inf
    se_s = se_v / (2 * sigma) if sigma > 0 else 0.0
    return Check("std", math.sqrt(v_hat), sigma, tol_s, se_s, ok, True, note)


def _kurtosis_checks(
    p: PooledStats, t: _Target, finite: bool, zq: Callable[[int], float]
) -> list[Check]:
    """The excess kurtosis, where the sample is large, finite and the law not a point mass."""
    if not (
        t.sigma2 > 0
        and p.count >= KURTOSIS_MIN_VALUES
        and finite
        and math.isfinite(p.excess_kurtosis)
    ):
        return []
    b_k = (t.b4 + 2 * (t.m4 / t.sigma2) * t.b2) / t.sigma2**2
    tol = zq(2) * p.excess_kurtosis_se + b_k
    ok = within(p.excess_kurtosis - t.kappa, -tol, tol)
    return [
        Check("excess kurtosis", p.excess_kurtosis, t.kappa, tol, p.excess_kurtosis_se, ok, True)
    ]


def _support_checks(
    law: L.ElementwiseLaw, p: PooledStats, t: _Target, dtype: np.dtype, rel: float, finite: bool
) -> list[Check]:
    """The sample's min and max within the support, widened by the rounding of the dtype; for
    an exact discrete law, also the extreme atoms reached where missing them is all but
    impossible."""
    checks = []
    tiny = float(jnp.finfo(real_dtype(dtype)).smallest_subnormal)
    s_lo, s_hi = t.s_lo, t.s_hi
    if math.isfinite(s_lo) and not (law.is_complex and s_lo == 0):
        slack = rel * abs(s_lo) + tiny
        checks.append(
            Check("min >= lower bound", p.min, s_lo, slack, math.nan, p.min >= s_lo - slack, False)
        )
    if math.isfinite(s_hi):
        slack = rel * abs(s_hi) + tiny
        checks.append(
            Check("max <= upper bound", p.max, s_hi, slack, math.nan, p.max <= s_hi + slack, False)
        )
    if t.probs is not None and finite and t.sigma2 > 0:
        # A discrete law's extreme atoms are all but certain to be drawn: missing one has
        # probability (1 - p)^N, checked only where that is below 1e-15 (treated as exact).
        for name, prob, got, want, ok_fn in (
            ("min reaches the lowest atom", t.probs[0], p.min, s_lo, lambda g, w, s: g <= w + s),
            ("max reaches the highest atom", t.probs[-1], p.max, s_hi, lambda g, w, s: g >= w - s),
        ):
            if p.count * -math.log1p(-min(float(prob), 0.5)) >= 15 * math.log(10):
                slack = rel * abs(want) + tiny
                ok = bool(ok_fn(got, want, slack))
                note = f"P(missed) = (1 - {float(prob):.3g})^N < 1e-15"
                checks.append(Check(name, got, want, slack, math.nan, ok, False, note))
    return checks


def _ks_checks(st: InitStats, p: PooledStats, alpha_k: Callable[[], float]) -> list[Check]:
    """The pooled KS on the levels, and the worst seed's KS."""
    n = p.count
    band = float(st.band)
    d_pool = p.ks_pooled
    eps = dkw_threshold(n, alpha_k())
    pooled = Check(
        "KS (pooled)",
        d_pool,
        0.0,
        eps + band,
        1.0 / math.sqrt(n),
        within(d_pool, 0.0, eps + band),
        True,
        f"√N·D = {math.sqrt(n) * d_pool:.3g}",
    )
    counts = np.asarray(st.count, np.float64)
    scaled = np.sqrt(counts) * np.asarray(st.ks_excess, np.float64)
    worst = int(np.nanargmax(scaled)) if np.any(np.isfinite(scaled)) else 0
    limit = math.sqrt(math.log(2 * st.num_seeds / alpha_k()) / 2)
    worst_seed = Check(
        "KS (worst seed)",
        float(scaled[worst]),
        0.0,
        limit,
        1.0,
        within(scaled[worst], 0.0, limit),
        True,
        f"√n·(D − δ) at seed {int(st.seeds[worst])}: D = {float(st.ks[worst]):.4g}",
    )
    return [pooled, worst_seed]


def elementwise_checks(
    law: L.ElementwiseLaw,
    st: InitStats,
    p: PooledStats,
    dtype: np.dtype,
    zq: Callable[[int], float],
    alpha_k: Callable[[], float],
    exclude_zero: bool = False,
) -> list[Check]:
    """Mean, std, kurtosis, support and KS checks for the values' element-wise law.

    ``zq(k)`` gives the two-sided normal quantile at the per-check level, ``alpha_k()`` the
    per-check level; both are evaluated after every check has been counted.
    """
    finite = math.isfinite(p.min) and math.isfinite(p.max)
    _, rel = dtype_allowance(dtype)
    t = _elementwise_target(law, st, p, rel, finite, exclude_zero)
    exact = "exact 16-bit sampler law" if t.probs is not None else ""
    checks = [_mean_check(law, p, t, zq, alpha_k, exact), _std_check(p, t, zq, exact)]
    checks += _kurtosis_checks(p, t, finite, zq)
    checks += _support_checks(law, p, t, dtype, rel, finite)
    if not t.sigma2 > 0:
        # a point mass: the mean and std checks above are already exact (zero SE, and zero
        # rounding allowance when every value is equal); the KS levels assume a continuous CDF
        return checks
    return checks + _ks_checks(st, p, alpha_k)


def _gram_tolerance(law: L.OrthogonalLaw, dtype: np.dtype) -> float:
    r""":math:`s^2 (k\,\varepsilon_w + 2\varepsilon + \varepsilon^2)`: QR in the working precision
    :math:`\varepsilon_w` (float32 for 16-bit dtypes; first-order bound :math:`k\varepsilon_w`
    with :math:`k = \max(n_r, n_c)`, Higham 2002 §19.3) plus rounding each entry to ``dtype``."""
    eps = float(jnp.finfo(real_dtype(dtype)).eps)
    eps_w = float(jnp.finfo(np.float64 if real_dtype(dtype) == np.float64 else np.float32).eps)
    k = max(law.n_rows, law.n_cols)
    return law.scale**2 * (k * eps_w + 2 * eps + eps * eps)


def orthogonal_checks(
    law: L.OrthogonalLaw, st: InitStats, p: PooledStats, dtype: np.dtype, zq
) -> list[Check]:
    checks = []
    tol = _gram_tolerance(law, dtype)
    worst = int(np.nanargmax(st.gram_error))
    checks.append(
        Check(
            "Gram = scale²·I",
            p.gram_error,
            0.0,
            tol,
            math.nan,
            within(p.gram_error, 0.0, tol),
            False,
            f"max|MᵀM − s²I| at seed {int(st.seeds[worst])}",
        )
    )
    n = p.count
    sigma2 = law.variance
    sigma = math.sqrt(sigma2)
    _, rel = dtype_allowance(dtype)
    # Entries of one Haar matrix are dependent, but Var(sum of entries) equals its value for
    # i.i.d. entries of the same variance, so the usual SE of the mean holds.
    se = sigma / math.sqrt(n)
    if law.is_complex:
        dev = abs(complex(p.mean))
        t = sigma * math.sqrt(math.log(1.0 / zq.alpha_k()) / n) + rel * sigma
        checks.append(Check("|mean|", dev, 0.0, t, se, dev <= t, True, "circular"))
    else:
        t = zq(2) * se + rel * sigma
        checks.append(Check("mean", p.mean, 0.0, t, se, within(p.mean, -t, t), True))
    # The Gram identity fixes the sum of squares: the variance is exact up to rounding.
    v_hat = p.variance + abs(complex(p.mean)) ** 2
    tol_v = sigma2 * (2 * rel + rel * rel) + tol / max(law.n_rows, law.n_cols)
    ok = within(v_hat - sigma2, -tol_v, tol_v)
    tol_s = math.sqrt(sigma2 + tol_v) - sigma
    checks.append(Check("std", math.sqrt(v_hat), sigma, tol_s, math.nan, ok, False, "exact"))
    bound = law.scale * (1 + rel) + math.sqrt(tol)
    checks.append(
        Check(
            "max |x| <= scale",
            max(abs(p.min), abs(p.max)),
            law.scale,
            bound - law.scale,
            math.nan,
            max(abs(p.min), abs(p.max)) <= bound,
            False,
        )
    )
    return checks


def _collision_bound(law: Any, st: InitStats, dtype: np.dtype) -> tuple[float, bool] | None:
    r"""``(q, per_entry)``: an upper bound ``q`` on :math:`P(x = y)` for one entry ``x`` of a draw
    and the same entry ``y`` of an independent draw, and whether the entries of one draw are
    independent (element-wise laws). None for laws whose draw does not depend on the key.

    Element-wise laws: the CDF :math:`G` of what a ``dtype`` sampler draws is within
    :math:`\delta_u` (:func:`jinit.stats._rounding.cdf_band`) of the continuous law's :math:`F`, so
    every atom of :math:`G` has mass :math:`g_a \le 2\delta_u` and
    :math:`P(x = y) = \sum_a g_a^2 \le \max_a g_a \le 2\delta_u` (with the exact atoms of a
    16-bit sampler: at most 3 times the largest atom, for one ulp of rounding either way).
    Orthogonal laws: an entry over ``scale`` is a coordinate of a uniform point on the sphere
    in dimension :math:`r = \max(n_r, n_c)` (:math:`2r` real ones for unitary matrices, whose
    real parts are compared), density :math:`c_r (1 - x^2)^{(r-3)/2}`; an atom collects the
    mass of its rounding cell (width :math:`\varepsilon |x|`) widened by the QR error
    :math:`r\varepsilon_w`: :math:`q = 2\varepsilon_w + \varepsilon \sup_x |x| f(x) +
    2 r \varepsilon_w c_r` (:math:`r \ge 3`), :math:`2\varepsilon_w + 1.1\sqrt{2(\varepsilon
    + 2r\varepsilon_w)}/\pi` (:math:`r = 2`, arcsine), :math:`1/2` (:math:`r = 1`, the signs).
    """
    if law.kind == "deterministic":
        return None
    if law.kind in ("elementwise", "sparse"):
        sparse = law.kind == "sparse"
        vlaw = law.nonzero if sparse else law
        if not vlaw.variance > 0:
            return None  # a point mass: the values do not depend on the key
        band = float(st.band)
        q = 2 * band if math.isfinite(band) else 1.0
        atoms = exact_atoms(vlaw)
        if atoms is not None:
            q = max(q, 3 * float(np.max(atoms[1])))
        q = min(q, 1.0)
        if sparse and q < 1:  # conditioned on both values being nonzero
            q = min(1.0, q / (1 - q))
        return q, True
    inner = law.inner if law.kind == "delta" else law
    r = max(inner.n_rows, inner.n_cols) * (2 if inner.is_complex else 1)
    eps = float(jnp.finfo(real_dtype(dtype)).eps)
    eps_w = float(jnp.finfo(np.float64 if real_dtype(dtype) == np.float64 else np.float32).eps)
    if r == 1:
        q = 0.5
    elif r == 2:
        q = 2 * eps_w + 1.1 * math.sqrt(2 * (eps + 2 * r * eps_w)) / math.pi
    else:
        c_r = math.exp(math.lgamma(r / 2) - math.lgamma((r - 1) / 2)) / math.sqrt(math.pi)
        h_r = c_r / math.sqrt(r - 2) * ((r - 3) / (r - 2)) ** ((r - 3) / 2)
        q = 2 * eps_w + eps * h_r + 2 * r * eps_w * c_r
    return min(q, 1.0), False


def independence_check(law: Any, st: InitStats, dtype: np.dtype, alpha_k: float) -> list[Check]:
    r"""Draws of different keys are not equal: compares the sketches (:attr:`InitStats.sketch`)
    of the disjoint seed pairs :math:`(s_{2i}, s_{2i+1})`.

    With the bound ``q`` of :func:`_collision_bound`, under independence the number of equal
    sketched values (element-wise laws; for sparse ones, among the positions nonzero in both
    draws) is stochastically below :math:`\mathrm{Binomial}(T, q)` for :math:`T` compared
    values; for orthogonal laws (dependent entries) the number of identical pairs is below
    :math:`\mathrm{Binomial}(P, q)`. The limit is the Chernoff bound of that binomial at
    ``alpha_k``, so the check is conservative. An initialiser that ignores its key gives
    :math:`T` equal values (or :math:`P` identical pairs) and fails.
    """
    bound = _collision_bound(law, st, dtype)
    if bound is None:
        return []
    q, per_entry = bound
    sk = np.asarray(st.sketch)
    pairs = sk.shape[0] // 2
    a, b = sk[0 : 2 * pairs : 2], sk[1 : 2 * pairs : 2]
    seeds = np.asarray(st.seeds)
    if per_entry:
        eq = a == b
        if law.kind == "sparse":
            both = (a != 0) & (b != 0)
            eq, trials = eq & both, int(both.sum())
        else:
            trials = int(eq.size)
        count = int(eq.sum())
        what = "sketched values equal between seeds (2i, 2i+1)"
        hits = np.flatnonzero(eq.any(axis=1)) if eq.size else np.zeros(0, int)
    else:
        same = np.all(a == b, axis=1) if a.size else np.zeros(pairs, bool)
        trials, count = pairs, int(same.sum())
        what = "identical draws among seed pairs (2i, 2i+1)"
        hits = np.flatnonzero(same)
    name = "independent keys"
    limit = binom_upper(trials, q, alpha_k) if trials else 0
    if trials == 0 or limit >= trials:
        note = (
            f"not testable: {trials} comparison(s), each equal with probability up to {q:.2g}; "
            f"pass more seeds"
        )
        return [Check(name, float(count), 0.0, float(limit), math.nan, True, False, note)]
    note = f"{what}; P(equal) ≤ {q:.2g} if independent"
    if count > limit and hits.size:
        i = int(hits[0])
        note += f"; e.g. seeds {int(seeds[2 * i])} and {int(seeds[2 * i + 1])}"
    se = math.sqrt(trials * q * (1 - q))
    return [Check(name, float(count), 0.0, float(limit), se, count <= limit, True, note)]


class Quantiles:
    """Per-check quantiles, evaluated lazily once the number of statistical checks is known."""

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.k = 1

    def alpha_k(self) -> float:
        return self.alpha / (2 * self.k)  # Bonferroni, half of alpha kept as a margin

    def __call__(self, sides: int = 2) -> float:
        return normal_isf(self.alpha_k() / sides)
