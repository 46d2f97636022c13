"""torch's structured initialisers: ``orthogonal_`` (Haar, QR sign-corrected), ``sparse_``,
``eye_`` and ``dirac_``, in Flax layouts."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import _random
from jinit._core._checks import check_int, check_real
from jinit._core._factory import factory
from jinit._core._layout import Layout
from jinit._core._sampling import as_sampled, haar_reflectors, random_subset_mask
from jinit._core._sharding import settle
from jinit.initializers._basic import normal as jinit_normal
from jinit.laws import _laws as laws
from jinit.torch._base import (
    TORCH_PREFIX,
    MatrixLayout,
    TorchInitializer,
    check_layout,
    is_complex_dtype,
    layout_text,
)

# ---------------------------------------------------------------------------------------------
# Orthogonal and sparse
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class Orthogonal(MatrixLayout, TorchInitializer):
    """``gain`` times a Haar (semi-)orthogonal matrix; see :func:`orthogonal`."""

    gain: float = 1.0
    layout: Layout | None = dataclasses.field(default=None, kw_only=True)

    api: ClassVar[str] = "torch.orthogonal"
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " An orthogonal matrix needs two axes (`torch.nn.init.orthogonal_` raises too)."

    def _check_shape(self, shape):
        self.in_out(shape)

    def _draw(self, key, shape, dtype):
        out = self.in_out(shape)[1]
        n_out = shape[out]
        q = haar_reflectors(key, math.prod(shape) // n_out, n_out, dtype)
        w = jnp.array(self.gain, q.dtype) * q
        if out == len(shape) - 1:
            return w.reshape(shape).astype(dtype)
        moved = (*shape[:out], *shape[out + 1 :], n_out)  # the output axis last, as drawn
        return jnp.moveaxis(w.reshape(moved), -1, out).astype(dtype)

    def _law(self, shape, dtype):
        out = self.in_out(shape)[1]
        return laws.OrthogonalLaw(shape, self.gain, out, False, dtype=dtype)

    def describe(self) -> str:
        return (
            f"{self.gain:g} × Haar orthogonal (out vs rest), Gram = {self.gain:g}²·I"
            + layout_text(self.layout)
        )


@factory
def orthogonal(gain: float = 1.0, *, layout: Layout | str | None = None) -> Orthogonal:
    r"""``torch.nn.init.orthogonal_``: ``gain`` times a Haar-distributed (semi-)orthogonal matrix.

    torch flattens its ``(out, in, *k)`` weight to an ``out × (in·prod(k))`` matrix and makes
    the smaller side orthonormal. On the Flax layout ``(*k, in, out)`` that is the
    ``prod(k)·in × out`` matrix ``w.reshape(-1, out)``: its columns are orthonormal
    (:math:`M^\top M = \mathrm{gain}^2 I`) when ``out`` is the smaller side, its rows otherwise.
    Permuting rows or transposing keeps a Haar matrix Haar, so the law is torch's exactly
    (``jinit.orthogonal(gain)`` with its default ``column_axis=-1``). Real dtypes only (torch's
    fails on complex).

    Not bound to jax's bits (``jinit.orthogonal`` is), the matrix is drawn from its Householder
    reflectors directly (Stewart 1980): the law of the sign-corrected QR of a Gaussian matrix
    without the factorisation, about half the work of ``jax.random.orthogonal`` or torch's
    ``orthogonal_`` (QR, then forming Q).

    With ``layout="torch"`` (or a :class:`jinit.Layout` with one input and one output axis)
    the matrix is ``out × rest`` with ``out`` the layout's output axis: torch's own view of its
    ``(out, in, *k)`` weight, e.g. an equinox ``Conv`` weight.

    Args:
      gain: the multiplier (>= 0).
      layout: ``"flax"`` (default; output axis last), ``"torch"`` (output axis 0), or a
        :class:`jinit.Layout` / einsum equation with one input and one output axis.

    Returns:
      An initializer for weights of rank >= 2.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit.torch
      >>> w = jinit.torch.orthogonal(2.0)(jax.random.key(0), (8, 3))
      >>> bool(jnp.allclose(w.T @ w, 4 * jnp.eye(3), atol=1e-5))
      True
      >>> w = jinit.torch.orthogonal(layout="torch")(jax.random.key(0), (4, 2, 3))  # (out, in, k)
      >>> m = w.reshape(4, -1)  # torch's view: out x (in * k)
      >>> bool(jnp.allclose(m @ m.T, jnp.eye(4), atol=1e-5))
      True

    References:
      Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
      linear neural networks", 2014. Mezzadri, "How to generate random matrices from the
      classical compact groups", 2007.
    """
    api = TORCH_PREFIX + "orthogonal"
    return Orthogonal(check_real(api, "gain", gain, nonneg=True), layout=check_layout(api, layout))


@dataclasses.dataclass(frozen=True, repr=False)
class Sparse(MatrixLayout, TorchInitializer):
    """``N(0, std²)`` with ``ceil(sparsity·out)`` zeros per input unit; see :func:`sparse`."""

    sparsity: float
    std: float = 0.01
    layout: Layout | None = dataclasses.field(default=None, kw_only=True)

    api: ClassVar[str] = "torch.sparse"
    supports_complex: ClassVar[bool] = True

    def _check_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(
                f"`{self._label}` needs a Dense kernel of rank 2 (in, out); got shape {shape} of "
                f"rank {len(shape)} (`torch.nn.init.sparse_` supports 2-D tensors only)."
            )
        self.in_out(shape)

    def zeros_per_unit(self, shape) -> int:
        """Zeros per input unit (each row ``w[i, :]`` of an (in, out) kernel, each column of a
        torch (out, in) weight): ``ceil(sparsity * out)``."""
        out = self.in_out(shape)[1]
        return math.ceil(self.sparsity * shape[out])  # torch's expression, float for float

    def _draw(self, key, shape, dtype):
        k_value, k_mask = jax.random.split(key)
        w = settle(_random.normal(k_value, shape, dtype)) * jnp.array(self.std, dtype)
        # a uniformly random subset of `zeros` entries of each unit (Floyd's algorithm)
        out = self.in_out(shape)[1]  # a unit's weights run along the output axis
        zeroed = random_subset_mask(k_mask, shape, out, self.zeros_per_unit(shape))
        return jnp.where(zeroed, jnp.zeros((), dtype), w)

    def _law(self, shape, dtype):
        s = as_sampled(self.std, dtype)
        nonzero = (
            laws.ComplexNormal(s, dtype=dtype)
            if is_complex_dtype(dtype)
            else laws.Normal(s, dtype=dtype)
        )
        if not is_complex_dtype(dtype) and np.dtype(dtype).itemsize == 2:
            # the values are jinit.normal(std)'s, masked: the statistics enumerate the exact
            # 16-bit law of that sampler (jinit.laws._sampled)
            nonzero = dataclasses.replace(nonzero, sampler=(jinit_normal(self.std), shape))
        out = self.in_out(shape)[1]
        return laws.SparseLaw(shape, out, self.zeros_per_unit(shape), nonzero, dtype=dtype)

    def describe(self) -> str:
        return f"N(0, {self.std:g}²), ceil({self.sparsity:g}·out) zeros per input unit" + (
            layout_text(self.layout)
        )


@factory
def sparse(sparsity: float, std: float = 0.01, *, layout: Layout | str | None = None) -> Sparse:
    r"""``torch.nn.init.sparse_``: :math:`\mathcal N(0, \mathrm{std}^2)` with an exact number of
    zeros per input unit.

    torch's ``sparse_`` takes a 2-D ``(rows, cols)`` tensor and zeroes
    :math:`\lceil \mathrm{sparsity}\cdot\mathrm{rows}\rceil` entries of every *column* at
    uniformly random positions. For a ``Linear`` weight ``(out, in)`` a column is one input
    unit's outgoing weights. On the Flax Dense kernel ``(in, out)`` (the transpose) this is every
    **row** ``w[i, :]``: exactly ``ceil(sparsity * out)`` zeros (computed with torch's float
    expression, so e.g. ``0.1 * 30`` gives 4), the other entries i.i.d.
    :math:`\mathcal N(0, \mathrm{std}^2)`. The law is
    ``laws.SparseLaw(shape, axis=1, zeros_per_unit, Normal(std))``: units are the slices along
    axis 1. (Martens' sparse init, which this cites, instead fixes the number of *non-zero*
    incoming weights per unit.)

    With ``layout="torch"`` the weight is torch's ``(out, in)`` itself and each *column*
    ``w[:, j]`` gets the ``ceil(sparsity * out)`` zeros, exactly as ``torch.nn.init.sparse_``.

    Args:
      sparsity: the fraction of each unit's entries set to zero, in [0, 1].
      std: the std of the non-zero entries (>= 0).
      layout: ``"flax"`` (default, ``(in, out)``), ``"torch"`` (``(out, in)``), or a
        :class:`jinit.Layout` of a rank-2 weight.

    Returns:
      An initializer for rank-2 kernels.

    Raises:
      ValueError: ``sparsity`` outside [0, 1] (build time); a shape of rank other than 2 (call
        time).

    Examples:
      >>> import jax, jinit.torch
      >>> w = jinit.torch.sparse(0.25)(jax.random.key(0), (3, 8))
      >>> (w == 0).sum(axis=1).tolist()
      [2, 2, 2]

    References:
      Martens, "Deep learning via Hessian-free optimization", ICML 2010.
    """
    api = TORCH_PREFIX + "sparse"
    sparsity = check_real(api, "sparsity", sparsity, nonneg=True)
    if sparsity > 1:
        raise ValueError(
            f"`{api}` needs `sparsity` (the fraction of zeros per unit) in [0, 1]; got "
            f"{sparsity!r}."
        )
    return Sparse(
        sparsity, check_real(api, "std", std, nonneg=True), layout=check_layout(api, layout)
    )


# ---------------------------------------------------------------------------------------------
# Deterministic
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class _Deterministic(TorchInitializer):
    supports_complex: ClassVar[bool] = True

    def _array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        raise NotImplementedError

    def _draw(self, key, shape, dtype):
        del key  # deterministic
        return jnp.asarray(self._array(shape, dtype))

    def _law(self, shape, dtype):
        return laws.DeterministicLaw(self._array(shape, dtype), dtype=dtype)


@dataclasses.dataclass(frozen=True, repr=False)
class Eye(_Deterministic):
    """The (in, out) identity; see :func:`eye`."""

    api: ClassVar[str] = "torch.eye"

    def _check_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(
                f"`{self._label}` needs a Dense kernel of rank 2 (in, out); got shape {shape}. "
                f"For conv kernels use `jinit.torch.dirac`."
            )

    def _array(self, shape, dtype):
        return np.eye(shape[0], shape[1], dtype=dtype)

    def describe(self) -> str:
        return "identity matrix (ones on the main diagonal)"


@factory
def eye() -> Eye:
    r"""``torch.nn.init.eye_``: ones on the main diagonal of a rank-2 kernel, zeros elsewhere.

    torch fills its ``(out, in)`` weight with ``torch.eye(out, in)``; the transpose is
    ``eye(in, out)``, so on the Flax kernel ``(in, out)``, :math:`w_{ij} = [i = j]`: a Dense
    layer passes its first ``min(in, out)`` inputs through. The key is ignored.

    Returns:
      An initializer for rank-2 kernels.

    Examples:
      >>> import jax, jinit.torch
      >>> jinit.torch.eye()(jax.random.key(0), (2, 3)).tolist()
      [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    return Eye()


@dataclasses.dataclass(frozen=True, repr=False)
class Dirac(MatrixLayout, _Deterministic):
    """An identity conv kernel (per group); see :func:`dirac`."""

    groups: int = 1
    layout: Layout | None = dataclasses.field(default=None, kw_only=True)

    api: ClassVar[str] = "torch.dirac"

    def _check_shape(self, shape):
        if len(shape) not in (3, 4, 5):
            raise ValueError(
                f"`{self._label}` needs a 1-D, 2-D or 3-D conv kernel (*k, in/groups, out) of "
                f"rank 3, 4 or 5; got shape {shape} of rank {len(shape)}. For a Dense kernel use "
                f"`jinit.torch.eye`."
            )
        out = self.in_out(shape)[1]
        if shape[out] % self.groups:
            raise ValueError(
                f"`{self._label}` needs the output channels (shape[{out}] = {shape[out]}) to be "
                f"divisible by groups={self.groups}; got shape {shape}. Pass a `groups` that "
                f"divides {shape[out]}, or change the kernel's output channels."
            )

    def _canonical(self, shape) -> tuple[int, ...]:
        """The stored axes in the Flax order (*k, in, out)."""
        i, o = self.in_out(shape)
        return (*(a for a in range(len(shape)) if a not in (i, o)), i, o)

    def centre(self, shape) -> tuple[int, ...]:
        """Spatial index of the delta: torch's ``k // 2`` per spatial axis (in stored order)."""
        return tuple(shape[a] // 2 for a in self._canonical(shape)[:-2])

    def _array(self, shape, dtype):
        order = self._canonical(shape)
        flax_shape = tuple(shape[a] for a in order)
        w = np.zeros(flax_shape, dtype=dtype)
        per_group = flax_shape[-1] // self.groups
        d = np.arange(min(per_group, flax_shape[-2]))
        for g in range(self.groups):
            w[(*self.centre(shape), d, g * per_group + d)] = 1
        return np.transpose(w, np.argsort(order))  # back to the stored order

    def describe(self) -> str:
        return "zeros; centre k//2: identity (in, out) per group" + layout_text(self.layout)


@factory
def dirac(groups: int = 1, *, layout: Layout | str | None = None) -> Dirac:
    r"""``torch.nn.init.dirac_``: an identity convolution (per group).

    torch sets ``w[g·O_g + d, d, k//2, ...] = 1`` on its ``(out, in/groups, *k)`` weight for
    every group ``g`` and ``d < min(O_g, in/groups)``, with ``O_g = out / groups``; all else is
    zero. On the Flax kernel ``(*k, in/groups, out)`` that is
    ``w[k//2, ..., d, g·O_g + d] = 1``. The spatial centre is torch's ``k // 2`` (index 2 for
    ``k = 4``), which differs for even ``k`` from :func:`jinit.delta_orthogonal`'s
    ``(k - 1) // 2`` (jax's; index 1 for ``k = 4``). With ``'SAME'`` padding and odd ``k`` the
    convolution copies its first ``min(O_g, in/groups)`` input channels of each group. The key
    is ignored.

    With ``layout="torch"`` the weight is torch's (and equinox's) ``(out, in/groups, *k)``
    itself and ``w[g·O_g + d, d, k//2, ...] = 1`` as in torch.

    Args:
      groups: the number of conv groups (>= 1); must divide the output channels.
      layout: ``"flax"`` (default, ``(*k, in/groups, out)``), ``"torch"``
        (``(out, in/groups, *k)``), or a :class:`jinit.Layout` with one input and one output
        axis.

    Returns:
      An initializer for kernels of rank 3, 4 or 5.

    Examples:
      >>> import jax, jinit.torch
      >>> w = jinit.torch.dirac()(jax.random.key(0), (3, 3, 2, 2))
      >>> w[1, 1].tolist(), float(w.sum())
      ([[1.0, 0.0], [0.0, 1.0]], 2.0)
    """
    api = TORCH_PREFIX + "dirac"
    return Dirac(check_int(api, "groups", groups, minimum=1), layout=check_layout(api, layout))
