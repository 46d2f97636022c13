r"""Initialisers jinit offers beyond ``jax.nn.initializers``, each with its exact law.

* deterministic: :func:`identity` (haiku semantics), :func:`dirac` (conv identity),
  :func:`hadamard` (Sylvester), :func:`zerO` (Zhao et al. 2022) and :func:`bias_prior`
  (Lin et al. 2017) — law :class:`~jinit.laws.DeterministicLaw`, the exact array;
* :func:`sparse` (Martens 2010, and torch's fractional variant) — :class:`~jinit.laws.SparseLaw`;
* :func:`scaled_uniform_orthogonal` (DKS, Martens et al. 2021) —
  :class:`~jinit.laws.OrthogonalLaw` / :class:`~jinit.laws.DeltaOrthogonalLaw`;
* transformer conventions :func:`transformer_normal` and :func:`gpt2_residual` (GPT-2, 2019) —
  :class:`~jinit.laws.Normal`.

All take real and complex floating dtypes (for the deterministic ones a complex array simply
holds real values; sparse and the normal recipes draw circular complex normals; SUO draws Haar
unitary matrices). Layouts are Flax's: dense kernels ``(in, out)``, conv kernels
``(*spatial, in, out)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import (
    DTypeLike,
    check_dtype_arg,
    check_int,
    check_real,
    factory,
    normalize_axis,
    settle,
)
from jinit._core._sampling import as_sampled, haar
from jinit.initializers._base import Initializer
from jinit.initializers._basic import normal
from jinit.laws import _laws as laws

# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _host_scalar(x: float, dtype: np.dtype) -> np.ndarray:
    """``x`` rounded once, on the host, to ``dtype``: the sampler and the law use this value."""
    return np.asarray(x, dtype=dtype)


def _conv_centre(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Spatial index ``(k - 1) // 2`` per axis: the tap JAX's ``padding="SAME"`` aligns with the
    output (it pads ``(k - 1) // 2`` low and ``k // 2`` high), for odd and even k."""
    return tuple((k - 1) // 2 for k in shape[:-2])


def _embed(matrix: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    """``matrix`` (in, out) as is for rank 2; at the spatial centre of zeros for conv kernels."""
    if len(shape) == 2:
        return matrix
    return jnp.zeros(shape, dtype).at[_conv_centre(shape)].set(matrix)


def _embed_host(matrix: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if len(shape) == 2:
        return matrix.astype(dtype)
    out = np.zeros(shape, dtype)
    out[_conv_centre(shape)] = matrix
    return out


def _check_matrix_or_conv(api: str, shape: tuple[int, ...]) -> None:
    if len(shape) > 5:
        raise ValueError(
            f"`{api}` needs a dense kernel (in, out) or a 1-D/2-D/3-D conv kernel "
            f"(*spatial, in, out), i.e. rank 2 to 5; got shape {shape} of rank {len(shape)}."
        )


def _pow2_ceil(n: int) -> int:
    """The smallest power of two >= n (n >= 1)."""
    return 1 << (n - 1).bit_length()


def _sylvester_block(n_rows: int, n_cols: int, dtype: np.dtype) -> jax.Array:
    r"""Top-left ``n_rows x n_cols`` block of the Sylvester–Hadamard matrix, generated on device.

    Entry :math:`(i, j)` of :math:`H_{2^m}` (from :math:`H_1 = [1]`,
    :math:`H_{2n} = [[H_n, H_n], [H_n, -H_n]]`) is :math:`(-1)^{\mathrm{popcount}(i \wedge j)}`,
    so no matrix is materialised on the host or embedded in the program as a constant.
    """
    i = jax.lax.broadcasted_iota(jnp.int32, (n_rows, n_cols), 0)
    j = jax.lax.broadcasted_iota(jnp.int32, (n_rows, n_cols), 1)
    parity = jax.lax.population_count(i & j) & 1
    return (1 - 2 * parity).astype(dtype)


def _sylvester_block_host(n_rows: int, n_cols: int) -> np.ndarray:
    """The same block in float64 on the host, bit by bit (for the laws)."""
    i = np.arange(n_rows, dtype=np.int64)[:, None]
    j = np.arange(n_cols, dtype=np.int64)[None, :]
    both = i & j
    parity = np.zeros((n_rows, n_cols), np.int64)
    for b in range(max(n_rows, n_cols).bit_length()):
        parity ^= (both >> b) & 1
    return 1.0 - 2.0 * parity


# ---------------------------------------------------------------------------------------------
# identity
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class Identity(Initializer):
    """``gain`` times the identity on the last two axes; see :func:`identity`."""

    gain: float = 1.0
    dtype: np.dtype | None = None

    api: ClassVar[str] = "identity"
    family: ClassVar[str] = "structured"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " An identity needs two axes; for a constant vector use `constant`."

    def _sample(self, key, shape, dtype):
        del key  # deterministic
        eye = jnp.eye(shape[-2], shape[-1], dtype=dtype) * jnp.asarray(
            _host_scalar(self.gain, dtype)
        )
        return jnp.broadcast_to(eye, shape)

    def _law(self, shape, dtype):
        eye = np.eye(shape[-2], shape[-1]).astype(dtype) * _host_scalar(self.gain, dtype)
        return laws.DeterministicLaw(np.broadcast_to(eye, shape).copy(), dtype=dtype)

    def describe(self) -> str:
        return f"{self.gain:g}·I on the last two axes (batched for rank > 2)"


@factory
def identity(gain: float = 1.0, dtype: DTypeLike | None = None) -> Identity:
    r"""Builds an initializer returning ``gain`` times the identity matrix.

    :math:`W_{\dots, i, j} = \mathrm{gain}\cdot\delta_{ij}` on the last two axes. Rectangular
    shapes get ones on the main diagonal (:math:`\min(n, m)` of them); rank > 2 gives a batch of
    identical identities (haiku's ``Identity``; keras and torch's ``eye_`` accept rank 2 only).
    The key is ignored. Typical use: recurrent weights of an IRNN (Le, Jaitly & Hinton 2015).

    Args:
      gain: the diagonal value (any finite real; negative gives ``-|gain|·I``).
      dtype: the initializer's default dtype.

    Returns:
      An initializer whose law is the exact array (:class:`~jinit.laws.DeterministicLaw`).

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> jinit.identity(2.0)(jax.random.key(0), (2, 3), jnp.float32)
      Array([[2., 0., 0.],
             [0., 2., 0.]], dtype=float32)

    References:
      Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
      Units", 2015.
    """
    api = "identity"
    return Identity(check_real(api, "gain", gain), check_dtype_arg(api, dtype, allow_complex=True))


# ---------------------------------------------------------------------------------------------
# dirac
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class Dirac(Initializer):
    """The conv kernel of the identity under SAME padding (grouped); see :func:`dirac`."""

    groups: int = 1
    dtype: np.dtype | None = None

    api: ClassVar[str] = "dirac"
    family: ClassVar[str] = "structured"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 3

    def _rank_hint(self) -> str:
        return (
            " It is for 1-D, 2-D or 3-D conv kernels in Flax layout (*spatial, in/groups, out); "
            "for a dense kernel use `identity`."
        )

    def _check_shape(self, shape):
        if len(shape) > 5:
            raise ValueError(
                f"`{self.api}` needs a 1-D, 2-D or 3-D conv kernel (*spatial, in/groups, out) of "
                f"rank 3, 4 or 5; got shape {shape} of rank {len(shape)}."
            )
        if shape[-1] % self.groups:
            raise ValueError(
                f"`{self.api}` was built with `groups={self.groups}`, which must divide the "
                f"output channels shape[-1]; got shape {shape} ({shape[-1]} channels). Pass the "
                f"`feature_group_count` of the convolution, which divides both channel counts."
            )

    def _indices(self, shape) -> tuple[np.ndarray, np.ndarray]:
        """(input channel, output channel) pairs holding a one."""
        out_per_group = shape[-1] // self.groups
        d = np.arange(min(out_per_group, shape[-2]))
        g = np.arange(self.groups)
        cin = np.broadcast_to(d[None, :], (self.groups, d.size)).ravel()
        cout = (g[:, None] * out_per_group + d[None, :]).ravel()
        return cin, cout

    def _sample(self, key, shape, dtype):
        del key  # deterministic
        cin, cout = self._indices(shape)
        return jnp.zeros(shape, dtype).at[_conv_centre(shape) + (cin, cout)].set(1)

    def _law(self, shape, dtype):
        cin, cout = self._indices(shape)
        value = np.zeros(shape, dtype)
        value[_conv_centre(shape) + (cin, cout)] = 1
        return laws.DeterministicLaw(value, dtype=dtype)

    def describe(self) -> str:
        return f"Dirac delta at spatial centre (k-1)//2, {self.groups} group(s)"


@factory
def dirac(groups: int = 1, dtype: DTypeLike | None = None) -> Dirac:
    r"""Builds a Dirac-delta initializer: the conv kernel of the identity map on channels.

    For a kernel of shape ``(*spatial, in, out)`` (Flax HWIO layout, rank 3, 4 or 5; ``in`` is the
    number of input channels per group) with :math:`G` = ``groups`` and
    :math:`o = \mathrm{out}/G` output channels per group,

    .. math::
        W[c, d, g\,o + d] = 1 \quad\text{for } g < G,\ d < \min(o, \mathrm{in}),

    and 0 elsewhere, where :math:`c = ((k_1 - 1)/\!/2, \dots)` is the spatial centre. With
    ``in == out / groups``, ``flax.linen.Conv(padding="SAME", feature_group_count=groups)`` with
    this kernel returns its input exactly (stride 1, no dilation). The key is ignored.

    The centre tap, for odd and even kernel sizes:

    =========================================  ============  =====================================
    initialiser                                centre index  identity under SAME padding?
    =========================================  ============  =====================================
    ``jinit.dirac``                            ``(k-1)//2``  yes, odd and even k (JAX pads
                                                             ``(k-1)//2`` low, ``k//2`` high)
    ``jax.nn.initializers.delta_orthogonal``   ``(k-1)//2``  (same convention)
    ``torch.nn.init.dirac_``                   ``k//2``      odd k only: for even k, torch's own
                                                             ``padding='same'`` output is shifted
                                                             by one (it pads ``(k-1)//2`` low too)
    =========================================  ============  =====================================

    For odd k all three agree, and ``jinit.dirac`` equals ``torch.nn.init.dirac_`` transposed to
    HWIO. Like torch, ``in != out / groups`` is allowed: the first :math:`\min(o, \mathrm{in})`
    channels of each group are passed through and the rest are zero.

    Args:
      groups: the convolution's ``feature_group_count`` (int >= 1); it must divide ``out``.
      dtype: the initializer's default dtype.

    Returns:
      An initializer whose law is the exact array (:class:`~jinit.laws.DeterministicLaw`).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.dirac()(jax.random.key(0), (3, 3, 4, 4))
      >>> w[1, 1].tolist() == jax.numpy.eye(4).tolist(), float(abs(w[0]).max())
      (True, 0.0)

    References:
      Zagoruyko & Komodakis, "DiracNets: Training Very Deep Neural Networks Without
      Skip-Connections", 2017.
    """
    api = "dirac"
    return Dirac(
        check_int(api, "groups", groups, minimum=1),
        check_dtype_arg(api, dtype, allow_complex=True),
    )


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
        w = jax.random.normal(k_values, shape, dtype) * jnp.asarray(
            _host_scalar(self.stddev, dtype)
        )
        if z == 0:
            return w
        # Each unit's entries get the ranks 0..n-1 in a uniformly random order (an independent
        # permutation per unit); the z ranks below z mark a uniformly random z-subset.
        ranks = jax.lax.broadcasted_iota(jnp.int32, shape, ax)
        ranks = jax.random.permutation(k_positions, ranks, axis=ax, independent=True)
        return jnp.where(ranks < z, jnp.zeros((), dtype), w)

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


# ---------------------------------------------------------------------------------------------
# hadamard and ZerO
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class Hadamard(Initializer):
    """``scale`` times a normalised Sylvester–Hadamard block; see :func:`hadamard`."""

    scale: float = 1.0
    dtype: np.dtype | None = None

    api: ClassVar[str] = "hadamard"
    family: ClassVar[str] = "structured"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " It is for dense (in, out) or conv (*spatial, in, out) kernels."

    def _check_shape(self, shape):
        _check_matrix_or_conv(self.api, shape)

    def _coef(self, n_in: int, n_out: int) -> float:
        return self.scale / math.sqrt(_pow2_ceil(max(n_in, n_out)))

    def _sample(self, key, shape, dtype):
        del key  # deterministic
        n_in, n_out = shape[-2:]
        c = jnp.asarray(_host_scalar(self._coef(n_in, n_out), dtype))
        return _embed(_sylvester_block(n_in, n_out, dtype) * c, shape, dtype)

    def _law(self, shape, dtype):
        n_in, n_out = shape[-2:]
        m = _sylvester_block_host(n_in, n_out) * self._coef(n_in, n_out)
        return laws.DeterministicLaw(_embed_host(m.astype(dtype), shape, dtype), dtype=dtype)

    def describe(self) -> str:
        return f"{self.scale:g}·H_p[:in, :out]/√p, p = 2^⌈log2 max(in, out)⌉"


@factory
def hadamard(scale: float = 1.0, dtype: DTypeLike | None = None) -> Hadamard:
    r"""Builds an initializer returning a scaled, normalised Sylvester–Hadamard matrix.

    With :math:`H_1 = [1]`, :math:`H_{2n} = \begin{pmatrix} H_n & H_n \\ H_n & -H_n
    \end{pmatrix}` (so :math:`H_n H_n^\top = n I` and
    :math:`(H_n)_{ij} = (-1)^{\mathrm{popcount}(i \wedge j)}`), a kernel ``(in, out)`` gets

    .. math::
        W = \frac{\mathrm{scale}}{\sqrt p}\, (H_p)_{[:\mathrm{in},\, :\mathrm{out}]},
        \qquad p = 2^{\lceil \log_2 \max(\mathrm{in}, \mathrm{out}) \rceil}.

    :math:`H_p/\sqrt p` is orthogonal, so when the larger side is a power of two the smaller
    side is orthonormal: :math:`W W^\top = \mathrm{scale}^2 I_\mathrm{in}` (in <= out) or
    :math:`W^\top W = \mathrm{scale}^2 I_\mathrm{out}` — the Gram identity of
    :func:`jinit.orthogonal`, deterministically and with every entry :math:`\pm
    \mathrm{scale}/\sqrt p`. Conv kernels (rank 3–5) get this matrix at the spatial centre
    ``(k - 1) // 2`` and zeros elsewhere (as :func:`dirac`). The key is ignored.

    Args:
      scale: the multiplier (finite, >= 0).
      dtype: the initializer's default dtype.

    Returns:
      An initializer whose law is the exact array (:class:`~jinit.laws.DeterministicLaw`).

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> jinit.hadamard(2.0)(jax.random.key(0), (4, 4), jnp.float32)
      Array([[ 1.,  1.,  1.,  1.],
             [ 1., -1.,  1., -1.],
             [ 1.,  1., -1., -1.],
             [ 1., -1., -1.,  1.]], dtype=float32)

    References:
      Sylvester, "Thoughts on inverse orthogonal matrices, simultaneous sign successions, and
      tessellated pavements in two or more colours", 1867. Zhao, Schäfer & Anandkumar, "ZerO
      Initialization: Initializing Neural Networks with only Zeros and Ones", TMLR 2022.
    """
    api = "hadamard"
    return Hadamard(
        check_real(api, "scale", scale, nonneg=True),
        check_dtype_arg(api, dtype, allow_complex=True),
    )


@dataclasses.dataclass(frozen=True, repr=False)
class ZerO(Initializer):
    """ZerO: (partial) identity, or a normalised Hadamard block when widening; see :func:`zerO`."""

    dtype: np.dtype | None = None

    api: ClassVar[str] = "zerO"
    family: ClassVar[str] = "structured"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " It is for dense (in, out) or conv (*spatial, in, out) kernels."

    def _check_shape(self, shape):
        _check_matrix_or_conv(self.api, shape)

    def _sample(self, key, shape, dtype):
        del key  # deterministic
        n_in, n_out = shape[-2:]
        if n_in >= n_out:
            m = jnp.eye(n_in, n_out, dtype=dtype)
        else:
            c = jnp.asarray(_host_scalar(1 / math.sqrt(_pow2_ceil(n_out)), dtype))
            m = _sylvester_block(n_in, n_out, dtype) * c
        return _embed(m, shape, dtype)

    def _law(self, shape, dtype):
        n_in, n_out = shape[-2:]
        if n_in >= n_out:
            m = np.eye(n_in, n_out)
        else:
            m = _sylvester_block_host(n_in, n_out) / math.sqrt(_pow2_ceil(n_out))
        return laws.DeterministicLaw(_embed_host(m.astype(dtype), shape, dtype), dtype=dtype)

    def describe(self) -> str:
        return "I* if in >= out, else H_p[:in, :out]/√p with p = 2^⌈log2 out⌉"


@factory
def zerO(dtype: DTypeLike | None = None) -> ZerO:  # the paper's spelling
    r"""Builds the ZerO initializer: only zeros and ones, up to a normalisation.

    Algorithm 1 of Zhao, Schäfer & Anandkumar, in Flax layout (kernel ``(in, out)``, i.e. the
    transpose of the paper's :math:`W \in \mathbb R^{P_l \times P_{l-1}}`):

    * ``in == out``: :math:`W = I`;
    * ``in > out`` (narrowing): the partial identity :math:`W = I^*`, ones on the main diagonal;
    * ``in < out`` (widening): :math:`W = c\, I^* H_p I^*`, i.e.
      :math:`W = (H_p)_{[:\mathrm{in},\, :\mathrm{out}]}/\sqrt p` with
      :math:`p = 2^{\lceil \log_2 \mathrm{out} \rceil}` and :math:`H_p` Sylvester's Hadamard
      matrix (see :func:`hadamard`), which breaks the symmetry a partial identity would keep.

    The normalisation :math:`c = 2^{-\lceil\log_2 \mathrm{out}\rceil/2} = 1/\sqrt p` is that of
    the authors' reference implementation (``ZerO_Init_on_matrix`` in
    jiaweizzhao/ZerO-initialization), which makes :math:`H_p/\sqrt p` orthogonal. Hence ZerO
    preserves norms: :math:`\lVert x W \rVert = \lVert x \rVert` for every :math:`x` when
    ``in == out`` or when widening to a power of two (:math:`W W^\top = I_\mathrm{in}`), and
    for :math:`x` in the span of the kept coordinates when narrowing. Conv kernels (rank 3–5)
    get the matrix at the spatial centre ``(k - 1) // 2``, zeros elsewhere, so for
    ``in == out`` ZerO equals :func:`dirac`. The key is ignored.

    Named ``zerO`` (the paper's spelling) rather than ``zero_init``, which is one letter from
    Flax's ``zeros_init`` (all zeros) — a typo that would silently change the model.

    Args:
      dtype: the initializer's default dtype.

    Returns:
      An initializer whose law is the exact array (:class:`~jinit.laws.DeterministicLaw`).

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> jinit.zerO()(jax.random.key(0), (2, 4), jnp.float32)
      Array([[ 0.5,  0.5,  0.5,  0.5],
             [ 0.5, -0.5,  0.5, -0.5]], dtype=float32)

    References:
      Zhao, Schäfer & Anandkumar, "ZerO Initialization: Initializing Neural Networks with only
      Zeros and Ones", TMLR 2022 (arXiv:2110.12661).
    """
    return ZerO(check_dtype_arg("zerO", dtype, allow_complex=True))


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
            return jnp.zeros(shape, dtype).at[_conv_centre(shape)].set(m)
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
            return laws.DeltaOrthogonalLaw(shape, _conv_centre(shape), inner, dtype=dtype)
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


# ---------------------------------------------------------------------------------------------
# bias prior (focal loss)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class BiasPrior(Initializer):
    """The constant ``log(p / (1 - p))``; see :func:`bias_prior`."""

    p: float
    dtype: np.dtype | None = None

    api: ClassVar[str] = "bias_prior"
    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True

    @property
    def value(self) -> float:
        """The logit :math:`\\log(p / (1 - p))`, in float64."""
        return math.log(self.p) - math.log1p(-self.p)

    def _sample(self, key, shape, dtype):
        del key  # deterministic
        return jnp.full(shape, _host_scalar(self.value, dtype), dtype)

    def _law(self, shape, dtype):
        return laws.DeterministicLaw(np.full(shape, _host_scalar(self.value, dtype)), dtype=dtype)

    def describe(self) -> str:
        return f"constant log(p/(1-p)) = {self.value:.6g} for p = {self.p:g}"


@factory
def bias_prior(p: float, dtype: DTypeLike | None = None) -> BiasPrior:
    r"""Builds a bias initializer for a sigmoid output whose positive class has prior ``p``.

    Fills the bias with the logit :math:`b = \log\frac{p}{1 - p}`, so that
    :math:`\sigma(b) = p` at initialisation: a rare-positive classifier (detection heads trained
    with focal or binary cross-entropy loss) starts by predicting the prior instead of 0.5, which
    keeps the huge number of easy negatives from dominating the first steps. RetinaNet uses
    :math:`p = 0.01`, :math:`b = -4.59512`. The key is ignored.

    Args:
      p: the prior probability of the positive class, strictly between 0 and 1.
      dtype: the initializer's default dtype.

    Returns:
      An initializer whose law is the exact array (:class:`~jinit.laws.DeterministicLaw`).

    Examples:
      >>> import jax, jinit
      >>> b = jinit.bias_prior(0.01)(jax.random.key(0), (80,))
      >>> round(float(b[0]), 5), float(jax.nn.sigmoid(b[0]))
      (-4.59512, 0.01)

    References:
      Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    api = "bias_prior"
    p = check_real(api, "p", p)
    if not 0.0 < p < 1.0:
        raise ValueError(
            f"`{api}` needs the prior `p` strictly between 0 and 1 (its logit is infinite at 0 "
            f"and 1); got p={p!r}. RetinaNet uses p=0.01."
        )
    return BiasPrior(p, check_dtype_arg(api, dtype, allow_complex=True))


# ---------------------------------------------------------------------------------------------
# transformer conventions
# ---------------------------------------------------------------------------------------------


class _NormalRecipe(Initializer):
    """N(0, std²) with ``std`` given by :meth:`effective_stddev` (jax's normal arithmetic)."""

    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True

    def effective_stddev(self) -> float:
        raise NotImplementedError

    def _sample(self, key, shape, dtype):
        return settle(jax.random.normal(key, shape, dtype)) * jnp.array(
            self.effective_stddev(), dtype
        )

    def _law(self, shape, dtype):
        s = as_sampled(self.effective_stddev(), dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            return laws.ComplexNormal(s, dtype=dtype)
        return laws.Normal(s, dtype=dtype)

    def describe(self) -> str:
        return f"N(0, {self.effective_stddev():.6g}²)"


@dataclasses.dataclass(frozen=True, repr=False)
class TransformerNormal(_NormalRecipe):
    """N(0, stddev²), stddev 0.02 by default; see :func:`transformer_normal`."""

    stddev: float = 0.02
    dtype: np.dtype | None = None

    api: ClassVar[str] = "transformer_normal"

    def effective_stddev(self) -> float:
        return self.stddev


@factory
def transformer_normal(stddev: float = 0.02, dtype: DTypeLike | None = None) -> TransformerNormal:
    r"""Builds the GPT-2/BERT weight initializer :math:`\mathcal N(0, 0.02^2)`.

    The fixed, width-independent standard deviation 0.02 that GPT-2, BERT and their descendants
    use for embeddings and linear kernels (biases zero). The draw is
    ``jax.random.normal(key, shape, dtype) * stddev``, bit-identical to
    ``jax.nn.initializers.normal(0.02)`` for real dtypes; complex dtypes get a circular normal
    with :math:`E|z|^2 = \mathrm{stddev}^2`. For the residual output projections use
    :func:`gpt2_residual`.

    Args:
      stddev: the standard deviation (finite, >= 0).
      dtype: the initializer's default dtype.

    Returns:
      An initializer with law :class:`~jinit.laws.Normal`.

    Examples:
      >>> import jinit
      >>> jinit.law(jinit.transformer_normal(), (768, 3072)).std
      0.019999999552965164

    References:
      Radford, Wu, Child, Luan, Amodei & Sutskever, "Language Models are Unsupervised Multitask
      Learners", 2019. Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional
      Transformers for Language Understanding", 2019.
    """
    api = "transformer_normal"
    return TransformerNormal(
        check_real(api, "stddev", stddev, nonneg=True),
        check_dtype_arg(api, dtype, allow_complex=True),
    )


@dataclasses.dataclass(frozen=True, repr=False)
class GPT2Residual(_NormalRecipe):
    """N(0, (stddev/√(2·n_layers))²); see :func:`gpt2_residual`."""

    n_layers: int
    stddev: float = 0.02
    dtype: np.dtype | None = None

    api: ClassVar[str] = "gpt2_residual"

    def effective_stddev(self) -> float:
        return self.stddev / math.sqrt(2 * self.n_layers)


@factory
def gpt2_residual(
    n_layers: int, stddev: float = 0.02, dtype: DTypeLike | None = None
) -> GPT2Residual:
    r"""Builds GPT-2's initializer for residual output projections.

    .. math::
        W \sim \mathcal N\Bigl(0, \bigl(\mathrm{stddev}/\sqrt{2\,n_\mathrm{layers}}\bigr)^2\Bigr)

    for the layers that write into the residual stream (attention and MLP output projections,
    nanoGPT's ``c_proj``): each block adds two residual branches, so after
    :math:`n_\mathrm{layers}` blocks the :math:`2 n_\mathrm{layers}` contributions sum to a
    variance independent of depth. 12 layers give std :math:`0.02/\sqrt{24} = 0.0040825`.
    Same arithmetic as ``jax.nn.initializers.normal`` with that std.

    Args:
      n_layers: the number of transformer blocks (int >= 1).
      stddev: the base standard deviation (finite, >= 0), 0.02 in GPT-2.
      dtype: the initializer's default dtype.

    Returns:
      An initializer with law :class:`~jinit.laws.Normal`.

    Examples:
      >>> import jinit
      >>> round(jinit.gpt2_residual(12).effective_stddev(), 7)
      0.0040825

    References:
      Radford, Wu, Child, Luan, Amodei & Sutskever, "Language Models are Unsupervised Multitask
      Learners", 2019; karpathy/nanoGPT ``model.py`` (``c_proj.weight``).
    """
    api = "gpt2_residual"
    return GPT2Residual(
        check_int(api, "n_layers", n_layers, minimum=1),
        check_real(api, "stddev", stddev, nonneg=True),
        check_dtype_arg(api, dtype, allow_complex=True),
    )
