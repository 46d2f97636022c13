"""Constants and simple distributions: constant, zeros, ones, uniform, normal, truncated normal.

Same signatures, defaults, random calls and arithmetic as ``jax.nn.initializers``, so for real
float dtypes the same key gives a bit-identical array.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._src import laws
from jinit._src.base import (
    DTypeLike,
    Initializer,
    canonical_shape,
    check_dtype_arg,
    check_real,
    default_float_dtype,
    settle,
)


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
        shape = canonical_shape(self.api, shape)
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
        try:
            np.broadcast_shapes(np.shape(self.value), shape)
        except ValueError:
            raise ValueError(
                f"`{self.api}` cannot broadcast its value of shape {np.shape(self.value)} to "
                f"shape {shape}. Pass a scalar, or an array whose shape broadcasts to {shape}."
            ) from None
        return shape, dtype

    def __call__(self, key, shape, dtype=None, out_sharding=None):
        del key  # the key is ignored, as in jax.nn.initializers.constant
        from jinit._src.base import place

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
        return np.dtype(jnp.dtype(dtype))
    except TypeError as e:
        raise TypeError(
            f"`{api}` got dtype {dtype!r}, which is not a dtype. Pass e.g. `jnp.float32`."
        ) from e


zeros = Constant(0.0, name="zeros")
"""An initializer that returns zeros (``jinit.zeros(key, shape, dtype)``; the key is ignored)."""

ones = Constant(1.0, name="ones")
"""An initializer that returns ones (``jinit.ones(key, shape, dtype)``; the key is ignored)."""


def zeros_init() -> Constant:
    """Flax's ``zeros_init()``: returns :data:`jinit.zeros`."""
    return zeros


def ones_init() -> Constant:
    """Flax's ``ones_init()``: returns :data:`jinit.ones`."""
    return ones


def _rounded(x: float, dtype: np.dtype) -> float:
    """``x`` as the sampler sees it: rounded to ``dtype`` (its real part's dtype)."""
    real = np.dtype(jnp.finfo(dtype).dtype)
    return float(np.asarray(x, dtype=real).astype(np.float64))


@dataclasses.dataclass(frozen=True, repr=False)
class Uniform(Initializer):
    r"""``U[0, scale)``: ``random.uniform(key, shape, dtype) * scale``."""

    scale: float = 1e-2
    dtype: np.dtype | None = None

    api: ClassVar[str] = "uniform"
    family: ClassVar[str] = "simple"

    def _sample(self, key, shape, dtype):
        return jax.random.uniform(key, shape, dtype) * jnp.array(self.scale, dtype)

    def _law(self, shape, dtype):
        return laws.Uniform(0.0, _rounded(self.scale, dtype), dtype=dtype)

    def describe(self) -> str:
        return f"U[0, {self.scale:g})"


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
        return settle(jax.random.normal(key, shape, dtype)) * jnp.array(self.stddev, dtype)

    def _law(self, shape, dtype):
        s = _rounded(self.stddev, dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            return laws.ComplexNormal(s, dtype=dtype)
        return laws.Normal(s, dtype=dtype)

    def describe(self) -> str:
        return f"N(0, {self.stddev:g}²)"


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
        return jax.random.truncated_normal(key, self.lower, self.upper, shape, dtype) * jnp.array(
            self.stddev, dtype
        )

    def _law(self, shape, dtype):
        return laws.TruncatedNormal(
            _rounded(self.stddev, dtype), self.lower, self.upper, dtype=dtype
        )

    def describe(self) -> str:
        return (
            f"N(0, {self.stddev:g}²) truncated to ({self.lower:g}σ, {self.upper:g}σ), "
            f"std not corrected"
        )


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
    return TruncatedNormal(stddev, check_dtype_arg(api, dtype, allow_complex=False), lower, upper)


def _bound(api: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"`{api}` needs `{name}` to be a real number; got {value!r}.")
    v = float(value)
    if v != v:
        raise ValueError(
            f"`{api}` needs `{name}` to be a number; got nan. Pass a float (±inf is allowed)."
        )
    return v


def _entries():
    from jinit._src.catalogue import Entry

    return [
        Entry("zeros", lambda: zeros, "constant", (4, 3), "0 (exact)", "any"),
        Entry("ones", lambda: ones, "constant", (4, 3), "1 (exact)", "any"),
        Entry("constant", lambda: constant(0.5), "constant", (4, 3), "value (exact)", "any"),
        Entry("uniform", uniform, "simple", (64, 32), "U[0, scale), scale=1e-2"),
        Entry("normal", normal, "simple", (64, 32), "N(0, stddev²), stddev=1e-2", "real+complex"),
        Entry(
            "truncated_normal",
            truncated_normal,
            "simple",
            (64, 32),
            "N(0, stddev²) truncated to (lower·σ, upper·σ), std not corrected (0.88·stddev)",
        ),
    ]


CATALOGUE = _entries()
