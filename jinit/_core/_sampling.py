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


# each draw of Floyd's algorithm reads the top _WORD_BITS bits of a 32-bit word (tests shrink
# it to force the rejection paths)
_WORD_BITS = 32


def _uniform_below(words: jax.Array, m: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""An exactly uniform integer in :math:`[0, m)` from each pair of random words (axis 0).

    A word :math:`w` uniform on :math:`[0, 2^B)` gives :math:`w \bmod m` exactly uniform when it
    is accepted only below :math:`2^B - (2^B \bmod m)`, the largest multiple of :math:`m`. The
    first accepted word of the pair is used; ``failed`` marks the pairs where both were
    rejected (probability below :math:`(m/2^B)^2`).
    """
    words = words >> np.uint32(32 - _WORD_BITS)
    span = np.uint32(2**_WORD_BITS - 1)  # 2^B - 1, so 2^B mod m = (span mod m + 1) mod m
    rem = (span % m + np.uint32(1)) % m
    ok = words <= span - rem
    return jnp.where(ok[0], words[0] % m, words[1] % m), ~(ok[0] | ok[1])


def _floyd(key: jax.Array, units: int, n: int, k: int) -> tuple[jax.Array, jax.Array]:
    """One attempt of Floyd's algorithm in every unit at once: ``(units, n)`` mask, failed."""
    words = _random.bits(key, (k, 2, units), jnp.uint32)
    rows = jnp.arange(units)

    def add_one(i, state):
        mask, failed = state
        j = jnp.uint32(n - k) + i.astype(jnp.uint32)  # the step's candidate range is [0, j]
        t, bad = _uniform_below(words[i], j + np.uint32(1))
        taken = mask[rows, t]
        mask = mask.at[rows, jnp.where(taken, j, t)].set(True)
        return mask, failed | jnp.any(bad)

    start = (jnp.zeros((units, n), bool), jnp.bool_(False))
    return jax.lax.fori_loop(0, k, add_one, start)


def random_subset_mask(key: jax.Array, shape: tuple[int, ...], axis: int, z: int) -> jax.Array:
    r"""A boolean mask with exactly ``z`` True entries along ``axis`` in every unit (each line
    along ``axis``), the set uniformly distributed over the :math:`\binom{n}{z}` subsets,
    independently across units.

    Floyd's algorithm (Bentley & Floyd, "A sample of brilliance", CACM 30(9), 1987) picks
    :math:`k = \min(z, n - z)` entries (the complement when :math:`z > n/2`) in :math:`k`
    steps, all units at once: at step :math:`j = n-k, \dots, n-1` draw :math:`t` uniform on
    :math:`[0, j]` and add :math:`t`, or :math:`j` if :math:`t` is already chosen. Every
    :math:`k`-subset then has probability :math:`1/\binom{n}{k}` (by induction on :math:`j`).
    Each :math:`t` is exactly uniform: 32-bit words are accepted only below the largest
    multiple of :math:`j + 1` (two words per step). If both words of any step were rejected
    (probability about :math:`(n/2^{32})^2` per step), every word is redrawn from the next
    ``fold_in`` of ``key``: rejection on an event that does not depend on the chosen set, so
    the law stays exactly uniform, as for ``torch.nn.init.sparse_`` (one ``randperm`` per
    unit). :math:`k` vectorised steps replace a sort or ``top_k`` of all :math:`n` entries.

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
    units = int(np.prod(last[:-1], dtype=np.int64))
    k, complement = (z, False) if z <= n - z else (n - z, True)

    def draw(attempt: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        mask, failed = _floyd(jax.random.fold_in(key, attempt), units, n, k)
        return mask, failed, attempt

    def again(state: tuple) -> jax.Array:
        return state[1]

    def redraw(state: tuple) -> tuple:
        return draw(state[2] + 1)

    mask = jax.lax.while_loop(again, redraw, draw(jnp.uint32(0)))[0]
    mask = ~mask if complement else mask
    return jnp.moveaxis(mask.reshape(last), -1, axis)
