r"""PyTorch's initialisation semantics (``torch.nn.init`` and layer defaults) in Flax layouts.

Each initialiser takes the **Flax** layout of a weight and gives the distribution torch gives
for the corresponding **torch** layout, so that transposing a torch sample gives the same law:

===================  =========================  ==========================
layer                Flax layout                torch layout
===================  =========================  ==========================
Dense / Linear       ``(in, out)``              ``(out, in)``
Conv (N-d)           ``(*k, in/groups, out)``   ``(out, in/groups, *k)``
Embed / Embedding    ``(vocab, features)``      ``(vocab, features)``
===================  =========================  ==========================

Fans are torch's, :math:`\mathrm{fan\_in} = \mathrm{in}\prod k` and
:math:`\mathrm{fan\_out} = \mathrm{out}\prod k`, which for the Flax layouts is
:func:`jinit.fans` with its defaults (``in_axis=-2``, ``out_axis=-1``).

The draws are jax's, not torch's: the same law, not the same numbers.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from jinit._core._checks import check_int, check_real, factory, settle
from jinit._core._layouts import Layout, as_layout
from jinit._core._sampling import as_sampled, haar
from jinit.initializers._base import Initializer
from jinit.initializers._basic import normal as jinit_normal
from jinit.initializers._basic import tail_truncated_normal
from jinit.initializers._variance_scaling import VarianceScaling
from jinit.laws import _laws as laws

_P = "jinit.torch."

# torch.nn.init.calculate_gain's names, in the order of its table.
_LINEAR_NAMES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
NONLINEARITIES = (*_LINEAR_NAMES, "sigmoid", "tanh", "relu", "leaky_relu", "selu")
FAN_MODES = ("fan_in", "fan_out")

# torch's default Linear/Conv weight: kaiming_uniform_(w, a=math.sqrt(5)), i.e. leaky_relu gain
# sqrt(2 / (1 + 5)) = 1/sqrt(3), so bound = sqrt(3) * gain / sqrt(fan_in) = 1 / sqrt(fan_in).
_SQRT5 = math.sqrt(5.0)


# ---------------------------------------------------------------------------------------------
# Gain
# ---------------------------------------------------------------------------------------------


def _slope(api: str, name: str, value: Any) -> float:
    """A leaky-ReLU negative slope: a real number, not a bool (ValueError, as torch)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        raise ValueError(
            f"`{api}` needs `{name}` (the leaky_relu negative slope) to be an int or a float; "
            f"got {value!r} of type {type(value).__name__}. Pass e.g. `{name}=0.2`."
        )
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"`{api}` needs a finite `{name}`; got {x!r}.")
    return x


