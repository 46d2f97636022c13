"""Scaled uniform orthogonal (DKS, Martens et al. 2021): Haar orthogonal (unitary for complex
dtypes) dense kernels and delta-orthogonal conv kernels, laws
:class:`~jinit.laws.OrthogonalLaw` / :class:`~jinit.laws.DeltaOrthogonalLaw`.

Layouts are Flax's: dense kernels ``(in, out)``, conv kernels ``(*spatial, in, out)``.
"""

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
from jinit.initializers._deterministic import conv_centre
from jinit.laws import _laws as laws

# ---------------------------------------------------------------------------------------------
# scaled uniform orthogonal (DKS)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class ScaledUniformOrthogonal(Initializer):
    """Haar orthogonal times ``scale·max(√(out/in), 1)``; see :func:`scaled_uniform_orthogonal`."""

    scale: float = 1.0
    axis: int = -1
    delta: bool = True
    dtype: np.dtype | None = None

    api: ClassVar[str] = "scaled_uniform_orthogonal"
    family: ClassVar[str] = "orthogonal"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " An orthogonal matrix needs two axes; use `normal` or `variance_scaling` for 1-D."

    def _is_delta(self, shape) -> bool:
        return self.delta and len(shape) > 2

    def _check_shape(self, shape):
        normalize_axis(self.api, "axis", self.axis, len(shape), shape)
        if self._is_delta(shape) and any(k % 2 == 0 for k in shape[:-2]):
            raise ValueError(
                f"`{self.api}` with `delta=True` needs odd spatial sizes, so the kernel has a "
                f"centre; got shape {shape}. Use odd kernel sizes or pass `delta=False`."
            )

    def _dims(self, shape) -> tuple[int, int]:
        """(in, out): the matrix the rescaling refers to."""
        if self._is_delta(shape):
            return shape[-2], shape[-1]
        n_out = shape[self.axis]
        return math.prod(shape) // n_out, n_out

    def effective_scale(self, shape) -> float:
        r""":math:`\mathrm{scale}\cdot\max(\sqrt{\mathrm{out}/\mathrm{in}}, 1)` for ``shape``."""
        shape, _ = self._check_call(shape, None)
        return self._scale(shape)

    def _scale(self, shape) -> float:
        n_in, n_out = self._dims(shape)
        return self.scale * max(math.sqrt(n_out / n_in), 1.0)

    def _sample(self, key, shape, dtype):
        s = self._scale(shape)
        if self._is_delta(shape):
            q = haar(key, shape[-2], shape[-1], dtype)
            m = (jnp.array(s, q.dtype) * q).astype(dtype)
            return jnp.zeros(shape, dtype).at[conv_centre(shape)].set(m)
        ax = self.axis % len(shape)
        n_cols = shape[ax]
        q = haar(key, math.prod(shape) // n_cols, n_cols, dtype)
        q = jnp.reshape(q, tuple(np.delete(shape, ax)) + (n_cols,))
        q = jnp.moveaxis(q, -1, ax)
        return (jnp.array(s, q.dtype) * q).astype(dtype)

    def _law(self, shape, dtype):
        s = self._scale(shape)
        cplx = bool(jnp.issubdtype(dtype, jnp.complexfloating))
        if self._is_delta(shape):
            inner = laws.OrthogonalLaw(shape[-2:], s, 1, cplx, dtype=dtype)
            return laws.DeltaOrthogonalLaw(shape, conv_centre(shape), inner, dtype=dtype)
        return laws.OrthogonalLaw(shape, s, self.axis % len(shape), cplx, dtype=dtype)

    def describe(self) -> str:
        where = "at the spatial centre (delta)" if self.delta else f"over axis {self.axis}"
        return f"{self.scale:g}·max(√(out/in), 1) × Haar orthogonal {where}"


@factory
def scaled_uniform_orthogonal(
    scale: float = 1.0, axis: int = -1, delta: bool = True, dtype: DTypeLike | None = None
) -> ScaledUniformOrthogonal:
    r"""Builds the scaled uniform orthogonal (SUO) initializer of Deep Kernel Shaping.

    The kernel, viewed as a matrix :math:`M` of ``in = prod(shape) / shape[axis]`` rows by
    ``out = shape[axis]`` columns, is a Haar-distributed orthogonal matrix (orthonormal along
    its smaller side, as :func:`jinit.orthogonal`) times

    .. math::
        s = \mathrm{scale}\cdot\max\Bigl(\sqrt{\mathrm{out}/\mathrm{in}},\ 1\Bigr),

    so that with zero biases the layer preserves the mean squared activation
    :math:`q = \lVert x\rVert^2/\mathrm{in}`: widening (:math:`M M^\top = (\mathrm{out}/\mathrm{in})
    I`) exactly, narrowing in expectation over directions. With ``delta=True`` and a conv kernel
    ``(*spatial, in, out)`` (rank > 2) the ``(in, out)`` matrix sits at the spatial centre and
    every other tap is zero (a "Delta initialisation"); the spatial sizes must then be odd and
    ``axis`` must be -1. Rank-2 kernels ignore ``delta``. Same law as DeepMind's
    ``dks.jax.parameter_sampling_functions.scaled_uniform_orthogonal`` (different random bits);
    bfloat16/float16 are sampled in float32 and cast, complex dtypes give Haar unitary matrices.

    Args:
      scale: extra multiplier on top of the SUO rescaling (finite, >= 0); leave 1 for DKS/TAT.
      axis: the output axis (int).
      delta: Delta initialisation for conv kernels (centre tap only).
      dtype: the initializer's default dtype.

    Returns:
      An initializer with law :class:`~jinit.laws.OrthogonalLaw` (scale :math:`s`) or, for conv
      kernels with ``delta=True``, :class:`~jinit.laws.DeltaOrthogonalLaw`.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> w = jinit.scaled_uniform_orthogonal()(jax.random.key(0), (16, 64))
      >>> bool(jnp.allclose(w @ w.T, 4 * jnp.eye(16), atol=1e-4))
      True

    References:
      Martens, Ballard, Desjardins, Swirszcz, Dalibard, Sohl-Dickstein & Schoenholz, "Rapid
      training of deep neural networks without skip connections or normalization layers using
      Deep Kernel Shaping", 2021 (arXiv:2110.01765).
    """
    api = "scaled_uniform_orthogonal"
    if not isinstance(delta, (bool, np.bool_)):
        raise TypeError(f"`{api}` needs `delta` to be a bool; got {delta!r}.")
    axis = check_int(api, "axis", axis)
    if delta and axis != -1:
        raise ValueError(
            f"`{api}` with `delta=True` needs `axis=-1` (conv kernels are (*spatial, in, out)); "
            f"got axis={axis}. Pass `delta=False` to use another output axis."
        )
    return ScaledUniformOrthogonal(
        check_real(api, "scale", scale, nonneg=True),
        axis,
        bool(delta),
        check_dtype_arg(api, dtype, allow_complex=True),
    )
