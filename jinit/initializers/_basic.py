"""Constants and simple distributions: constant, zeros, ones, uniform, normal, truncated normal.

Same signatures, defaults, random calls and arithmetic as ``jax.nn.initializers``, so for real
float dtypes the same key gives a bit-identical array.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtri

from jinit._core import _random
from jinit._core._checks import (
    DTypeError,
    DTypeLike,
    canonical_shape,
    check_dtype_arg,
    check_real,
    default_float_dtype,
    xla_supports,
)
from jinit._core._factory import REQUIRED, factory, missing_call_args
from jinit._core._sampling import as_sampled
from jinit._core._sharding import place, settle
from jinit.initializers._base import Initializer, with_protocol_signature
from jinit.laws import _laws as laws


def _freeze(value: Any) -> Any:
    """A hashable copy of a constant: Python scalars stay, arrays become nested tuples."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Number) or (np.ndim(value) == 0 and not isinstance(value, str)):
        if isinstance(value, jax.core.Tracer):
            raise TypeError(
                "`constant` needs a concrete `value`, not a traced array; build the initialiser "
                "outside `jit`."
            )
        v = np.asarray(value).item()
        if isinstance(v, complex) or isinstance(v, float):
            return v
        return v
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise TypeError(
            f"`constant` needs a number or an array as `value`; got {value!r}. Pass e.g. "
            f"`constant(0.5)` or `constant(np.ones((4, 3)))`."
        ) from e
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(
            f"`constant` needs a number or an array as `value`; got {value!r}. Pass e.g. "
            f"`constant(0.5)` or `constant(np.ones((4, 3)))`."
        )

    def tup(x):
        return tuple(tup(y) for y in x) if isinstance(x, list) else x

    return tup(arr.tolist())


@dataclasses.dataclass(frozen=True, repr=False)
class Constant(Initializer):
    """Fills the array with ``value`` (broadcast to the shape). The key is ignored."""

    value: Any = 0.0
    dtype: np.dtype | None = None
    name: str = dataclasses.field(default="constant", compare=False, repr=False)

    api: ClassVar[str] = "constant"
    family: ClassVar[str] = "constant"
    supports_complex: ClassVar[bool] = True

    def _check_call(self, shape, dtype):
        shape = canonical_shape(self._label, shape)
        if dtype is None:
            dtype = self.dtype
        dtype = default_float_dtype() if dtype is None else _const_dtype(dtype, self._label)
        if np.iscomplexobj(np.asarray(self.value)) and not jnp.issubdtype(
            dtype, jnp.complexfloating
        ):
            raise TypeError(
                f"`{self.api}` holds the complex value {self.value!r} but was asked for dtype "
                f"{dtype.name}; pass a complex dtype such as complex64."
            )
        _check_representable(self._label, self.value, dtype)
        try:
            np.broadcast_shapes(np.shape(self.value), shape)
        except ValueError:
            raise ValueError(
                f"`{self.api}` cannot broadcast its value of shape {np.shape(self.value)} to "
                f"shape {shape}. Pass a scalar, or an array whose shape broadcasts to {shape}."
            ) from None
        return shape, dtype

    @with_protocol_signature
    def __call__(self, key=REQUIRED, shape=REQUIRED, dtype=None, out_sharding=None):
        if key is REQUIRED or shape is REQUIRED:
            raise missing_call_args(self, key, shape)
        del key  # the key is ignored, as in jax.nn.initializers.constant
        shape, dtype = self._check_call(shape, dtype)
        return place(
            jnp.full(shape, jnp.asarray(self.value), dtype=dtype), out_sharding, self._label
        )

    def _law(self, shape, dtype):
        value = np.full(shape, np.asarray(self.value), dtype=dtype)
        return laws.DeterministicLaw(value, dtype=dtype)

    def describe(self) -> str:
        return f"constant {self.value!r}"

    def __repr__(self) -> str:
        if self.name != "constant":
            return f"jinit.{self.name}"
        return super().__repr__()


def _check_representable(api: str, value: Any, dtype: np.dtype) -> None:
    """Refuses a dtype jax cannot hold, or one in which a finite ``value`` becomes inf/NaN
    (``constant(1000.0)`` in float8_e4m3fn, ``zeros`` in float8_e8m0fnu, which has no 0)."""
    if not xla_supports(dtype):
        raise DTypeError(
            f"`{api}` got dtype {dtype.name}, which jax cannot create arrays of (XLA has no "
            f"such type on this backend). Pass float8_e4m3fn, bfloat16 or float32."
        )
    if not jnp.issubdtype(dtype, jnp.inexact):
        return
    v = np.asarray(value)
    if jnp.issubdtype(dtype, jnp.complexfloating) or np.iscomplexobj(v):
        return
    v = v.astype(np.float64)
    with np.errstate(all="ignore"):
        cast = v.astype(dtype).astype(np.float64)
    lost = np.isfinite(v) & ~np.isfinite(cast)
    if lost.any():
        bad = float(v[lost].flat[0])
        raise ValueError(
            f"`{api}` cannot hold the value {bad!r} in dtype {dtype.name} (it becomes "
            f"{float(cast[lost].flat[0])!r}; the dtype's finite range is "
            f"±{float(jnp.finfo(dtype).max):g}{' and it has no 0' if bad == 0 else ''}). Pass a "
            f"wider dtype such as float32, or a value inside that range."
        )


