"""torch's fan-scaled distributions (``kaiming_*_``, ``xavier_*_``) on jinit's variance-scaling
core, with torch's fans for Flax layouts and its leaky-ReLU default slope."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from jinit._core._checks import check_real
from jinit._core._factory import factory
from jinit._core._layout import Layout
from jinit.initializers._variance_scaling import VarianceScaling
from jinit.torch._base import (
    FAN_HINT,
    FAN_MODES,
    TORCH_PREFIX,
    TorchInitializer,
    check_layout,
    checked_gain,
    checked_slope,
    layout_text,
)

# ---------------------------------------------------------------------------------------------
# Fan-scaled distributions (on the variance-scaling core)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class FanScaled(TorchInitializer):
    """A torch fan-scaled law, drawn by :class:`jinit.VarianceScaling`.

    ``layout`` (None: the Flax layout, input axis -2, output axis -1) says which axes of the
    weight are torch's input and output maps; the fans are :func:`jinit.fans` of those axes,
    which for ``Layout.torch()`` is torch's ``_calculate_fan_in_and_fan_out`` on its own
    ``(out, in, *k)`` weight.
    """

    layout: Layout | None = dataclasses.field(default=None, kw_only=True)

    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return FAN_HINT

    def _scale_mode_distribution(self) -> tuple[float, str, str]:
        raise NotImplementedError

    def _core(self) -> VarianceScaling:
        scale, mode, distribution = self._scale_mode_distribution()
        return VarianceScaling(scale, mode, distribution, name=self._label, layout=self.layout)

    def fans(self, shape):
        """torch's ``(fan_in, fan_out)`` of ``shape`` in this initialiser's layout."""
        return self._core().fans(shape)

    def with_layout(self, layout: Layout) -> FanScaled:
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
        return self._core().describe() + layout_text(self.layout)


@dataclasses.dataclass(frozen=True, repr=False)
class XavierUniform(FanScaled):
    """``U(±gain·√(6/(fan_in+fan_out)))``; see :func:`xavier_uniform`."""

    gain: float = 1.0

    api: ClassVar[str] = "torch.xavier_uniform"

    def _scale_mode_distribution(self):
        return self.gain**2, "fan_avg", "uniform"


@dataclasses.dataclass(frozen=True, repr=False)
class XavierNormal(FanScaled):
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
    api = TORCH_PREFIX + "xavier_uniform"
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
    api = TORCH_PREFIX + "xavier_normal"
    return XavierNormal(
        check_real(api, "gain", gain, nonneg=True), layout=check_layout(api, layout)
    )


xavier_uniform.__doc__ = xavier_uniform.__doc__.replace("{glorot}", _GLOROT_REF)
xavier_normal.__doc__ = xavier_normal.__doc__.replace("{glorot}", _GLOROT_REF)


@dataclasses.dataclass(frozen=True, repr=False)
class _Kaiming(FanScaled):
    a: float = 0.0
    mode: str = "fan_in"
    nonlinearity: str = "leaky_relu"

    _distribution: ClassVar[str] = ""

    @property
    def gain(self) -> float:
        return checked_gain(self._label, self.nonlinearity, self.a)

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
    a = checked_slope(api, "a", a)
    if isinstance(mode, str) and mode.lower() in FAN_MODES:  # torch lower-cases the mode
        mode = mode.lower()
    else:
        raise ValueError(
            f"`{api}` needs `mode` to be 'fan_in' or 'fan_out' (torch has no fan_avg; use "
            f"`jinit.torch.xavier_*` for that); got {mode!r}."
        )
    checked_gain(api, nonlinearity, a)  # validates the name at build time
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
    api = TORCH_PREFIX + "kaiming_uniform"
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
    api = TORCH_PREFIX + "kaiming_normal"
    return KaimingNormal(
        *_kaiming_args(api, a, mode, nonlinearity), layout=check_layout(api, layout)
    )


kaiming_uniform.__doc__ = kaiming_uniform.__doc__.replace("{he}", _HE_REF)
kaiming_normal.__doc__ = kaiming_normal.__doc__.replace("{he}", _HE_REF)
