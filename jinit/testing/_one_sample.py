"""One sample against a law: :func:`check_law` and :func:`assert_follows_law`, which run
:func:`jinit.init_stats` and every check the law asks for, Bonferroni-corrected to ``alpha``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import numpy as np

from jinit._core._checks import canonical_shape, has_law
from jinit.stats._results import InitStats, PooledStats, describe_init, pool
from jinit.stats._rounding import (
    dtype_allowance,
)
from jinit.stats._sizing import (
    check_sweep_key,
    result_dtype,
)
from jinit.stats._stats import check_init, run_init_stats
from jinit.testing._law_kinds import (
    Quantiles,
    elementwise_checks,
    independence_check,
    orthogonal_checks,
)
from jinit.testing._report import (
    DEFAULT_ALPHA,
    Check,
    LawReport,
    binom_upper,
    check_alpha,
    key_text,
    seeds_text,
)

# ---------------------------------------------------------------------------------------------
# One sample: every check a law asks for
# ---------------------------------------------------------------------------------------------


def _finite_check(st: InitStats) -> Check:
    """Whether the means, minima, maxima and first moments are all finite (an exact check)."""
    try:
        chex.assert_tree_all_finite((st.mean, st.min, st.max, st.moments[:, :4]))
        return Check("all finite", 1.0, 1.0, 0.0, math.nan, True, False)
    except AssertionError as e:
        return Check(
            "all finite", 0.0, 1.0, 0.0, math.nan, False, False, str(e).splitlines()[0][:60]
        )


def _exact_value_check(st: InitStats, p: PooledStats, name: str, what: str) -> Check:
    """An exact check that ``st.exact_error`` is 0, noting ``what`` at the worst seed."""
    worst = int(np.nanargmax(st.exact_error))
    return Check(
        name,
        p.exact_error,
        0.0,
        0.0,
        math.nan,
        p.exact_error == 0.0,
        False,
        f"{what} at seed {int(st.seeds[worst])}",
    )


def _extra_zeros_check(
    law: Any, st: InitStats, p: PooledStats, dtype: np.dtype, alpha_k: float
) -> Check:
    """Zeros beyond the law's ``k`` per unit: nonzero draws that round to 0, at most binomial."""
    z = law.zeros_per_unit
    units = math.prod(law.shape) // law.shape[law.axis]
    excess = p.zeros_total - z * units * p.seeds
    nz = law.nonzero
    band = float(st.band) if math.isfinite(float(st.band)) else dtype_allowance(dtype)[0]
    atom = 0.0
    if not nz.variance > 0:
        atom = 1.0 if float(np.real(nz.mean)) == 0 else 0.0
    p0 = min(1.0, atom + 2 * band)
    n_nonzero = (math.prod(law.shape) - z * units) * p.seeds
    limit = binom_upper(n_nonzero, p0, alpha_k)
    return Check(
        "extra zeros",
        float(excess),
        0.0,
        float(limit),
        math.sqrt(n_nonzero * p0 * (1 - p0)),
        0 <= excess <= limit,
        True,
        f"nonzero draws that round to 0 (p ≤ {p0:.2g})",
    )


def _sparse_checks(
    law: Any, st: InitStats, p: PooledStats, dtype: np.dtype, zq: Quantiles
) -> list[Check]:
    """A sparse law: at least ``k`` zeros per unit, few extra zeros, and the nonzero values'
    element-wise law."""
    z = law.zeros_per_unit
    worst = int(np.argmin(st.zeros_min))
    zeros = Check(
        "zeros per unit >= k",
        float(p.zeros_min),
        float(z),
        0.0,
        math.nan,
        p.zeros_min >= z,
        False,
        f"fewest zeros in a unit along axis {law.axis}, seed {int(st.seeds[worst])}",
    )
    extra = _extra_zeros_check(law, st, p, dtype, zq.alpha_k())
    nonzero = elementwise_checks(law.nonzero, st, p, dtype, zq, zq.alpha_k, exclude_zero=True)
    return [zeros, extra, *nonzero]


def _law_checks(law: Any, st: InitStats, dtype: np.dtype, alpha: float, num_tests: int):
    """All checks for ``law`` at per-check level ``alpha / (2 num_tests)``."""
    p = pool(st)
    zq = Quantiles(alpha)
    zq.k = num_tests
    # finiteness (exact)
    finite = _finite_check(st)
    if not finite.passed:
        return [finite], p
    checks = [finite, *independence_check(law, st, dtype, zq.alpha_k())]
    if law.kind == "deterministic":
        checks.append(_exact_value_check(st, p, "exact value", "max|w − value|"))
    elif law.kind == "elementwise":
        checks += elementwise_checks(law, st, p, dtype, zq, zq.alpha_k)
    elif law.kind == "orthogonal":
        checks += orthogonal_checks(law, st, p, dtype, zq)
    elif law.kind == "delta":
        what = f"max|w| off centre {law.centre}"
        checks.append(_exact_value_check(st, p, "zero off centre", what))
        checks += orthogonal_checks(law.inner, st, p, dtype, zq)
    elif law.kind == "sparse":
        checks += _sparse_checks(law, st, p, dtype, zq)
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
    alpha = check_alpha(alpha, api)
    shape = canonical_shape(api, shape)
    if law is None:
        if not has_law(init):
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
        f"key = {key_text(key)}; seeds = {seeds_text(idx)}; draw s is "
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
