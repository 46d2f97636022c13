"""The sparse initialiser (Martens 2010, and torch's fractional variant) with its exact law
:class:`~jinit.laws.SparseLaw`: a fixed number of zeros per unit at uniformly random positions,
the rest normal (circular complex normals for complex dtypes).

Layouts are Flax's: dense kernels ``(in, out)``, conv kernels ``(*spatial, in, out)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import _random
from jinit._core._checks import DTypeLike, check_dtype_arg, check_int, check_real, normalize_axis
from jinit._core._factory import factory
from jinit._core._sampling import as_sampled, random_subset_mask
from jinit.initializers._base import Initializer
from jinit.initializers._basic import normal
from jinit.initializers._deterministic import rounded_scalar
from jinit.laws import _laws as laws

# ---------------------------------------------------------------------------------------------
# sparse
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class Sparse(Initializer):
    """Exactly k non-zero N(0, stddev²) weights per unit; see :func:`sparse`."""

    nonzeros: int | None = None
    sparsity: float | None = None
    stddev: float = 1.0
    in_axis: int = -2
    dtype: np.dtype | None = None

    api: ClassVar[str] = "sparse"
    family: ClassVar[str] = "sparse"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " It is for dense kernels (in, out)."

    def _check_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(
                f"`{self.api}` needs a dense kernel of rank 2 (in, out); got shape {shape} of "
                f"rank {len(shape)}. Reshape a conv kernel to (prod(spatial)·in, out) first."
            )
        ax = normalize_axis(self.api, "in_axis", self.in_axis, 2, shape)
        n = shape[ax]
        if self.nonzeros is not None and math.prod(shape) and self.nonzeros > n:
            raise ValueError(
                f"`{self.api}` was built with `nonzeros={self.nonzeros}` but shape {shape} has "
                f"only {n} weights per unit along in_axis={self.in_axis}. Pass "
                f"`nonzeros` <= {n}, or `sparsity=` for a fraction."
            )

    def zeros_per_unit(self, n: int) -> int:
        """The exact number of zeros in each unit of fan ``n``."""
        if self.nonzeros is not None:
            return n - self.nonzeros
        # torch's arithmetic, float rounding included (0.07 * 100 = 7.000000000000001 -> 8 zeros).
        return math.ceil(self.sparsity * n)

    def _sample(self, key, shape, dtype):
        ax = self.in_axis % 2
        n = shape[ax]
        z = self.zeros_per_unit(n)
        k_values, k_positions = jax.random.split(key)
        w = _random.normal(k_values, shape, dtype) * jnp.asarray(rounded_scalar(self.stddev, dtype))
        if z == 0:
            return w
        # a uniformly random z-subset of each unit's entries (Floyd's algorithm, all units at once)
        zeroed = random_subset_mask(k_positions, shape, ax, z)
        return jnp.where(zeroed, jnp.zeros((), dtype), w)

    def _law(self, shape, dtype):
        ax = self.in_axis % 2
        s = as_sampled(self.stddev, dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            nonzero = laws.ComplexNormal(s, dtype=dtype)
        else:
            nonzero = laws.Normal(s, dtype=dtype)
            if np.dtype(dtype).itemsize == 2:
                # the values are jinit.normal(stddev)'s, masked: let the statistics enumerate
                # the exact 16-bit law of that sampler (jinit.laws._sampled)
                nonzero = dataclasses.replace(nonzero, sampler=(normal(self.stddev), shape))
        return laws.SparseLaw(shape, ax, self.zeros_per_unit(shape[ax]), nonzero, dtype=dtype)

    def describe(self) -> str:
        k = (
            f"{self.nonzeros} non-zeros"
            if self.nonzeros is not None
            else f"ceil({self.sparsity:g}·n) zeros"
        )
        return f"{k} per unit, N(0, {self.stddev:g}²) non-zeros"


@factory
def sparse(
    *,
    nonzeros: int | None = None,
    sparsity: float | None = None,
    stddev: float = 1.0,
    in_axis: int = -2,
    dtype: DTypeLike | None = None,
) -> Sparse:
    r"""Builds a sparse initializer: each unit has an exact number of non-zero weights.

    A dense kernel (rank 2) is split into units along ``in_axis``: with the default ``-2`` and
    Flax's ``(in, out)`` layout each output column is a unit and its ``n = in`` incoming weights
    are its fan. Give exactly one of:

    * ``nonzeros=k`` (Martens 2010): each unit gets exactly :math:`k` non-zero incoming weights,
      :math:`n - k` zeros (the paper uses :math:`k = 15` and unit-variance weights);
    * ``sparsity=s`` (torch's ``sparse_``): each unit gets exactly
      :math:`\lceil s\,n \rceil` zeros, computed in floating point as torch does (so
      ``sparsity=0.07`` with ``n = 100`` gives 8 zeros, since ``0.07 * 100 = 7.000000000000001``).

    The zero positions are a uniformly random subset of each unit, independently across units;
    the other entries are i.i.d. :math:`\mathcal N(0, \mathrm{stddev}^2)` (circular complex
    normal for complex dtypes). So each entry is 0 with probability :math:`z/n` and
    :math:`\mathrm{Var}\,W = (1 - z/n)\,\mathrm{stddev}^2`.
    (In float16 a non-zero draw below half the smallest subnormal, :math:`2^{-25}`, rounds to
    0, so with a small ``stddev`` a huge float16 kernel may show a few extra zeros.)

    To reproduce ``torch.nn.init.sparse_(linear.weight, s, std)`` in Flax layout pass
    ``sparsity=s, stddev=std, in_axis=-1``: torch counts zeros down each column of the
    ``(out, in)`` weight, i.e. along the *output* axis, and its default ``std`` is 0.01.

    Args:
      nonzeros: the number of non-zero weights per unit (int >= 1; Martens' k).
      sparsity: the fraction of zeros per unit, in [0, 1] (torch's variant).
      stddev: the standard deviation of the non-zero weights (finite, >= 0).
      in_axis: the axis a unit's weights lie along (the fan axis): -2 (default) or -1.
      dtype: the initializer's default dtype.

    Returns:
      An initializer with law :class:`~jinit.laws.SparseLaw` (exact zero count per unit).

    Raises:
      ValueError: both or neither of ``nonzeros`` and ``sparsity`` given, or values out of range
        (at build time); ``nonzeros`` larger than the fan of the shape (at call time).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.sparse(nonzeros=15)(jax.random.key(0), (100, 8))
      >>> (w != 0).sum(axis=0).tolist()
      [15, 15, 15, 15, 15, 15, 15, 15]

    References:
      Martens, "Deep learning via Hessian-free optimization", ICML 2010.
    """
    api = "sparse"
    if (nonzeros is None) == (sparsity is None):
        raise ValueError(
            f"`{api}` needs exactly one of `nonzeros` (Martens: non-zero weights per unit, e.g. "
            f"15) and `sparsity` (torch: fraction of zeros per unit); got nonzeros={nonzeros!r}, "
            f"sparsity={sparsity!r}."
        )
    if nonzeros is not None:
        nonzeros = check_int(api, "nonzeros", nonzeros, minimum=1)
    if sparsity is not None:
        sparsity = check_real(api, "sparsity", sparsity)
        if not 0.0 <= sparsity <= 1.0:
            raise ValueError(
                f"`{api}` needs `sparsity` in [0, 1] (the fraction of zeros per unit); got "
                f"{sparsity!r}."
            )
    in_axis = check_int(api, "in_axis", in_axis)
    if in_axis not in (-2, -1, 0, 1):
        raise ValueError(
            f"`{api}` works on rank-2 kernels, so `in_axis` must be -2, -1, 0 or 1; got {in_axis}."
        )
    return Sparse(
        nonzeros,
        sparsity,
        check_real(api, "stddev", stddev, nonneg=True),
        in_axis,
        check_dtype_arg(api, dtype, allow_complex=True),
    )
