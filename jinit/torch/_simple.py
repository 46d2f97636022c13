"""torch's simple distributions: ``uniform_``, ``normal_`` and ``trunc_normal_`` (absolute
cut-offs, complex dtypes as torch draws them)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from jinit._core import _random
from jinit._core._checks import check_real
from jinit._core._factory import factory
from jinit._core._sampling import as_sampled
from jinit._core._sharding import settle
from jinit.initializers._basic import tail_truncated_normal
from jinit.laws import _laws as laws
from jinit.torch._base import (
    TINY_MASS,
    TORCH_PREFIX,
    TorchInitializer,
    is_complex_dtype,
    norm_cdf,
    real_float,
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
        return _random.uniform(key, shape, dtype, self.a, self.b)

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
    api = TORCH_PREFIX + "uniform"
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
        if self.mean != 0 and is_complex_dtype(dtype):
            raise TypeError(
                f"`{self._label}` supports complex dtypes only with mean=0; got mean="
                f"{self.mean!r} and dtype {dtype.name}. torch adds the mean to both the real and "
                f"the imaginary part; draw with mean=0 and add `mean * (1 + 1j)` yourself."
            )
        return shape, dtype

    def _draw(self, key, shape, dtype):
        z = settle(_random.normal(key, shape, dtype)) * jnp.array(self.std, dtype)
        return z if self.mean == 0 else settle(z) + jnp.array(self.mean, dtype)

    def _law(self, shape, dtype):
        s = as_sampled(self.std, dtype)
        if is_complex_dtype(dtype):
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
    api = TORCH_PREFIX + "normal"
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
        work = real_float(dtype)
        flip = lo > 0
        if flip:
            lo, hi = -hi, -lo
        p_lo, p_hi = norm_cdf(lo), norm_cdf(hi)
        if p_hi < TINY_MASS[work.itemsize]:
            # so far out that the probabilities underflow `work`: invert in log space instead
            z = tail_truncated_normal(key, *self.standardised_bounds, shape, work)
            x = jnp.array(self.mean, work) + settle(jnp.array(self.std, work) * z)
            return jnp.clip(x, self.a, self.b).astype(dtype)
        u = settle(_random.uniform(key, shape, work))
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
    api = TORCH_PREFIX + "trunc_normal"
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
