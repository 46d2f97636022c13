"""Structured initialisers: orthogonal and delta-orthogonal (jax-exact), and their laws."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from jinit._core._checks import DTypeLike, check_dtype_arg, check_int, check_real, normalize_axis
from jinit._core._factory import factory
from jinit._core._sampling import haar
from jinit.initializers._base import Initializer
from jinit.laws import _laws as laws

_HALF = (np.dtype(jnp.bfloat16), np.dtype(jnp.float16))


@dataclasses.dataclass(frozen=True, repr=False)
class Orthogonal(Initializer):
    """``scale`` times a Haar orthogonal matrix; see :func:`orthogonal`."""

    scale: float = 1.0
    column_axis: int = -1
    dtype: np.dtype | None = None

    api: ClassVar[str] = "orthogonal"
    family: ClassVar[str] = "orthogonal"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " An orthogonal matrix needs two axes; use `normal` or `variance_scaling` for 1-D."

    def _check_shape(self, shape):
        normalize_axis(self.api, "column_axis", self.column_axis, len(shape), shape)

    def _sample(self, key, shape, dtype):
        ax = self.column_axis
        n_cols = shape[ax]
        n_rows = math.prod(shape) // n_cols
        q = haar(key, n_rows, n_cols, dtype)
        q = jnp.reshape(q, tuple(np.delete(shape, ax)) + (n_cols,))
        q = jnp.moveaxis(q, -1, ax)
        return (jnp.array(self.scale, q.dtype) * q).astype(dtype)

    def _law(self, shape, dtype):
        ax = normalize_axis(self.api, "column_axis", self.column_axis, len(shape), shape)
        return laws.OrthogonalLaw(
            shape,
            self.scale,
            ax,
            bool(jnp.issubdtype(dtype, jnp.complexfloating)),
            dtype=dtype,
        )

    def describe(self) -> str:
        return f"{self.scale:g} × Haar orthogonal (rest × column_axis), Gram = {self.scale:g}²·I"


@factory
def orthogonal(
    scale: float = 1.0, column_axis: int = -1, dtype: DTypeLike | None = None
) -> Orthogonal:
    r"""Builds an initializer of uniformly (Haar) distributed orthogonal matrices.

    The shape is viewed as a matrix of ``prod(shape) / shape[column_axis]`` rows by
    ``shape[column_axis]`` columns; rows or columns, whichever side is smaller, are orthonormal,
    then everything is multiplied by ``scale`` (a plain multiplier; jax's docstring calls it an
    upper bound, which it is not). Sampling is QR of a Gaussian matrix with the sign fix
    :math:`Q \leftarrow Q\,\mathrm{sign}(\mathrm{diag}\,R)` (Mezzadri 2007), through
    ``jax.random.orthogonal``: bit-identical to ``jax.nn.initializers.orthogonal`` for
    float32/float64. Unlike jax, bfloat16 and float16 work (sampled in float32, then cast) and
    complex dtypes give Haar unitary matrices.

    Args:
      scale: the multiplier (finite, >= 0).
      column_axis: the axis holding the columns.
      dtype: the initializer's default dtype.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> w = jinit.orthogonal(2.0)(jax.random.key(0), (5, 3))
      >>> bool(jnp.allclose(w.T @ w, 4 * jnp.eye(3), atol=1e-5))
      True

    References:
      Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
      linear neural networks", 2014. Mezzadri, "How to generate random matrices from the
      classical compact groups", 2007.
    """
    api = "orthogonal"
    return Orthogonal(
        check_real(api, "scale", scale, nonneg=True),
        check_int(api, "column_axis", column_axis),
        check_dtype_arg(api, dtype, allow_complex=True),
    )


@dataclasses.dataclass(frozen=True, repr=False)
class DeltaOrthogonal(Initializer):
    """An orthogonal (in, out) matrix at the spatial centre of a conv kernel; zeros elsewhere."""

    scale: float = 1.0
    column_axis: int = -1
    dtype: np.dtype | None = None

    api: ClassVar[str] = "delta_orthogonal"
    family: ClassVar[str] = "orthogonal"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 3

    def _rank_hint(self) -> str:
        return " It is for 1-D, 2-D or 3-D conv kernels in (*spatial, in, out) layout."

    def _check_shape(self, shape):
        if len(shape) > 5:
            raise ValueError(
                f"`{self.api}` needs a 3-D, 4-D or 5-D conv kernel (*spatial, in, out); got "
                f"shape {shape} of rank {len(shape)}."
            )
        if shape[-1] < shape[-2]:
            raise ValueError(
                f"`{self.api}` needs in <= out channels (shape[-2] <= shape[-1]) so the centre "
                f"matrix can have orthonormal rows; got shape {shape}. Use a wider output or "
                f"`orthogonal` on a flattened kernel."
            )
        normalize_axis(self.api, "column_axis", self.column_axis, 2, shape[-2:])

    def centre(self, shape) -> tuple[int, ...]:
        """Spatial index of the orthogonal slice: ``(k - 1) // 2`` per axis (lower middle for
        even k, as jax and TF; torch's ``dirac_`` uses ``k // 2``)."""
        return tuple((k - 1) // 2 for k in shape[:-2])

    def _inner(self) -> Orthogonal:
        return Orthogonal(self.scale, self.column_axis, self.dtype)

    def _sample(self, key, shape, dtype):
        matrix = self._inner()(key, shape[-2:], dtype)
        return jnp.zeros(shape, dtype=dtype).at[self.centre(shape)].set(matrix)

    def _law(self, shape, dtype):
        return laws.DeltaOrthogonalLaw(
            shape, self.centre(shape), self._inner().law(shape[-2:], dtype), dtype=dtype
        )

    def describe(self) -> str:
        return f"zeros; spatial centre = {self.scale:g} × Haar orthogonal (in ≤ out)"


@factory
def delta_orthogonal(
    scale: float = 1.0, column_axis: int = -1, dtype: DTypeLike | None = None
) -> DeltaOrthogonal:
    r"""Builds a delta-orthogonal initializer for conv kernels (Xiao et al. 2018).

    The kernel (layout ``(*spatial, in, out)``, rank 3, 4 or 5, in <= out) is zero except at the
    spatial centre ``(k - 1) // 2``, which holds ``orthogonal(scale, column_axis)`` of shape
    (in, out). With circular padding the convolution is then an exact isometry (times scale).
    Bit-identical to ``jax.nn.initializers.delta_orthogonal`` for float32/float64; also works
    in bfloat16/float16.

    Args:
      scale: the multiplier (finite, >= 0).
      column_axis: the column axis of the (in, out) centre matrix.
      dtype: the initializer's default dtype.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.delta_orthogonal()(jax.random.key(0), (3, 3, 8, 16))
      >>> float(abs(w[0, 0]).max()), w[1, 1].shape
      (0.0, (8, 16))

    References:
      Xiao et al., "Dynamical Isometry and a Mean Field Theory of CNNs: How to Train
      10,000-Layer Vanilla Convolutional Neural Networks", ICML 2018.
    """
    api = "delta_orthogonal"
    return DeltaOrthogonal(
        check_real(api, "scale", scale, nonneg=True),
        check_int(api, "column_axis", column_axis),
        check_dtype_arg(api, dtype, allow_complex=True),
    )