@factory
def constant(value: Any, dtype: DTypeLike | None = None) -> Constant:
    """Builds an initializer that returns arrays full of a constant ``value``.

    Args:
      value: a number (real, complex or bool) or an array broadcastable to the shape.
      dtype: the initializer's default dtype.

    Returns:
      An initializer; the key is ignored. Its law is the exact array.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> jinit.constant(-7)(jax.random.key(42), (2, 3), jnp.float32)
      Array([[-7., -7., -7.],
             [-7., -7., -7.]], dtype=float32)
    """
    return Constant(_freeze(value), _const_dtype(dtype))


def _const_dtype(dtype, api: str = "constant"):
    if dtype is None:
        return None
    try:
        dt = np.dtype(jnp.dtype(dtype))
    except TypeError as e:
        raise TypeError(
            f"`{api}` got dtype {dtype!r}, which is not a dtype. Pass e.g. `jnp.float32`."
        ) from e
    if dt.kind in "OSUMm" or (dt.kind == "V" and not jnp.issubdtype(dt, jnp.inexact)):
        raise TypeError(
            f"`{api}` got dtype {dt}, which jax arrays cannot hold (jax supports numbers and "
            f"bools). Pass e.g. `jnp.float32`."
        )
    return dt


zeros = Constant(0.0, name="zeros")
"""An initializer that returns zeros (``jinit.zeros(key, shape, dtype)``; the key is ignored)."""

ones = Constant(1.0, name="ones")
"""An initializer that returns ones (``jinit.ones(key, shape, dtype)``; the key is ignored)."""


@factory
def zeros_init() -> Constant:
    """Flax's ``zeros_init()``: returns :data:`jinit.zeros`."""
    return zeros


@factory
def ones_init() -> Constant:
    """Flax's ``ones_init()``: returns :data:`jinit.ones`."""
    return ones


@dataclasses.dataclass(frozen=True, repr=False)
class Uniform(Initializer):
    r"""``U[0, scale)``: ``random.uniform(key, shape, dtype) * scale``."""

    scale: float = 1e-2
    dtype: np.dtype | None = None

    api: ClassVar[str] = "uniform"
    family: ClassVar[str] = "simple"

    def _sample(self, key, shape, dtype):
        return _random.uniform(key, shape, dtype) * jnp.array(self.scale, dtype)

    def _law(self, shape, dtype):
        return laws.Uniform(0.0, as_sampled(self.scale, dtype), dtype=dtype)

    def describe(self) -> str:
        return f"U[0, {self.scale:g})"


@factory
def uniform(scale: float = 1e-2, dtype: DTypeLike | None = None) -> Uniform:
    r"""Builds an initializer of real uniform arrays on :math:`[0, \mathrm{scale})`.

    Note the range is one-sided, as in ``jax.nn.initializers.uniform`` (for a symmetric range
    use :func:`jinit.torch.uniform` or :func:`jinit.variance_scaling` with ``"uniform"``).
    Law: mean ``scale/2``, variance ``scale**2/12``.

    Args:
      scale: the upper bound (finite, >= 0).
      dtype: the initializer's default dtype (real floating).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.uniform(0.5)(jax.random.key(0), (1000,))
      >>> bool((w >= 0).all() and (w < 0.5).all())
      True
    """
    return Uniform(
        check_real("uniform", "scale", scale, nonneg=True),
        check_dtype_arg("uniform", dtype, allow_complex=False),
    )


