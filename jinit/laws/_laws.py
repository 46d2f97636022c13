r"""Laws: the exact distribution an initialiser produces for a given shape and dtype.

Two kinds:

* :class:`ElementwiseLaw` — the entries are i.i.d. draws of one scalar distribution, with
  closed-form ``mean``, ``variance``, ``fourth_moment`` (central, :math:`E|x-\mu|^4`),
  ``support`` and ``cdf``. For complex laws the moments are those of :math:`|z - \mu|` and
  ``cdf`` is the CDF of the modulus :math:`|z|`.
* structured laws — :class:`DeterministicLaw` (the exact array), :class:`OrthogonalLaw` (a Gram
  identity plus the marginal law of one entry), :class:`DeltaOrthogonalLaw`, :class:`SparseLaw`.

Laws are computed in float64 on the host; they describe the ideal real-number distribution
before rounding to the requested dtype (``dtype`` is recorded so a statistics check can allow
for rounding of low-precision dtypes).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from jinit._core import _layouts as layouts_mod
from jinit._core._checks import canonical_shape

_SQRT2 = math.sqrt(2.0)


def _phi(x: float) -> float:
    """Standard normal density (0 at +-inf)."""
    if math.isinf(x):
        return 0.0
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    """Standard normal CDF, accurate in both tails."""
    return 0.5 * math.erfc(-x / _SQRT2)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _name(obj: Any) -> str:
    return f"jinit.laws.{type(obj).__name__}"


def _real(
    obj: Any,
    field: str,
    *,
    nonneg: bool = False,
    positive: bool = False,
    finite: bool = True,
    allow_inf: bool = False,
) -> float:
    """Checks a real-number field of a law (raises naming ``jinit.laws.<Class>``)."""
    value = getattr(obj, field)
    api = _name(obj)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        if not (
            isinstance(value, (np.ndarray, jax.Array))
            and np.ndim(value) == 0
            and not isinstance(value, jax.core.Tracer)
            and (
                jnp.issubdtype(value.dtype, jnp.floating)
                or jnp.issubdtype(value.dtype, jnp.integer)
            )
        ):
            raise TypeError(
                f"`{api}` needs `{field}` to be a real number; got {value!r} of type "
                f"{type(value).__name__}. Pass a Python float such as `{field}=1.0`."
            )
    x = float(value)
    if math.isnan(x) or (math.isinf(x) and not allow_inf):
        raise ValueError(
            f"`{api}` needs a finite `{field}`; got {x!r}. Pass a finite number"
            + (" (±inf is allowed)." if allow_inf else ".")
        )
    if positive and not x > 0:
        raise ValueError(f"`{api}` needs `{field}` > 0; got {x!r}. Pass a positive number.")
    if nonneg and x < 0:
        raise ValueError(
            f"`{api}` needs `{field}` >= 0; got {x!r}. A scale is a size: pass {abs(x)!r}."
        )
    return x


def _shape_field(
    obj: Any, field: str = "shape", *, min_rank: int = 1, max_rank: int | None = None
) -> tuple[int, ...]:
    value = getattr(obj, field)
    api = _name(obj)
    ok = isinstance(value, (tuple, list)) and all(
        isinstance(d, (numbers.Integral, np.integer)) and not isinstance(d, (bool, np.bool_))
        for d in value
    )
    if not ok:
        raise TypeError(
            f"`{api}` needs `{field}` to be a tuple of ints; got {value!r}. Pass e.g. "
            f"`{field}=(64, 32)`."
        )
    dims = tuple(int(d) for d in value)
    if (
        any(d < 1 for d in dims)
        or len(dims) < min_rank
        or (max_rank is not None and len(dims) > max_rank)
    ):
        ranks = f"rank {min_rank}" + (f" to {max_rank}" if max_rank else " or more")
        raise ValueError(
            f"`{api}` needs `{field}` of {ranks} with every dimension >= 1; got {dims!r}."
        )
    return dims


def _index(obj: Any, field: str, size: int) -> int:
    value = getattr(obj, field)
    api = _name(obj)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"`{api}` needs `{field}` to be an int; got {value!r}.")
    if not -size <= int(value) < size:
        raise ValueError(
            f"`{api}` needs `{field}` in {-size}..{size - 1}; got {int(value)}. Pass an axis of "
            f"the shape."
        )
    return int(value)


@dataclasses.dataclass(frozen=True)
class Law:
    """Base class of laws. ``dtype`` is the dtype the samples are rounded to."""

    dtype: np.dtype = dataclasses.field(default=np.dtype("float32"), kw_only=True)
    # ``(init, shape)`` that made this law, kept for 16-bit real element-wise laws so the exact
    # discrete law of the sampler can be enumerated (jinit.laws._sampled); not part of equality.
    sampler: Any = dataclasses.field(default=None, kw_only=True, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            dt = np.dtype(jnp.dtype(self.dtype))
        except TypeError:
            raise TypeError(
                f"`{_name(self)}` needs `dtype` to be a dtype; got {self.dtype!r}. Pass e.g. "
                f"`dtype=jnp.float32`."
            ) from None
        object.__setattr__(self, "dtype", dt)
        self._validate()

    #: How the statistics check this law (:mod:`jinit.testing` dispatches on it):
    #: "elementwise", "orthogonal", "delta", "sparse" or "deterministic"; "" for a law they do
    #: not know. Subclasses of the laws below inherit it.
    kind: ClassVar[str] = ""

    def _validate(self) -> None:
        """Checks the parameters (ValueError/TypeError naming ``jinit.laws.<Class>``)."""

    @property
    def values_complex(self) -> bool:
        """Whether the samples are complex."""
        raise NotImplementedError

    def scaled(self, c: float) -> Law:
        r"""The law of :math:`c\,W` for :math:`W` drawn from this law (real ``c``)."""
        raise NotImplementedError(f"`{_name(self)}` has no closed-form law for c·W.")

    def summary(self) -> str:
        raise NotImplementedError


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
        _real(self, "scale", nonneg=True)
        _real(self, "loc")

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
        return f"N({_fmt(self.loc)}, {_fmt(self.scale)}^2)"


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
        _real(self, "scale", nonneg=True)
        _real(self, "loc")
        lo = _real(self, "lower", allow_inf=True)
        hi = _real(self, "upper", allow_inf=True)
        if not lo < hi:
            raise ValueError(
                f"`{_name(self)}` needs `lower` < `upper`; got lower={lo!r}, upper={hi!r}. "
                + ("Swap them." if lo > hi else "Widen the interval.")
            )
        if not truncated_mass(lo, hi) > 0 or not all(math.isfinite(m) for m in self._central()):
            raise ValueError(
                f"`{_name(self)}`: the interval ({lo!r}, {hi!r}) (in units of `scale`) holds no "
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
        z = _Phi(b) - _Phi(a)
        m = (_phi(a) - _phi(b)) / z

        def t(x: float, k: int) -> float:
            return 0.0 if math.isinf(x) else (x - m) ** k * _phi(x)

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
            u = (_Phi(-a) - ndtr(-y)) / (_Phi(-a) - _Phi(-b))
        else:
            u = (ndtr(y) - _Phi(a)) / (_Phi(b) - _Phi(a))
        return jnp.clip(u, 0.0, 1.0)

    def summary(self):
        return (
            f"N({_fmt(self.loc)}, {_fmt(self.scale)}^2) truncated to "
            f"({_fmt(self.lower)}σ, {_fmt(self.upper)}σ); std {_fmt(self.std)}"
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
        lo, hi = _real(self, "low"), _real(self, "high")
        if not lo <= hi:
            raise ValueError(
                f"`{_name(self)}` needs `low` <= `high`; got low={lo!r}, high={hi!r}. Swap them."
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
        return f"U[{_fmt(self.low)}, {_fmt(self.high)})"

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
        _real(self, "scale", nonneg=True)

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
        return f"CN(0, {_fmt(self.scale)}^2)"


@dataclasses.dataclass(frozen=True)
class ComplexDiskUniform(ElementwiseLaw):
    r"""Uniform on the disk :math:`|z| \le R`: :math:`E|z|^2 = R^2/2`, :math:`E|z|^4 = R^4/3`."""

    radius: float
    is_complex = True

    def _validate(self):
        _real(self, "radius", nonneg=True)

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
        return f"uniform on the complex disk |z| <= {_fmt(self.radius)}"


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
        _real(self, "scale", nonneg=True)
        _real(self, "radius", positive=True)

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
        return f"CN(0, {_fmt(self.scale)}^2) with |z| < {_fmt(self.scale * self.radius)}"


def truncated_mass(lower: float, upper: float) -> float:
    r""":math:`\Phi(u) - \Phi(l)` in float64, computed in the tail the interval lies in (0 when
    it underflows, beyond ~37 standard deviations)."""
    if lower + upper > 0:
        lower, upper = -upper, -lower
    return _Phi(upper) - _Phi(lower)


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


# ---------------------------------------------------------------------------------------------
# Structured laws
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class DeterministicLaw(Law):
    """The initialiser returns exactly ``value`` (whatever the key)."""

    value: np.ndarray

    def _validate(self):
        try:
            value = np.asarray(self.value)
        except Exception:  # noqa: BLE001 - ragged or exotic input
            value = None
        if value is None or not (
            np.issubdtype(value.dtype, np.number)
            or np.issubdtype(value.dtype, np.bool_)
            or jnp.issubdtype(value.dtype, jnp.floating)
        ):
            raise TypeError(
                f"`{_name(self)}` needs `value` to be a numeric array; got {self.value!r}. Pass "
                f"e.g. `value=np.zeros((4, 3))`."
            )
        object.__setattr__(self, "value", value)

    def _wide(self) -> np.ndarray:
        v = np.asarray(self.value)
        return v.astype(np.complex128 if np.iscomplexobj(v) else np.float64)

    def summary(self):
        uniq = np.unique(self._wide())
        if uniq.size == 1:
            return f"constant {uniq[0].item():.6g}"
        return f"deterministic array, {uniq.size} distinct values"

    @property
    def mean(self):
        return self._wide().mean().item() if self.value.size else 0.0

    @property
    def variance(self):
        return float(self._wide().var()) if self.value.size else 0.0

    kind: ClassVar[str] = "deterministic"

    @property
    def values_complex(self) -> bool:
        return bool(np.iscomplexobj(self.value))

    def scaled(self, c: float) -> DeterministicLaw:
        return DeterministicLaw((np.asarray(self.value) * c).astype(self.dtype), dtype=self.dtype)


@dataclasses.dataclass(frozen=True)
class OrthogonalLaw(Law):
    r"""Haar-distributed orthogonal (unitary for complex) matrix times ``scale``.

    The array, with ``column_axis`` moved last and reshaped to an
    :math:`n_r \times n_c` matrix :math:`M`, satisfies :math:`M^\top M = s^2 I_{n_c}` when
    :math:`n_r \ge n_c` and :math:`M M^\top = s^2 I_{n_r}` otherwise. Each entry is a coordinate
    of a uniform vector on the sphere of radius :math:`s` in dimension :math:`n=\max(n_r, n_c)`:
    mean 0, variance :math:`s^2/n`, :math:`E x^4 = 3 s^4 / (n(n+2))`
    (complex: :math:`E|x|^4 = 2 s^4/(n(n+1))`).
    """

    shape: tuple[int, ...]
    scale: float
    column_axis: int = -1
    is_complex: bool = False

    def _validate(self):
        shape = _shape_field(self, min_rank=2)
        _real(self, "scale")
        _index(self, "column_axis", len(shape))
        if not isinstance(self.is_complex, (bool, np.bool_)):
            raise TypeError(
                f"`{_name(self)}` needs `is_complex` to be a bool; got {self.is_complex!r}."
            )

    @property
    def n_rows(self) -> int:
        return math.prod(self.shape) // self.shape[self.column_axis]

    @property
    def n_cols(self) -> int:
        return self.shape[self.column_axis]

    def matrix(self, w: jax.Array) -> jax.Array:
        """The :math:`n_r \\times n_c` matrix the identity applies to."""
        return jnp.moveaxis(w, self.column_axis, -1).reshape(self.n_rows, self.n_cols)

    def gram(self, w: jax.Array) -> jax.Array:
        """:math:`M^H M` (tall) or :math:`M M^H` (wide); equals ``scale**2 * I``."""
        m = self.matrix(w)
        mh = jnp.conj(m).T
        return mh @ m if self.n_rows >= self.n_cols else m @ mh

    def gram_error(self, w: jax.Array) -> jax.Array:
        """Max absolute deviation of :meth:`gram` from ``scale**2 * I`` (jittable)."""
        g = self.gram(w.astype(jnp.promote_types(w.dtype, jnp.float32)))
        eye = jnp.eye(g.shape[0], dtype=g.dtype) * self.scale**2
        return jnp.max(jnp.abs(g - eye))

    @property
    def _n(self) -> int:
        return max(self.n_rows, self.n_cols)

    @property
    def mean(self):
        return 0.0

    @property
    def variance(self):
        return self.scale**2 / self._n

    @property
    def fourth_moment(self):
        n = self._n
        if self.is_complex:
            return 2 * self.scale**4 / (n * (n + 1))
        return 3 * self.scale**4 / (n * (n + 2))

    def summary(self):
        side = "columns" if self.n_rows >= self.n_cols else "rows"
        return (
            f"{_fmt(self.scale)} × Haar {'unitary' if self.is_complex else 'orthogonal'} "
            f"{self.n_rows}×{self.n_cols} (orthonormal {side})"
        )

    kind: ClassVar[str] = "orthogonal"

    @property
    def values_complex(self) -> bool:
        return bool(self.is_complex)

    def scaled(self, c: float) -> OrthogonalLaw:
        return dataclasses.replace(self, scale=self.scale * c)


@dataclasses.dataclass(frozen=True)
class DeltaOrthogonalLaw(Law):
    """Zero everywhere except the spatial ``centre``, which holds an :class:`OrthogonalLaw`."""

    shape: tuple[int, ...]
    centre: tuple[int, ...]
    inner: OrthogonalLaw

    def _validate(self):
        shape = _shape_field(self, min_rank=3, max_rank=5)
        centre = self.centre
        if not (
            isinstance(centre, tuple)
            and len(centre) == len(shape) - 2
            and all(
                isinstance(c, (int, np.integer)) and 0 <= c < k
                for c, k in zip(centre, shape, strict=False)
            )
        ):
            raise ValueError(
                f"`{_name(self)}` needs `centre` to be a spatial index of shape {shape}, one "
                f"int per spatial axis in range; got {centre!r}."
            )
        if not isinstance(self.inner, OrthogonalLaw) or tuple(self.inner.shape) != shape[-2:]:
            raise TypeError(
                f"`{_name(self)}` needs `inner` to be an OrthogonalLaw of shape {shape[-2:]}; "
                f"got {self.inner!r}."
            )

    def centre_slice(self, w: jax.Array) -> jax.Array:
        return w[self.centre]

    def off_centre_max(self, w: jax.Array) -> jax.Array:
        """Max absolute value away from the centre (exactly 0 under the law)."""
        mask = jnp.ones(self.shape[: len(self.centre)], bool).at[self.centre].set(False)
        return jnp.max(jnp.where(mask[..., None, None], jnp.abs(w), 0))

    @property
    def mean(self):
        return 0.0

    @property
    def variance(self):
        """Variance of one entry of the whole kernel (the centre holds all the mass)."""
        return self.inner.variance * math.prod(self.shape[-2:]) / math.prod(self.shape)

    def summary(self):
        return f"zero except centre {self.centre}: {self.inner.summary()}"

    kind: ClassVar[str] = "delta"

    @property
    def values_complex(self) -> bool:
        return bool(self.inner.is_complex)


@dataclasses.dataclass(frozen=True)
class SparseLaw(Law):
    """Along ``axis`` every unit (slice) holds exactly ``zeros_per_unit`` zeros at uniformly
    random positions; the other entries are i.i.d. ``nonzero``.
    """

    shape: tuple[int, ...]
    axis: int
    zeros_per_unit: int
    nonzero: ElementwiseLaw

    def _validate(self):
        shape = _shape_field(self)
        axis = _index(self, "axis", len(shape))
        z = self.zeros_per_unit
        if isinstance(z, (bool, np.bool_)) or not isinstance(z, (numbers.Integral, np.integer)):
            raise TypeError(f"`{_name(self)}` needs `zeros_per_unit` to be an int; got {z!r}.")
        if not 0 <= int(z) <= shape[axis]:
            raise ValueError(
                f"`{_name(self)}` needs 0 <= `zeros_per_unit` <= shape[axis] = {shape[axis]}; "
                f"got {int(z)}."
            )
        if not isinstance(self.nonzero, ElementwiseLaw):
            raise TypeError(
                f"`{_name(self)}` needs `nonzero` to be an element-wise law such as "
                f"`jinit.laws.Normal(0.01)`; got {self.nonzero!r}."
            )

    @property
    def fraction_zero(self) -> float:
        return self.zeros_per_unit / self.shape[self.axis]

    @property
    def mean(self):
        return (1 - self.fraction_zero) * self.nonzero.mean

    @property
    def variance(self):
        p = 1 - self.fraction_zero
        m, v = self.nonzero.mean, self.nonzero.variance
        return p * (v + abs(m) ** 2) - abs(p * m) ** 2

    def summary(self):
        return (
            f"{self.zeros_per_unit} of {self.shape[self.axis]} zeros per unit along axis "
            f"{self.axis}, rest {self.nonzero.summary()}"
        )

    kind: ClassVar[str] = "sparse"

    @property
    def values_complex(self) -> bool:
        return bool(self.nonzero.is_complex)


def rounded_to(law: Law, dtype: Any, sampler: Any) -> Law:
    """The law of a float32 draw from ``law`` rounded once to a narrow float ``dtype``.

    float8/float6/float4 weights are drawn in float32 and rounded (saturating at
    ``±finfo(dtype).max``, :func:`jinit._core._checks.round_narrow`). Element-wise laws keep their
    continuous parameters, record ``dtype`` and the ``sampler`` so the exact rounded law
    (:func:`jinit.laws._sampled.exact_atoms`) can be computed; deterministic laws hold the
    rounded array; structured laws record ``dtype`` (their identities hold up to its rounding).
    """
    dt = np.dtype(dtype)
    if isinstance(law, ElementwiseLaw):
        return dataclasses.replace(law, dtype=dt, sampler=sampler)
    if isinstance(law, DeterministicLaw):
        top = float(jnp.finfo(dt).max)
        value = np.clip(np.asarray(law.value, np.float32), -top, top).astype(dt)
        return DeterministicLaw(value, dtype=dt)
    if isinstance(law, SparseLaw):
        return dataclasses.replace(law, dtype=dt, nonzero=rounded_to(law.nonzero, dt, sampler))
    if isinstance(law, DeltaOrthogonalLaw):
        return dataclasses.replace(law, dtype=dt, inner=dataclasses.replace(law.inner, dtype=dt))
    return dataclasses.replace(law, dtype=dt)


def law(init, shape, dtype=None, *, layout=None) -> Law:
    """The exact law of ``init(key, shape, dtype)``.

    With a ``layout`` (a :class:`jinit.Layout`, e.g. from :func:`jinit.layouts`, or an einsum
    equation), the law of what the layer owning a weight of ``shape`` draws: the initialiser
    told the layout's fans (as :func:`jinit.reinit` and :func:`jinit.summary` do), called with
    the layer's call shape (the flat ``(∏in, ∏out)`` of a DenseGeneral/attention kernel).

    Args:
      init: a jinit initialiser.
      shape: the (stored) shape it will be called with.
      dtype: the dtype it will be called with (``None``: its default).
      layout: the weight's layout (optional).

    Returns:
      A :class:`Law`: element-wise (mean, variance, fourth moment, support, CDF), orthogonal
      (Gram identity), deterministic (the exact array) or sparse.

    Raises:
      TypeError: ``init`` is not a jinit initialiser (a jinit builder passed uncalled, such as
        ``jinit.he_normal``, is named: call it).
      ValueError: a layout that does not fit ``shape``.

    Examples:
      >>> import jinit
      >>> lw = jinit.law(jinit.he_uniform(), (256, 128))
      >>> round(lw.variance * 256, 12)
      2.0
      >>> q = jinit.Layout.dense_general(1, 2)  # attention query kernel (d, heads, head_dim)
      >>> round(jinit.law(jinit.he_normal(), (64, 4, 16), layout=q).std ** 2 * 64, 9)
      2.0
    """
    if not hasattr(init, "law") or not callable(init.law):
        module = getattr(init, "__module__", "") or ""
        name = getattr(init, "__name__", None)
        if callable(init) and name and module.startswith("jinit"):
            raise TypeError(
                f"`jinit.law` needs an initialiser; got `jinit.{name}`, which builds one. Call "
                f"it: `jinit.{name}()`."
            )
        hint = (
            " Functions from `jax.nn.initializers` carry no law: use the jinit equivalent of "
            "the same name."
            if module.startswith("jax")
            else " Pass e.g. `jinit.he_normal()`."
        )
        raise TypeError(f"`jinit.law` needs a jinit initialiser; got {init!r}.{hint}")
    if layout is None:
        return init.law(shape, dtype)
    lay = layouts_mod.as_layout("jinit.law", layout)
    shape = canonical_shape("jinit.law", shape)
    try:
        lay = lay.bind(shape)
    except (ValueError, IndexError) as e:
        raise ValueError(
            f"`jinit.law`: the layout {lay!r} does not fit shape {shape}: {e}"
        ) from None
    return layouts_mod.retarget(init, lay).law(lay.call_shape(), dtype)
