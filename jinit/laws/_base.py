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

This module holds the :class:`Law` base and the helpers every law shares; the element-wise
laws are in :mod:`._elementwise`, the structured ones in :mod:`._structured`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

_SQRT2 = math.sqrt(2.0)


def normal_pdf(x: float) -> float:
    """Standard normal density (0 at +-inf)."""
    if math.isinf(x):
        return 0.0
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def normal_cdf(x: float) -> float:
    """Standard normal CDF, accurate in both tails."""
    return 0.5 * math.erfc(-x / _SQRT2)


def fmt6(x: float) -> str:
    return f"{x:.6g}"


def law_name(obj: Any) -> str:
    return f"jinit.laws.{type(obj).__name__}"


def real_field(
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
    api = law_name(obj)
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


def shape_field(
    obj: Any, field: str = "shape", *, min_rank: int = 1, max_rank: int | None = None
) -> tuple[int, ...]:
    value = getattr(obj, field)
    api = law_name(obj)
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


def index_field(obj: Any, field: str, size: int) -> int:
    value = getattr(obj, field)
    api = law_name(obj)
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
                f"`{law_name(self)}` needs `dtype` to be a dtype; got {self.dtype!r}. Pass e.g. "
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
        raise NotImplementedError(f"`{law_name(self)}` has no closed-form law for c·W.")

    def summary(self) -> str:
        raise NotImplementedError
