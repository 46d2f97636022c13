r"""The exact law of a 16-bit sampler, by enumerating every random bit pattern it can draw.

jax draws a ``bfloat16``/``float16`` value from one random word of at most 16 bits per
entry (8 bits for bfloat16, 16 for float16: a uniform variate with 7 or 10 mantissa bits,
transformed in the dtype), so such an initialiser takes at
most :math:`2^{16}` values — in practice 128 (bfloat16) or 1024 (float16) — each with a
probability that is a multiple of :math:`2^{-16}`. Its *sampled law* is that discrete
distribution; its mean and variance differ from the continuous law's by up to a few percent of
the standard deviation (jax's bfloat16 normal has mean :math:`-0.018\sigma` and variance
:math:`0.995\sigma^2`), far more than the sampling error of a large sweep.

:func:`exact_atoms` computes it by running the initialiser itself, unchanged, with a counting
PRNG (:func:`jax.extend.random.define_prng_impl`) whose words are ``0, 1, ..., 65535`` in
order (modulo :math:`2^8` for 8-bit words), so every bit pattern is drawn equally often. This is
exact when the initialiser draws one word per entry, element-wise and in place — which is
checked: the draw must request random bits exactly once, at most 16 bits wide, for the output's
number of entries, and every value's multiplicity must be a multiple of the :math:`2^{16-p}`
words that share a uniform level. Any
sampler that draws in float32 and rounds once at the end declares it (``rounds_float32_draw``):
its law is the continuous law rounded to the nearest 16-bit value, computed from the CDF at the
midpoints between representable values. Every initialiser draws the float8/float6/float4 types
that way (:func:`jinit._core._checks.round_narrow`), so their law is always the rounded one. Any
other sampler gets ``None``, and the statistics fall back to the continuous law with its
rounding band.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import define_prng_impl

__all__ = ["exact_atoms"]

_WORDS = 1 << 16
_calls: list[tuple[int, tuple[int, ...]]] = []  # random_bits requests seen while tracing


def _seed(seed: jax.Array) -> jax.Array:
    return jnp.stack([jnp.asarray(seed, jnp.uint32), jnp.uint32(0)])


def _split(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jnp.broadcast_to(key, (*shape, 2))


def _fold_in(key: jax.Array, data: Any) -> jax.Array:
    return key


def _random_bits(key: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    _calls.append((bit_width, tuple(shape)))
    n = math.prod(shape)
    words = (jnp.arange(n, dtype=jnp.uint32) + key[0]) & jnp.uint32(_WORDS - 1)
    if bit_width > 16:  # not enumerable: any bits will do, the result is discarded
        words = words.astype(jnp.uint64 if bit_width == 64 else jnp.uint32) << (bit_width - 16)
        return words.reshape(shape)
    dtype = jnp.uint16 if bit_width == 16 else jnp.uint8
    return words.astype(dtype).reshape(shape)


_COUNTER = define_prng_impl(
    key_shape=(2,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="jinit_counter",
)


@functools.lru_cache(maxsize=128)
def _atoms(
    init: Any, shape: tuple[int, ...], dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray] | None:
    n = math.prod(shape)
    calls = -(-_WORDS // n)
    offsets = jnp.arange(calls, dtype=jnp.uint32) * jnp.uint32(n % _WORDS if n < _WORDS else 0)

    def draw(offset):
        key = jax.random.wrap_key_data(jnp.stack([offset, jnp.uint32(0)]), impl=_COUNTER)
        return init(key, shape, dtype).reshape(-1)

    del _calls[:]
    try:
        out = jax.jit(jax.vmap(draw))(offsets)
    except Exception:  # noqa: BLE001 - a sampler the counting PRNG cannot drive
        return None
    seen = list(_calls)
    if len(seen) != 1 or seen[0][0] > 16 or math.prod(seen[0][1]) != n:
        return None
    flat = np.asarray(out.reshape(-1)[:_WORDS].astype(jnp.float32), np.float64)
    if not np.all(np.isfinite(flat)):
        return None
    values, counts = np.unique(flat, return_counts=True)
    share = 1 << (16 - (jnp.finfo(dtype).nmant))
    if np.any(counts % share):
        return None  # the words were not used one per entry in place
    return values, counts / _WORDS


@functools.lru_cache(maxsize=128)
def _rounded_atoms(law: Any, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The continuous ``law`` rounded to the nearest value of a 16-bit or narrower ``dtype``:
    each representable value :math:`v_k` gets :math:`F(m_{k+1}) - F(m_k)`, with :math:`m_k`
    the midpoints between neighbouring values (ties have probability 0). The end values take
    the tails beyond them (a narrow draw saturates at ``±finfo(dtype).max``,
    :func:`jinit._core._checks.round_narrow`)."""
    grid = _grid(np.dtype(dtype))
    mids = np.concatenate([[-np.inf], 0.5 * (grid[1:] + grid[:-1]), [np.inf]])
    cdf = np.asarray(jax.jit(law.cdf)(jnp.asarray(mids[1:-1], jnp.float32)), np.float64)
    cdf = np.concatenate([[0.0], np.clip(cdf, 0.0, 1.0), [1.0]])
    probs = np.diff(cdf)
    keep = probs > 0
    return grid[keep], probs[keep] / probs[keep].sum()


