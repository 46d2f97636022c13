"""Sampling primitives shared by the initialiser families (jax's and torch's conventions)."""

from __future__ import annotations

import math

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


def haar_reflectors(key: jax.Array, n_rows: int, n_cols: int, dtype: np.dtype) -> jax.Array:
    r"""An ``n_rows x n_cols`` Haar matrix (orthonormal along the smaller side) built from its
    Householder reflectors directly: the law of :func:`haar`, about half its work, other bits.

    QR of an :math:`m \times k` Gaussian matrix (:math:`m \ge k`) reduces column :math:`j`
    below the diagonal with a reflector made from that column *after* the first :math:`j`
    reflections. Those reflections are orthogonal and depend on the other columns only, so the
    reduced column is again :math:`N(0, I_{m-j})`, independent of the past (Stewart 1980).
    Here each :math:`x_j` is drawn as such (column :math:`j` of one Gaussian draw, from the
    diagonal down), its reflector built as LAPACK's ``larfg`` builds it,

    .. math::
        \beta_j = -\operatorname{sign}(x_{j,0})\,\lVert x_j\rVert,\quad
        \tau_j = (\beta_j - x_{j,0})/\beta_j,\quad
        v_j = (1,\ x_{j,1:}/(x_{j,0} - \beta_j)),

    and :math:`Q = H_1 \cdots H_k\,\operatorname{diag}(\operatorname{sign}\beta_j)` formed
    in one blocked product (LAPACK ``orgqr``): exactly the sign-corrected Q of the QR of a
    Gaussian matrix (Mezzadri 2007), without factorising one. Half precisions work in float32.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> q = haar_reflectors(jax.random.key(0), 6, 4, jnp.float32)
      >>> bool(jnp.allclose(q.T @ q, jnp.eye(4), atol=1e-5))
      True

    References:
      G. W. Stewart, "The efficient generation of random orthogonal matrices with an
      application to condition estimators", SIAM J. Numer. Anal. 17(3), 1980.
    """
    work = np.dtype(np.float32) if dtype in _HALF else np.dtype(dtype)
    m, k = max(n_rows, n_cols), min(n_rows, n_cols)
    g = _random.normal(key, (m, k), work)
    rows, cols = jnp.arange(m)[:, None], jnp.arange(k)[None, :]
    below = rows > cols
    alpha = jnp.diagonal(g)
    tail = jnp.sqrt(_column_sums(jnp.where(below, g * g, 0)))
    beta = -jnp.copysign(jnp.hypot(alpha, tail), alpha)
    den = alpha - beta  # = x0 + sign(x0)|x|: no cancellation; 0 only for an all-zero column
    ok = den != 0
    tau = jnp.where(ok, (beta - alpha) / jnp.where(ok, beta, 1), 0).astype(work)
    # times a reciprocal, not over a broadcast divisor: XLA may rewrite the latter into
    # this form in one program and not in another (vmapped), which changes the bits
    inv = jnp.where(ok, 1 / jnp.where(ok, den, 1), 0)
    v = jnp.where(below, g * inv, 0) + (rows == cols).astype(work)
    q = jax.lax.linalg.householder_product(v, tau)
    q = q * jnp.where(beta < 0, -1, 1).astype(work)
    return q if n_rows >= n_cols else q.T


def _column_sums(x: jax.Array) -> jax.Array:
    """Sums over axis 0 in one fixed order (blocks of about sqrt(rows) rows added in turn, then
    the rows of the total), so the bits do not depend on batching: a reduction is vectorised
    differently under ``vmap``, element-wise adds in a loop are not. sqrt(rows) · 2 steps."""
    m, k = x.shape
    b = max(1, math.isqrt(m))
    nb = -(-m // b)
    x = jnp.pad(x, ((0, nb * b - m), (0, 0))).reshape(nb, b, k)
    acc = jax.lax.fori_loop(0, nb, lambda i, a: a + x[i], jnp.zeros((b, k), x.dtype))
    return jax.lax.fori_loop(0, b, lambda i, s: s + acc[i], jnp.zeros((k,), x.dtype))


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