def _gain(api: str, nonlinearity: Any, param: Any) -> float:
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        supported = ", ".join(repr(n) for n in NONLINEARITIES)
        raise ValueError(
            f"`{api}` does not support nonlinearity {nonlinearity!r}; torch's gain table has "
            f"{supported}. For another activation use 'linear' and pass your own gain, or "
            f"compute it from the activation's second moment."
        )
    if nonlinearity in _LINEAR_NAMES or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _slope(api, "param", param)
        return math.sqrt(2.0 / (1 + slope**2))
    return 3.0 / 4  # selu: torch's empirical value (pytorch/pytorch#50664)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""torch's recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    ========================================================  ====================================
    nonlinearity                                              gain
    ========================================================  ====================================
    ``linear``, ``conv{1,2,3}d``, ``conv_transpose{1,2,3}d``  :math:`1`
    ``sigmoid``                                               :math:`1`
    ``tanh``                                                  :math:`5/3`
    ``relu``                                                  :math:`\sqrt 2`
    ``leaky_relu``                                            :math:`\sqrt{2/(1+\mathrm{slope}^2)}`
    ``selu``                                                  :math:`3/4`
    ========================================================  ====================================

    For ``leaky_relu`` the slope is ``param``, or 0.01 when ``param`` is None. The ``selu``
    value was found empirically in torch; for self-normalising networks torch itself advises
    ``'linear'`` (variance 1/fan_in). The values are bit-identical to torch 2.13's, as floats
    (torch returns the int 1 for the linear names).

    Args:
      nonlinearity: one of the names above (torch's ``nn.functional`` names).
      param: the negative slope of ``leaky_relu`` (ignored for the other names).

    Returns:
      The gain, a Python float.

    Raises:
      ValueError: an unsupported name, or a ``param`` that is not an int or float (bools are
        rejected, as in torch).

    Examples:
      >>> import jinit.torch
      >>> jinit.torch.calculate_gain("leaky_relu")
      1.4141428569978354
      >>> jinit.torch.calculate_gain("tanh")
      1.6666666666666667
    """
    return _gain(_P + "calculate_gain", nonlinearity, param)


# ---------------------------------------------------------------------------------------------
# Base
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class TorchInitializer(Initializer):
    """Base of the ``jinit.torch`` initialisers: messages name ``jinit.torch.<fn>``."""

    family: ClassVar[str] = "torch"

    @property
    def _label(self) -> str:
        return "jinit." + self.api

    def __repr__(self) -> str:
        return super().__repr__().replace(f"layout={TORCH_LAYOUT!r}", "layout='torch'")

    def _sample(self, key, shape, dtype):
        return _compiled_draw(self, key, shape, dtype)

    def _draw(self, key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
        raise NotImplementedError


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _compiled_draw(init: TorchInitializer, key, shape, dtype) -> jax.Array:
    """One compiled computation per (initialiser, shape, dtype), as ``jax.random`` does: an eager
    call then rounds exactly as the same call inside ``jit``/``vmap`` (XLA fuses and contracts
    ``x * std + mean`` the same way in both), so jit and eager give the same bits."""
    return init._draw(key, shape, dtype)


# ---------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------

LAYOUT_NAMES = ("flax", "torch")
TORCH_LAYOUT = Layout.torch("torch layout (out, in, *k)")
"""``layout="torch"``: input axis 1, output axis 0, the rest receptive field."""

_LAYOUT_FIX = (
    "Pass 'flax' (the default: Dense (in, out), Conv (*k, in/groups, out)), 'torch' (torch's and "
    "equinox's (out, in, *k)), a `jinit.Layout` (e.g. `jinit.Layout(in_axes=1, out_axes=0)`) or "
    "an einsum equation such as 'bd,dhk->bhk'."
)


def check_layout(api: str, layout: Any) -> Layout | None:
    """A ``layout=`` argument as a :class:`jinit.Layout`, or None for the Flax default.

    ``"torch"`` is :meth:`jinit.Layout.torch` (input axis 1, output axis 0, the rest receptive
    field: torch's ``_calculate_fan_in_and_fan_out`` on ``(out, in, *k)``); ``"flax"`` (or
    None) keeps the defaults (input -2, output -1), under which every value is the one jinit
    gave before layouts existed. Other strings are einsum equations (the kernel second).
    """
    if layout is None or (isinstance(layout, str) and layout == "flax"):
        return None
    if isinstance(layout, str) and layout == "torch":
        return TORCH_LAYOUT
    if isinstance(layout, str) and "->" not in layout:
        close = difflib.get_close_matches(layout.lower(), LAYOUT_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"`{api}` got `layout={layout!r}`.{hint} {_LAYOUT_FIX}")
    if not isinstance(layout, (str, Layout)):
        raise TypeError(
            f"`{api}` needs `layout` to be a str or a `jinit.Layout`; got {layout!r} of type "
            f"{type(layout).__name__}. {_LAYOUT_FIX}"
        )
    return as_layout(api, layout)


def _layout_text(layout: Layout | None) -> str:
    return "" if layout is None else f" [{layout.describe()}]"


class _MatrixLayout:
    """Layout handling of the initialisers that need one input and one output axis and no
    batch axes (orthogonal, sparse, dirac): the axes and the ``with_layout`` rule."""

    layout: Layout | None

    def in_out(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """The (input, output) axes of ``shape``, non-negative (Flax: the last two)."""
        nd = len(shape)
        if self.layout is None:
            return nd - 2, nd - 1
        lay = self.layout if self.layout.shape == shape else self.layout.bind(shape)
        if len(lay.in_axes) != 1 or len(lay.out_axes) != 1 or lay.batch_axes:
            raise ValueError(
                f"`{self._label}` needs a layout with one input axis, one output axis and no "
                f"batch axes (torch's weights are (out, in, *k)); got {lay.describe()} for shape "
                f"{shape}. For a DenseGeneral/attention kernel let the layer call it with its "
                f"flat (in, out) shape, or use `jinit.orthogonal(column_axis=...)`."
            )
        return lay.in_axes[0], lay.out_axes[0]

    def with_layout(self, layout: Layout):
        """``self`` when it was given a layout, when the layer calls it with a flat
        ``(in, out)`` shape, or when the layout's axes are its own; else a copy with
        ``layout`` (raising if it has several input/output axes or batch axes)."""
        if self.layout is not None or layout.call == "flat":
            return self
        shape = layout.shape
        new = dataclasses.replace(self, layout=layout)
        if shape is not None and new.in_out(shape) == (len(shape) - 2, len(shape) - 1):
            return self
        return new


# Below this probability the inverse CDF worked in probabilities loses precision in float32 /
# float64 (subnormal range, with a margin of 2**23 / 2**52): the tail sampler takes over.
_TINY_MASS = {4: 1e-30, 8: 1e-290}


def _norm_cdf(x: float) -> float:
    """Standard normal CDF in float64, accurate in the lower tail (0 at -inf, 1 at inf)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _real_float(dtype: np.dtype) -> np.dtype:
    """The float dtype to compute in: float32 for half precision, else the (real) dtype itself."""
    real = np.dtype(jnp.finfo(dtype).dtype)
    return np.dtype(np.float32) if real.itemsize < 4 else real


def _is_complex(dtype: np.dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.complexfloating))


_FAN_HINT = (
    " torch computes fans only for weights of rank >= 2 (`torch.nn.init` raises too). For a "
    "bias use `jinit.torch.linear_bias(fan_in)`."
)


# ---------------------------------------------------------------------------------------------
# Simple distributions
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class Uniform(TorchInitializer):
    """``U[a, b)``; see :func:`uniform`."""

    a: float = 0.0
    b: float = 1.0

    api: ClassVar[str] = "torch.uniform"

    def _draw(self, key, shape, dtype):
        return jax.random.uniform(key, shape, dtype, self.a, self.b)

    def _law(self, shape, dtype):
        return laws.Uniform(as_sampled(self.a, dtype), as_sampled(self.b, dtype), dtype=dtype)

    def describe(self) -> str:
        return f"U[{self.a:g}, {self.b:g})"


