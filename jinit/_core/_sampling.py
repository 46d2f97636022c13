"""Sampling primitives shared by the initialiser families (jax's and torch's conventions)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import _random

_HALF = (np.dtype(jnp.bfloat16), np.dtype(jnp.float16))


def as_sampled(x: float, dtype: np.dtype) -> float:
    """``x`` as the sampler sees it: rounded to the real part of ``dtype`` (what it multiplies
    or shifts by), returned as a Python float for the law."""
    return float(np.asarray(x, dtype=np.dtype(jnp.finfo(dtype).dtype)).astype(np.float64))


def haar(key: jax.Array, n_rows: int, n_cols: int, dtype: np.dtype) -> jax.Array:
    """An ``n_rows x n_cols`` Haar matrix (orthonormal along the smaller side).

    QR has no half-precision kernel, so bfloat16/float16 sample and factorise in float32; other
    dtypes call ``jax.random.orthogonal`` exactly as ``jax.nn.initializers.orthogonal`` does.
    """
    work = np.dtype(np.float32) if dtype in _HALF else dtype
    return jax.random.orthogonal(key, n_rows, (), work, n_cols)


# the top_k keys: 30 random bits plus the bit pattern of the smallest normal float32, read as a
# float32, are finite, normal (never flushed to zero as subnormals can be) and ordered like the
# integers, so top_k on floats ranks them exactly
_KEY_SHIFT = 2
_SMALLEST_NORMAL = np.uint32(0x00800000)  # numpy: no JAX backend starts at import


def random_subset_mask(key: jax.Array, shape: tuple[int, ...], axis: int, z: int) -> jax.Array:
    r"""A boolean mask with exactly ``z`` True entries along ``axis`` in every unit (each line
    along ``axis``), the set uniformly distributed over the :math:`\binom{n}{z}` subsets,
    independently across units.

    Each entry gets 30 i.i.d. uniform random bits; the ``z`` entries with the largest keys are
    chosen (or, when ``z > n/2``, the ``n - z`` entries left out) with one ``lax.top_k`` per
    unit (keys read as ordered float32 bit patterns, so the float order is the integer order).
    When no unit has a tie at its selection boundary (the ``k``-th and ``(k+1)``-th largest
    key, ``k = min(z, n - z)``), each unit's chosen set is uniform by exchangeability, and the
    units stay independent (the event is an intersection of independent per-unit events, each
    symmetric within its unit). A boundary tie (probability about :math:`n/2^{30}` per unit)
    redraws all the keys from the next ``fold_in`` of ``key``: rejection sampling, so the law
    stays exactly uniform, as for ``torch.nn.init.sparse_`` (whose ``randperm`` per unit this
    replaces), with one ``top_k`` instead of several sorts.

    Example:
      >>> import jax
      >>> from jinit._core._sampling import random_subset_mask
      >>> m = random_subset_mask(jax.random.key(0), (4, 6), axis=1, z=2)
      >>> m.sum(axis=1).tolist()
      [2, 2, 2, 2]
    """
    n = shape[axis]
    if z <= 0:
        return jnp.zeros(shape, bool)
    if z >= n:
        return jnp.ones(shape, bool)
    last = (*shape[:axis], *shape[axis + 1 :], n)
    # select the smaller side: the z chosen entries, or the n - z others (then complemented)
    k, complement = (z, False) if z <= n - z else (n - z, True)

    def draw(attempt: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        bits = _random.bits(jax.random.fold_in(key, attempt), last, jnp.uint32)
        keys = jax.lax.bitcast_convert_type((bits >> _KEY_SHIFT) + _SMALLEST_NORMAL, jnp.float32)
        # the k+1 largest keys per unit, decreasing; the barrier keeps XLA:CPU's TopK kernel
        # (slicing its result below would otherwise turn it into a full sort, 4x slower)
        top = jax.lax.optimization_barrier(jax.lax.top_k(keys, k + 1)[0])
        threshold = top[..., k - 1 : k]
        chosen = keys >= threshold  # exactly k per unit unless the boundary is tied
        tied = jnp.any(threshold == top[..., k : k + 1])
        return (~chosen if complement else chosen), tied, attempt

    def again(state: tuple) -> jax.Array:
        return state[1]

    def redraw(state: tuple) -> tuple:
        return draw(state[2] + 1)

    mask = jax.lax.while_loop(again, redraw, draw(jnp.uint32(0)))[0]
    return jnp.moveaxis(mask, -1, axis)
