"""Keys, seeds and sizes for :func:`init_stats`: argument checks, the default seed count, chunk
sizing against device and host memory, probing what an initialiser returns, pooled KS levels."""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import canonical_shape
from jinit._core._seeds import refuse_rbg, rounded_chunk

# Default sweep size: 2**18 values put a 3 % error of the std > 20 standard errors off and let
# the pooled KS test separate families of equal variance (power measured by
# benchmarks/calibration.py). At least 16 seeds, so a sign flipped in a bfloat16 orthogonal
# matrix is caught; at most 4096. A (512, 512) check stays well under 2 s on a 2-core CPU
# (benchmarks/stats_speed.py).
from jinit.stats._results import (
    BINS,
    CHUNK_VALUES,
    DEFAULT_TARGET_VALUES,
    DEVICE_BYTES_PER_SEED,
    DEVICE_WORDS_PER_VALUE,
    HOST_BYTES_PER_SEED,
    HOST_BYTES_PER_SEED_IN_CHUNK,
    MAX_CACHED,
    MAX_SEEDS,
    MIN_SEEDS,
    SKETCH,
    describe_init,
)
from jinit.stats._rounding import real_dtype

# ---------------------------------------------------------------------------------------------
# Keys, seeds, sizes
# ---------------------------------------------------------------------------------------------


def _is_int_scalar_array(x: Any) -> bool:
    """A 0-d numpy or jax array of an integer dtype (not a PRNG key)."""
    if not isinstance(x, (jax.Array, np.ndarray)) or x.shape != ():
        return False
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return False
    return bool(np.issubdtype(np.dtype(x.dtype), np.integer))


def check_sweep_key(key: Any, api: str) -> jax.Array:
    """A typed threefry key from ``key``: None -> ``key(0)``; an int (or a 0-d integer array) is
    a seed for ``jax.random.key``; raw ``uint32`` key data of shape ``(2,)`` is wrapped."""
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(
            f"`{api}` needs `key` to be a JAX PRNG key or an int seed; got the bool {key!r}. "
            f"Pass e.g. `key=jax.random.key(0)` or `key=0`."
        )
    if isinstance(key, (int, np.integer)) or _is_int_scalar_array(key):
        seed = int(key)
        if not -(2**63) <= seed < 2**64:
            # jax.random.key raises OverflowError for the same int
            raise OverflowError(
                f"`{api}` got the int seed `key={seed}`, which does not fit in 64 bits (jax "
                f"converts seeds to int64/uint64). Pass a seed in [-2**63, 2**64)."
            )
        return jax.random.key(seed if seed < 2**63 else seed - 2**64)
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(
            f"`{api}` needs `key` to be a JAX PRNG key or an int seed; got {key!r} of type "
            f"{type(key).__name__}. Pass e.g. `key=jax.random.key(0)`."
        )
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.dtype != np.uint32 or key.shape != (2,):
            what = (
                "a batch of raw keys"
                if key.dtype == np.uint32 and key.ndim == 2
                else "raw key data of the wrong shape"
                if key.dtype == np.uint32
                else "not a key"
            )
            raise TypeError(
                f"`{api}` needs `key` to be a single JAX PRNG key (raw threefry key data is "
                f"uint32 of shape (2,)); got an array of dtype {key.dtype} and shape "
                f"{tuple(key.shape)} ({what}). Pass e.g. `key=jax.random.key(0)`."
            )
        key = jax.random.wrap_key_data(jnp.asarray(key), impl="threefry2x32")
    if key.shape != ():
        raise TypeError(
            f"`{api}` needs one PRNG key as `key`; got an array of keys of shape {key.shape}. "
            f"The sweep derives one key per seed with `jax.random.fold_in`; pass one key, "
            f"e.g. `key=keys[0]`."
        )
    impl = str(jax.random.key_impl(key))
    refuse_rbg(api, impl, "Pass a threefry key, e.g. `key=jax.random.key(0, impl='threefry2x32')`.")
    return key