@factory
def uniform(a: float = 0.0, b: float = 1.0) -> Uniform:
    r"""``torch.nn.init.uniform_``: :math:`U[a, b)`.

    Mean :math:`(a+b)/2`, variance :math:`(b-a)^2/12`. Unlike :func:`jinit.uniform` (jax's
    one-sided ``[0, scale)``), both bounds are given. Real dtypes only (torch draws the real and
    imaginary parts independently for complex tensors, a square rather than a disk).

    Args:
      a: the lower bound.
      b: the upper bound (>= ``a``, as torch requires).

    Returns:
      An initializer ``init(key, shape, dtype=None, out_sharding=None)``.

    Raises:
      ValueError: ``a > b`` or a non-finite bound.

    Examples:
      >>> import jax, jinit.torch
      >>> w = jinit.torch.uniform(-0.5, 0.5)(jax.random.key(0), (1000,))
      >>> bool((w >= -0.5).all() and (w < 0.5).all())
      True
    """
    api = _P + "uniform"
    a = check_real(api, "a", a)
    b = check_real(api, "b", b)
    if a > b:
        raise ValueError(
            f"`{api}` needs `a` <= `b` (torch draws from [a, b)); got a={a!r}, b={b!r}. Swap them."
        )
    return Uniform(a, b)


@dataclasses.dataclass(frozen=True, repr=False)
class Normal(TorchInitializer):
    r""":math:`\mathcal N(\mathrm{mean}, \mathrm{std}^2)`; see :func:`normal`."""

    mean: float = 0.0
    std: float = 1.0

    api: ClassVar[str] = "torch.normal"
    supports_complex: ClassVar[bool] = True

    def _check_call(self, shape, dtype):
        shape, dtype = super()._check_call(shape, dtype)
        if self.mean != 0 and _is_complex(dtype):
            raise TypeError(
                f"`{self._label}` supports complex dtypes only with mean=0; got mean="
                f"{self.mean!r} and dtype {dtype.name}. torch adds the mean to both the real and "
                f"the imaginary part; draw with mean=0 and add `mean * (1 + 1j)` yourself."
            )
        return shape, dtype

    def _draw(self, key, shape, dtype):
        z = settle(jax.random.normal(key, shape, dtype)) * jnp.array(self.std, dtype)
        return z if self.mean == 0 else settle(z) + jnp.array(self.mean, dtype)

    def _law(self, shape, dtype):
        s = as_sampled(self.std, dtype)
        if _is_complex(dtype):
            return laws.ComplexNormal(s, dtype=dtype)
        return laws.Normal(s, as_sampled(self.mean, dtype), dtype=dtype)

    def describe(self) -> str:
        return f"N({self.mean:g}, {self.std:g}²)"


@factory
def normal(mean: float = 0.0, std: float = 1.0) -> Normal:
    r"""``torch.nn.init.normal_``: :math:`\mathcal N(\mathrm{mean}, \mathrm{std}^2)`.

    Complex dtypes (with ``mean=0``) give a circular complex normal with
    :math:`E|z|^2 = \mathrm{std}^2` (each part has variance :math:`\mathrm{std}^2/2`), as torch.

    Args:
      mean: the mean.
      std: the standard deviation (>= 0).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit.torch
      >>> jinit.torch.normal(std=0.02)(jax.random.key(0), (768, 3072)).dtype
      dtype('float32')
    """
    api = _P + "normal"
    return Normal(check_real(api, "mean", mean), check_real(api, "std", std, nonneg=True))


@dataclasses.dataclass(frozen=True, repr=False)
class TruncNormal(TorchInitializer):
    """Normal conditioned on the absolute interval ``[a, b]``; see :func:`trunc_normal`."""

    mean: float = 0.0
    std: float = 1.0
    a: float = -2.0
    b: float = 2.0

    api: ClassVar[str] = "torch.trunc_normal"
    # drawn in float32 and rounded once to a 16-bit dtype (jinit.laws._sampled)
    rounds_float32_draw: ClassVar[bool] = True

    @property
    def standardised_bounds(self) -> tuple[float, float]:
        """``((a - mean) / std, (b - mean) / std)``."""
        return (self.a - self.mean) / self.std, (self.b - self.mean) / self.std

    def _draw(self, key, shape, dtype):
        # Inverse CDF, worked in the lower tail (where probabilities keep their relative
        # precision) when both bounds lie above the mean.
        lo, hi = self.standardised_bounds
        work = _real_float(dtype)
        flip = lo > 0
        if flip:
            lo, hi = -hi, -lo
        p_lo, p_hi = _norm_cdf(lo), _norm_cdf(hi)
        if p_hi < _TINY_MASS[work.itemsize]:
            # so far out that the probabilities underflow `work`: invert in log space instead
            z = tail_truncated_normal(key, *self.standardised_bounds, shape, work)
            x = jnp.array(self.mean, work) + settle(jnp.array(self.std, work) * z)
            return jnp.clip(x, self.a, self.b).astype(dtype)
        u = settle(jax.random.uniform(key, shape, work))
        z = settle(ndtri(settle(jnp.array(p_lo, work) + u * jnp.array(p_hi - p_lo, work))))
        if flip:
            z = -z
        x = jnp.array(self.mean, work) + settle(jnp.array(self.std, work) * z)
        return jnp.clip(x, self.a, self.b).astype(dtype)

    def _law(self, shape, dtype):
        lo, hi = self.standardised_bounds
        return laws.TruncatedNormal(self.std, lo, hi, self.mean, dtype=dtype)

    def describe(self) -> str:
        return f"N({self.mean:g}, {self.std:g}²) conditioned on [{self.a:g}, {self.b:g}]"


