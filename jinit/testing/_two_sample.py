"""Two samples against each other: :func:`check_same_law` and :func:`assert_same_law`, for two
initialisers that should follow one law (a port, a refactor, another backend)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import canonical_shape
from jinit.stats._results import InitStats, PooledStats, describe_init, pool
from jinit.stats._rounding import (
    dkw_threshold,
    dtype_allowance,
    normal_isf,
    systematic_allowance,
)
from jinit.stats._sizing import (
    check_chunk_size,
    check_memory,
    check_stats_dtype,
    check_sweep_key,
    plan_chunk_size,
    result_dtype,
    seed_spec,
)
from jinit.stats._stats import check_init, run_init_stats
from jinit.testing._report import (
    DEFAULT_ALPHA,
    KURTOSIS_MIN_VALUES,
    Check,
    LawReport,
    check_alpha,
    key_text,
    seeds_text,
    within,
)

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


def _checked_args(
    init_a: Callable[..., jax.Array],
    init_b: Callable[..., jax.Array],
    shape: Sequence[int],
    dtype: Any,
    seeds: Any,
    key: Any,
    alpha: Any,
    chunk_size: Any,
    api: str,
) -> tuple[float, tuple[int, ...], Any, jax.Array, int | np.ndarray, int | None]:
    """``(alpha, shape, dtype, key, seed spec, chunk_size)`` checked, errors naming ``api``."""
    check_init(init_a, api, "init_a")
    check_init(init_b, api, "init_b")
    alpha = check_alpha(alpha, api)
    shape = canonical_shape(api, shape)
    if math.prod(shape) == 0:
        raise ValueError(
            f"`{api}` got shape {shape} with no entries; there is nothing to compare. Pass a "
            f"shape with at least one entry."
        )
    dtype = check_stats_dtype(dtype, api)
    key = check_sweep_key(key, api)
    spec = seed_spec(seeds, shape, api)
    chunk_size = check_chunk_size(chunk_size, api)
    return alpha, shape, dtype, key, spec, chunk_size


def _common_dtype(
    init_a: Callable[..., jax.Array],
    init_b: Callable[..., jax.Array],
    shape: tuple[int, ...],
    dtype: Any,
    api: str,
) -> np.dtype:
    """The dtype both initialisers return for ``shape``; an AssertionError if they differ."""
    dt_a = result_dtype(init_a, shape, dtype, api)
    dt_b = result_dtype(init_b, shape, dtype, api)
    if dt_a != dt_b:
        raise AssertionError(
            f"{describe_init(init_a)} and {describe_init(init_b)} return different dtypes for "
            f"shape {shape}: {dt_a.name} vs {dt_b.name}. Pass `dtype=`."
        )
    return dt_a


def _pilot_reference(
    init: Callable[..., jax.Array],
    key: jax.Array,
    shape: tuple[int, ...],
    dt: np.dtype,
    is_complex: bool,
) -> tuple[float, float]:
    """``(mean, std)`` of one pilot draw (of its modulus if complex) with ``fold_in(key, 2)``."""
    pilot = np.asarray(init(jax.random.fold_in(key, 2), shape, dt))
    mod = np.abs(pilot.astype(np.complex128)) if is_complex else pilot.astype(np.float64)
    sd = float(mod.std())
    return (float(mod.mean()), sd if sd > 0 else 1.0)


def _two_sweeps(
    init_a: Callable[..., jax.Array],
    init_b: Callable[..., jax.Array],
    shape: tuple[int, ...],
    dt: np.dtype,
    key: jax.Array,
    spec: int | np.ndarray,
    chunk_size: int | None,
    is_complex: bool,
    api: str,
) -> tuple[InitStats, InitStats, np.ndarray, tuple[float, float]]:
    """``(stats_a, stats_b, seed indices, pilot reference)``: ``init_a`` swept with
    ``fold_in(key, 0)``, ``init_b`` with ``fold_in(key, 1)``, memory checked first."""
    # two sweeps kept on the host, and a pilot draw, checked before any of them
    num_seeds = spec if isinstance(spec, int) else int(spec.size)
    devs = tuple(jax.local_devices())
    chunk = plan_chunk_size(chunk_size, math.prod(shape), num_seeds, len(devs))
    check_memory(api, shape, dt, 2 * num_seeds, chunk, devs, True)
    idx = np.arange(spec, dtype=np.uint32) if isinstance(spec, int) else spec
    reference = _pilot_reference(init_a, key, shape, dt, is_complex)
    key_a, key_b = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    kw = dict(seeds=idx, dtype=dt, law=None, chunk_size=chunk_size, reference=reference)
    st_a = run_init_stats(init_a, shape, key=key_a, devices=None, api=api, **kw)
    st_b = run_init_stats(init_b, shape, key=key_b, devices=None, api=api, **kw)
    chex.assert_equal_shape([st_a.mean, st_b.mean])
    return st_a, st_b, idx, reference


def _rounding_band(dt: np.dtype, reference: tuple[float, float]) -> float:
    """The KS allowance for ``dt``'s rounding: each sampler within ``delta_u`` of a common law."""
    # the rounding band: each sampler within delta_u of a common law; density ~ N(m, s^2)
    delta, rel = dtype_allowance(dt)
    m_ref, s_ref = reference
    return 2 * min(1.0, delta + rel * 1.1 * (0.4 * abs(m_ref) / s_ref + 0.25))


