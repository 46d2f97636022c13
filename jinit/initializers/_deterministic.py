"""Deterministic initialisers, each with the exact array as its law (
:class:`~jinit.laws.DeterministicLaw`): :func:`identity` (haiku semantics), :func:`dirac` (conv
identity), :func:`hadamard` (Sylvester) and :func:`zerO` (Zhao et al. 2022). A complex dtype
simply holds real values.

Layouts are Flax's: dense kernels ``(in, out)``, conv kernels ``(*spatial, in, out)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import DTypeLike, check_dtype_arg, check_int, check_real
from jinit._core._factory import factory
from jinit.initializers._base import Initializer
from jinit.laws import _laws as laws

# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def rounded_scalar(x: float, dtype: np.dtype) -> np.ndarray:
    """``x`` rounded once, on the host, to ``dtype``: the sampler and the law use this value."""
    return np.asarray(x, dtype=dtype)


def conv_centre(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Spatial index ``(k - 1) // 2`` per axis: the tap JAX's ``padding="SAME"`` aligns with the
    output (it pads ``(k - 1) // 2`` low and ``k // 2`` high), for odd and even k."""
    return tuple((k - 1) // 2 for k in shape[:-2])


def _embed(matrix: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    """``matrix`` (in, out) as is for rank 2; at the spatial centre of zeros for conv kernels."""
    if len(shape) == 2:
        return matrix
    return jnp.zeros(shape, dtype).at[conv_centre(shape)].set(matrix)


def _embed_host(matrix: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if len(shape) == 2:
        return matrix.astype(dtype)
    out = np.zeros(shape, dtype)
    out[conv_centre(shape)] = matrix
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
            rounded_scalar(self.gain, dtype)
        )
        return jnp.broadcast_to(eye, shape)

    def _law(self, shape, dtype):
        eye = np.eye(shape[-2], shape[-1]).astype(dtype) * rounded_scalar(self.gain, dtype)
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
        return jnp.zeros(shape, dtype).at[conv_centre(shape) + (cin, cout)].set(1)

    def _law(self, shape, dtype):
        cin, cout = self._indices(shape)
        value = np.zeros(shape, dtype)
        value[conv_centre(shape) + (cin, cout)] = 1
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
        c = jnp.asarray(rounded_scalar(self._coef(n_in, n_out), dtype))
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
            c = jnp.asarray(rounded_scalar(1 / math.sqrt(_pow2_ceil(n_out)), dtype))
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
