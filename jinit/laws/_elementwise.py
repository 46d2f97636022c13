"""Element-wise i.i.d. laws: one scalar distribution per entry with closed-form mean, variance,
fourth moment, support and CDF (:class:`Normal`, :class:`TruncatedNormal`, :class:`Uniform` and
their complex counterparts)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from jinit.laws._base import Law, fmt6, law_name, normal_cdf, normal_pdf, real_field

# ---------------------------------------------------------------------------------------------
# Element-wise i.i.d. laws
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ElementwiseLaw(Law):
    """Entries are i.i.d.; subclasses give the closed forms."""

    is_complex = False

    kind: ClassVar[str] = "elementwise"

    @property
    def values_complex(self) -> bool:
        return bool(self.is_complex)

    @property
    def mean(self) -> float | complex:
        raise NotImplementedError

    @property
    def variance(self) -> float:
        raise NotImplementedError

    @property
    def fourth_moment(self) -> float:
        """The fourth central moment :math:`E|x - \\mu|^4`."""
        raise NotImplementedError

    @property
    def support(self) -> tuple[float, float]:
        """Closed hull of the support of x (real) or of :math:`|z|` (complex)."""
        raise NotImplementedError

    def cdf(self, x: Any) -> jax.Array:
        """CDF of x (real) or of :math:`|z|` (complex), evaluated with jax (jittable)."""
        raise NotImplementedError

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def excess_kurtosis(self) -> float:
        """:math:`E|x-\\mu|^4 / \\sigma^4 - 3` (for complex laws, relative to 3 as well)."""
        v = self.variance
        return self.fourth_moment / (v * v) - 3.0 if v > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class Normal(ElementwiseLaw):
    r""":math:`\mathcal N(\mu, \sigma^2)`: :math:`E(x-\mu)^4 = 3\sigma^4`."""

    scale: float
    loc: float = 0.0

    def _validate(self):
        real_field(self, "scale", nonneg=True)
        real_field(self, "loc")

    def scaled(self, c: float) -> Normal:
        return dataclasses.replace(self, scale=abs(c) * self.scale, loc=c * self.loc)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale**2

    @property
    def fourth_moment(self):
        return 3.0 * self.scale**4

    @property
    def support(self):
        return (-math.inf, math.inf) if self.scale > 0 else (self.loc, self.loc)

    def cdf(self, x):
        x = jnp.asarray(x)
        if self.scale == 0:
            return (x >= self.loc).astype(x.dtype)
        return ndtr((x - self.loc) / self.scale)

    def summary(self):
        return f"N({fmt6(self.loc)}, {fmt6(self.scale)}^2)"


@dataclasses.dataclass(frozen=True)
class TruncatedNormal(ElementwiseLaw):
    r""":math:`\sigma Z + \mu`, Z standard normal conditioned on ``lower < Z < upper``.

    With :math:`Z_{ab} = \Phi(b) - \Phi(a)`, :math:`m = (\phi(a) - \phi(b)) / Z_{ab}` and
    :math:`t_k(x) = (x - m)^k \phi(x)`, the central moments :math:`M_k = E(Z - m)^k` follow
    from :math:`\int g'\phi = [g\phi] + \int x g \phi` with :math:`g = (x - m)^{k-1}`:

    .. math::
        M_k = (k-1) M_{k-2} - m M_{k-1} + (t_{k-1}(a) - t_{k-1}(b)) / Z_{ab}.

    Intervals lying mostly above 0 are mirrored into the lower tail, where :math:`\Phi` is
    accurate, so bounds far in either tail (e.g. (8, 9)) stay exact to ~1e-12.
    """

    scale: float
    lower: float = -2.0
    upper: float = 2.0
    loc: float = 0.0

    def _validate(self):
        real_field(self, "scale", nonneg=True)
        real_field(self, "loc")
        lo = real_field(self, "lower", allow_inf=True)
        hi = real_field(self, "upper", allow_inf=True)
        if not lo < hi:
            raise ValueError(
                f"`{law_name(self)}` needs `lower` < `upper`; got lower={lo!r}, upper={hi!r}. "
                + ("Swap them." if lo > hi else "Widen the interval.")
            )
        if not truncated_mass(lo, hi) > 0 or not all(math.isfinite(m) for m in self._central()):
            raise ValueError(
                f"`{law_name(self)}`: the interval ({lo!r}, {hi!r}) (in units of `scale`) holds no "
                f"probability mass in float64 (it lies beyond ~37 standard deviations). Move "
                f"the bounds closer to 0."
            )

    def _central(self) -> tuple[float, float, float]:
        """Mean, variance and fourth central moment of the standard truncated normal."""
        a, b, sign = self.lower, self.upper, 1.0
        if a + b > 0:  # mirror: Z on (a, b) is -Z' with Z' on (-b, -a), a lower-tail interval
            a, b, sign = -b, -a, -1.0
        if a < -8 and b > 8:  # numerically untruncated
            return 0.0, 1.0, 3.0
        z = normal_cdf(b) - normal_cdf(a)
        m = (normal_pdf(a) - normal_pdf(b)) / z

        def t(x: float, k: int) -> float:
            return 0.0 if math.isinf(x) else (x - m) ** k * normal_pdf(x)

        m2 = 1.0 + (t(a, 1) - t(b, 1)) / z
        m3 = -m * m2 + (t(a, 2) - t(b, 2)) / z
        m4 = 3.0 * m2 - m * m3 + (t(a, 3) - t(b, 3)) / z
        return sign * m, m2, m4

    @property
    def mean(self):
        return self.loc + self.scale * self._central()[0]

    @property
    def variance(self):
        return self.scale**2 * self._central()[1]

    @property
    def fourth_moment(self):
        return self.scale**4 * self._central()[2]

    @property
    def support(self):
        return (self.loc + self.scale * self.lower, self.loc + self.scale * self.upper)

    def cdf(self, x):
        x = jnp.asarray(x)
        a, b = self.lower, self.upper
        y = (x - self.loc) / self.scale
        if a + b > 0:  # upper-tail interval: use survival functions, accurate there
            u = (normal_cdf(-a) - ndtr(-y)) / (normal_cdf(-a) - normal_cdf(-b))
        else:
            u = (ndtr(y) - normal_cdf(a)) / (normal_cdf(b) - normal_cdf(a))
        return jnp.clip(u, 0.0, 1.0)

    def summary(self):
        return (
            f"N({fmt6(self.loc)}, {fmt6(self.scale)}^2) truncated to "
            f"({fmt6(self.lower)}σ, {fmt6(self.upper)}σ); std {fmt6(self.std)}"
        )

    def scaled(self, c: float) -> TruncatedNormal:
        # c·(σZ + μ) = |c|σ·(±Z) + cμ, and -Z is conditioned on (-upper, -lower)
        if c >= 0:
            return dataclasses.replace(self, scale=c * self.scale, loc=c * self.loc)
        return dataclasses.replace(
            self, scale=-c * self.scale, loc=c * self.loc, lower=-self.upper, upper=-self.lower
        )


@dataclasses.dataclass(frozen=True)
class Uniform(ElementwiseLaw):
    r""":math:`U[a, b)`: variance :math:`(b-a)^2/12`, fourth moment :math:`(b-a)^4/80`."""

    low: float
    high: float

    def _validate(self):
        lo, hi = real_field(self, "low"), real_field(self, "high")
        if not lo <= hi:
            raise ValueError(
                f"`{law_name(self)}` needs `low` <= `high`; got low={lo!r}, high={hi!r}. Swap them."
            )

    @property
    def mean(self):
        return 0.5 * (self.low + self.high)

    @property
    def variance(self):
        return (self.high - self.low) ** 2 / 12.0

    @property
    def fourth_moment(self):
        return (self.high - self.low) ** 4 / 80.0

    @property
    def support(self):
        return (self.low, self.high)

    def cdf(self, x):
        x = jnp.asarray(x)
        w = self.high - self.low
        if w == 0:
            return (x >= self.low).astype(x.dtype)
        return jnp.clip((x - self.low) / w, 0.0, 1.0)

    def summary(self):
        return f"U[{fmt6(self.low)}, {fmt6(self.high)})"

    def scaled(self, c: float) -> Uniform:
        lo, hi = sorted((self.low * c, self.high * c))
        return dataclasses.replace(self, low=lo, high=hi)


@dataclasses.dataclass(frozen=True)
class ComplexNormal(ElementwiseLaw):
    r"""Circular complex normal with :math:`E|z|^2 = \sigma^2` (each part variance
    :math:`\sigma^2/2`); :math:`|z|^2 \sim \mathrm{Exp}(\sigma^{-2})`, so
    :math:`E|z|^4 = 2\sigma^4`.
    """

    scale: float
    is_complex = True

    def _validate(self):
        real_field(self, "scale", nonneg=True)

    @property
    def mean(self):
        return 0j

    @property
    def variance(self):
        return self.scale**2

    @property
    def fourth_moment(self):
        return 2.0 * self.scale**4

    @property
    def support(self):
        return (0.0, math.inf)

    def cdf(self, r):
        r = jnp.asarray(r)
        return jnp.where(r > 0, -jnp.expm1(-(r**2) / self.scale**2), 0.0)

    def summary(self):
        return f"CN(0, {fmt6(self.scale)}^2)"


@dataclasses.dataclass(frozen=True)
class ComplexDiskUniform(ElementwiseLaw):
    r"""Uniform on the disk :math:`|z| \le R`: :math:`E|z|^2 = R^2/2`, :math:`E|z|^4 = R^4/3`."""

    radius: float
    is_complex = True

    def _validate(self):
        real_field(self, "radius", nonneg=True)

    @property
    def mean(self):
        return 0j

    @property
    def variance(self):
        return self.radius**2 / 2

    @property
    def fourth_moment(self):
        return self.radius**4 / 3

    @property
    def support(self):
        return (0.0, self.radius)

    def cdf(self, r):
        r = jnp.asarray(r)
        return jnp.where(r > 0, jnp.clip((r / self.radius) ** 2, 0.0, 1.0), 0.0)

    def summary(self):
        return f"uniform on the complex disk |z| <= {fmt6(self.radius)}"


@dataclasses.dataclass(frozen=True)
class ComplexTruncatedNormal(ElementwiseLaw):
    r""":math:`s\,w` with :math:`w` circular complex normal (:math:`E|w|^2=1`) conditioned on
    :math:`|w| < \rho`. With :math:`T=\rho^2` and :math:`|w|^2` a truncated Exp(1):

    .. math::
        E|w|^2 = \frac{1 - (1+T)e^{-T}}{1-e^{-T}}, \qquad
        E|w|^4 = \frac{2 - (T^2+2T+2)e^{-T}}{1-e^{-T}}.
    """

    scale: float
    radius: float = 2.0
    is_complex = True

    def _validate(self):
        real_field(self, "scale", nonneg=True)
        real_field(self, "radius", positive=True)

    @property
    def mean(self):
        return 0j

    @property
    def variance(self):
        t = self.radius**2
        return self.scale**2 * (1 - (1 + t) * math.exp(-t)) / (-math.expm1(-t))

    @property
    def fourth_moment(self):
        t = self.radius**2
        return self.scale**4 * (2 - (t * t + 2 * t + 2) * math.exp(-t)) / (-math.expm1(-t))

    @property
    def support(self):
        return (0.0, self.scale * self.radius)

    def cdf(self, r):
        r = jnp.asarray(r)
        t = self.radius**2
        u = -jnp.expm1(-((r / self.scale) ** 2)) / (-math.expm1(-t))
        return jnp.clip(jnp.where(r > 0, u, 0.0), 0.0, 1.0)

    def summary(self):
        return f"CN(0, {fmt6(self.scale)}^2) with |z| < {fmt6(self.scale * self.radius)}"


def truncated_mass(lower: float, upper: float) -> float:
    r""":math:`\Phi(u) - \Phi(l)` in float64, computed in the tail the interval lies in (0 when
    it underflows, beyond ~37 standard deviations)."""
    if lower + upper > 0:
        lower, upper = -upper, -lower
    return normal_cdf(upper) - normal_cdf(lower)


def complex_truncated_normal_rms(radius: float = 2.0) -> float:
    r"""RMS of a unit circular complex normal truncated to :math:`|w| < \rho` (exact).

    For :math:`\rho = 2` this is :math:`\sqrt{(1-5e^{-4})/(1-e^{-4})} = 0.9619618...`;
    ``jax.nn.initializers`` divides by 0.95311164380491208 instead, so its complex truncated
    variance-scaling weights are about 1.9 % too large in variance.
    """
    return math.sqrt(ComplexTruncatedNormal(1.0, radius).variance)


def truncated_normal_std(lower: float = -2.0, upper: float = 2.0) -> float:
    """Standard deviation of N(0, 1) truncated to (lower, upper); 0.8796256610342398 for ±2."""
    return math.sqrt(TruncatedNormal(1.0, lower, upper).variance)