def _bias_allowance(
    band: float, pa: PooledStats, pb: PooledStats, is_complex: bool
) -> Callable[[int], float]:
    """``bias(k)``: the rounding allowance of the ``k``-th moment over both samples' range."""
    lo, hi = min(pa.min, pb.min), max(pa.max, pb.max)
    c = 0.0 if is_complex else 0.5 * (float(np.real(pa.mean)) + float(np.real(pb.mean)))

    def bias(k: int) -> float:
        return systematic_allowance(band, lo, hi, k, c)

    return bias


def _all_finite(st_a: InitStats, st_b: InitStats) -> Check:
    """Whether both samples' means, minima and maxima are finite (an exact check)."""
    try:
        chex.assert_tree_all_finite((st_a.mean, st_a.min, st_a.max, st_b.mean, st_b.min, st_b.max))
    except AssertionError as e:
        note = str(e).splitlines()[0][:60]
        return Check("all finite", 0.0, 1.0, 0.0, math.nan, False, False, note)
    return Check("all finite", 1.0, 1.0, 0.0, math.nan, True, False)


def _mean_std_checks(
    pa: PooledStats, pb: PooledStats, z: float, bias: Callable[[int], float]
) -> list[Check]:
    """The mean difference and the std (variance difference) checks."""
    se = math.sqrt(pa.variance / pa.count + pb.variance / pb.count)
    dev = abs(complex(pa.mean) - complex(pb.mean))
    tol = z * se + bias(1)
    mean = Check(
        "mean (a − b)", dev, 0.0, tol, se, within(dev, 0.0, tol), True, "|mean_a − mean_b|"
    )
    se_v = math.sqrt(pa.variance_se**2 + pb.variance_se**2)
    tol_v = z * se_v + bias(2)
    ok = within(pa.variance - pb.variance, -tol_v, tol_v)
    s_b = pb.std
    tol_s = math.sqrt(s_b**2 + tol_v) - s_b if math.isfinite(tol_v) else math.inf
    std = Check("std (a vs b)", pa.std, s_b, tol_s, se_v / (2 * s_b) if s_b > 0 else 0.0, ok, True)
    return [mean, std]


def _kurtosis_checks(
    pa: PooledStats, pb: PooledStats, z: float, bias: Callable[[int], float]
) -> list[Check]:
    """The excess kurtosis difference, where both samples are large enough and not constant."""
    if not (
        min(pa.count, pb.count) >= KURTOSIS_MIN_VALUES
        and pa.variance > 0
        and pb.variance > 0
        and math.isfinite(pa.excess_kurtosis_se + pb.excess_kurtosis_se)
    ):
        return []
    se_k = math.sqrt(pa.excess_kurtosis_se**2 + pb.excess_kurtosis_se**2)
    v = min(pa.variance, pb.variance)
    b_k = (bias(4) + 2 * (3 + max(pa.excess_kurtosis, pb.excess_kurtosis)) * v * bias(2)) / v**2
    tol = z * se_k + b_k
    ok = within(pa.excess_kurtosis - pb.excess_kurtosis, -tol, tol)
    return [Check("excess kurtosis", pa.excess_kurtosis, pb.excess_kurtosis, tol, se_k, ok, True)]


