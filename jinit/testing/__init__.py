r"""Calibrated chex assertions that an initialiser produces the distribution it claims.

:func:`assert_follows_law` draws an initialiser for many independent keys (one compiled
``jax.jit(jax.vmap(...))`` sweep, :func:`init_stats`) and checks the pooled statistics against
the initialiser's exact law (:func:`jinit.law`): mean, standard deviation, excess kurtosis,
support, a pooled and a per-seed Kolmogorov–Smirnov test for element-wise laws; the Gram identity
for orthogonal ones; exact equality for deterministic ones; exact zero counts for sparse ones.
:func:`assert_same_law` is the two-sample version (two initialisers, no law needed).

Every tolerance comes from the law (or, for two samples, from the data), with a family-wise
false-alarm rate ``alpha``: each of the ``k`` statistical checks runs at level
:math:`\alpha_k = \alpha / (2k)` — Bonferroni, with half of ``alpha`` kept as a margin for the
error of the normal approximation in the far tails — so a correct initialiser fails with
probability at most ``alpha``: ``1e-6`` by default, with a fixed default key, so a test suite is
deterministic and not flaky. Exact checks (support, Gram identity, exact values, zero counts)
cannot fail by chance and do not share ``alpha``. The false-alarm rate and the power are
measured, not assumed, by ``benchmarks/calibration.py``.

* mean: :math:`|\bar x - \mu| \le z\,\sigma/\sqrt N + b_1` with :math:`z = \Phi^{-1}(1 -
  \alpha_k/2)` (complex, circular: :math:`|\bar z| \le \sigma\sqrt{\ln(1/\alpha_k)/N} + b_1`).
* std: :math:`|\hat v - \sigma^2| \le z\sqrt{(\mu_4 - \sigma^4)/N} + b_2`, with
  :math:`\hat v = \frac1N\sum|x - \mu|^2` and the law's fourth central moment :math:`\mu_4`.
* excess kurtosis: :math:`|\hat\kappa - \kappa| \le z\,\widehat{SE} + b_\kappa` (delta-method
  SE from the sample's 6th and 8th moments; only with :math:`N \ge 10^4`).
* support: every value within the closed support, widened by the dtype's rounding; for the
  exact law of a 16-bit sampler (below) also that the lowest and highest atoms were drawn,
  where missing one has probability below :math:`10^{-15}`.
* KS (pooled): :math:`D \le \sqrt{\ln(2/\alpha_k)/(2N)} + \delta_u` on the 511 levels
  :math:`F^{-1}(j/512)` (Massart's DKW bound, valid at every :math:`N`).
* KS (worst seed): :math:`\max_s \sqrt{n}\,(D_s - \delta_u)_+ \le \sqrt{\ln(2S/\alpha_k)/2}`.
* independent keys: draws of different keys differ. The values at 256 fixed positions of the
  draws of seeds :math:`(s_{2i}, s_{2i+1})` are compared; independent draws of a law whose
  sampled CDF is within :math:`\delta_u` of a continuous one have equal values with probability
  at most :math:`q = 2\delta_u` (no atom is heavier), so the count of equal values must stay
  below the Chernoff bound of :math:`\mathrm{Binomial}(T, q)` at :math:`\alpha_k` (orthogonal
  laws: identical draws among the pairs, with the sphere-coordinate bound of
  :func:`_collision_bound`). An initialiser that ignores its key fails; deterministic laws
  (their draw does not depend on the key) are exempt.

Low precision. A bfloat16/float16 sampler draws one 8- or 16-bit random word per entry, so it
takes only 128 (bfloat16) or 1024 (float16) values, with a mean and variance that differ from the
continuous law's by up to 2 % of :math:`\sigma` and 0.7 % (jax's bfloat16 normal: mean
:math:`-0.018\sigma`, variance :math:`0.993\sigma^2`). When the law comes from a jinit
initialiser whose sampler draws one such word per entry, the mean, std, kurtosis and support
checks use the *exact* discrete law it samples, enumerated over all :math:`2^{16}` words
(:mod:`jinit.laws._sampled`), with :math:`b_k` allowing each value one ulp (a compiled sweep may
round differently): a 3 % error of the std or of a uniform bound is caught in bfloat16 too.
Otherwise (a user law, a sampler that rounds float32 draws) :math:`b_k` bound the rounding bias
that the CDF band allows. The KS checks compare with the continuous law and allow
:math:`\delta_u = 2\varepsilon + \varepsilon\sup|t|f(t)`, the distance between the CDF of what a
16-bit sampler can produce and the law's CDF; for float32 both are
below :math:`10^{-6}`.

Examples:
  >>> import jinit
  >>> from jinit.testing import assert_follows_law
  >>> assert_follows_law(jinit.he_normal(), (64, 32))            # passes: returns None
  >>> try:
  ...     assert_follows_law(jinit.he_normal(), (64, 32), law=jinit.laws.Normal(0.18))
  ... except AssertionError as e:
  ...     print(str(e).splitlines()[0])
  jinit.he_normal() on shape (64, 32) float32 does not follow N(0, 0.18^2):
"""

from jinit.stats._results import DEFAULT_TARGET_VALUES as DEFAULT_TARGET_VALUES
from jinit.stats._results import MAX_SEEDS as MAX_SEEDS
from jinit.stats._results import MIN_SEEDS as MIN_SEEDS
from jinit.stats._results import InitStats as InitStats
from jinit.stats._results import PooledStats as PooledStats
from jinit.stats._results import pool as pool
from jinit.stats._sizing import default_seeds as default_seeds
from jinit.stats._stats import init_stats as init_stats
from jinit.sweeps._assertions import assert_matches_theory as assert_matches_theory
from jinit.sweeps._assertions import assert_stable_propagation as assert_stable_propagation
from jinit.testing._one_sample import assert_follows_law as assert_follows_law
from jinit.testing._one_sample import check_law as check_law
from jinit.testing._report import DEFAULT_ALPHA as DEFAULT_ALPHA
from jinit.testing._report import KURTOSIS_MIN_VALUES as KURTOSIS_MIN_VALUES
from jinit.testing._report import Check as Check
from jinit.testing._report import LawReport as LawReport
from jinit.testing._two_sample import assert_same_law as assert_same_law
from jinit.testing._two_sample import check_same_law as check_same_law

__all__ = [
    "Check",
    "InitStats",
    "LawReport",
    "PooledStats",
    "assert_follows_law",
    "assert_matches_theory",
    "assert_same_law",
    "assert_stable_propagation",
    "check_law",
    "check_same_law",
    "default_seeds",
    "init_stats",
    "pool",
]

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit.testing")
