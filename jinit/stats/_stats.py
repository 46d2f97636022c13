"""Seed sweeps: statistics of an initialiser over many independent keys, in one compiled sweep.

:func:`init_stats` draws ``init(key_s, shape, dtype)`` for ``S`` keys
``key_s = jax.random.fold_in(key, s)`` and reduces every draw on device to a handful of numbers:
power sums (hence mean and central moments), extremes, the Kolmogorov–Smirnov distance to the
law's CDF, the Gram error of orthogonal laws, exact errors of deterministic ones, zero counts of
sparse ones, and counts of the probability-integral transform :math:`u = F(x)` in 512 bins for a
pooled KS statistic over all :math:`S\\,n` values. The reduction is one
``jax.jit(jax.vmap(...))`` per ``(init, shape, dtype, law, chunk)`` — traced once (see
:func:`trace_count`), then called on chunks of keys, so memory is bounded by the chunk, not by
``S`` — with the keys of a chunk sharded over the local devices. Per-seed results do not depend
on the device count or the chunk size, except for the rounding of float sums, which XLA may block
differently (at most :math:`\approx 2 n u \frac1n\\sum|x|^k` for a moment of ``n`` values, unit
roundoff :math:`u`). Every argument is checked, and the memory a call needs is estimated
(:func:`sweep_memory`), before anything is compiled.

The result is an :class:`InitStats` (a ``NamedTuple`` of per-seed host arrays);
:meth:`InitStats.pooled` pools it into a :class:`PooledStats` with standard errors.
:mod:`jinit.testing` builds calibrated assertions on top.

Low-precision allowances are in :mod:`jinit.stats._rounding`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import canonical_shape, has_law
from jinit._core._seeds import SeedPlan, check_devices

# Default sweep size: 2**18 values put a 3 % error of the std > 20 standard errors off and let
# the pooled KS test separate families of equal variance (power measured by
# benchmarks/calibration.py). At least 16 seeds, so a sign flipped in a bfloat16 orthogonal
# matrix is caught; at most 4096. A (512, 512) check stays well under 2 s on a 2-core CPU
# (benchmarks/stats_speed.py).
from jinit.stats._reduction import get_sweep, plan_for_law
from jinit.stats._results import InitStats, central_moments, describe_init
from jinit.stats._rounding import cdf_band, real_dtype
from jinit.stats._sizing import (
    check_chunk_size,
    check_memory,
    check_reference,
    check_stats_dtype,
    check_sweep_key,
    level_counts,
    plan_chunk_size,
    pooled_ks,
    probe_init,
    seed_spec,
)

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
            f"e.g. `jinit.he_normal()`; got {describe_init(init)} of type {type(init).__name__}."
            + (" Did you pass the factory without calling it?" if init is None else "")
        )


def _resolve_law(api: str, law: Any, init: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """``law``, with ``'auto'`` replaced by the initialiser's own law (None if it has none)."""
    if not isinstance(law, str):
        return law
    if law != "auto":
        raise ValueError(
            f"`{api}` needs `law` to be 'auto', None or a law from `jinit.laws`; got {law!r}."
        )
    return init.law(shape, dtype) if has_law(init) else None


def _runtime_args(
    init: Any,
    key: jax.Array,
    shape: tuple[int, ...],
    out_dtype: Any,
    plan: Any,
    law: Any,
    reference: Any,
) -> tuple[np.ndarray, dict[str, jax.Array]]:
    """The centre of the moments and the compiled sweep's runtime arguments (centre, the
    reference location/scale of the sketch, the exact value of a deterministic law)."""
    is_complex = bool(jnp.issubdtype(out_dtype, jnp.complexfloating))
    work = np.dtype(np.float64) if real_dtype(out_dtype) == np.float64 else np.dtype(np.float32)
    ctype = np.complex128 if is_complex else np.float64
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
    elif plan.values_law is not None:
        centre = plan.values_law.mean
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
    return centre, aux


def _run_blocks(
    engine: SeedPlan, sweep: Callable, key: jax.Array, idx: np.ndarray, aux: dict
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Runs the compiled sweep over every chunk of seeds: the per-seed outputs and the
    histogram of the values summed over seeds."""
    out = engine.run(
        lambda block: sweep(key, *engine.put((block.index, block.mask)), aux),
        idx.astype(np.uint32),
        summed=("hist",),
    )
    return out, out.pop("hist")


def _assemble(
    idx: np.ndarray,
    per: dict[str, np.ndarray],
    hist: np.ndarray,
    centre: np.ndarray,
    vlaw: Any,
    out_dtype: Any,
) -> InitStats:
    """The :class:`InitStats` of the per-seed outputs: per-seed central moments from the power
    sums (float64 on the host), the pooled value levels and the KS figures against ``vlaw``."""
    r = np.asarray(per["moments"], np.float64).T  # (8, S)
    r = np.concatenate([np.ones((1, r.shape[1])), r])
    if np.iscomplexobj(centre):
        d2 = np.abs(per["mean"].astype(np.complex128) - centre) ** 2
        variance, m3, m4 = np.maximum(r[2] - d2, 0.0), r[3], r[4]
    else:
        cm = central_moments(r, per["mean"].astype(np.float64) - float(centre))
        variance, m3, m4 = np.maximum(cm[2], 0.0), cm[3], cm[4]

    total = int(per["count"].astype(np.int64).sum())
    levels, le, lt = level_counts(hist)
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
    reference = check_reference(reference, api)
    law = _resolve_law(api, law, init, shape, dtype)
    out_dtype, custom_calls = probe_init(init, shape, dtype, api)
    is_complex = bool(jnp.issubdtype(out_dtype, jnp.complexfloating))
    plan = plan_for_law(law, is_complex, api)
    if custom_calls and len(devs) > 1 and all(d.platform == "cpu" for d in devs):
        # XLA:CPU can deadlock running a program with LAPACK custom calls (QR, ...) sharded
        # over several host devices; such sweeps (orthogonal laws) use one device.
        devs = devs[:1]
    chunk = plan_chunk_size(chunk_size, math.prod(shape), num_seeds, len(devs))
    check_memory(api, shape, out_dtype, num_seeds, chunk, devs, plan.kind == "free")
    idx = np.arange(spec, dtype=np.uint32) if isinstance(spec, int) else spec
    sweep = get_sweep(init, shape, out_dtype, plan, chunk, devs)
    # Runtime arguments (not baked into the compiled function).
    centre, aux = _runtime_args(init, key, shape, out_dtype, plan, law, reference)
    engine = SeedPlan.create(devs, idx.size, chunk)
    per, hist = _run_blocks(engine, sweep, key, idx, aux)
    return _assemble(idx, per, hist, centre, plan.values_law, out_dtype)