def default_seeds(shape: Sequence[int]) -> int:
    r"""The default number of seeds for ``shape``:
    :math:`S = \min(4096, \max(16, \lceil 2^{18} / n \rceil))`, ``n = prod(shape)``.

    Args:
      shape: the shape to draw (a sequence of ints, or an int for a 1-D shape).

    Examples:
      >>> from jinit.testing import default_seeds
      >>> default_seeds((512, 512)), default_seeds((64, 32)), default_seeds((4, 3))
      (16, 128, 4096)
    """
    shape = canonical_shape("jinit.testing.default_seeds", shape)
    n = max(1, math.prod(shape))
    return int(min(MAX_SEEDS, max(MIN_SEEDS, -(-DEFAULT_TARGET_VALUES // n))))


def seed_spec(seeds: Any, shape: tuple[int, ...], api: str) -> int | np.ndarray:
    """``seeds`` checked: a count (int), or distinct seed indices (uint32 array). The count is not
    expanded here, so a huge count can be refused by the memory check before any allocation."""
    if seeds is None:
        return default_seeds(shape)
    fix = "Pass a count such as `seeds=256` or distinct indices such as `seeds=[0, 1, 2]`."
    if isinstance(seeds, (bool, np.bool_)):
        raise TypeError(f"`{api}` needs `seeds` to be an int or a sequence of ints; got {seeds!r}.")
    if isinstance(seeds, (int, np.integer)) or _is_int_scalar_array(seeds):
        count = int(seeds)
        if count < 1:
            raise ValueError(f"`{api}` needs `seeds` >= 1; got {count}. {fix}")
        if count > 2**32:
            raise ValueError(
                f"`{api}` got `seeds={count}`, more than the 2**32 distinct seed indices "
                f"(`jax.random.fold_in` takes a uint32). Pass at most 2**32 seeds."
            )
        return count
    if isinstance(seeds, (str, bytes, float, complex, np.floating)) or not isinstance(
        seeds, (Sequence, np.ndarray, jax.Array, range)
    ):
        raise TypeError(
            f"`{api}` needs `seeds` to be an int (how many) or a sequence of seed indices; got "
            f"{seeds!r} of type {type(seeds).__name__}. {fix}"
        )
    try:
        idx = np.asarray(seeds)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{api}` needs `seeds` to be a sequence of ints; got {seeds!r}. {fix}"
        ) from None
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(
            f"`{api}` needs seed indices to be ints; got {_short(seeds)} of dtype {idx.dtype}. "
            f"{fix}"
        )
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError(
            f"`{api}` needs `seeds` to be a count or a non-empty 1-D sequence of seed indices; "
            f"got {_short(seeds)} (shape {idx.shape}). {fix}"
        )
    if np.any(idx < 0) or np.any(idx >= 2**32):
        bad = idx[(idx < 0) | (idx >= 2**32)]
        raise ValueError(
            f"`{api}` needs seed indices in [0, 2**32) (`jax.random.fold_in` takes a uint32); "
            f"got {_short(bad.tolist())} among `seeds`. {fix}"
        )
    uniq, counts = np.unique(idx, return_counts=True)
    if uniq.size != idx.size:
        dup = uniq[counts > 1]
        raise ValueError(
            f"`{api}` got duplicate seed indices {_short(dup.tolist())} in `seeds`: a repeated "
            f"index repeats the same draw, which the statistics would count as an independent "
            f"one (and a correct initialiser would then fail). Pass distinct indices, e.g. "
            f"`seeds=np.unique(seeds)`, or a count `seeds={idx.size}`."
        )
    return idx.astype(np.uint32)


def _short(x: Any, limit: int = 8) -> str:
    """``x`` as text, long lists cut after ``limit`` items."""
    if isinstance(x, (list, tuple)) and len(x) > limit:
        return "[" + ", ".join(repr(v) for v in x[:limit]) + f", ... ({len(x)} in all)]"
    text = repr(x)
    return text if len(text) <= 120 else text[:117] + "..."


def seed_indices(seeds: Any, shape: tuple[int, ...], api: str) -> np.ndarray:
    """``seeds`` (None, a count, or distinct indices) as a uint32 array of seed indices.

    Raises:
      TypeError: ``seeds`` is not an int or a sequence of ints.
      ValueError: a count below 1 or above 2**32, an empty or multi-dimensional sequence,
        indices outside [0, 2**32), or duplicate indices (a repeated draw is not independent).
    """
    spec = seed_spec(seeds, shape, api)
    return np.arange(spec, dtype=np.uint32) if isinstance(spec, int) else spec


def check_chunk_size(chunk_size: Any, api: str) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, (bool, np.bool_)) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(
            f"`{api}` needs `chunk_size` to be an int (seeds per compiled call) or None; got "
            f"{chunk_size!r}. Pass e.g. `chunk_size=64`."
        )
    if chunk_size < 1:
        raise ValueError(
            f"`{api}` needs `chunk_size` >= 1 (seeds per compiled call); got {chunk_size}. Pass "
            f"e.g. `chunk_size=64`, or None for the default."
        )
    return int(chunk_size)


def plan_chunk_size(chunk_size: int | None, n_values: int, n_seeds: int, n_dev: int) -> int:
    """Seeds per compiled call: a power of two up to the value budget (or ``chunk_size``), at
    most the number of seeds, rounded up to a multiple of ``n_dev`` (the seeds engine's rule)."""
    if chunk_size is None:
        budget = max(1, CHUNK_VALUES // max(n_values, 1))
        chunk = min(budget, MAX_SEEDS, 1 << max(0, (n_seeds - 1).bit_length()))
    else:
        chunk = min(chunk_size, n_seeds)  # more than the seeds only pads
    return rounded_chunk(chunk, n_dev)


def check_stats_dtype(dtype: Any, api: str) -> Any:
    if dtype is None:
        return None
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"`{api}` got `dtype={dtype!r}`, which is not a dtype. Pass a floating or complex "
            f"dtype such as `jnp.float32`, `'bfloat16'` or `jnp.complex64`."
        ) from None
    if not jnp.issubdtype(dt, jnp.inexact):
        raise TypeError(
            f"`{api}` needs a floating or complex `dtype` (initialisers draw real or complex "
            f"values); got {dt.name}. Pass e.g. `dtype=jnp.float32`."
        )
    return dtype


def check_reference(reference: Any, api: str) -> tuple[float, float] | None:
    if reference is None:
        return None
    try:
        m_ref, s_ref = (float(r) for r in reference)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{api}` needs `reference` to be a pair of floats `(m, s)`; got {reference!r}."
        ) from None
    if not (math.isfinite(m_ref) and s_ref > 0 and math.isfinite(s_ref)):
        raise ValueError(
            f"`{api}` needs `reference=(m, s)` finite with s > 0; got {reference!r}. Pass e.g. "
            f"`reference=(0.0, 1.0)`."
        )
    return m_ref, s_ref


def _gib(b: float) -> str:
    """Bytes as a short human-readable size."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{int(b)} B"


def available_memory() -> int | None:
    """Host memory available to a new allocation, in bytes: ``MemAvailable`` of
    ``/proc/meminfo`` (Linux), else free physical pages (``os.sysconf``); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _device_free(device: jax.Device) -> int | None:
    """Free memory of an accelerator (None for host devices, which share host memory)."""
    if device.platform == "cpu":
        return None
    try:
        ms = device.memory_stats() or {}
    except Exception:  # a backend without memory statistics
        return None
    if "bytes_limit" not in ms:
        return None
    return int(ms["bytes_limit"]) - int(ms.get("bytes_in_use", 0))


def sweep_memory(
    n_values: int, dtype: Any, num_seeds: int, chunk: int, pilot: bool = False
) -> tuple[int, int]:
    r"""Estimated bytes of an :func:`init_stats` call: ``(device, host)``.

    * device, per compiled call of ``chunk`` seeds:
      :math:`\mathrm{chunk}\,(n\,(b + 12\,b_w) + 8192)`: the draws (``b`` bytes per value),
      the working copies (sorted values and their integer view, :math:`F(x)`, KS deviations,
      moment columns; :math:`b_w` bytes of the working dtype, float32 or float64, per value and
      per real or imaginary part) and the per-seed outputs;
    * host: :math:`S\,(260 + m\,b_s)` kept for ``S`` seeds (per-seed statistics, the sketch of
      :math:`m = \min(n, 256)` values of :math:`b_s` bytes), plus
      :math:`\mathrm{chunk}\,(12\,264 + m\,b_s)` for the outputs of one call (level counts)
      and, without a law, a pilot draw (:math:`16 n`).

    The factor 12 is the measured XLA:CPU temporary memory (9 to 10 working words per value)
    with a margin. :func:`init_stats` refuses, before compiling, a call that needs more than
    the devices (accelerators) or the host (:func:`available_memory`) have free.

    Args:
      n_values: values per draw, ``prod(shape)``.
      dtype: the drawn dtype.
      num_seeds: ``S``.
      chunk: seeds per compiled call.
      pilot: whether a pilot draw is made (no law).

    Returns:
      ``(device_bytes, host_bytes)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit.stats._sizing import sweep_memory
      >>> dev, host = sweep_memory(512 * 512, jnp.float32, 16, 8)
      >>> dev // 2**20, host // 2**10
      (104, 123)
    """
    dt = np.dtype(jnp.dtype(dtype))
    real = real_dtype(dt)
    work = 8 if real == np.float64 else 4
    is_complex = jnp.issubdtype(dt, jnp.complexfloating)
    sketch_item = 2 * work if is_complex else work
    words = DEVICE_WORDS_PER_VALUE * (2 if is_complex else 1)
    device = chunk * (n_values * (dt.itemsize + words * work) + DEVICE_BYTES_PER_SEED)
    m = min(n_values, SKETCH)
    host = num_seeds * (HOST_BYTES_PER_SEED + m * sketch_item)
    host += chunk * (HOST_BYTES_PER_SEED_IN_CHUNK + m * sketch_item)
    if pilot:
        host += 16 * n_values
    return int(device), int(host)


def check_memory(
    api: str,
    shape: tuple[int, ...],
    dtype: Any,
    num_seeds: int,
    chunk: int,
    devs: tuple,
    pilot: bool,
) -> None:
    """Refuses, before any compile, a call whose estimated memory (:func:`sweep_memory`)
    exceeds what the accelerators or the host have free, with the fix that would make it fit."""
    n = math.prod(shape)
    device, host = sweep_memory(n, dtype, num_seeds, chunk, pilot)
    nd = len(devs)
    free = [_device_free(d) for d in devs]
    accel = all(f is not None for f in free)
    host_avail = available_memory()
    least_dev, _ = sweep_memory(n, dtype, 1, nd, pilot)  # nd seeds per call, one per device
    _, host_one = sweep_memory(n, dtype, 1, chunk, pilot)
    _, host_two = sweep_memory(n, dtype, 2, chunk, pilot)
    per_seed_host = host_two - host_one
    if accel:
        budget, shared = min(free), 0
        per_call = device // nd
        least_call = least_dev // nd
    else:  # host devices: the compiled calls use host memory too
        budget, shared = host_avail, device
        per_call, least_call = device, least_dev
    if budget is not None and per_call > budget:
        if least_call <= budget:
            fix = (
                f"Pass a smaller `chunk_size` (at {nd} seed(s) per call it needs about "
                f"{_gib(least_call)}) or a smaller shape."
            )
        else:
            fix = (
                f"Even one seed per device needs about {_gib(least_call)}: pass a smaller shape "
                f"(or run on a machine with more memory)."
            )
        where = "per device" if accel else "for each compiled call"
        raise ValueError(
            f"`{api}` would need about {_gib(per_call)} {where} ({chunk} seed(s) per call, shape "
            f"{shape}, {n:,} values each); {_gib(budget)} is free. {fix}"
        )
    if host_avail is not None and host + shared > host_avail:
        fit = max(0, (host_avail - shared - host_one) // max(per_seed_host, 1) + 1)
        raise ValueError(
            f"`{api}` would need about {_gib(host + shared)} of memory for {num_seeds:,} seeds of "
            f"shape {shape} ({_gib(host)} kept on the host, {_gib(device)} per compiled call of "
            f"{chunk} seed(s)); {_gib(host_avail)} is available. Pass fewer `seeds` (about "
            f"{fit:,} fit), or measure in several calls with disjoint seed indices."
        )


def level_counts(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Levels j/B (j = 1..B-1) and the summed counts #(u <= p_j), #(u < p_j)."""
    if hist.size == 0:
        empty = np.zeros((0,), np.int64)
        return np.zeros((0,), np.float64), empty, empty
    m = BINS - 1
    return np.arange(1, BINS) / BINS, hist[:m].astype(np.int64), hist[m:].astype(np.int64)


def pooled_ks(levels: np.ndarray, le: np.ndarray, lt: np.ndarray, total: int) -> float:
    r"""Pooled KS distance on the levels:
    :math:`\max_j \max(\#\{u \le p_j\}/N - p_j,\ p_j - \#\{u < p_j\}/N)`.

    It is :math:`\sup_t |F_N(t) - F(t)|` restricted to the quantiles :math:`F^{-1}(p_j)`, so it
    never exceeds the full KS distance and the DKW bound applies unchanged.
    """
    if levels.size == 0 or total <= 0:
        return math.nan
    return float(max(np.max(le / total - levels), np.max(levels - lt / total), 0.0))


_PROBES: collections.OrderedDict = collections.OrderedDict()


def probe_init(init: Callable[..., jax.Array], shape: tuple[int, ...], dtype: Any, api: str):
    """``(result dtype, uses custom calls)`` of ``init(key, shape, dtype)``, checking the shape
    and (when ``dtype`` is given) the dtype of what it returns.

    One abstract trace of ``init``, cached per ``(init, shape, dtype)``. A ``TypeError`` or
    ``ValueError`` raised by ``init`` itself is re-raised with the call that raised it.
    """
    want = None if dtype is None else np.dtype(jnp.dtype(dtype))
    cache_key = (init, shape, want)
    try:
        hit = _PROBES.get(cache_key)
    except TypeError:
        hit, cache_key = None, None
    call = f"{describe_init(init)}(key, {shape}, {'None' if want is None else want.name})"
    if hit is None:
        try:
            lowered = jax.jit(lambda k: init(k, shape, dtype)).lower(jax.random.key(0))
        except (TypeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise type(e)(
                f"`{api}`: the initialiser raised {type(e).__name__} when called as {call}: {first}"
            ) from e
        probe = lowered.out_info
        if not hasattr(probe, "shape") or tuple(probe.shape) != shape:
            got = (
                f"an array of shape {tuple(probe.shape)} and dtype {probe.dtype}"
                if hasattr(probe, "shape")
                else f"{type(probe).__name__} {probe!r}"
            )
            raise ValueError(
                f"`{api}`: {call} returned {got}, not an array of shape {shape}; "
                f"it is not an initialiser `init(key, shape, dtype)`."
            )
        hit = (np.dtype(probe.dtype), "custom_call" in lowered.as_text())
        if cache_key is not None:
            _PROBES[cache_key] = hit
            while len(_PROBES) > 4 * MAX_CACHED:
                _PROBES.popitem(last=False)
    if not jnp.issubdtype(hit[0], jnp.inexact):
        raise TypeError(
            f"`{api}` needs a floating or complex result; {call} returned dtype {hit[0]}."
        )
    if want is not None and hit[0] != want:
        raise TypeError(
            f"`{api}`: {call} returned dtype {hit[0].name}, not the {want.name} it was asked "
            f"for; the statistics would be those of another dtype. Fix the initialiser to honour "
            f"`dtype`, or pass `dtype={hit[0].name!r}`."
        )
    return hit


def result_dtype(init: Callable[..., jax.Array], shape: tuple[int, ...], dtype: Any, api: str):
    """The dtype ``init(key, shape, dtype)`` returns (checks the shape; cached)."""
    return probe_init(init, shape, dtype, api)[0]