@dataclasses.dataclass(frozen=True, repr=False)
class Normal(Initializer):
    r""":math:`\mathcal N(0, \mathrm{stddev}^2)`; complex: :math:`E|z|^2 = \mathrm{stddev}^2`."""

    stddev: float = 1e-2
    dtype: np.dtype | None = None

    api: ClassVar[str] = "normal"
    family: ClassVar[str] = "simple"
    supports_complex: ClassVar[bool] = True

    def _sample(self, key, shape, dtype):
        return settle(_random.normal(key, shape, dtype)) * jnp.array(self.stddev, dtype)

    def _law(self, shape, dtype):
        s = as_sampled(self.stddev, dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            return laws.ComplexNormal(s, dtype=dtype)
        return laws.Normal(s, dtype=dtype)

    def describe(self) -> str:
        return f"N(0, {self.stddev:g}²)"


@factory
def normal(stddev: float = 1e-2, dtype: DTypeLike | None = None) -> Normal:
    r"""Builds an initializer of normal arrays :math:`\mathcal N(0, \mathrm{stddev}^2)`.

    For complex dtypes the draw is circular: each part has variance ``stddev**2 / 2``.

    Args:
      stddev: the standard deviation (finite, >= 0).
      dtype: the initializer's default dtype.

    Examples:
      >>> import jax, jinit
      >>> jinit.normal(0.02)(jax.random.key(0), (768, 3072)).shape
      (768, 3072)
    """
    return Normal(
        check_real("normal", "stddev", stddev, nonneg=True),
        check_dtype_arg("normal", dtype, allow_complex=True),
    )


@dataclasses.dataclass(frozen=True, repr=False)
class TruncatedNormal(Initializer):
    r"""``stddev`` times N(0, 1) truncated to ``(lower, upper)`` (bounds in units of stddev)."""

    stddev: float = 1e-2
    dtype: np.dtype | None = None
    lower: float = -2.0
    upper: float = 2.0

    api: ClassVar[str] = "truncated_normal"
    family: ClassVar[str] = "simple"

    def _sample(self, key, shape, dtype):
        if jax_resolves(self.lower, self.upper, dtype):
            z = _random.truncated_normal(key, self.lower, self.upper, shape, dtype)
            return z * jnp.array(self.stddev, dtype)
        # An interval in a tail: jax's erf-space draw would take only a few values there.
        work = np.dtype(np.float64) if np.dtype(dtype).itemsize == 8 else np.dtype(np.float32)
        z = tail_truncated_normal(key, self.lower, self.upper, shape, work)
        scale = jnp.array(self.stddev, dtype).astype(work)  # the law's (rounded) stddev
        return (z * scale).astype(dtype)

    def rounds_float32_draw(self, dtype) -> bool:
        """Whether a 16-bit draw is a float32 draw rounded once (intervals in a tail)."""
        return np.dtype(dtype).itemsize == 2 and not jax_resolves(self.lower, self.upper, dtype)

    def _law(self, shape, dtype):
        return laws.TruncatedNormal(
            as_sampled(self.stddev, dtype), self.lower, self.upper, dtype=dtype
        )

    def describe(self) -> str:
        return (
            f"N(0, {self.stddev:g}²) truncated to ({self.lower:g}σ, {self.upper:g}σ), "
            f"std not corrected"
        )


@factory
def truncated_normal(
    stddev: float = 1e-2,
    dtype: DTypeLike | None = None,
    lower: float = -2.0,
    upper: float = 2.0,
) -> TruncatedNormal:
    r"""Builds an initializer of truncated-normal arrays.

    Draws :math:`\mathrm{stddev}\cdot Z`, :math:`Z \sim \mathcal N(0,1)` conditioned on
    ``lower < Z < upper``. As in jax, ``stddev`` is that of the *untruncated* normal: with the
    default ±2 the actual std is :math:`0.8796\,\mathrm{stddev}` (the variance-scaling
    initialisers correct for this; this one does not).

    Args:
      stddev: scale of the untruncated normal (finite, >= 0).
      dtype: the initializer's default dtype (real floating).
      lower: lower bound in units of ``stddev``.
      upper: upper bound in units of ``stddev``; must exceed ``lower``.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.truncated_normal(1.0)(jax.random.key(0), (10000,))
      >>> bool((abs(w) < 2).all())
      True
    """
    api = "truncated_normal"
    stddev = check_real(api, "stddev", stddev, nonneg=True)
    lower = _bound(api, "lower", lower)
    upper = _bound(api, "upper", upper)
    if not lower < upper:
        fix = "Swap them." if lower > upper else "Widen the interval (lower < upper)."
        raise ValueError(
            f"`{api}` needs `lower` < `upper`; got lower={lower}, upper={upper}. {fix}"
        )
    if not laws.truncated_mass(lower, upper) > 0:
        raise ValueError(
            f"`{api}`: the interval (lower={lower}, upper={upper}) lies so far from 0 (in units "
            f"of stddev) that it holds no probability mass in float64. Keep the bounds within "
            f"about 37 of 0."
        )
    return TruncatedNormal(stddev, check_dtype_arg(api, dtype, allow_complex=False), lower, upper)


def jax_resolves(lower: float, upper: float, dtype: Any) -> bool:
    r"""Whether ``jax.random.truncated_normal(key, lower, upper, shape, dtype)`` is accurate.

    jax draws :math:`u` uniformly between :math:`\mathrm{erf}(\ell/\sqrt2)` and
    :math:`\mathrm{erf}(h/\sqrt2)` in ``dtype`` and returns :math:`\sqrt2\,\mathrm{erf}^{-1}(u)`.
    Near :math:`|u| = 1` (an interval in a tail) that range holds few values of the dtype: for
    (5, 6) in float32 about 10, so the draws are coarse or constant. It counts as accurate when
    the range holds at least :math:`2^{\min(16, p)}` steps of the dtype (:math:`p` its mantissa
    bits): the CDF error is then below :math:`2^{-16}` in float32/float64 and within the
    dtype's own resolution in bfloat16/float16 (the default ±2 keeps jax's bits in every
    dtype).
    """
    dt = np.dtype(jnp.finfo(dtype).dtype)
    fi = jnp.finfo(dt)

    def erf_in_dtype(x: float) -> float:
        x = float(np.asarray(x, dt).astype(np.float64)) if math.isfinite(x) else x
        return float(np.asarray(math.erf(x / math.sqrt(2.0)), dt).astype(np.float64))

    ua, ub = erf_in_dtype(lower), erf_in_dtype(upper)
    top = max(abs(ua), abs(ub))
    if not ub > ua or top == 0.0:
        return False
    ulp = 2.0 ** (math.floor(math.log2(top)) - fi.nmant)
    return (ub - ua) / ulp >= 2.0 ** min(16, fi.nmant)


def log_ndtr64(x: float) -> float:
    r""":math:`\log\Phi(x)` in float64 on the host, accurate far into the lower tail."""
    if x == -math.inf:
        return -math.inf
    if x > -30.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    z = 1.0 / (x * x)  # asymptotic series of the Mills ratio, error < 1e-12 for x <= -30
    series = 1.0 - z * (1.0 - z * (3.0 - z * (15.0 - 105.0 * z)))
    return -0.5 * x * x - math.log(-x) - 0.5 * math.log(2 * math.pi) + math.log(series)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def tail_truncated_normal(key, lower: float, upper: float, shape, work: np.dtype) -> jax.Array:
    r"""Standard normal conditioned on ``lower < Z < upper``, accurate in either tail.

    Inverse CDF in log space. The interval is mirrored into the lower half (:math:`Z \to -Z`
    when :math:`\ell + h > 0`), where :math:`\log\Phi` keeps its relative precision. With
    :math:`L_\ell = \log\Phi(\ell)`, :math:`L_h = \log\Phi(h)` (host, float64) and
    :math:`c = 1 - e^{L_\ell - L_h}`, a uniform :math:`u \in [0, 1)` gives

    .. math::
        \log p = L_h + \log(1 - u c), \qquad Z = \Phi^{-1}(p),

    i.e. :math:`p = \Phi(h) - u(\Phi(h) - \Phi(\ell))`, never 0. :math:`\Phi^{-1}` starts
    from ``ndtri`` (or, below :math:`\log p = -80`, from
    :math:`-\sqrt{t - \log t}` with :math:`t = -2\log p - \log 2\pi`) and takes three
    Newton steps on :math:`\log\Phi(Z) = \log p`, whose slope is
    :math:`\phi(Z)/\Phi(Z)`. The result is clipped to the interval. Values keep ``work``'s
    relative precision for bounds up to ~37 standard deviations out. One compiled program
    per (bounds, shape, dtype), so an eager call gives the same bits as one under ``jit``.
    """
    flip = lower + upper > 0
    lo, hi = (-upper, -lower) if flip else (lower, upper)
    l_lo, l_hi = log_ndtr64(lo), log_ndtr64(hi)
    c = -math.expm1(l_lo - l_hi) if math.isfinite(l_lo) else 1.0
    u = settle(_random.uniform(key, shape, work))
    logp = jnp.array(l_hi, work) + jnp.log1p(-u * jnp.array(c, work))
    half_log_2pi = jnp.array(0.5 * math.log(2 * math.pi), work)
    t = jnp.maximum(-2.0 * logp - 2.0 * half_log_2pi, 1.0)
    start = jnp.where(
        logp > -80.0, ndtri(jnp.exp(jnp.maximum(logp, -80.0))), -jnp.sqrt(t - jnp.log(t))
    )
    z = start
    for _ in range(3):
        lz = log_ndtr(z)
        slope = jnp.exp(-0.5 * z * z - half_log_2pi - lz)
        z = z - (lz - logp) / slope
    z = jnp.clip(jnp.where(jnp.isfinite(z), z, start), lo, hi)
    return -z if flip else z


def _bound(api: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"`{api}` needs `{name}` to be a real number; got {value!r}.")
    v = float(value)
    if v != v:
        raise ValueError(
            f"`{api}` needs `{name}` to be a number; got nan. Pass a float (±inf is allowed)."
        )
    return v
