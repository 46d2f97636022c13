"""The per-seed reduction of :func:`init_stats`: what is computed for each law kind (a plan), the
one ``jit(vmap)`` that computes it on a chunk of keys, and its compile cache and trace counts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

# Default sweep size: 2**18 values put a 3 % error of the std > 20 standard errors off and let
# the pooled KS test separate families of equal variance (power measured by
# benchmarks/calibration.py). At least 16 seeds, so a sign flipped in a bfloat16 orthogonal
# matrix is caught; at most 4096. A (512, 512) check stays well under 2 s on a 2-core CPU
# (benchmarks/stats_speed.py).
from jinit._core._seeds import CompiledCache
from jinit.stats._results import BINS, MAX_CACHED, SKETCH, TRACES
from jinit.stats._rounding import real_dtype

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


def plan_for_law(law: Any, is_complex: bool, api: str) -> _Plan:
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
    x, a, extra_cols = _centred_columns(v, centre, work)
    n = x.shape[0]
    out, count, k = _power_sums(x, a, extra_cols, mask, centre, work)
    nan = jnp.asarray(jnp.nan, work)
    out["ks"] = nan
    if cdf is not None:  # sorted: extremes and the per-seed KS distance
        u, valid = _sorted_extremes_and_ks(out, x, mask, count, k, cdf, work, atoms)
    else:
        ext = jnp.stack([x, -x], axis=-1)
        if mask is not None:
            ext = jnp.where(mask[:, None], ext, -jnp.inf)
        ext = jnp.max(ext, axis=0)
        out["min"], out["max"] = -ext[1], ext[0]
        u = ndtr((x - reference[0].astype(work)) / reference[1].astype(work)) if binned else None
        valid = mask
    if binned and cdf is not None:
        out["hist"] = _sorted_level_counts(u, work)
    elif binned:
        out["hist"] = _unsorted_level_counts(u, valid, n)
    else:
        out["hist"] = jnp.zeros((0,), jnp.int32)
    return out


def _centred_columns(
    v: jax.Array, centre: jax.Array, work: Any
) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
    """``(x, a, extra)``: values (moduli if complex), distances to ``centre``, real/imag parts."""
    if jnp.iscomplexobj(v):
        v = v.astype(jnp.result_type(work, jnp.complex64))
        x = jnp.abs(v).astype(work)  # moduli: extremes, KS
        a = jnp.abs(v - centre.astype(v.dtype)).astype(work)  # |z - c|: moments
        extra_cols = [jnp.real(v).astype(work), jnp.imag(v).astype(work)]
    else:
        x = v.astype(work)
        a = x - centre.astype(work)
        extra_cols = []
    return x, a, extra_cols


def _power_sums(
    x: jax.Array,
    a: jax.Array,
    extra_cols: list[jax.Array],
    mask: jax.Array | None,
    centre: jax.Array,
    work: Any,
) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
    """``(out, count, k)``: count, moments 1..8 about ``centre`` and mean; ``k = max(count, 1)``."""
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
    return out, count, k


def _sorted_extremes_and_ks(
    out: dict[str, jax.Array],
    x: jax.Array,
    mask: jax.Array | None,
    count: jax.Array,
    k: jax.Array,
    cdf: Callable[[jax.Array], jax.Array],
    work: Any,
    atoms: bool,
) -> tuple[jax.Array, jax.Array | None]:
    """Sets ``min``, ``max`` and ``ks`` of ``out`` from sorted ``x``; returns ``(u, valid)``."""
    n = x.shape[0]
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
    return u, valid


def _sorted_level_counts(u: jax.Array, work: Any) -> jax.Array:
    """Level counts ``[#(u <= p_j), #(u < p_j)]`` of a sorted ``u``, by binary search."""
    # u is sorted: #(u <= p) and #(u < p) = #(u <= the float below p) by binary search.
    p = jnp.arange(1, BINS, dtype=work) / BINS
    below = jnp.nextafter(p, jnp.asarray(-jnp.inf, work))
    return jnp.searchsorted(u, jnp.concatenate([p, below]), side="right").astype(jnp.int32)


def _unsorted_level_counts(u: jax.Array, valid: jax.Array | None, n: int) -> jax.Array:
    """Level counts ``[#(u <= p_j), #(u < p_j)]`` of an unsorted ``u`` (where ``valid``)."""
    # #(u < j/B) = #(floor(B u) < j), #(u <= j/B) = #(ceil(B u) <= j); B u is exact.
    bu = jnp.nan_to_num(u, nan=1.0) * BINS
    idx = jnp.concatenate([jnp.floor(bu), jnp.ceil(bu) + (BINS + 1)]).astype(jnp.int32)
    ones = jnp.ones((n,), jnp.int32) if valid is None else valid.astype(jnp.int32)
    hist = jnp.zeros((2 * (BINS + 1),), jnp.int32).at[idx].add(jnp.tile(ones, 2))
    lt = jnp.cumsum(hist[: BINS + 1])[: BINS - 1]
    le = jnp.cumsum(hist[BINS + 1 :])[1:BINS]
    return jnp.concatenate([le, lt])


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
        TRACES[cache_key] += 1  # a Python side effect: runs once per trace, not per call
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, seeds)
        # Every output is per seed: a reduction over seeds would need a cross-device collective,
        # which can deadlock XLA:CPU when there are more devices than cores.
        del valid
        return jax.vmap(per_seed, in_axes=(0, None))(keys, aux)

    return jax.jit(sweep)


_SWEEPS = CompiledCache(MAX_CACHED)


def get_sweep(init, shape, dtype, plan: _Plan, chunk: int, devices: tuple):
    """The compiled sweep from the engine's cache, keyed by everything that shapes the trace."""
    cache_key = (init, shape, dtype, plan, chunk, devices)
    try:
        hash(cache_key)
    except TypeError:  # an unhashable initialiser: compile without caching
        return _make_sweep(init, shape, dtype, plan, ("uncached", id(init), shape, dtype))
    return _SWEEPS.get(cache_key, lambda: _make_sweep(init, shape, dtype, plan, cache_key))


def trace_count(init: Any = None) -> int:
    """How many times sweep functions were traced: in total, or for ``init`` only.

    A second :func:`init_stats` call with the same initialiser, shape, dtype and chunk size
    reuses the compiled sweep, so this does not grow.

    Examples:
      >>> import jinit
      >>> from jinit.stats._reduction import trace_count
      >>> from jinit.stats._stats import init_stats
      >>> init = jinit.normal(0.5)
      >>> _ = init_stats(init, (8, 8), seeds=16)
      >>> _ = init_stats(init, (8, 8), seeds=16, key=1)
      >>> trace_count(init)
      1
    """
    if init is None:
        return sum(TRACES.values())
    total = 0
    for k, v in TRACES.items():
        try:
            if k[0] is init or k[0] == init:
                total += v
        except Exception:  # exotic __eq__
            continue
    return total
