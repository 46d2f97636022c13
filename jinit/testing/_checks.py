"""The law checks behind :mod:`jinit.testing` (its docstring states every tolerance)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import canonical_shape
from jinit.laws import _laws as L
from jinit.laws._sampled import atom_moments, exact_atoms
from jinit.stats._results import InitStats, PooledStats, describe_init, pool
from jinit.stats._rounding import (
    dkw_threshold,
    dtype_allowance,
    normal_isf,
    real_dtype,
    systematic_allowance,
)
from jinit.stats._sizing import (
    check_chunk_size,
    check_memory,
    check_stats_dtype,
    check_sweep_key,
    default_seeds,
    plan_chunk_size,
    result_dtype,
    seed_spec,
)
from jinit.stats._stats import check_init, init_stats, run_init_stats

__all__ = [
    "Check",
    "InitStats",
    "LawReport",
    "PooledStats",
    "assert_follows_law",
    "assert_same_law",
    "check_law",
    "check_same_law",
    "default_seeds",
    "init_stats",
    "pool",
]

DEFAULT_ALPHA = 1e-6
# Below this many values the kurtosis SE (estimated from 6th/8th sample moments) is unreliable.
KURTOSIS_MIN_VALUES = 10_000


class Check(NamedTuple):
    """One check of a report: what was measured, what the law says, and the tolerance.

    Attributes:
      name: e.g. ``"mean"``, ``"std"``, ``"KS (pooled)"``.
      measured: the measured value.
      expected: the value under the law.
      tolerance: the largest allowed ``|measured - expected|`` (for one-sided checks, the
        allowed excess).
      se: the standard error of ``measured`` under the law (NaN for exact checks).
      passed: whether the check passed.
      statistical: whether it is one of the ``k`` checks sharing ``alpha`` (exact checks cannot
        fail by chance).
      note: details: the worst seed, a skipped check's reason, the test statistic.
    """

    name: str
    measured: float
    expected: float
    tolerance: float
    se: float
    passed: bool
    statistical: bool
    note: str = ""

    @property
    def se_off(self) -> float:
        """How many standard errors ``measured`` is from ``expected`` (NaN without an SE)."""
        dev = abs(self.measured - self.expected)
        if not math.isfinite(self.se):
            return math.nan
        if self.se == 0:
            return 0.0 if dev == 0 else math.inf
        return dev / self.se


class LawReport(NamedTuple):
    """The outcome of :func:`check_law` or :func:`check_same_law`.

    Attributes:
      title: what was compared with what.
      checks: the checks, in display order.
      alpha: the family-wise false-alarm rate.
      num_tests: ``k``, the number of statistical checks sharing ``alpha`` (each runs at
        ``alpha / (2k)``).
      seeds: the number of seeds ``S``.
      count: the number of values ``N`` (per sample).
      reproduce: how to reproduce the draws (key and seeds).
      stats: the :class:`InitStats` (a tuple of two for two samples).
    """

    title: str
    checks: list[Check]
    alpha: float
    num_tests: int
    seeds: int
    count: int
    reproduce: str
    stats: Any

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def message(self) -> str:
        """A plain-text table of every check, then how to reproduce the draws."""
        head = (
            f"{self.title}\n"
            f"  {self.seeds} seeds, {self.count:,} values; family-wise alpha = {self.alpha:g} "
            f"(Bonferroni over {self.num_tests} statistical checks with a factor-2 margin: "
            f"{self.alpha / (2 * max(self.num_tests, 1)):.3g} each)"
        )
        rows = [
            f"  {'':4} {'check':<20} {'measured':>13} {'expected':>13} {'tolerance':>12} "
            f"{'SE':>10} {'SE off':>8}  note"
        ]
        for c in self.checks:
            verdict = "ok" if c.passed else "FAIL"
            rows.append(
                f"  {verdict:<4} {c.name:<20} {_num(c.measured):>13} {_num(c.expected):>13} "
                f"{'±' + _num(c.tolerance):>12} {_num(c.se):>10} {_num(c.se_off, 3):>8}  {c.note}"
            )
        return "\n".join([head, *rows, f"  Reproduce: {self.reproduce}"])

    def __str__(self) -> str:
        return self.message()


def _num(x: float, digits: int = 6) -> str:
    if isinstance(x, complex):
        return f"{x.real:.{digits}g}{x.imag:+.{digits}g}j"
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}g}"


def _within(value: float, lo: float, hi: float) -> bool:
    """``lo <= value <= hi`` decided by ``chex.assert_scalar_in`` on host floats."""
    value, lo, hi = float(value), float(lo), float(hi)
    if math.isnan(value):
        return False
    try:
        chex.assert_scalar_in(value, lo, hi)
    except AssertionError:
        return False
    return True


def _check_alpha(alpha: Any, api: str) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise TypeError(f"`{api}` needs `alpha` to be a float in (0, 1); got {alpha!r}.")
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(
            f"`{api}` needs `alpha` in (0, 1) (the family-wise false-alarm rate); got {alpha!r}. "
            f"The default 1e-6 makes a correct initialiser fail about once in a million runs."
        )
    return alpha


def _key_text(key: jax.Array) -> str:
    data = np.asarray(jax.random.key_data(key)).ravel().tolist()
    impl = str(jax.random.key_impl(key))
    if data[:-1] == [0] * (len(data) - 1) and impl == "threefry2x32":
        return f"jax.random.key({data[-1]})"
    return f"jax.random.wrap_key_data(jnp.array({data}, jnp.uint32), impl={impl!r})"


def _seeds_text(idx: np.ndarray) -> str:
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return f"range({int(idx[0])}, {int(idx[0]) + idx.size})"
    return "[" + ", ".join(str(int(i)) for i in idx[:8]) + (", ...]" if idx.size > 8 else "]")


def _binom_upper(n: int, p: float, alpha: float) -> int:
    """Smallest k with P(Binomial(n, p) > k) <= alpha, by the Chernoff (KL) bound."""
    if p <= 0 or n <= 0:
        return 0
    if p >= 1:
        return n

    def tail(k: int) -> float:  # P(X >= k) <= exp(-n KL(k/n || p)) for k > np
        q = k / n
        if q <= p:
            return 1.0
        if q >= 1:
            return p**n
        kl = q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p))
        return math.exp(-n * kl)

    lo, hi = int(math.floor(n * p)), n
    while lo < hi:
        mid = (lo + hi) // 2
        if tail(mid + 1) <= alpha:
            hi = mid
        else:
            lo = mid + 1
    return lo


# ---------------------------------------------------------------------------------------------
# One sample against a law
# ---------------------------------------------------------------------------------------------


def _elementwise_checks(
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
    checks: list[Check] = []
    n = p.count
    mu = law.mean
    sigma2 = float(law.variance)
    m4 = float(law.fourth_moment)
    kappa = law.excess_kurtosis
    s_lo, s_hi = law.support
    finite = math.isfinite(p.min) and math.isfinite(p.max)
    lo, hi = (p.min, p.max) if finite else (math.nan, math.nan)
    atoms = exact_atoms(law)
    _, rel = dtype_allowance(dtype)
    if atoms is not None:
        # A 16-bit sampler: test against the exact discrete law it samples (jinit.laws._sampled),
        # allowing each value one ulp for a compiled sweep that rounds differently.
        values, probs = atoms
        if exclude_zero:  # the non-zero entries of a sparse law: condition on x != 0
            keep = values != 0
            values, probs = values[keep], probs[keep] / probs[keep].sum()
        mu, sigma2, m4 = atom_moments(values, probs)
        kappa = m4 / (sigma2 * sigma2) - 3.0 if sigma2 > 0 else 0.0
        s_lo, s_hi = float(values[0]), float(values[-1])
        b1 = rel * float(np.sum(np.abs(values) * probs))
        b2 = 2 * rel * sigma2
        b4 = 4 * rel * m4
    sigma = math.sqrt(max(sigma2, 0.0))
    c = 0.0 if law.is_complex else float(mu)
    band = float(st.band)
    if atoms is None:
        b1 = systematic_allowance(band, lo, hi, 1, c)
        b2 = systematic_allowance(band, lo, hi, 2, c)
        b4 = systematic_allowance(band, lo, hi, 4, c) if finite else math.inf
    exact = "exact 16-bit sampler law" if atoms is not None else ""

    # mean
    if law.is_complex:
        dev = abs(complex(p.mean) - complex(mu))
        tol = sigma * math.sqrt(math.log(1.0 / alpha_k()) / n) + b1
        checks.append(
            Check("|mean|", dev, 0.0, tol, sigma / math.sqrt(n), dev <= tol, True, "circular")
        )
    else:
        se = sigma / math.sqrt(n)
        tol = zq(2) * se + b1
        ok = _within(p.mean - mu, -tol, tol)
        checks.append(Check("mean", float(p.mean), float(mu), tol, se, ok, True, exact))

    # std, tested on the variance about the law's mean
    v_hat = p.variance + abs(complex(p.mean) - complex(mu)) ** 2
    se_v = math.sqrt(max(m4 - sigma2 * sigma2, 0.0) / n)
    tol_v = zq(2) * se_v + b2
    ok = _within(v_hat - sigma2, -tol_v, tol_v)
    tol_s = math.sqrt(sigma2 + tol_v) - sigma if math.isfinite(tol_v) else math.inf
    se_s = se_v / (2 * sigma) if sigma > 0 else 0.0
    checks.append(Check("std", math.sqrt(v_hat), sigma, tol_s, se_s, ok, True, exact))

    # excess kurtosis
    if sigma2 > 0 and n >= KURTOSIS_MIN_VALUES and finite and math.isfinite(p.excess_kurtosis):
        b_k = (b4 + 2 * (m4 / sigma2) * b2) / sigma2**2
        tol = zq(2) * p.excess_kurtosis_se + b_k
        ok = _within(p.excess_kurtosis - kappa, -tol, tol)
        checks.append(
            Check("excess kurtosis", p.excess_kurtosis, kappa, tol, p.excess_kurtosis_se, ok, True)
        )

    # support, widened by the rounding of the dtype
    tiny = float(jnp.finfo(real_dtype(dtype)).smallest_subnormal)
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
    if atoms is not None and finite and sigma2 > 0:
        # A discrete law's extreme atoms are all but certain to be drawn: missing one has
        # probability (1 - p)^N, checked only where that is below 1e-15 (treated as exact).
        for name, prob, got, want, ok_fn in (
            ("min reaches the lowest atom", probs[0], p.min, s_lo, lambda g, w, t: g <= w + t),
            ("max reaches the highest atom", probs[-1], p.max, s_hi, lambda g, w, t: g >= w - t),
        ):
            if n * -math.log1p(-min(float(prob), 0.5)) >= 15 * math.log(10):
                slack = rel * abs(want) + tiny
                ok = bool(ok_fn(got, want, slack))
                note = f"P(missed) = (1 - {float(prob):.3g})^N < 1e-15"
                checks.append(Check(name, got, want, slack, math.nan, ok, False, note))

    if not sigma2 > 0:
        # a point mass: the mean and std checks above are already exact (zero SE, and zero
        # rounding allowance when every value is equal); the KS levels assume a continuous CDF
        return checks

    # pooled KS on the levels, and the worst seed's KS
    d_pool = p.ks_pooled
    eps = dkw_threshold(n, alpha_k())
    checks.append(
        Check(
            "KS (pooled)",
            d_pool,
            0.0,
            eps + band,
            1.0 / math.sqrt(n),
            _within(d_pool, 0.0, eps + band),
            True,
            f"√N·D = {math.sqrt(n) * d_pool:.3g}",
        )
    )
    counts = np.asarray(st.count, np.float64)
    scaled = np.sqrt(counts) * np.asarray(st.ks_excess, np.float64)
    worst = int(np.nanargmax(scaled)) if np.any(np.isfinite(scaled)) else 0
    limit = math.sqrt(math.log(2 * st.num_seeds / alpha_k()) / 2)
    checks.append(
        Check(
            "KS (worst seed)",
            float(scaled[worst]),
            0.0,
            limit,
            1.0,
            _within(scaled[worst], 0.0, limit),
            True,
            f"√n·(D − δ) at seed {int(st.seeds[worst])}: D = {float(st.ks[worst]):.4g}",
        )
    )
    return checks


def _gram_tolerance(law: L.OrthogonalLaw, dtype: np.dtype) -> float:
    r""":math:`s^2 (k\,\varepsilon_w + 2\varepsilon + \varepsilon^2)`: QR in the working precision
    :math:`\varepsilon_w` (float32 for 16-bit dtypes; first-order bound :math:`k\varepsilon_w`
    with :math:`k = \max(n_r, n_c)`, Higham 2002 §19.3) plus rounding each entry to ``dtype``."""
    eps = float(jnp.finfo(real_dtype(dtype)).eps)
    eps_w = float(jnp.finfo(np.float64 if real_dtype(dtype) == np.float64 else np.float32).eps)
    k = max(law.n_rows, law.n_cols)
    return law.scale**2 * (k * eps_w + 2 * eps + eps * eps)


def _orthogonal_checks(
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
            _within(p.gram_error, 0.0, tol),
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
        checks.append(Check("mean", p.mean, 0.0, t, se, _within(p.mean, -t, t), True))
    # The Gram identity fixes the sum of squares: the variance is exact up to rounding.
    v_hat = p.variance + abs(complex(p.mean)) ** 2
    tol_v = sigma2 * (2 * rel + rel * rel) + tol / max(law.n_rows, law.n_cols)
    ok = _within(v_hat - sigma2, -tol_v, tol_v)
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


def _independence_check(law: Any, st: InitStats, dtype: np.dtype, alpha_k: float) -> list[Check]:
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
    limit = _binom_upper(trials, q, alpha_k) if trials else 0
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


class _Quantiles:
    """Per-check quantiles, evaluated lazily once the number of statistical checks is known."""

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.k = 1

    def alpha_k(self) -> float:
        return self.alpha / (2 * self.k)  # Bonferroni, half of alpha kept as a margin

    def __call__(self, sides: int = 2) -> float:
        return normal_isf(self.alpha_k() / sides)


def _law_checks(law: Any, st: InitStats, dtype: np.dtype, alpha: float, num_tests: int):
    """All checks for ``law`` at per-check level ``alpha / (2 num_tests)``."""
    p = pool(st)
    zq = _Quantiles(alpha)
    zq.k = num_tests
    checks: list[Check] = []
    # finiteness (exact)
    try:
        chex.assert_tree_all_finite((st.mean, st.min, st.max, st.moments[:, :4]))
        checks.append(Check("all finite", 1.0, 1.0, 0.0, math.nan, True, False))
    except AssertionError as e:
        checks.append(
            Check("all finite", 0.0, 1.0, 0.0, math.nan, False, False, str(e).splitlines()[0][:60])
        )
        return checks, p
    checks += _independence_check(law, st, dtype, zq.alpha_k())
    if law.kind == "deterministic":
        worst = int(np.nanargmax(st.exact_error))
        checks.append(
            Check(
                "exact value",
                p.exact_error,
                0.0,
                0.0,
                math.nan,
                p.exact_error == 0.0,
                False,
                f"max|w − value| at seed {int(st.seeds[worst])}",
            )
        )
    elif law.kind == "elementwise":
        checks += _elementwise_checks(law, st, p, dtype, zq, zq.alpha_k)
    elif law.kind == "orthogonal":
        checks += _orthogonal_checks(law, st, p, dtype, zq)
    elif law.kind == "delta":
        worst = int(np.nanargmax(st.exact_error))
        checks.append(
            Check(
                "zero off centre",
                p.exact_error,
                0.0,
                0.0,
                math.nan,
                p.exact_error == 0.0,
                False,
                f"max|w| off centre {law.centre} at seed {int(st.seeds[worst])}",
            )
        )
        checks += _orthogonal_checks(law.inner, st, p, dtype, zq)
    elif law.kind == "sparse":
        z = law.zeros_per_unit
        worst = int(np.argmin(st.zeros_min))
        checks.append(
            Check(
                "zeros per unit >= k",
                float(p.zeros_min),
                float(z),
                0.0,
                math.nan,
                p.zeros_min >= z,
                False,
                f"fewest zeros in a unit along axis {law.axis}, seed {int(st.seeds[worst])}",
            )
        )
        units = math.prod(law.shape) // law.shape[law.axis]
        excess = p.zeros_total - z * units * p.seeds
        nz = law.nonzero
        band = float(st.band) if math.isfinite(float(st.band)) else dtype_allowance(dtype)[0]
        atom = 0.0
        if not nz.variance > 0:
            atom = 1.0 if float(np.real(nz.mean)) == 0 else 0.0
        p0 = min(1.0, atom + 2 * band)
        n_nonzero = (math.prod(law.shape) - z * units) * p.seeds
        limit = _binom_upper(n_nonzero, p0, zq.alpha_k())
        checks.append(
            Check(
                "extra zeros",
                float(excess),
                0.0,
                float(limit),
                math.sqrt(n_nonzero * p0 * (1 - p0)),
                0 <= excess <= limit,
                True,
                f"nonzero draws that round to 0 (p ≤ {p0:.2g})",
            )
        )
        checks += _elementwise_checks(nz, st, p, dtype, zq, zq.alpha_k, exclude_zero=True)
    else:  # pragma: no cover - init_stats already refused it
        raise TypeError(f"`jinit.testing` does not know the law type {type(law).__name__}.")
    return checks, p


def check_law(
    init: Callable[..., jax.Array],
    shape: Sequence[int],
    *,
    law: Any = None,
    dtype: Any = None,
    seeds: int | Sequence[int] | None = None,
    key: Any = None,
    alpha: float = DEFAULT_ALPHA,
    chunk_size: int | None = None,
) -> LawReport:
    """Runs every check of :func:`assert_follows_law` and returns the report (never raises on a
    failed check).

    Args:
      init: the initialiser ``init(key, shape, dtype)``.
      shape: the shape to draw.
      law: the law to check against (default ``jinit.law(init, shape, dtype)``).
      dtype: the dtype to draw (default: the initialiser's).
      seeds: how many seeds (default :func:`default_seeds`), or seed indices.
      key: the base key (default ``jax.random.key(0)``; an int is a seed).
      alpha: the family-wise false-alarm rate, in (0, 1).
      chunk_size: seeds per compiled call (see :func:`init_stats`).

    Returns:
      A :class:`LawReport`; ``report.passed`` and ``report.message()``.

    Examples:
      >>> import jinit
      >>> from jinit.testing import check_law
      >>> report = check_law(jinit.lecun_uniform(), (64, 32))
      >>> report.passed, [c.name for c in report.checks][:3]
      (True, ['all finite', 'independent keys', 'mean'])
    """
    return _check_law(
        init,
        shape,
        law=law,
        dtype=dtype,
        seeds=seeds,
        key=key,
        alpha=alpha,
        chunk_size=chunk_size,
        api="jinit.testing.check_law",
    )


def _check_law(init, shape, *, law, dtype, seeds, key, alpha, chunk_size, api) -> LawReport:
    """:func:`check_law` with errors naming ``api`` (the public function called)."""
    check_init(init, api)
    alpha = _check_alpha(alpha, api)
    shape = canonical_shape(api, shape)
    if law is None:
        if not (hasattr(init, "law") and callable(init.law)):
            raise TypeError(
                f"`{api}` needs a law: {describe_init(init)} is not a jinit initialiser. Pass "
                f"`law=` (a law from `jinit.laws`), e.g. `law=jinit.law(jinit.he_normal(), shape)`."
            )
        if math.prod(shape) > 0:  # an empty shape is refused below, naming this function
            law = init.law(shape, dtype)
    elif isinstance(law, str):
        raise TypeError(
            f"`{api}` needs `law` to be a law from `jinit.laws` (or None for the initialiser's "
            f"own); got the string {law!r}."
        )
    st = run_init_stats(
        init,
        shape,
        seeds=seeds,
        key=key,
        dtype=dtype,
        law=law,
        chunk_size=chunk_size,
        reference=None,
        devices=None,
        api=api,
    )
    key = check_sweep_key(key, api)
    idx = np.asarray(st.seeds)
    out_dtype = result_dtype(init, shape, dtype, api)  # cached by the sweep's probe
    chex.assert_shape([st.mean, st.variance, st.min, st.max, st.ks], (idx.size,))
    # count the statistical checks first, then run them at alpha / (2k)
    probe, _ = _law_checks(law, st, out_dtype, alpha, 1)
    k = max(1, sum(c.statistical for c in probe))
    checks, p = _law_checks(law, st, out_dtype, alpha, k)
    summary = law.summary() if hasattr(law, "summary") else repr(law)
    title = f"{describe_init(init)} on shape {shape} {out_dtype.name} does not follow {summary}:"
    if all(c.passed for c in checks):
        title = f"{describe_init(init)} on shape {shape} {out_dtype.name} follows {summary}."
    reproduce = (
        f"key = {_key_text(key)}; seeds = {_seeds_text(idx)}; draw s is "
        f"init(jax.random.fold_in(key, s), {shape}, jnp.{out_dtype.name})."
    )
    return LawReport(title, checks, alpha, k, st.num_seeds, p.count, reproduce, st)


def assert_follows_law(
    init: Callable[..., jax.Array],
    shape: Sequence[int],
    *,
    law: Any = None,
    dtype: Any = None,
    seeds: int | Sequence[int] | None = None,
    key: Any = None,
    alpha: float = DEFAULT_ALPHA,
    chunk_size: int | None = None,
) -> None:
    r"""Asserts that ``init`` draws arrays consistent with ``law``.

    Draws ``init(jax.random.fold_in(key, s), shape, dtype)`` for ``S`` seeds in one compiled
    sweep and checks the pooled statistics against the law (see the module docstring for each
    test); a correct initialiser fails with probability at most ``alpha`` (family-wise,
    Bonferroni over the statistical checks). The default key is fixed, so the outcome is
    deterministic. ``S`` defaults to :math:`\max(16, \lceil 2^{18}/n\rceil)` (at most 4096),
    enough to catch a 3 % error of the std, a 3 % shift of a uniform bound, a wrong family of
    equal variance and a flipped sign of an orthogonal matrix (measured by
    ``benchmarks/calibration.py``).

    Args:
      init: the initialiser ``init(key, shape, dtype)`` (any callable; pass ``law`` if it is not
        a jinit initialiser).
      shape: the shape to draw.
      law: the law (default ``jinit.law(init, shape, dtype)``).
      dtype: the dtype to draw (default: the initialiser's).
      seeds: how many seeds (default :func:`default_seeds`), or seed indices.
      key: the base key (default ``jax.random.key(0)``; an int is a seed; rbg keys are refused).
      alpha: the family-wise false-alarm rate (default ``1e-6``).
      chunk_size: seeds per compiled call (see :func:`init_stats`).

    Raises:
      AssertionError: a check failed. The message lists every check (measured, expected,
        tolerance, standard error, how many SE off) and the key and seeds to reproduce.
      TypeError: ``init`` has no law and ``law`` was not given, or an unknown law type.
      ValueError: an rbg key, or a bad ``alpha`` or ``seeds``.

    Examples:
      >>> import jinit
      >>> from jinit.testing import assert_follows_law
      >>> assert_follows_law(jinit.orthogonal(2.0), (64, 32))
      >>> assert_follows_law(jinit.glorot_uniform(), (3, 3, 16, 32), dtype="bfloat16")
    """
    report = _check_law(
        init,
        shape,
        law=law,
        dtype=dtype,
        seeds=seeds,
        key=key,
        alpha=alpha,
        chunk_size=chunk_size,
        api="jinit.testing.assert_follows_law",
    )
    if not report.passed:
        raise AssertionError(report.message())


# ---------------------------------------------------------------------------------------------
# Two samples
# ---------------------------------------------------------------------------------------------


def check_same_law(
    init_a: Callable[..., jax.Array],
    init_b: Callable[..., jax.Array],
    shape: Sequence[int],
    *,
    dtype: Any = None,
    seeds: int | Sequence[int] | None = None,
    key: Any = None,
    alpha: float = DEFAULT_ALPHA,
    chunk_size: int | None = None,
) -> LawReport:
    r"""Runs every check of :func:`assert_same_law` and returns the report.

    ``init_a`` uses ``key_a = fold_in(key, 0)`` and ``init_b`` ``key_b = fold_in(key, 1)``
    (independent streams), each for ``S`` seeds. Checks, each at ``alpha / (2k)``:

    * mean: :math:`|\bar a - \bar b| \le z\sqrt{m_2^a/N_a + m_2^b/N_b} + b_1`;
    * std: :math:`|m_2^a - m_2^b| \le z\sqrt{(m_4^a - (m_2^a)^2)/N_a + (\ldots)_b} + b_2`;
    * excess kurtosis: difference within :math:`z` combined SEs;
    * KS (two-sample): :math:`\max_j |F^a_N - F^b_N|` at 511 common levels
      :math:`\le \sqrt{\ln(2/\alpha_k)(N_a + N_b)/(2N_aN_b)} + 2\delta` (Wei & Dudley 2012).

    Standard errors come from the data. For 16-bit dtypes :math:`\delta` and :math:`b_k` allow
    each sampler to sit anywhere in the dtype's rounding band of a common law.

    Examples:
      >>> import jax, jinit
      >>> from jinit.testing import check_same_law
      >>> check_same_law(jinit.he_uniform(), jax.nn.initializers.he_uniform(), (64, 32)).passed
      True
    """
    return _check_same_law(
        init_a,
        init_b,
        shape,
        dtype=dtype,
        seeds=seeds,
        key=key,
        alpha=alpha,
        chunk_size=chunk_size,
        api="jinit.testing.check_same_law",
    )


def _check_same_law(
    init_a, init_b, shape, *, dtype, seeds, key, alpha, chunk_size, api
) -> LawReport:
    """:func:`check_same_law` with errors naming ``api`` (the public function called)."""
    check_init(init_a, api, "init_a")
    check_init(init_b, api, "init_b")
    alpha = _check_alpha(alpha, api)
    shape = canonical_shape(api, shape)
    if math.prod(shape) == 0:
        raise ValueError(
            f"`{api}` got shape {shape} with no entries; there is nothing to compare. Pass a "
            f"shape with at least one entry."
        )
    dtype = check_stats_dtype(dtype, api)
    key = check_sweep_key(key, api)
    spec = seed_spec(seeds, shape, api)
    num_seeds = spec if isinstance(spec, int) else int(spec.size)
    chunk_size = check_chunk_size(chunk_size, api)
    dt_a = result_dtype(init_a, shape, dtype, api)
    dt_b = result_dtype(init_b, shape, dtype, api)
    if dt_a != dt_b:
        raise AssertionError(
            f"{describe_init(init_a)} and {describe_init(init_b)} return different dtypes for "
            f"shape {shape}: {dt_a.name} vs {dt_b.name}. Pass `dtype=`."
        )
    # two sweeps kept on the host, and a pilot draw, checked before any of them
    devs = tuple(jax.local_devices())
    chunk = plan_chunk_size(chunk_size, math.prod(shape), num_seeds, len(devs))
    check_memory(api, shape, dt_a, 2 * num_seeds, chunk, devs, True)
    idx = np.arange(spec, dtype=np.uint32) if isinstance(spec, int) else spec
    is_complex = bool(jnp.issubdtype(dt_a, jnp.complexfloating))
    pilot = np.asarray(init_a(jax.random.fold_in(key, 2), shape, dt_a))
    mod = np.abs(pilot.astype(np.complex128)) if is_complex else pilot.astype(np.float64)
    sd = float(mod.std())
    reference = (float(mod.mean()), sd if sd > 0 else 1.0)
    key_a, key_b = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    kw = dict(seeds=idx, dtype=dt_a, law=None, chunk_size=chunk_size, reference=reference)
    st_a = run_init_stats(init_a, shape, key=key_a, devices=None, api=api, **kw)
    st_b = run_init_stats(init_b, shape, key=key_b, devices=None, api=api, **kw)
    chex.assert_equal_shape([st_a.mean, st_b.mean])
    pa, pb = pool(st_a), pool(st_b)
    na, nb = pa.count, pb.count

    # the rounding band: each sampler within delta_u of a common law; density ~ N(m, s^2)
    delta, rel = dtype_allowance(dt_a)
    m_ref, s_ref = reference
    band = 2 * min(1.0, delta + rel * 1.1 * (0.4 * abs(m_ref) / s_ref + 0.25))
    lo, hi = min(pa.min, pb.min), max(pa.max, pb.max)
    c = 0.0 if is_complex else 0.5 * (float(np.real(pa.mean)) + float(np.real(pb.mean)))

    def bias(k: int) -> float:
        return systematic_allowance(band, lo, hi, k, c)

    def build(k_tests: int) -> list[Check]:
        ak = alpha / (2 * k_tests)
        z = normal_isf(ak / 2)
        checks: list[Check] = []
        try:
            chex.assert_tree_all_finite(
                (st_a.mean, st_a.min, st_a.max, st_b.mean, st_b.min, st_b.max)
            )
        except AssertionError as e:
            note = str(e).splitlines()[0][:60]
            return [Check("all finite", 0.0, 1.0, 0.0, math.nan, False, False, note)]
        checks.append(Check("all finite", 1.0, 1.0, 0.0, math.nan, True, False))
        se = math.sqrt(pa.variance / na + pb.variance / nb)
        dev = abs(complex(pa.mean) - complex(pb.mean))
        tol = z * se + bias(1)
        checks.append(
            Check(
                "mean (a − b)", dev, 0.0, tol, se, _within(dev, 0.0, tol), True, "|mean_a − mean_b|"
            )
        )
        se_v = math.sqrt(pa.variance_se**2 + pb.variance_se**2)
        tol_v = z * se_v + bias(2)
        ok = _within(pa.variance - pb.variance, -tol_v, tol_v)
        s_b = pb.std
        tol_s = math.sqrt(s_b**2 + tol_v) - s_b if math.isfinite(tol_v) else math.inf
        checks.append(
            Check(
                "std (a vs b)", pa.std, s_b, tol_s, se_v / (2 * s_b) if s_b > 0 else 0.0, ok, True
            )
        )
        if (
            min(na, nb) >= KURTOSIS_MIN_VALUES
            and pa.variance > 0
            and pb.variance > 0
            and math.isfinite(pa.excess_kurtosis_se + pb.excess_kurtosis_se)
        ):
            se_k = math.sqrt(pa.excess_kurtosis_se**2 + pb.excess_kurtosis_se**2)
            v = min(pa.variance, pb.variance)
            b_k = (
                bias(4) + 2 * (3 + max(pa.excess_kurtosis, pb.excess_kurtosis)) * v * bias(2)
            ) / v**2
            tol = z * se_k + b_k
            ok = _within(pa.excess_kurtosis - pb.excess_kurtosis, -tol, tol)
            checks.append(
                Check(
                    "excess kurtosis", pa.excess_kurtosis, pb.excess_kurtosis, tol, se_k, ok, True
                )
            )
        fa_le, fb_le = st_a.levels_le / na, st_b.levels_le / nb
        fa_lt, fb_lt = st_a.levels_lt / na, st_b.levels_lt / nb
        d = float(max(np.max(np.abs(fa_le - fb_le)), np.max(np.abs(fa_lt - fb_lt))))
        n_eff = na * nb / (na + nb)
        eps = dkw_threshold(n_eff, ak)
        checks.append(
            Check(
                "KS (two-sample)",
                d,
                0.0,
                eps + band,
                1.0 / math.sqrt(n_eff),
                _within(d, 0.0, eps + band),
                True,
                f"√n_eff·D = {math.sqrt(n_eff) * d:.3g}",
            )
        )
        checks.append(
            Check("min (a vs b)", pa.min, pb.min, math.nan, math.nan, True, False, "info")
        )
        checks.append(
            Check("max (a vs b)", pa.max, pb.max, math.nan, math.nan, True, False, "info")
        )
        return checks

    k = max(1, sum(c.statistical for c in build(1)))
    checks = build(k)
    verb = "follow the same law" if all(c.passed for c in checks) else "do not follow the same law"
    title = (
        f"a = {describe_init(init_a)} and b = {describe_init(init_b)} on shape {shape} "
        f"{dt_a.name} {verb}" + ("." if verb.startswith("follow") else ":")
    )
    reproduce = (
        f"key = {_key_text(key)}; a uses jax.random.fold_in(key, 0), b fold_in(key, 1); "
        f"seeds = {_seeds_text(idx)}; draw s is init(jax.random.fold_in(key_x, s), {shape}, "
        f"jnp.{dt_a.name})."
    )
    return LawReport(title, checks, alpha, k, st_a.num_seeds, na, reproduce, (st_a, st_b))


def assert_same_law(
    init_a: Callable[..., jax.Array],
    init_b: Callable[..., jax.Array],
    shape: Sequence[int],
    *,
    dtype: Any = None,
    seeds: int | Sequence[int] | None = None,
    key: Any = None,
    alpha: float = DEFAULT_ALPHA,
    chunk_size: int | None = None,
) -> None:
    """Asserts that two initialisers draw from the same distribution (two-sample tests).

    Useful to check a port (a jinit initialiser against ``jax.nn.initializers`` or a hand
    written one) without writing its law down. See :func:`check_same_law` for the checks.

    Args:
      init_a: the first initialiser.
      init_b: the second initialiser.
      shape: the shape to draw.
      dtype: the dtype to draw (default: ``init_a``'s; both must return the same dtype).
      seeds: how many seeds per initialiser (default :func:`default_seeds`), or seed indices.
      key: the base key (default ``jax.random.key(0)``).
      alpha: the family-wise false-alarm rate (default ``1e-6``).
      chunk_size: seeds per compiled call.

    Raises:
      AssertionError: a check failed (the message lists every check and how to reproduce).

    Examples:
      >>> import jax, jinit
      >>> from jinit.testing import assert_same_law
      >>> assert_same_law(jinit.glorot_normal(), jax.nn.initializers.glorot_normal(), (64, 32))
    """
    report = _check_same_law(
        init_a,
        init_b,
        shape,
        dtype=dtype,
        seeds=seeds,
        key=key,
        alpha=alpha,
        chunk_size=chunk_size,
        api="jinit.testing.assert_same_law",
    )
    if not report.passed:
        raise AssertionError(report.message())
