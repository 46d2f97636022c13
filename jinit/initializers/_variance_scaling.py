r"""The variance-scaling core and its presets (Glorot/Xavier, He/Kaiming, LeCun).

One core, thin specialisations: every preset is a one-line call of :func:`variance_scaling`.
For real float dtypes the random calls and arithmetic are those of ``jax.nn.initializers``, so a
jinit preset and its jax namesake give bit-identical arrays for the same key.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import _random
from jinit._core._checks import (
    Axes,
    DTypeLike,
    check_axes,
    check_choice,
    check_dtype_arg,
    check_real,
)
from jinit._core._factory import refuse_initializer_call
from jinit._core._fans import fans
from jinit._core._layout import Layout, as_layout
from jinit._core._sharding import settle
from jinit.initializers._base import Initializer
from jinit.laws import _laws as laws

Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution = Literal["truncated_normal", "normal", "uniform"]
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")

# std of N(0, 1) truncated to (-2, 2): sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)); the same literal as jax.
_TRUNC_STD = 0.87962566103423978
# RMS of a unit circular complex normal with |z| < 2: sqrt((1 - 5 e^-4) / (1 - e^-4)). jax uses
# 0.95311164380491208 here, which leaves its complex truncated weights ~1.9 % high in variance.
_COMPLEX_TRUNC_RMS = laws.complex_truncated_normal_rms(2.0)

_MODE_TEXT = {
    "fan_in": "fan_in",
    "fan_out": "fan_out",
    "fan_avg": "fan_avg",
    "fan_geo_avg": "√(fan_in·fan_out)",
}


@dataclasses.dataclass(frozen=True, repr=False)
class VarianceScaling(Initializer):
    """Zero-mean weights of variance ``scale / n(mode)``; see :func:`variance_scaling`."""

    scale: float
    mode: str
    distribution: str
    in_axis: int | tuple[int, ...] = -2
    out_axis: int | tuple[int, ...] = -1
    batch_axis: int | tuple[int, ...] = ()
    dtype: np.dtype | None = None
    name: str = dataclasses.field(default="", compare=False, repr=False)
    layout: Layout | None = None

    api: ClassVar[str] = "variance_scaling"
    family: ClassVar[str] = "variance scaling"
    supports_complex: ClassVar[bool] = True

    def fans(self, shape) -> tuple[float, float]:
        if self.layout is not None:
            return self.layout.fans(shape, api=self._label)
        return fans(shape, self.in_axis, self.out_axis, self.batch_axis, api=self._label)

    def for_layout(self, layout: Layout | str) -> VarianceScaling:
        """This initialiser with its fans taken from ``layout`` instead of its axes.

        ``layout`` is a :class:`jinit.Layout` or an einsum equation (``"bd,dhk->bhk"``, kernel
        second as in Flax's ``Einsum``). A layout bound to a shape (as :func:`jinit.layouts`
        returns) also accepts the flat shape its layer calls the initialiser with.

        Examples:
          >>> import jinit
          >>> init = jinit.he_normal().for_layout("bd,dhk->bhk")
          >>> round(jinit.law(init, (64, 4, 16)).variance * 64, 9)  # fan_in = d = 64
          2.0
        """
        layout = as_layout(f"{self._label}.for_layout", layout)
        if layout is None:
            raise TypeError(
                f"`{self._label}.for_layout` needs a `jinit.Layout` or an einsum equation str; "
                f"got None."
            )
        if (self.in_axis, self.out_axis, self.batch_axis) != (-2, -1, ()):
            raise ValueError(
                f"`{self._label}.for_layout`: this initialiser has explicit axes (in_axis="
                f"{self.in_axis!r}, out_axis={self.out_axis!r}, batch_axis={self.batch_axis!r}); "
                f"a layout says which axes are which. Build it without axes."
            )
        return dataclasses.replace(self, layout=layout)

    def with_layout(self, layout: Layout) -> VarianceScaling:
        """This initialiser with the fans of ``layout`` (a bound :class:`jinit.Layout`).

        Returns ``self`` unchanged when it was given axes or a layout explicitly (the user's
        choice wins), or when its own axes already give the layout's fans on the shape the
        layer calls it with (so the draw stays bit-identical with the layer's own
        ``kernel_init=self``).
        """
        if self.layout is not None or (self.in_axis, self.out_axis, self.batch_axis) != (
            -2,
            -1,
            (),
        ):
            return self
        want = layout.fans()
        try:
            own = fans(layout.call_shape(), api=self._label)
        except ValueError:
            own = None
        if own is not None and all(
            math.isclose(a, b, rel_tol=1e-12) for a, b in zip(own, want, strict=True)
        ):
            return self
        return dataclasses.replace(self, layout=layout)

    def __repr__(self) -> str:
        if self.layout is not None:
            base = dataclasses.replace(self, layout=None)
            return f"{base!r}.for_layout({self.layout!r})"
        if not self.name:
            return super().__repr__()
        defaults = {"in_axis": -2, "out_axis": -1, "batch_axis": (), "dtype": None}
        args = [
            f"{k}={'jnp.' + v.name if isinstance(v, np.dtype) else repr(v)}"
            for k, d in defaults.items()
            if (v := getattr(self, k)) != d
        ]
        return f"jinit.{self.name}({', '.join(args)})"

    def _check_shape(self, shape):
        # Validates rank and axes even for empty shapes (whose fans are undefined).
        self.fans(tuple(max(d, 1) for d in shape))

    def _variance(self, shape, dtype) -> jax.Array:
        denominator = self.fans(shape).denominator(self.mode)
        return jnp.array(self.scale / denominator, dtype=dtype)

    def _sample(self, key, shape, dtype):
        variance = self._variance(shape, dtype)
        real = jnp.issubdtype(dtype, jnp.floating)
        if self.distribution == "truncated_normal":
            if real:
                stddev = jnp.sqrt(variance) / jnp.array(_TRUNC_STD, dtype)
                return _random.truncated_normal(key, -2, 2, shape, dtype) * stddev
            stddev = jnp.sqrt(variance) / jnp.array(_COMPLEX_TRUNC_RMS, dtype)
            return settle(_complex_truncated_normal(key, 2.0, shape, dtype)) * stddev
        if self.distribution == "normal":
            return settle(_random.normal(key, shape, dtype)) * jnp.sqrt(variance)
        if real:
            return _random.uniform(key, shape, dtype, -1) * jnp.sqrt(3 * variance)
        return settle(_complex_disk(key, shape, dtype)) * jnp.sqrt(variance)

    def effective_std(self, shape, dtype=None) -> float:
        """The scale the sampler multiplies by, computed in ``dtype`` exactly as it does."""
        shape, dtype = self._check_call(shape, dtype)
        variance = self._variance(shape, dtype)
        real = jnp.issubdtype(dtype, jnp.floating)
        if self.distribution == "truncated_normal":
            c = _TRUNC_STD if real else _COMPLEX_TRUNC_RMS
            s = jnp.sqrt(variance) / jnp.array(c, dtype)
        elif self.distribution == "uniform" and real:
            s = jnp.sqrt(3 * variance)
        else:
            s = jnp.sqrt(variance)
        return float(np.abs(np.asarray(s).astype(np.complex128 if not real else np.float64)))

    def _law(self, shape, dtype):
        s = self.effective_std(shape, dtype)
        real = jnp.issubdtype(dtype, jnp.floating)
        if self.distribution == "truncated_normal":
            if real:
                return laws.TruncatedNormal(s, -2.0, 2.0, dtype=dtype)
            return laws.ComplexTruncatedNormal(s, 2.0, dtype=dtype)
        if self.distribution == "normal":
            return laws.Normal(s, dtype=dtype) if real else laws.ComplexNormal(s, dtype=dtype)
        if real:
            return laws.Uniform(-s, s, dtype=dtype)
        return laws.ComplexDiskUniform(s * math.sqrt(2.0), dtype=dtype)

    def describe(self) -> str:
        var = f"{self.scale:g}/{_MODE_TEXT[self.mode]}"
        if self.distribution == "normal":
            return f"N(0, {var})"
        if self.distribution == "uniform":
            return f"U(±√(3·{var})), variance {var}"
        return f"N(0, {var}) truncated ±2σ, variance corrected to {var}"


def _complex_truncated_normal(key, radius: float, shape, dtype) -> jax.Array:
    r"""Circular complex normal (:math:`E|z|^2=1` before truncation) conditioned on |z| < radius.

    Inverse-CDF sampling of :math:`|z|^2`, a truncated Exp(1), and a uniform phase; the same
    uniform draws as jax's complex branch. The modulus is computed in real arithmetic (jax
    takes the log of a complex number, whose fused and unfused kernels differ in the last bits,
    so ``jit`` would not reproduce the eager values).
    """
    k_r, k_theta = jax.random.split(key)
    real = jnp.finfo(dtype).dtype
    t = (1 - jnp.exp(jnp.array(-(radius**2), real))) * _random.uniform(k_r, shape, real)
    r = jnp.sqrt(-jnp.log1p(-t)).astype(dtype)
    theta = 2 * np.pi * _random.uniform(k_theta, shape, real).astype(dtype)
    return r * jnp.exp(1j * theta)


def _complex_disk(key, shape, dtype) -> jax.Array:
    r"""Uniform on the disk of radius :math:`\sqrt 2` (so :math:`E|z|^2 = 1`)."""
    k_r, k_theta = jax.random.split(key)
    real = jnp.finfo(dtype).dtype
    r = jnp.sqrt(2 * _random.uniform(k_r, shape, real)).astype(dtype)
    theta = 2 * np.pi * _random.uniform(k_theta, shape, real).astype(dtype)
    return r * jnp.exp(1j * theta)


def variance_scaling(
    scale: float,
    mode: Mode,
    distribution: Distribution,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
    *,
    layout: Layout | str | None = None,
) -> VarianceScaling:
    r"""Builds an initializer whose variance adapts to the shape of the weights.

    Zero-mean draws of variance :math:`\mathrm{scale}/n` where :math:`n` is, by ``mode``,
    ``fan_in``, ``fan_out``, :math:`(\mathrm{fan\_in}+\mathrm{fan\_out})/2` (``fan_avg``) or
    :math:`\sqrt{\mathrm{fan\_in}\,\mathrm{fan\_out}}` (``fan_geo_avg``); fans come from
    :func:`jinit.fans`. Distributions:

    * ``"truncated_normal"``: :math:`\mathcal N(0, 1)` truncated to (-2, 2), divided by its std
      0.8796256610342398 and multiplied by :math:`\sqrt{\mathrm{scale}/n}`. Complex: modulus
      truncated at 2, divided by its exact RMS 0.9619654 (jax uses 0.9531 and overshoots the
      variance by 1.9 %; jinit's variance is exact).
    * ``"normal"``: untruncated :math:`\mathcal N(0, \mathrm{scale}/n)` (circular for complex).
    * ``"uniform"``: :math:`U(-a, a)` with :math:`a = \sqrt{3\,\mathrm{scale}/n}`; complex:
      uniform on a disk with the same :math:`E|z|^2`.

    Hyper-parameters are checked here, so a typo fails where it is written.

    Args:
      scale: the variance multiplier (finite, >= 0).
      mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``.
      distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes of stacked independent weights (left out of the fans).
      dtype: the initializer's default dtype.
      layout: instead of the axes: ``"flax"`` (the default axes), ``"torch"`` (torch's and
        equinox's ``(out, in, *k)``: fans of torch's ``_calculate_fan_in_and_fan_out``), a
        :class:`jinit.Layout` or an einsum equation (the same names as ``jinit.torch.*``).

    Where a layer calls its ``kernel_init`` with an ambiguous raw shape, tell the initialiser
    the layout with :meth:`VarianceScaling.for_layout` (a :class:`jinit.Layout` or an einsum
    equation): ``nnx.Einsum("bd,dhk->bhk", ..., kernel_init=jinit.he_normal().for_layout(
    "bd,dhk->bhk"))`` counts fan_in = d, not d·h.

    Returns:
      An initializer ``init(key, shape, dtype=None, out_sharding=None)``.

    Raises:
      ValueError: bad ``mode``, ``distribution`` or ``scale`` (at build time); rank < 2 with the
        default ``in_axis`` or an axis out of range (at call time).
      TypeError: a non-float dtype.

    Examples:
      >>> import jax, jinit
      >>> init = jinit.variance_scaling(2.0, "fan_in", "normal")
      >>> init(jax.random.key(0), (3, 3, 16, 32)).shape
      (3, 3, 16, 32)
      >>> round(jinit.law(init, (3, 3, 16, 32)).variance * 144, 6)
      2.0

    References:
      Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks", 2010. He et al., "Delving Deep into Rectifiers", 2015.
    """
    return _build(
        "variance_scaling",
        scale,
        mode,
        distribution,
        in_axis,
        out_axis,
        batch_axis,
        dtype,
        layout=layout,
    )


def _build(
    api, scale, mode, distribution, in_axis, out_axis, batch_axis, dtype, name="", layout=None
):
    """Validates hyper-parameters in the name of ``api`` (a preset's own name, or the core's)."""
    refuse_initializer_call(
        f"jinit.{api}", (in_axis, out_axis) if name else (scale, mode), not name
    )
    axes = (
        check_axes(api, "in_axis", in_axis),
        check_axes(api, "out_axis", out_axis),
        check_axes(api, "batch_axis", batch_axis),
    )
    # "flax" is the default axes (as in jinit.torch.*): left to adapt to a layer's layout
    layout = None if isinstance(layout, str) and layout == "flax" else as_layout(api, layout)
    if layout is not None and axes != (-2, -1, ()):
        raise ValueError(
            f"`{api}` got both `layout={layout!r}` and explicit axes (in_axis={axes[0]!r}, "
            f"out_axis={axes[1]!r}, batch_axis={axes[2]!r}); a layout says which axes are "
            f"which. Pass one or the other."
        )
    return VarianceScaling(
        check_real(api, "scale", scale, nonneg=True),
        check_choice(api, "mode", mode, MODES),
        check_choice(api, "distribution", distribution, DISTRIBUTIONS),
        *axes,
        check_dtype_arg(api, dtype, allow_complex=True),
        name=name,
        layout=layout,
    )


def _preset(name: str, scale: float, mode: str, distribution: str, doc: str, ref: str):
    def builder(
        in_axis: Axes = -2,
        out_axis: Axes = -1,
        batch_axis: Axes = (),
        dtype: DTypeLike | None = None,
        *,
        layout: Layout | str | None = None,
    ) -> VarianceScaling:
        return _build(
            name,
            scale,
            mode,
            distribution,
            in_axis,
            out_axis,
            batch_axis,
            dtype,
            name=name,
            layout=layout,
        )

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"""{doc}

    :func:`jinit.variance_scaling` with ``scale={scale}``, ``mode="{mode}"``,
    ``distribution="{distribution}"``: variance {scale:g}/{mode}.

    Args:
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes of stacked independent weights.
      dtype: the initializer's default dtype.
      layout: instead of the axes: ``"flax"`` (the default axes), ``"torch"`` (``(out, in,
        *k)``, torch's fans), a :class:`jinit.Layout` or an einsum equation.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> jinit.{name}()(jax.random.key(0), (64, 32)).shape
      (64, 32)

    References:
      {ref}
    """
    return builder


_GLOROT = (
    'Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural '
    'networks", AISTATS 2010.'
)
_HE = 'He et al., "Delving Deep into Rectifiers", ICCV 2015.'
_LECUN = (
    'LeCun et al., "Efficient BackProp", 1998; Klambauer et al., "Self-Normalizing Neural '
    'Networks", 2017.'
)
_TRUNC = "truncated at ±2σ, variance-corrected"

glorot_uniform = _preset(
    "glorot_uniform",
    1.0,
    "fan_avg",
    "uniform",
    "Builds a Glorot (Xavier) uniform initializer.",
    _GLOROT,
)
glorot_normal = _preset(
    "glorot_normal",
    1.0,
    "fan_avg",
    "truncated_normal",
    f"Builds a Glorot (Xavier) normal initializer ({_TRUNC}).",
    _GLOROT,
)
lecun_uniform = _preset(
    "lecun_uniform", 1.0, "fan_in", "uniform", "Builds a LeCun uniform initializer.", _LECUN
)
lecun_normal = _preset(
    "lecun_normal",
    1.0,
    "fan_in",
    "truncated_normal",
    f"Builds a LeCun normal initializer ({_TRUNC}; Flax's default ``kernel_init``).",
    _LECUN,
)
he_uniform = _preset(
    "he_uniform", 2.0, "fan_in", "uniform", "Builds a He (Kaiming) uniform initializer.", _HE
)
he_normal = _preset(
    "he_normal",
    2.0,
    "fan_in",
    "truncated_normal",
    f"Builds a He (Kaiming) normal initializer ({_TRUNC}).",
    _HE,
)

xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal
