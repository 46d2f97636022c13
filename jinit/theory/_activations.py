"""The activation registry of the mean-field theory: every activation with its function,
derivative and kinks, by name (:func:`jinit.theory.activation`)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf as _erf

ArrayLike = Any

# Half-width of the integration box in standard-normal units: P(|z| > 10) = 1.5e-23.
BOX = 10.0
# Default composite Gauss-Legendre rules: (panels on |z| <= 4, nodes per panel).
RULE_1D = (32, 20)
RULE_2D = (16, 12)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# SELU constants of Klambauer et al. 2017 (Self-Normalizing Neural Networks), full precision:
# they solve E[selu(z)] = 0 and E[selu(z)^2] = 1 for z ~ N(0, 1).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def float_dtype() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _JvpDerivative:
    """φ' of an element-wise φ by forward-mode autodiff (``jax.grad`` per element, vectorised)."""

    fn: Callable

    def __call__(self, x):
        x = jnp.asarray(x)
        return jax.jvp(self.fn, (x,), (jnp.ones_like(x),))[1]


def _relu(x):
    return jnp.maximum(x, 0)


def _relu_d(x):
    return jnp.where(x > 0, 1.0, 0.0).astype(jnp.result_type(x, float))


@dataclasses.dataclass(frozen=True)
class _LeakyReLU:
    negative_slope: float

    def __call__(self, x):
        return jnp.where(x >= 0, x, self.negative_slope * x)


@dataclasses.dataclass(frozen=True)
class _LeakyReLUDerivative:
    negative_slope: float

    def __call__(self, x):
        return jnp.where(x > 0, 1.0, self.negative_slope).astype(jnp.result_type(x, float))


@dataclasses.dataclass(frozen=True)
class _ELU:
    alpha: float
    scale: float = 1.0

    def __call__(self, x):
        neg = self.alpha * jnp.expm1(jnp.minimum(x, 0))
        return self.scale * jnp.where(x > 0, x, neg)


@dataclasses.dataclass(frozen=True)
class _ELUDerivative:
    alpha: float
    scale: float = 1.0

    def __call__(self, x):
        return self.scale * jnp.where(x > 0, 1.0, self.alpha * jnp.exp(jnp.minimum(x, 0)))


def _gelu(x):
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _gelu_d(x):
    return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * jnp.exp(-0.5 * x * x) * INV_SQRT_2PI


def _gelu_tanh(x):
    return 0.5 * x * (1 + jnp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _silu(x):
    return x * jax.nn.sigmoid(x)


def _silu_d(x):
    s = jax.nn.sigmoid(x)
    return s * (1 + x * (1 - s))


def _tanh_d(x):
    return 1 - jnp.tanh(x) ** 2


def _sigmoid_d(x):
    s = jax.nn.sigmoid(x)
    return s * (1 - s)


def _softplus(x):
    return jnp.logaddexp(x, 0)


def _erf_d(x):
    return (2 / math.sqrt(math.pi)) * jnp.exp(-x * x)


def _identity(x):
    return jnp.asarray(x)


def _ones(x):
    return jnp.ones_like(jnp.asarray(x, jnp.result_type(x, float)))


def _abs_d(x):
    return jnp.sign(x).astype(jnp.result_type(x, float))


def _relu6(x):
    return jnp.clip(x, 0, 6)


def _relu6_d(x):
    return jnp.where((x > 0) & (x < 6), 1.0, 0.0).astype(jnp.result_type(x, float))


def _hard_tanh(x):
    return jnp.clip(x, -1, 1)


def _hard_tanh_d(x):
    return jnp.where(jnp.abs(x) < 1, 1.0, 0.0).astype(jnp.result_type(x, float))


def _hard_sigmoid(x):
    return jnp.clip(x + 3, 0, 6) / 6


def _hard_sigmoid_d(x):
    return jnp.where(jnp.abs(x) < 3, 1 / 6, 0.0).astype(jnp.result_type(x, float))


def _hard_silu(x):
    return x * _hard_sigmoid(x)


def _hard_silu_d(x):
    return jnp.where(x >= 3, 1.0, jnp.where(x <= -3, 0.0, (2 * x + 3) / 6)).astype(
        jnp.result_type(x, float)
    )


def _mish(x):
    return x * jnp.tanh(_softplus(x))


# name -> (parameter defaults, builder(params) -> (fn, derivative, kinks)).
_KNOWN: dict[str, tuple[dict[str, float], Callable[..., tuple[Callable, Callable, tuple]]]] = {
    "relu": ({}, lambda: (_relu, _relu_d, (0.0,))),
    "leaky_relu": (
        {"negative_slope": 0.01},
        lambda negative_slope: (
            _LeakyReLU(negative_slope),
            _LeakyReLUDerivative(negative_slope),
            (0.0,),
        ),
    ),
    "elu": ({"alpha": 1.0}, lambda alpha: (_ELU(alpha), _ELUDerivative(alpha), (0.0,))),
    "selu": (
        {},
        lambda: (
            _ELU(_SELU_ALPHA, _SELU_SCALE),
            _ELUDerivative(_SELU_ALPHA, _SELU_SCALE),
            (0.0,),
        ),
    ),
    "gelu": ({}, lambda: (_gelu, _gelu_d, ())),
    "gelu_tanh": ({}, lambda: (_gelu_tanh, _JvpDerivative(_gelu_tanh), ())),
    "silu": ({}, lambda: (_silu, _silu_d, ())),
    "tanh": ({}, lambda: (jnp.tanh, _tanh_d, ())),
    "sigmoid": ({}, lambda: (jax.nn.sigmoid, _sigmoid_d, ())),
    "softplus": ({}, lambda: (_softplus, jax.nn.sigmoid, ())),
    "erf": ({}, lambda: (_erf, _erf_d, ())),
    "linear": ({}, lambda: (_identity, _ones, ())),
    "abs": ({}, lambda: (jnp.abs, _abs_d, (0.0,))),
    "relu6": ({}, lambda: (_relu6, _relu6_d, (0.0, 6.0))),
    "hard_tanh": ({}, lambda: (_hard_tanh, _hard_tanh_d, (-1.0, 1.0))),
    "hard_sigmoid": ({}, lambda: (_hard_sigmoid, _hard_sigmoid_d, (-3.0, 3.0))),
    "hard_silu": ({}, lambda: (_hard_silu, _hard_silu_d, (-3.0, 3.0))),
    "mish": ({}, lambda: (_mish, _JvpDerivative(_mish), ())),
}
_ALIASES = {
    "swish": "silu",
    "identity": "linear",
    "hard_swish": "hard_silu",
    "gelu_exact": "gelu",
    "gelu_approximate": "gelu_tanh",
}

#: Names :func:`activation` understands (aliases included).
ACTIVATION_NAMES: tuple[str, ...] = tuple(sorted((*_KNOWN, *_ALIASES)))


def _jax_callables() -> dict[Any, str]:
    """Well-known JAX callables recognised by identity, so they get their kinks for free."""
    table = {
        jax.nn.relu: "relu",
        jax.nn.relu6: "relu6",
        jax.nn.hard_tanh: "hard_tanh",
        jax.nn.selu: "selu",
        jax.nn.silu: "silu",
        jax.nn.swish: "silu",
        jax.nn.sigmoid: "sigmoid",
        jax.nn.softplus: "softplus",
        jax.nn.tanh: "tanh",
        jnp.tanh: "tanh",
        jnp.abs: "abs",
        jax.nn.hard_sigmoid: "hard_sigmoid",
        jax.nn.hard_silu: "hard_silu",
        jax.nn.mish: "mish",
        jax.nn.gelu: "gelu_tanh",  # jax.nn.gelu defaults to approximate=True
        jax.scipy.special.erf: "erf",
        jax.lax.erf: "erf",
        jax.nn.leaky_relu: "leaky_relu",  # default negative_slope=0.01
        jax.nn.elu: "elu",  # default alpha=1.0
    }
    out = {}
    for fn, name in table.items():
        try:
            out[fn] = name
        except TypeError:  # pragma: no cover - unhashable callable
            pass
    return out


@dataclasses.dataclass(frozen=True)
class Activation:
    r"""An element-wise activation φ with its kinks and derivative (hashable, comparable).

    Attributes:
      fn: the element-wise function ``x -> φ(x)`` (JAX-traceable).
      name: a display name (the registry name for known activations).
      kinks: sorted points where φ or φ' is not analytic (``relu`` ``(0.,)``, ``relu6``
        ``(0., 6.)``, ``hard_tanh`` ``(-1., 1.)``). Gaussian expectations are split there, which
        makes kinked activations as exact as smooth ones.
      derivative: the element-wise φ'. Exact closed forms for the known activations (φ' jumps
        at the kinks; the value at a kink never matters); ``jax.grad`` of ``fn`` element-wise
        otherwise.
      params: the hyper-parameters of a known activation, e.g. ``(("negative_slope", 0.2),)``.

    Build one with :func:`activation`. Instances are frozen dataclasses, so they can be
    static arguments of ``jax.jit``; two activations built from the same name and parameters
    compare equal.

    Examples:
      >>> from jinit import theory
      >>> relu = theory.activation("relu")
      >>> relu.kinks
      (0.0,)
      >>> float(relu(-1.0)), float(relu.derivative(2.0))
      (0.0, 1.0)
    """

    fn: Callable
    name: str
    kinks: tuple[float, ...] = ()
    derivative: Callable | None = None
    params: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"`Activation` needs a callable `fn`; got {self.fn!r}.")
        object.__setattr__(self, "kinks", check_kinks("Activation", self.kinks))
        if self.derivative is None:
            object.__setattr__(self, "derivative", _JvpDerivative(self.fn))
        elif not callable(self.derivative):
            raise TypeError(
                f"`Activation` needs `derivative` to be callable or None; got {self.derivative!r}."
            )

    def __call__(self, x):
        return self.fn(x)