@factory
def trunc_normal(
    mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> TruncNormal:
    r"""``torch.nn.init.trunc_normal_``: :math:`\mathcal N(\mathrm{mean}, \mathrm{std}^2)`
    conditioned on :math:`a \le x \le b`.

    As in torch, ``a`` and ``b`` are **absolute** bounds (not in units of ``std``, unlike
    :func:`jinit.truncated_normal`) and there is **no** std correction: the std is that of the
    truncated law, :math:`\mathrm{std}\sqrt{1 + \frac{\alpha\phi(\alpha)-\beta\phi(\beta)}{Z}
    - \left(\frac{\phi(\alpha)-\phi(\beta)}{Z}\right)^2}` with :math:`\alpha, \beta` the
    standardised bounds and :math:`Z = \Phi(\beta)-\Phi(\alpha)`. So the common
    ``trunc_normal(std=0.02)`` (bounds ±2 absolute, i.e. ±100σ) is in effect untruncated, and
    ``trunc_normal(std=s, a=-2*s, b=2*s)`` has std :math:`0.8796\,s`.

    The law is ``laws.TruncatedNormal(std, α, β, loc=mean)``. Sampling is by inverse CDF (torch
    uses rejection; the law is the same), worked in the lower tail so bounds far from the mean
    keep their precision. Real dtypes only (torch has no complex version).

    Args:
      mean: the mean of the untruncated normal.
      std: its standard deviation (> 0).
      a: the lower bound (may be ``-inf``).
      b: the upper bound (> ``a``; may be ``inf``).

    Returns:
      An initializer.

    Raises:
      ValueError: ``std <= 0``, ``a >= b``, or ``[a, b]`` too far from the mean to hold any
        float64 probability mass.

    Examples:
      >>> import jax, jinit.torch
      >>> w = jinit.torch.trunc_normal(std=1.0, a=0.0, b=1.0)(jax.random.key(0), (10000,))
      >>> bool((w >= 0).all() and (w <= 1).all())
      True
    """
    api = _P + "trunc_normal"
    mean = check_real(api, "mean", mean)
    std = check_real(api, "std", std, positive=True)
    a, b = _bound(api, "a", a), _bound(api, "b", b)
    if not a < b:
        raise ValueError(
            f"`{api}` needs `a` < `b`; got a={a!r}, b={b!r}. "
            + ("Swap them." if a > b else "For a constant use `jinit.constant`.")
        )
    init = TruncNormal(mean, std, a, b)
    lo, hi = init.standardised_bounds
    if not laws.truncated_mass(lo, hi) > 0:
        raise ValueError(
            f"`{api}`: the interval [{a!r}, {b!r}] is {min(abs(lo), abs(hi)):.3g} standard "
            f"deviations from mean={mean!r} and holds no probability mass in float64. Move the "
            f"bounds closer to the mean or raise `std`."
        )
    return init


def _bound(api: str, name: str, value: Any) -> float:
    """A real bound, possibly infinite, never nan."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        raise TypeError(f"`{api}` needs `{name}` to be a real number; got {value!r}.")
    x = float(value)
    if math.isnan(x):
        raise ValueError(f"`{api}` needs `{name}` to be a number or ±inf; got nan.")
    return x


# ---------------------------------------------------------------------------------------------
# Fan-scaled distributions (on the variance-scaling core)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class _FanScaled(TorchInitializer):
    """A torch fan-scaled law, drawn by :class:`jinit.VarianceScaling`.

    ``layout`` (None: the Flax layout, input axis -2, output axis -1) says which axes of the
    weight are torch's input and output maps; the fans are :func:`jinit.fans` of those axes,
    which for ``Layout.torch()`` is torch's ``_calculate_fan_in_and_fan_out`` on its own
    ``(out, in, *k)`` weight.
    """

    layout: Layout | None = dataclasses.field(default=None, kw_only=True)

    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return _FAN_HINT

    def _scale_mode_distribution(self) -> tuple[float, str, str]:
        raise NotImplementedError

    def _core(self) -> VarianceScaling:
        scale, mode, distribution = self._scale_mode_distribution()
        return VarianceScaling(scale, mode, distribution, name=self._label, layout=self.layout)

    def fans(self, shape):
        """torch's ``(fan_in, fan_out)`` of ``shape`` in this initialiser's layout."""
        return self._core().fans(shape)

    def with_layout(self, layout: Layout) -> _FanScaled:
        """This initialiser with the fans of ``layout`` (see :func:`jinit._core._layouts.retarget`):
        ``self`` when it was given a layout, or when its own axes already give the layout's fans
        on the layer's call shape (the variance-scaling core decides)."""
        if self.layout is not None:
            return self
        core = self._core()
        return (
            self if core.with_layout(layout) is core else dataclasses.replace(self, layout=layout)
        )

    def _draw(self, key, shape, dtype):
        return self._core()._sample(key, shape, dtype)

    def _law(self, shape, dtype):
        return self._core()._law(shape, dtype)

    def describe(self) -> str:
        return self._core().describe() + _layout_text(self.layout)


@dataclasses.dataclass(frozen=True, repr=False)
class XavierUniform(_FanScaled):
    """``U(±gain·√(6/(fan_in+fan_out)))``; see :func:`xavier_uniform`."""

    gain: float = 1.0

    api: ClassVar[str] = "torch.xavier_uniform"

    def _scale_mode_distribution(self):
        return self.gain**2, "fan_avg", "uniform"


@dataclasses.dataclass(frozen=True, repr=False)
class XavierNormal(_FanScaled):
    """Untruncated ``N(0, 2·gain²/(fan_in+fan_out))``; see :func:`xavier_normal`."""

    gain: float = 1.0

    api: ClassVar[str] = "torch.xavier_normal"
    supports_complex: ClassVar[bool] = True

    def _scale_mode_distribution(self):
        return self.gain**2, "fan_avg", "normal"


_GLOROT_REF = (
    'Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural '
    'networks", AISTATS 2010.'
)
_HE_REF = (
    'He et al., "Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet '
    'Classification", ICCV 2015.'
)


@factory
def xavier_uniform(gain: float = 1.0, *, layout: Layout | str | None = None) -> XavierUniform:
    r"""``torch.nn.init.xavier_uniform_``: :math:`U(-\beta, \beta)`,
    :math:`\beta = \mathrm{gain}\sqrt{6/(\mathrm{fan\_in}+\mathrm{fan\_out})}`.

    Variance :math:`2\,\mathrm{gain}^2/(\mathrm{fan\_in}+\mathrm{fan\_out})`, i.e.
    ``jinit.variance_scaling(gain**2, "fan_avg", "uniform")`` on the Flax layout. Real dtypes
    only (torch's complex uniform is a square, not jinit's disk).

    Args:
      gain: the multiplier (>= 0), e.g. ``calculate_gain("tanh")``.
      layout: which axes are torch's input and output maps: ``"flax"`` (default; Dense
        ``(in, out)``, Conv ``(*k, in/groups, out)``), ``"torch"`` (torch's and equinox's
        ``(out, in, *k)``, fans exactly torch's), a :class:`jinit.Layout` or an einsum equation.

    Returns:
      An initializer for weights of rank >= 2 in Flax layout.

    Examples:
      >>> import jax, jinit
      >>> import jinit.torch
      >>> round(jinit.law(jinit.torch.xavier_uniform(), (300, 100)).support[1], 6)
      0.122474

    References:
      {glorot}
    """
    api = _P + "xavier_uniform"
    return XavierUniform(
        check_real(api, "gain", gain, nonneg=True), layout=check_layout(api, layout)
    )


@factory
def xavier_normal(gain: float = 1.0, *, layout: Layout | str | None = None) -> XavierNormal:
    r"""``torch.nn.init.xavier_normal_``: **untruncated**
    :math:`\mathcal N(0, 2\,\mathrm{gain}^2/(\mathrm{fan\_in}+\mathrm{fan\_out}))`.

    (``jinit.glorot_normal``, like jax, Flax and Keras, is *truncated*.) Complex dtypes give the
    circular complex normal with the same :math:`E|z|^2`, as torch.

    Args:
      gain: the multiplier (>= 0).
      layout: which axes are torch's input and output maps: ``"flax"`` (default; Dense
        ``(in, out)``, Conv ``(*k, in/groups, out)``), ``"torch"`` (torch's and equinox's
        ``(out, in, *k)``, fans exactly torch's), a :class:`jinit.Layout` or an einsum equation.

    Returns:
      An initializer for weights of rank >= 2 in Flax layout.

    Examples:
      >>> import jax, jinit
      >>> import jinit.torch
      >>> round(jinit.law(jinit.torch.xavier_normal(), (300, 100)).std, 6)
      0.070711

    References:
      {glorot}
    """
    api = _P + "xavier_normal"
    return XavierNormal(
        check_real(api, "gain", gain, nonneg=True), layout=check_layout(api, layout)
    )


xavier_uniform.__doc__ = xavier_uniform.__doc__.replace("{glorot}", _GLOROT_REF)
xavier_normal.__doc__ = xavier_normal.__doc__.replace("{glorot}", _GLOROT_REF)


@dataclasses.dataclass(frozen=True, repr=False)
class _Kaiming(_FanScaled):
    a: float = 0.0
    mode: str = "fan_in"
    nonlinearity: str = "leaky_relu"

    _distribution: ClassVar[str] = ""

    @property
    def gain(self) -> float:
        return _gain(self._label, self.nonlinearity, self.a)

    def _scale_mode_distribution(self):
        return self.gain**2, self.mode, self._distribution


@dataclasses.dataclass(frozen=True, repr=False)
class KaimingUniform(_Kaiming):
    """``U(±gain·√(3/fan))``; see :func:`kaiming_uniform`."""

    api: ClassVar[str] = "torch.kaiming_uniform"
    _distribution: ClassVar[str] = "uniform"


@dataclasses.dataclass(frozen=True, repr=False)
class KaimingNormal(_Kaiming):
    """Untruncated ``N(0, gain²/fan)``; see :func:`kaiming_normal`."""

    api: ClassVar[str] = "torch.kaiming_normal"
    supports_complex: ClassVar[bool] = True
    _distribution: ClassVar[str] = "normal"


def _kaiming_args(api: str, a: Any, mode: Any, nonlinearity: Any) -> tuple[float, str, str]:
    a = _slope(api, "a", a)
    if isinstance(mode, str) and mode.lower() in FAN_MODES:  # torch lower-cases the mode
        mode = mode.lower()
    else:
        raise ValueError(
            f"`{api}` needs `mode` to be 'fan_in' or 'fan_out' (torch has no fan_avg; use "
            f"`jinit.torch.xavier_*` for that); got {mode!r}."
        )
    _gain(api, nonlinearity, a)  # validates the name at build time
    return a, mode, nonlinearity


@factory
def kaiming_uniform(
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    layout: Layout | str | None = None,
) -> KaimingUniform:
    r"""``torch.nn.init.kaiming_uniform_``: :math:`U(-\beta, \beta)`,
    :math:`\beta = \mathrm{gain}\sqrt{3/\mathrm{fan}}`.

    ``gain = calculate_gain(nonlinearity, a)`` and ``fan`` is ``fan_in`` or ``fan_out``
    (torch's fans, equal to :func:`jinit.fans` on the Flax layout). Variance
    :math:`\mathrm{gain}^2/\mathrm{fan}`. Note torch's defaults: ``a=0`` with
    ``'leaky_relu'`` is the ReLU gain :math:`\sqrt 2` (the 0.01 slope applies only to
    ``calculate_gain("leaky_relu")`` with no param). ``kaiming_uniform(a=math.sqrt(5))`` is
    torch's default ``Linear``/``Conv`` weight, :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`
    (also :func:`linear_weight`). For a Flax ``ConvTranspose`` kernel ``(*k, in, out)`` porting
    torch's ``ConvTranspose`` default, use ``mode="fan_out"``: torch's transposed weight is
    ``(in, out, *k)`` and its "fan_in" is ``out·prod(k)``. Real dtypes only.

    Args:
      a: the negative slope of the rectifier after this layer (used with ``'leaky_relu'``).
      mode: ``'fan_in'`` or ``'fan_out'`` (case-insensitive, as in torch).
      nonlinearity: a name from :func:`calculate_gain`.
      layout: which axes are torch's input and output maps: ``"flax"`` (default; Dense
        ``(in, out)``, Conv ``(*k, in/groups, out)``), ``"torch"`` (torch's and equinox's
        ``(out, in, *k)``, fans exactly torch's), a :class:`jinit.Layout` or an einsum equation.

    Returns:
      An initializer for weights of rank >= 2 in Flax layout.

    Raises:
      ValueError: bad ``mode``, ``nonlinearity`` or ``a``.

    Examples:
      >>> import math, jinit
      >>> import jinit.torch
      >>> init = jinit.torch.kaiming_uniform(a=math.sqrt(5))
      >>> init
      jinit.torch.kaiming_uniform(a=2.23606797749979)
      >>> round(jinit.law(init, (3, 3, 16, 32)).support[1] * 12, 6)  # 1/sqrt(fan_in=144)
      1.0

    References:
      {he}
    """
    api = _P + "kaiming_uniform"
    return KaimingUniform(
        *_kaiming_args(api, a, mode, nonlinearity), layout=check_layout(api, layout)
    )


@factory
def kaiming_normal(
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    layout: Layout | str | None = None,
) -> KaimingNormal:
    r"""``torch.nn.init.kaiming_normal_``: **untruncated**
    :math:`\mathcal N(0, \mathrm{gain}^2/\mathrm{fan})`.

    Same ``gain``/``fan`` rules as :func:`kaiming_uniform`. (``jinit.he_normal``, like jax's, is
    *truncated* at ±2σ and variance-corrected.) Complex dtypes give a circular complex normal
    with the same :math:`E|z|^2`, as torch.

    Args:
      a: the negative slope of the rectifier after this layer (used with ``'leaky_relu'``).
      mode: ``'fan_in'`` or ``'fan_out'`` (case-insensitive).
      nonlinearity: a name from :func:`calculate_gain`.
      layout: which axes are torch's input and output maps: ``"flax"`` (default; Dense
        ``(in, out)``, Conv ``(*k, in/groups, out)``), ``"torch"`` (torch's and equinox's
        ``(out, in, *k)``, fans exactly torch's), a :class:`jinit.Layout` or an einsum equation.

    Returns:
      An initializer for weights of rank >= 2 in Flax layout.

    Raises:
      ValueError: bad ``mode``, ``nonlinearity`` or ``a``.

    Examples:
      >>> import jinit
      >>> import jinit.torch
      >>> init = jinit.torch.kaiming_normal(mode="fan_out", nonlinearity="relu")
      >>> round(jinit.law(init, (64, 32)).std ** 2 * 32, 6)  # 2 / fan_out
      2.0

    References:
      {he}
    """
    api = _P + "kaiming_normal"
    return KaimingNormal(
        *_kaiming_args(api, a, mode, nonlinearity), layout=check_layout(api, layout)
    )


kaiming_uniform.__doc__ = kaiming_uniform.__doc__.replace("{he}", _HE_REF)
kaiming_normal.__doc__ = kaiming_normal.__doc__.replace("{he}", _HE_REF)


# ---------------------------------------------------------------------------------------------
# Orthogonal and sparse
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class Orthogonal(_MatrixLayout, TorchInitializer):
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
        q = haar(key, math.prod(shape) // n_out, n_out, dtype)
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
            + _layout_text(self.layout)
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
    api = _P + "orthogonal"
    return Orthogonal(check_real(api, "gain", gain, nonneg=True), layout=check_layout(api, layout))


@dataclasses.dataclass(frozen=True, repr=False)
class Sparse(_MatrixLayout, TorchInitializer):
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
        w = settle(jax.random.normal(k_value, shape, dtype)) * jnp.array(self.std, dtype)
        # Rank of each entry within its row under a random order: the `zeros` lowest are zeroed.
        # Double argsort gives distinct ranks even for tied uniforms, so the count is exact.
        u = jax.random.uniform(k_mask, shape)
        out = self.in_out(shape)[1]  # a unit's weights run along the output axis
        rank = jnp.argsort(jnp.argsort(u, axis=out), axis=out)
        return jnp.where(rank < self.zeros_per_unit(shape), jnp.zeros((), dtype), w)

    def _law(self, shape, dtype):
        s = as_sampled(self.std, dtype)
        nonzero = (
            laws.ComplexNormal(s, dtype=dtype)
            if _is_complex(dtype)
            else laws.Normal(s, dtype=dtype)
        )
        if not _is_complex(dtype) and np.dtype(dtype).itemsize == 2:
            # the values are jinit.normal(std)'s, masked: the statistics enumerate the exact
            # 16-bit law of that sampler (jinit.laws._sampled)
            nonzero = dataclasses.replace(nonzero, sampler=(jinit_normal(self.std), shape))
        out = self.in_out(shape)[1]
        return laws.SparseLaw(shape, out, self.zeros_per_unit(shape), nonzero, dtype=dtype)

    def describe(self) -> str:
        return f"N(0, {self.std:g}²), ceil({self.sparsity:g}·out) zeros per input unit" + (
            _layout_text(self.layout)
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
    api = _P + "sparse"
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
class Dirac(_MatrixLayout, _Deterministic):
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
        return "zeros; centre k//2: identity (in, out) per group" + _layout_text(self.layout)


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
    api = _P + "dirac"
    return Dirac(check_int(api, "groups", groups, minimum=1), layout=check_layout(api, layout))


# ---------------------------------------------------------------------------------------------
# Layer defaults
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class LinearWeight(_FanScaled):
    """torch's default Linear weight, ``U(±1/√fan_in)``; see :func:`linear_weight`."""

    api: ClassVar[str] = "torch.linear_weight"

    def _scale_mode_distribution(self):
        gain = _gain(self._label, "leaky_relu", _SQRT5)  # kaiming_uniform_(w, a=math.sqrt(5))
        return gain**2, "fan_in", "uniform"

    def describe(self) -> str:
        return "U(±1/√fan_in), variance 1/(3·fan_in)" + _layout_text(self.layout)


@dataclasses.dataclass(frozen=True, repr=False)
class ConvWeight(LinearWeight):
    """torch's default Conv weight, ``U(±1/√fan_in)``; see :func:`conv_weight`."""

    api: ClassVar[str] = "torch.conv_weight"


@factory
def linear_weight(*, layout: Layout | str | None = None) -> LinearWeight:
    r"""torch's default ``nn.Linear`` weight: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    torch runs ``kaiming_uniform_(w, a=math.sqrt(5))``: the leaky-ReLU gain
    :math:`\sqrt{2/(1+5)} = 1/\sqrt 3` makes the bound
    :math:`\sqrt 3 \cdot \frac{1}{\sqrt 3} / \sqrt{\mathrm{fan\_in}} = 1/\sqrt{\mathrm{fan\_in}}`,
    so the std is :math:`1/\sqrt{3\,\mathrm{fan\_in}}` — **not** the He value
    :math:`\sqrt{2/\mathrm{fan\_in}}`, and a third of LeCun's variance. Equal in law to
    ``jinit.variance_scaling(1/3, "fan_in", "uniform")`` and to
    ``kaiming_uniform(a=math.sqrt(5))``. Use it as the ``kernel_init`` of a Flax ``Dense``
    ``(in, out)``; pair it with :func:`linear_bias` and ``fan_in=in``. For a torch/equinox
    ``(out, in)`` weight pass ``layout="torch"``.

    Args:
      layout: ``"flax"`` (default, ``(in, out)``), ``"torch"`` (``(out, in)``), a
        :class:`jinit.Layout` or an einsum equation: which axes are input and output.

    Returns:
      An initializer for weights of rank >= 2.

    Examples:
      >>> import jax, jinit
      >>> import jinit.torch
      >>> w = jinit.torch.linear_weight()(jax.random.key(0), (100, 10))
      >>> bool(abs(w).max() <= 0.1)
      True
    """
    return LinearWeight(layout=check_layout(_P + "linear_weight", layout))


@factory
def conv_weight(*, layout: Layout | str | None = None) -> ConvWeight:
    r"""torch's default ``nn.Conv{1,2,3}d`` weight: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    The same rule as :func:`linear_weight` with torch's conv fan
    :math:`\mathrm{fan\_in} = (\mathrm{in}/\mathrm{groups})\prod k`, which on the Flax kernel
    ``(*k, in/groups, out)`` is ``jinit.fans(shape).fan_in``. Pair it with :func:`conv_bias`
    and the same ``fan_in``. For ``ConvTranspose`` (torch's weight is ``(in, out/groups, *k)``,
    whose "fan_in" is ``(out/groups)·prod(k)``), use ``kaiming_uniform(a=math.sqrt(5),
    mode="fan_out")`` on a Flax ``(*k, in, out)`` kernel and ``conv_bias(out * prod(k))``.
    For a torch/equinox ``(out, in/groups, *k)`` weight pass ``layout="torch"`` (fan_in
    ``shape[1]·prod(k)``, torch's own computation).

    Args:
      layout: ``"flax"`` (default, ``(*k, in/groups, out)``), ``"torch"``
        (``(out, in/groups, *k)``), a :class:`jinit.Layout` or an einsum equation.

    Returns:
      An initializer for weights of rank >= 2.

    Examples:
      >>> import jinit
      >>> import jinit.torch
      >>> # fan_in = 4 * 3 * 3 = 36, so the bound is 1/6
      >>> round(jinit.law(jinit.torch.conv_weight(), (3, 3, 4, 32)).support[1] * 6, 6)
      1.0
      >>> # the same torch Conv2d(4, 32, 3) in torch's (and equinox's) layout (32, 4, 3, 3)
      >>> init = jinit.torch.conv_weight(layout="torch")
      >>> round(jinit.law(init, (32, 4, 3, 3)).support[1] * 6, 6)
      1.0
    """
    return ConvWeight(layout=check_layout(_P + "conv_weight", layout))


@dataclasses.dataclass(frozen=True, repr=False)
class LinearBias(TorchInitializer):
    """``U(±1/√fan_in)`` (0 if fan_in is 0); see :func:`linear_bias`."""

    fan_in: int

    api: ClassVar[str] = "torch.linear_bias"

    @property
    def bound(self) -> float:
        """torch's ``1 / math.sqrt(fan_in) if fan_in > 0 else 0``."""
        return 1 / math.sqrt(self.fan_in) if self.fan_in > 0 else 0.0

    def _draw(self, key, shape, dtype):
        return jax.random.uniform(key, shape, dtype, -self.bound, self.bound)

    def _law(self, shape, dtype):
        b = as_sampled(self.bound, dtype)
        return laws.Uniform(-b, b, dtype=dtype)

    def describe(self) -> str:
        return f"U(±1/√{self.fan_in})"


@dataclasses.dataclass(frozen=True, repr=False)
class ConvBias(LinearBias):
    """torch's default conv bias, ``U(±1/√fan_in)``; see :func:`conv_bias`."""

    api: ClassVar[str] = "torch.conv_bias"


def _fan_in(api: str, fan_in: Any) -> int:
    if isinstance(fan_in, (float, np.floating)) and float(fan_in).is_integer():
        fan_in = int(fan_in)  # e.g. jinit.fans(shape).fan_in, a float
    if isinstance(fan_in, (bool, np.bool_)) or not isinstance(fan_in, (numbers.Integral)):
        raise TypeError(
            f"`{api}` needs `fan_in` to be a whole number (the weight's fan-in, e.g. "
            f"`jinit.fans(kernel_shape).fan_in`); got {fan_in!r}."
        )
    return check_int(api, "fan_in", int(fan_in), minimum=0)


@factory
def linear_bias(fan_in: int) -> LinearBias:
    r"""torch's default ``nn.Linear`` bias: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    The bound comes from the *weight's* fan-in (``in_features``), which the bias shape
    ``(out,)`` does not carry, so it is given here; torch uses bound 0 (all zeros) when
    ``fan_in == 0``. Variance :math:`1/(3\,\mathrm{fan\_in})`. Any shape.

    Args:
      fan_in: the weight's fan-in (``in_features``), an int >= 0 (an integral float such as
        ``jinit.fans(shape).fan_in`` is accepted).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit.torch
      >>> b = jinit.torch.linear_bias(fan_in=100)(jax.random.key(0), (10,))
      >>> b.shape, bool(abs(b).max() <= 0.1)
      ((10,), True)
      >>> float(abs(jinit.torch.linear_bias(0)(jax.random.key(0), (4,))).max())
      0.0
    """
    return LinearBias(_fan_in(_P + "linear_bias", fan_in))


@factory
def conv_bias(fan_in: int) -> ConvBias:
    r"""torch's default ``nn.Conv{1,2,3}d`` bias: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    ``fan_in`` is the conv weight's, :math:`(\mathrm{in}/\mathrm{groups})\prod k`, i.e.
    ``jinit.fans(kernel_shape).fan_in`` for the Flax kernel ``(*k, in/groups, out)``; 0 gives
    zeros, as in torch.

    Args:
      fan_in: the weight's fan-in, an int >= 0 (or an integral float).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> import jinit.torch
      >>> init = jinit.torch.conv_bias(int(jinit.fans((3, 3, 16, 32)).fan_in))
      >>> init
      jinit.torch.conv_bias(fan_in=144)
    """
    return ConvBias(_fan_in(_P + "conv_bias", fan_in))


@dataclasses.dataclass(frozen=True, repr=False)
class Embedding(Normal):
    """torch's default Embedding table, ``N(0, 1)``; see :func:`embedding`."""

    api: ClassVar[str] = "torch.embedding"


@factory
def embedding() -> Embedding:
    r"""torch's default ``nn.Embedding`` weight: :math:`\mathcal N(0, 1)`.

    Same ``(vocab, features)`` layout in torch and Flax, std 1 whatever the shape (Flax's own
    ``Embed`` default is :math:`1/\sqrt{\mathrm{features}}`). torch also zeroes row
    ``padding_idx`` when one is given; do that with ``w.at[padding_idx].set(0)``. Complex dtypes
    give a circular complex normal with :math:`E|z|^2 = 1`.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit.torch
      >>> jinit.torch.embedding()(jax.random.key(0), (1000, 64)).shape
      (1000, 64)
    """
    return Embedding()