def _grid(dtype: np.dtype) -> np.ndarray:
    """Every finite value of a float dtype of at most 16 bits, sorted, ±0 merged (float64)."""
    bits = np.arange(1 << (8 * dtype.itemsize), dtype=np.uint32)
    words = bits.astype(np.uint16 if dtype.itemsize == 2 else np.uint8)
    with np.errstate(all="ignore"):
        values = words.view(dtype).astype(np.float64)
    return np.unique(values[np.isfinite(values)])


def _rounds_float32(init: Any, dtype: np.dtype) -> bool:
    """Whether ``init`` draws ``dtype`` in float32 and rounds once (always for narrow floats;
    an initialiser says so with ``rounds_float32_draw``, a bool or a function of the dtype)."""
    if jnp.finfo(dtype).bits < 16:
        return True
    flag = getattr(init, "rounds_float32_draw", False)
    return bool(flag(dtype) if callable(flag) else flag)


def exact_atoms(law: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The atoms and probabilities of what ``law``'s 16-bit initialiser actually samples.

    Args:
      law: a law from :func:`jinit.law` (it records the initialiser and shape that made it).

    Returns:
      ``(values, probabilities)`` as float64 arrays (sorted values, probabilities summing to 1),
      or ``None`` when the law is not a real element-wise law sampled in a 16-bit dtype by a
      sampler that draws one 16-bit word per entry (or rounds a float32 draw), or in a float8,
      float6 or float4 dtype (always a rounded float32 draw).

    Examples:
      >>> import jinit, jax.numpy as jnp
      >>> from jinit.laws._sampled import exact_atoms
      >>> values, probs = exact_atoms(jinit.law(jinit.he_normal(), (256, 256), jnp.bfloat16))
      >>> len(values), float(probs.sum())
      (128, 1.0)
      >>> exact_atoms(jinit.law(jinit.he_normal(), (256, 256))) is None  # float32: continuous
      True
      >>> values, probs = exact_atoms(jinit.law(jinit.he_normal(), (64, 64), jnp.float8_e4m3fn))
      >>> bool(abs(float((values**2 * probs).sum()) ** 0.5 - (2 / 64) ** 0.5) < 0.01)
      True
    """
    sampler = getattr(law, "sampler", None)
    if sampler is None:
        return None
    init, shape = sampler
    if _rounds_float32(init, np.dtype(law.dtype)):
        # drawn in float32 from the continuous law, then rounded once to the narrow dtype
        return _rounded_atoms(dataclasses.replace(law, sampler=None), np.dtype(law.dtype))
    try:
        return _atoms(init, tuple(shape), np.dtype(law.dtype))
    except TypeError:  # an unhashable initialiser
        return _atoms.__wrapped__(init, tuple(shape), np.dtype(law.dtype))


def atom_moments(values: np.ndarray, probs: np.ndarray) -> tuple[float, float, float]:
    """Mean, variance and fourth central moment of a discrete law."""
    mean = float(np.sum(values * probs))
    d = values - mean
    return mean, float(np.sum(d * d * probs)), float(np.sum(d**4 * probs))
