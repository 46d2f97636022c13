"""The law checks behind :mod:`jinit.testing` (its docstring states every tolerance): the
:class:`Check` and :class:`LawReport` results, the significance level, and the formatting and
binomial-tail helpers every check shares."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import numpy as np

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


def within(value: float, lo: float, hi: float) -> bool:
    """``lo <= value <= hi`` decided by ``chex.assert_scalar_in`` on host floats."""
    value, lo, hi = float(value), float(lo), float(hi)
    if math.isnan(value):
        return False
    try:
        chex.assert_scalar_in(value, lo, hi)
    except AssertionError:
        return False
    return True


def check_alpha(alpha: Any, api: str) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise TypeError(f"`{api}` needs `alpha` to be a float in (0, 1); got {alpha!r}.")
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(
            f"`{api}` needs `alpha` in (0, 1) (the family-wise false-alarm rate); got {alpha!r}. "
            f"The default 1e-6 makes a correct initialiser fail about once in a million runs."
        )
    return alpha


def key_text(key: jax.Array) -> str:
    data = np.asarray(jax.random.key_data(key)).ravel().tolist()
    impl = str(jax.random.key_impl(key))
    if data[:-1] == [0] * (len(data) - 1) and impl == "threefry2x32":
        return f"jax.random.key({data[-1]})"
    return f"jax.random.wrap_key_data(jnp.array({data}, jnp.uint32), impl={impl!r})"


def seeds_text(idx: np.ndarray) -> str:
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return f"range({int(idx[0])}, {int(idx[0]) + idx.size})"
    return "[" + ", ".join(str(int(i)) for i in idx[:8]) + (", ...]" if idx.size > 8 else "]")


def binom_upper(n: int, p: float, alpha: float) -> int:
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