def check_kinks(api: str, kinks: Any) -> tuple[float, ...]:
    if isinstance(kinks, numbers.Real) and not isinstance(kinks, bool):
        kinks = (kinks,)
    try:
        values = [float(k) for k in kinks]
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"`{api}` needs `kinks` to be a sequence of real numbers; got {kinks!r}. "
            f"Pass e.g. `kinks=(0.0,)`."
        ) from e
    if not all(math.isfinite(k) for k in values):
        raise ValueError(f"`{api}` needs finite `kinks`; got {kinks!r}.")
    return tuple(sorted(set(values)))


def activation(
    fn: str | Callable | Activation,
    *,
    kinks: Sequence[float] | None = None,
    derivative: Callable | None = None,
    name: str | None = None,
    **params: float,
) -> Activation:
    r"""Resolves an activation name or callable to an :class:`Activation`.

    Known names (aliases in brackets): ``relu``, ``leaky_relu`` (``negative_slope=0.01``),
    ``elu`` (``alpha=1.0``), ``selu``, ``gelu`` (exact, :math:`x\Phi(x)`; [``gelu_exact``]),
    ``gelu_tanh`` (the tanh approximation, which is ``jax.nn.gelu``'s default;
    [``gelu_approximate``]), ``silu`` [``swish``], ``tanh``, ``sigmoid``, ``softplus``, ``erf``,
    ``linear`` [``identity``], ``abs``, ``relu6``, ``hard_tanh``, ``hard_sigmoid``,
    ``hard_silu`` [``hard_swish``], ``mish``.

    A callable is taken as an element-wise φ. The common ``jax.nn`` functions (``jax.nn.relu``,
    ``jax.nn.gelu``, ...) are recognised by identity and get their kinks and exact derivative;
    for any other callable declare its kinks (``kinks=(0.,)``) or the expectations converge
    only slowly on them. Its derivative defaults to ``jax.grad`` applied element-wise.

    Args:
      fn: a name from :data:`ACTIVATION_NAMES`, a callable, or an :class:`Activation` (returned
        as is).
      kinks: break points of a callable φ (not allowed with a name).
      derivative: an element-wise φ' for a callable φ (not allowed with a name).
      name: display name for a callable (defaults to its ``__name__``).
      **params: parameters of a known activation (``negative_slope`` for ``leaky_relu``,
        ``alpha`` for ``elu``).

    Returns:
      The :class:`Activation`.

    Raises:
      ValueError: unknown name or parameter.
      TypeError: an argument of the wrong type.

    Examples:
      >>> from jinit import theory
      >>> theory.activation("leaky_relu", negative_slope=0.2).params
      (('negative_slope', 0.2),)
      >>> theory.activation(lambda x: abs(x) - 1, kinks=(0.0,), name="shifted_abs").kinks
      (0.0,)
    """
    api = "activation"
    if isinstance(fn, Activation):
        if kinks is not None or derivative is not None or params or name is not None:
            raise TypeError(
                f"`{api}` got an Activation ({fn.name}) together with other arguments; pass "
                f"the Activation alone, or build a new one from `{fn.name}`'s `fn`."
            )
        return fn
    if isinstance(fn, str):
        return _from_name(api, fn, kinks, derivative, name, params)
    if not callable(fn):
        raise TypeError(
            f"`{api}` needs a name (e.g. 'relu') or an element-wise callable; got {fn!r} of type "
            f"{type(fn).__name__}."
        )
    if params:
        raise TypeError(
            f"`{api}` takes parameters ({sorted(params)}) only with a known name; bind them "
            f"into your callable instead (e.g. with functools.partial)."
        )
    if kinks is None and derivative is None:
        try:
            known = _jax_callables().get(fn)
        except TypeError:
            known = None
        if known is not None:
            act = activation(known)
            return act if name is None else dataclasses.replace(act, name=name)
    label = name if name is not None else getattr(fn, "__name__", type(fn).__name__)
    _check_elementwise(api, "fn", fn, label)
    if derivative is not None:
        if not callable(derivative):
            raise TypeError(
                f"`{api}` needs `derivative` to be an element-wise callable; got {derivative!r}."
            )
        _check_elementwise(api, "derivative", derivative, label)
    return Activation(fn, str(label), check_kinks(api, () if kinks is None else kinks), derivative)


