"""Sampling primitives shared by the initialiser families (jax's and torch's conventions)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

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