def _ks_two_sample(
    st_a: InitStats, st_b: InitStats, na: int, nb: int, ak: float, band: float
) -> Check:
    """The two-sample KS distance at the common levels, against DKW at ``ak`` plus ``band``."""
    fa_le, fb_le = st_a.levels_le / na, st_b.levels_le / nb
    fa_lt, fb_lt = st_a.levels_lt / na, st_b.levels_lt / nb
    d = float(max(np.max(np.abs(fa_le - fb_le)), np.max(np.abs(fa_lt - fb_lt))))
    n_eff = na * nb / (na + nb)
    eps = dkw_threshold(n_eff, ak)
    return Check(
        "KS (two-sample)",
        d,
        0.0,
        eps + band,
        1.0 / math.sqrt(n_eff),
        within(d, 0.0, eps + band),
        True,
        f"√n_eff·D = {math.sqrt(n_eff) * d:.3g}",
    )


def _same_law_checks(
    st_a: InitStats,
    st_b: InitStats,
    pa: PooledStats,
    pb: PooledStats,
    alpha: float,
    k_tests: int,
    band: float,
    bias: Callable[[int], float],
) -> list[Check]:
    """Every two-sample check, each statistical one at ``alpha / (2 k_tests)``."""
    ak = alpha / (2 * k_tests)
    z = normal_isf(ak / 2)
    finite = _all_finite(st_a, st_b)
    if not finite.passed:
        return [finite]
    checks = [finite, *_mean_std_checks(pa, pb, z, bias), *_kurtosis_checks(pa, pb, z, bias)]
    checks.append(_ks_two_sample(st_a, st_b, pa.count, pb.count, ak, band))
    checks.append(Check("min (a vs b)", pa.min, pb.min, math.nan, math.nan, True, False, "info"))
    checks.append(Check("max (a vs b)", pa.max, pb.max, math.nan, math.nan, True, False, "info"))
    return checks


def _check_same_law(
    init_a, init_b, shape, *, dtype, seeds, key, alpha, chunk_size, api
) -> LawReport:
    """:func:`check_same_law` with errors naming ``api`` (the public function called)."""
    alpha, shape, dtype, key, spec, chunk_size = _checked_args(
        init_a, init_b, shape, dtype, seeds, key, alpha, chunk_size, api
    )
    dt_a = _common_dtype(init_a, init_b, shape, dtype, api)
    is_complex = bool(jnp.issubdtype(dt_a, jnp.complexfloating))
    st_a, st_b, idx, reference = _two_sweeps(
        init_a, init_b, shape, dt_a, key, spec, chunk_size, is_complex, api
    )
    pa, pb = pool(st_a), pool(st_b)
    band = _rounding_band(dt_a, reference)
    bias = _bias_allowance(band, pa, pb, is_complex)
    probe = _same_law_checks(st_a, st_b, pa, pb, alpha, 1, band, bias)
    k = max(1, sum(c.statistical for c in probe))
    checks = _same_law_checks(st_a, st_b, pa, pb, alpha, k, band, bias)
    verb = "follow the same law" if all(c.passed for c in checks) else "do not follow the same law"
    title = (
        f"a = {describe_init(init_a)} and b = {describe_init(init_b)} on shape {shape} "
        f"{dt_a.name} {verb}" + ("." if verb.startswith("follow") else ":")
    )
    reproduce = (
        f"key = {key_text(key)}; a uses jax.random.fold_in(key, 0), b fold_in(key, 1); "
        f"seeds = {seeds_text(idx)}; draw s is init(jax.random.fold_in(key_x, s), {shape}, "
        f"jnp.{dt_a.name})."
    )
    return LawReport(title, checks, alpha, k, st_a.num_seeds, pa.count, reproduce, (st_a, st_b))


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