def _from_name(
    api: str, fn: str, kinks: Any, derivative: Any, name: str | None, params: dict[str, Any]
) -> Activation:
    """:func:`activation` for a registry name (or alias) and its parameters."""
    key = fn.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _KNOWN:
        raise ValueError(
            f"`{api}` does not know the activation {fn!r}. Known names: "
            f"{', '.join(ACTIVATION_NAMES)}. Or pass a callable (with `kinks=` if it has "
            f"kinks)."
        )
    if kinks is not None or derivative is not None:
        raise TypeError(
            f"`{api}`: {key!r} already defines its kinks and derivative; `kinks=` and "
            f"`derivative=` are only for callables."
        )
    defaults, build = _KNOWN[key]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) if defaults else "none"
        raise ValueError(
            f"`{api}({key!r})` got unknown parameter(s) {unknown}; allowed: {allowed}."
        )
    values = {}
    for p, default in defaults.items():
        v = params.get(p, default)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise TypeError(f"`{api}({key!r})` needs `{p}` to be a finite real number; got {v!r}.")
        values[p] = float(v)
    f, d, k = build(**values)
    return Activation(f, name if name is not None else key, k, d, tuple(values.items()))


def _check_elementwise(api: str, name: str, fn: Callable, label: Any) -> None:
    """Traces ``fn`` on a float vector (no computation): it must map it to a real vector of
    the same shape, or every expectation would fail deep inside a compiled integral."""
    probe = jax.ShapeDtypeStruct((3,), float_dtype())
    try:
        out = jax.eval_shape(fn, probe)
    except Exception as e:  # noqa: BLE001 - any failure of the user's function
        raise TypeError(
            f"`{api}` could not apply `{name}` ({label}) to a jax array: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}. Write it with `jax.numpy` "
            f"functions (e.g. `jnp.tanh`, not `math.tanh`) so it works element-wise."
        ) from None
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != (3,) or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"`{api}` needs `{name}` ({label}) to be element-wise and real: a float vector of "
            f"shape (3,) must give one of shape (3,); got {out!r}."
        )


_C_SLACK = 1e-6  # correlations up to 1 + 1e-6 in size are rounding and are clipped


def resolve_checked(api: str, name: str, value: Any, *, kind: str = "real") -> Any:
    """Validates a (possibly array) argument of the jittable helpers; returns it unchanged.

    ``kind`` is ``"real"`` (finite), ``"variance"`` (finite, >= 0) or ``"correlation"`` (in
    [-1, 1], up to rounding). Traced values (inside ``jit``/``vmap``) cannot be inspected and
    pass unchecked: the helpers then compute with them as given (a negative variance is read
    as 0, a correlation is clipped to [-1, 1]).
    """
    if isinstance(value, jax.core.Tracer):
        return value
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(
            f"`{api}` needs `{name}` to be a real number or an array of them; got {value!r} of "
            f"type {type(value).__name__}."
        )
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged lists and the like
        arr = None
    if (
        arr is None
        or not (np.issubdtype(arr.dtype, np.integer) or jnp.issubdtype(arr.dtype, jnp.floating))
        or arr.dtype == np.bool_
    ):
        raise TypeError(
            f"`{api}` needs `{name}` to be a real number or an array of them; got {value!r}."
        )
    a = arr.astype(np.float64)
    bad = ~np.isfinite(a)
    if kind == "variance":
        bad |= a < 0
        what, fix = "finite, non-negative", "Variances are >= 0."
    elif kind == "correlation":
        bad |= np.abs(a) > 1 + _C_SLACK
        what, fix = "in [-1, 1]", "Correlations lie in [-1, 1]."
    else:
        what, fix = "finite", "Pass finite numbers."
    if bad.any():
        first = float(a[bad].flat[0])
        shown = f"{first!r}" if a.ndim == 0 else f"an array holding {first!r}"
        raise ValueError(f"`{api}` needs `{name}` {what}; got {shown}. {fix}")
    return value


def resolve_activation(api: str, act: Any) -> Activation:
    if isinstance(act, Activation):
        return act
    if isinstance(act, str) or callable(act):
        return activation(act)
    raise TypeError(
        f"`{api}` needs `activation` to be a name (e.g. 'relu'), a callable or an Activation; "
        f"got {act!r} of type {type(act).__name__}."
    )
