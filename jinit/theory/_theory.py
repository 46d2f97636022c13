r"""Mean-field signal-propagation theory: Gaussian moments of activations, gains, q/c-maps, χ₁.

Everything here rests on one fact of wide random networks: with zero-mean i.i.d. weights, each
pre-activation of a layer is (in the infinite-width limit) a centred Gaussian whose variance
``q`` follows a deterministic recursion, the *q-map* (Poole et al. 2016; Schoenholz et al.
2017). Predicting a network therefore reduces to Gaussian expectations of the activation φ:

.. math::
    \mathbb E[\varphi(\sqrt q z)],\quad \mathbb E[\varphi(\sqrt q z)^2],\quad
    \mathbb E[\varphi'(\sqrt q z)^2],\quad \mathbb E[\varphi(u)\varphi(v)],
    \qquad z \sim \mathcal N(0, 1),\ (u, v) \sim \mathcal N\Big(0,
    \begin{pmatrix} q_1 & c\sqrt{q_1 q_2} \\ c\sqrt{q_1 q_2} & q_2\end{pmatrix}\Big).

**Quadrature.** Plain Gauss–Hermite converges spectrally for smooth φ but only as O(1/degree)
on a kink (relu, relu6, hard_tanh, abs, ...). Here every :class:`Activation` declares its kinks,
and integrals are split there:

* 1-D: the real line (truncated to ``|z| <= 10``, a Gaussian tail below 1e-22) is cut at a
  static grid (equal panels on ``|z| <= 4``, graded ones beyond) and at the kinks mapped to
  ``z = (k - shift)/√q``; each interval gets Gauss–Legendre nodes against the Gaussian
  density. The integrand is then analytic on every interval.
* 2-D: write ``u = √q₁ z₁``, ``v = √q₂ (c z₁ + √(1-c²) z₂)`` with independent standard normals.
  The kinks of φ(u) are lines ``z₁ = k/√q₁``; the kinks of φ(v) are lines
  ``c z₁ + √(1-c²) z₂ = k/√q₂``. The plane is rotated (the Gaussian is rotation invariant) so
  that the outer axis bisects the two line families; every kink line then reads
  ``x = (t - β y)/α`` with slope ``|β/α| <= 1`` whatever ``c``. The outer ``y``-integral is
  split where two kink lines cross, the inner ``x``-integral at every line (sorted per ``y``),
  both also at the static grid, so each cell is a trapezoid on which the integrand is
  analytic. This stays exact as ``c → ±1``, where the two families become parallel.

The result is float64 when ``jax_enable_x64`` is on (reaching 1e-12 on the closed forms) and
float32 otherwise (about 1e-6). Host-level helpers (:func:`gain`, :func:`phase`,
:func:`critical_point`, :func:`predict_mlp`) always compute in float64.

**Arguments.** Concrete arguments are checked before any compilation: a variance (``q``,
``q2``, ``sigma_w2``, ``sigma_b2``, ``q0``) must be finite and ``>= 0``, a correlation (``c``,
``c0``) in [-1, 1] (up to 1e-6 of rounding, which is clipped), a shift finite; otherwise a
``ValueError`` names the function, the argument and the value (a non-number is a
``TypeError``). A callable activation must map a float vector to a float vector of the same
shape (checked by tracing it once). Inside ``jit``/``vmap`` the traced values cannot be
inspected and are used as given: a negative variance is read as 0 and a correlation is clipped.

References:
  Poole, Lahiri, Raghu, Sohl-Dickstein, Ganguli (2016), *Exponential expressivity in deep neural
  networks through transient chaos*. Schoenholz, Gilmer, Ganguli, Sohl-Dickstein (2017), *Deep
  Information Propagation*. Pennington, Schoenholz, Ganguli (2017), *Resurrecting the sigmoid in
  deep learning through dynamical isometry*. Cho & Saul (2009), *Kernel Methods for Deep
  Learning*. Hanin & Nica (2019), *Products of Many Large Random Matrices and Gradients in Deep
  Neural Networks*.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf as _erf

ArrayLike = Any

# Half-width of the integration box in standard-normal units: P(|z| > 10) = 1.5e-23.
_BOX = 10.0
# Default composite Gauss-Legendre rules: (panels on |z| <= 4, nodes per panel).
_RULE_1D = (32, 20)
_RULE_2D = (16, 12)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# SELU constants of Klambauer et al. 2017 (Self-Normalizing Neural Networks), full precision:
# they solve E[selu(z)] = 0 and E[selu(z)^2] = 1 for z ~ N(0, 1).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float_dtype() -> np.dtype:
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
    return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * jnp.exp(-0.5 * x * x) * _INV_SQRT_2PI


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
        object.__setattr__(self, "kinks", _check_kinks("Activation", self.kinks))
        if self.derivative is None:
            object.__setattr__(self, "derivative", _JvpDerivative(self.fn))
        elif not callable(self.derivative):
            raise TypeError(
                f"`Activation` needs `derivative` to be callable or None; got {self.derivative!r}."
            )

    def __call__(self, x):
        return self.fn(x)


def _check_kinks(api: str, kinks: Any) -> tuple[float, ...]:
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
                raise TypeError(
                    f"`{api}({key!r})` needs `{p}` to be a finite real number; got {v!r}."
                )
            values[p] = float(v)
        f, d, k = build(**values)
        return Activation(f, name if name is not None else key, k, d, tuple(values.items()))
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
    return Activation(fn, str(label), _check_kinks(api, () if kinks is None else kinks), derivative)


def _check_elementwise(api: str, name: str, fn: Callable, label: Any) -> None:
    """Traces ``fn`` on a float vector (no computation): it must map it to a real vector of
    the same shape, or every expectation would fail deep inside a compiled integral."""
    probe = jax.ShapeDtypeStruct((3,), _float_dtype())
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


def _checked(api: str, name: str, value: Any, *, kind: str = "real") -> Any:
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


def _resolve(api: str, act: Any) -> Activation:
    if isinstance(act, Activation):
        return act
    if isinstance(act, str) or callable(act):
        return activation(act)
    raise TypeError(
        f"`{api}` needs `activation` to be a name (e.g. 'relu'), a callable or an Activation; "
        f"got {act!r} of type {type(act).__name__}."
    )


# ---------------------------------------------------------------------------------------------
# Quadrature core
# ---------------------------------------------------------------------------------------------


def _grid(panels: int) -> np.ndarray:
    """Static cut points: ``panels`` equal panels on [-4, 4], graded panels out to ±10."""
    centre = np.linspace(-4.0, 4.0, panels + 1)
    tail = np.array([4.5, 5.0, 5.5, 6.0, 7.0, 8.0, 9.0, _BOX])
    return np.unique(np.concatenate([-tail, centre, tail]))


def _rule_nodes(edges, nodes: int, dtype):
    """Gauss-Legendre nodes and weights on each interval of sorted ``edges`` (..., E)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    x = jnp.asarray((x + 1) / 2, dtype)
    w = jnp.asarray(w / 2, dtype)
    a, b = edges[..., :-1, None], edges[..., 1:, None]
    pts = a + (b - a) * x
    wts = (b - a) * w
    shape = (*edges.shape[:-1], -1)
    return pts.reshape(shape), wts.reshape(shape)


def _density(z):
    return jnp.exp(-0.5 * z * z) * _INV_SQRT_2PI


def _cuts_with_grid(cuts, panels: int, dtype):
    """Sorted union of the static grid and traced cut points (..., K) clipped to the box."""
    grid = jnp.asarray(_grid(panels), dtype)
    cuts = jnp.clip(cuts, -_BOX, _BOX)
    grid = jnp.broadcast_to(grid, (*cuts.shape[:-1], grid.shape[0]))
    return jnp.sort(jnp.concatenate([grid, cuts], axis=-1), axis=-1)


def _expect1(fns, kinks, loc, scale, rule=_RULE_1D):
    """E[f(loc + scale z)] for each f in ``fns`` (scalars; scale >= 0)."""
    dtype = _float_dtype()
    loc = jnp.asarray(loc, dtype)
    scale = jnp.asarray(scale, dtype)
    k = jnp.asarray(np.asarray(kinks, np.float64), dtype)
    pos = scale > 0
    # With scale == 0 the integrand is constant in z and any split is exact.
    t = jnp.where(pos, (k - loc) / jnp.where(pos, scale, 1), jnp.where(k >= loc, _BOX, -_BOX))
    z, w = _rule_nodes(_cuts_with_grid(t, rule[0], dtype), rule[1], dtype)
    dw = w * _density(z)
    x = loc + scale * z
    return tuple(jnp.sum(jnp.asarray(f(x), dtype) * dw) for f in fns)


def _expect2(f, g, kf, kg, q1, q2, c, rule=_RULE_2D, loc1=0.0, loc2=0.0):
    """E[f(u) g(v)], u = m1 + √q1 z1, v = m2 + √q2 (c z1 + √(1-c²) z2); kinks kf, kg."""
    dtype = _float_dtype()
    q1, q2, c, loc1, loc2 = (jnp.asarray(a, dtype) for a in (q1, q2, c, loc1, loc2))
    c = jnp.clip(c, -1, 1)
    s = jnp.sqrt(jnp.maximum(1 - c * c, 0))
    r1, r2 = jnp.sqrt(jnp.maximum(q1, 0)), jnp.sqrt(jnp.maximum(q2, 0))
    theta = jnp.arctan2(s, c)  # angle of the normal (c, s) of the v-lines, in [0, π]
    psi = jnp.where(c >= 0, theta / 2, (theta - jnp.pi) / 2)  # bisector of the two normals
    cp, sp = jnp.cos(psi), jnp.sin(psi)
    sign = jnp.where(c >= 0, 1.0, -1.0).astype(dtype)
    big = 4 * _BOX  # offset of a kink line at infinity (q = 0): outside the box after clipping

    def offsets(k, loc, r):
        k = jnp.asarray(np.asarray(k, np.float64), dtype) - loc
        pos = r > 0
        return jnp.where(pos, k / jnp.where(pos, r, 1), jnp.where(k >= 0, big, -big))

    # Each kink line reads alpha x + beta y = t in the frame rotated by psi; |beta/alpha| <= 1.
    ta = offsets(kf, loc1, r1)
    tb = sign * offsets(kg, loc2, r2)
    alpha_a, beta_a = cp, -sp
    alpha_b, beta_b = sign * (c * cp + s * sp), sign * (s * cp - c * sp)
    n_a, n_b = len(kf), len(kg)
    alphas = jnp.concatenate([jnp.full((n_a,), alpha_a), jnp.full((n_b,), alpha_b)])
    betas = jnp.concatenate([jnp.full((n_a,), beta_a), jnp.full((n_b,), beta_b)])
    ts = jnp.concatenate([ta, tb])

    # Outer cuts: y where a u-line crosses a v-line (parallel lines never cross).
    det = alpha_a * beta_b - alpha_b * beta_a
    nz = det != 0
    y_cross = (alpha_a * tb[None, :] - alpha_b * ta[:, None]) / jnp.where(nz, det, 1)
    y_cross = jnp.where(nz, y_cross, _BOX).reshape(-1)
    y, wy = _rule_nodes(_cuts_with_grid(y_cross, rule[0], dtype), rule[1], dtype)
    wy = wy * _density(y)

    # Inner cuts: x on every kink line at this y (sorted; the order is fixed between crossings).
    x_cuts = (ts[None, :] - betas[None, :] * y[:, None]) / alphas[None, :]
    x, wx = _rule_nodes(_cuts_with_grid(x_cuts, rule[0], dtype), rule[1], dtype)
    wx = wx * _density(x)
    z1 = x * cp - y[:, None] * sp
    z2 = x * sp + y[:, None] * cp
    u = loc1 + r1 * z1
    v = loc2 + r2 * (c * z1 + s * z2)
    vals = jnp.asarray(f(u), dtype) * jnp.asarray(g(v), dtype)
    return jnp.sum(jnp.sum(vals * wx, axis=-1) * wy)


def _check_rule(api: str, rule: Any, default: tuple[int, int]) -> tuple[int, int]:
    if rule is None:
        return default
    ok = (
        isinstance(rule, (tuple, list))
        and len(rule) == 2
        and all(isinstance(r, numbers.Integral) and not isinstance(r, bool) for r in rule)
        and all(int(r) >= 1 for r in rule)
    )
    if not ok:
        raise ValueError(
            f"`{api}` needs `rule` to be (panels, nodes) with two positive ints; got {rule!r}. "
            f"The default is {default}."
        )
    return int(rule[0]), int(rule[1])


@dataclasses.dataclass(frozen=True)
class _Power:
    """x -> fn(x) ** power (hashable, so kernels keyed by it hit the jit cache)."""

    fn: Callable
    power: int

    def __call__(self, x):
        y = self.fn(x)
        return y if self.power == 1 else y**self.power


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _kernel1(f, kinks, rule, q, shift):
    return jnp.vectorize(lambda qq, mu: _expect1((f,), kinks, mu, jnp.sqrt(qq), rule)[0])(q, shift)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _kernel2(f, kinks, rule, q, q2, c):
    return jnp.vectorize(lambda a, b, cc: _expect2(f, f, kinks, kinks, a, b, cc, rule))(q, q2, c)


def _as_float(*args):
    dtype = _float_dtype()
    return [jnp.asarray(a, dtype) for a in args]


_ALL_MOMENTS = tuple(range(8))


def _moments(act: Activation, v, m, rule=_RULE_1D, which=_ALL_MOMENTS):
    """E over h ~ N(m, v) of (a selection of): φ, φ², φ'², φ⁴, φφ'(h-m), φ'⁴, φ²(h-m),
    φ²((h-m)² - v)."""
    f, d = act.fn, act.derivative
    fns = (
        f,
        lambda x: f(x) ** 2,
        lambda x: d(x) ** 2,
        lambda x: f(x) ** 4,
        lambda x: f(x) * d(x) * (x - m),
        lambda x: d(x) ** 4,
        lambda x: f(x) ** 2 * (x - m),
        lambda x: f(x) ** 2 * ((x - m) ** 2 - v),
    )
    chosen = tuple(fns[i] for i in which)
    return jnp.stack(_expect1(chosen, act.kinks, m, jnp.sqrt(jnp.maximum(v, 0)), rule))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _moment_kernel(act, rule, which, q, shift):
    """The moments ``which`` of :func:`_moments`, broadcast over q and shift (last axis)."""
    one = functools.partial(_moments, act, rule=rule, which=which)
    return jnp.vectorize(one, signature="(),()->(k)")(q, shift)


def _moments_jit(act, v, m):
    return _moment_kernel(act, _RULE_1D, _ALL_MOMENTS, *_as_float(v, m))


# ---------------------------------------------------------------------------------------------
# Public Gaussian expectations
# ---------------------------------------------------------------------------------------------


def gaussian_expectation(
    f: Callable | str | Activation,
    q: ArrayLike,
    *,
    shift: ArrayLike = 0.0,
    kinks: Sequence[float] | None = None,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[f(shift + √q z)] for z ~ N(0, 1), with f split at its kinks.

    .. math::
        \mathbb E[f(\mu + \sqrt q z)] = \int f(\mu + \sqrt q z)\,
        \frac{e^{-z^2/2}}{\sqrt{2\pi}}\,dz,

    computed with composite Gauss–Legendre on ``|z| <= 10`` cut at ``z = (k - μ)/√q`` for each
    kink ``k``. Jittable, and broadcast (vmapped) over the shapes of ``q`` and ``shift``.

    Args:
      f: an element-wise function, or an activation name / :class:`Activation` (whose kinks
        are then used).
      q: variance(s) ``>= 0``.
      shift: mean(s) μ of the Gaussian argument.
      kinks: break points of ``f`` (default: the activation's, or none for a plain callable).
      rule: ``(panels, nodes)``: equal panels on ``|z| <= 4`` (graded ones beyond) and
        Gauss–Legendre nodes per panel; default ``(32, 20)``.

    Returns:
      An array of the broadcast shape of ``q`` and ``shift`` (float64 under x64, else float32).

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.gaussian_expectation(lambda x: x**4, 2.0)):.6f}")
      12.000000
    """
    api = "gaussian_expectation"
    if isinstance(f, (str, Activation)):
        act = _resolve(api, f)
        fn, k = act.fn, act.kinks if kinks is None else _check_kinks(api, kinks)
    elif callable(f):
        fn, k = f, () if kinks is None else _check_kinks(api, kinks)
    else:
        raise TypeError(f"`{api}` needs a callable `f`; got {f!r} of type {type(f).__name__}.")
    q, shift = _checked(api, "q", q, kind="variance"), _checked(api, "shift", shift)
    return _kernel1(fn, k, _check_rule(api, rule, _RULE_1D), *_as_float(q, shift))


def gaussian_mean(
    activation: str | Callable | Activation,
    q: ArrayLike,
    *,
    shift: ArrayLike = 0.0,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[φ(shift + √q z)], z ~ N(0, 1): the mean of an activation (jittable, vmappable).

    Same quadrature and arguments as :func:`gaussian_expectation`.

    Examples:
      >>> import math
      >>> from jinit import theory
      >>> print(f"{float(theory.gaussian_mean('relu', 1.0)) * math.sqrt(2 * math.pi):.6f}")
      1.000000
    """
    act = _resolve("gaussian_mean", activation)
    r = _check_rule("gaussian_mean", rule, _RULE_1D)
    q = _checked("gaussian_mean", "q", q, kind="variance")
    shift = _checked("gaussian_mean", "shift", shift)
    return _moment_kernel(act, r, (0,), *_as_float(q, shift))[..., 0]


def gaussian_second_moment(
    activation: str | Callable | Activation,
    q: ArrayLike,
    *,
    shift: ArrayLike = 0.0,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[φ(shift + √q z)²], z ~ N(0, 1) (jittable, vmappable over q and shift).

    Same quadrature and arguments as :func:`gaussian_expectation`.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.gaussian_second_moment('relu', 1.0)):.6f}")
      0.500000
    """
    act = _resolve("gaussian_second_moment", activation)
    r = _check_rule("gaussian_second_moment", rule, _RULE_1D)
    q = _checked("gaussian_second_moment", "q", q, kind="variance")
    shift = _checked("gaussian_second_moment", "shift", shift)
    return _moment_kernel(act, r, (1,), *_as_float(q, shift))[..., 0]


def gaussian_derivative_second_moment(
    activation: str | Callable | Activation,
    q: ArrayLike,
    *,
    shift: ArrayLike = 0.0,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[φ'(shift + √q z)²], z ~ N(0, 1): the per-layer gradient gain (jittable, vmappable).

    Same quadrature and arguments as :func:`gaussian_expectation`; φ' jumps at the kinks.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.gaussian_derivative_second_moment('relu', 3.0)):.6f}")
      0.500000
    """
    act = _resolve("gaussian_derivative_second_moment", activation)
    r = _check_rule("gaussian_derivative_second_moment", rule, _RULE_1D)
    q = _checked("gaussian_derivative_second_moment", "q", q, kind="variance")
    shift = _checked("gaussian_derivative_second_moment", "shift", shift)
    return _moment_kernel(act, r, (2,), *_as_float(q, shift))[..., 0]


def gaussian_cross_moment(
    activation: str | Callable | Activation,
    q: ArrayLike,
    c: ArrayLike,
    *,
    q2: ArrayLike | None = None,
    derivative: bool = False,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[φ(u)φ(v)] for centred Gaussians u, v of variances q, q2 and correlation c.

    .. math::
        \mathbb E[\varphi(u)\varphi(v)],\qquad u = \sqrt{q}\,z_1,\quad
        v = \sqrt{q_2}\,\big(c z_1 + \sqrt{1 - c^2}\, z_2\big).

    With ``derivative=True`` it is E[φ'(u)φ'(v)] (the slope of the c-map, by Price's
    theorem). The 2-D integral is split along the kink lines of both factors (see the module
    docstring), so it is exact for kinked φ and at any ``c`` in [-1, 1]. Jittable, broadcast
    (vmapped) over ``q``, ``c`` and ``q2``.

    Args:
      activation: a name, callable or :class:`Activation`.
      q: variance of u (``>= 0``).
      c: correlation in [-1, 1] (clipped).
      q2: variance of v; defaults to ``q``.
      derivative: integrate φ' instead of φ.
      rule: ``(panels, nodes)`` in each direction, as in :func:`gaussian_expectation`;
        default ``(16, 12)``.

    Returns:
      An array of the broadcast shape of ``q``, ``c`` and ``q2``.

    Examples:
      >>> import math
      >>> from jinit import theory
      >>> k = float(theory.gaussian_cross_moment("relu", 1.0, 0.0))  # arc-cosine kernel, c=0
      >>> print(f"{k * 2 * math.pi:.6f}")
      1.000000

    References:
      Cho & Saul (2009), *Kernel Methods for Deep Learning* (the relu closed form).
    """
    api = "gaussian_cross_moment"
    act = _resolve(api, activation)
    r = _check_rule(api, rule, _RULE_2D)
    f = act.derivative if derivative else act.fn
    q = _checked(api, "q", q, kind="variance")
    c = _checked(api, "c", c, kind="correlation")
    q2 = q if q2 is None else _checked(api, "q2", q2, kind="variance")
    return _kernel2(f, act.kinks, r, *_as_float(q, q2, c))


# ---------------------------------------------------------------------------------------------
# Gain
# ---------------------------------------------------------------------------------------------


def gain(activation: str | Callable | Activation) -> float:
    r"""Weight-std multiplier that keeps the pre-activation second moment at 1 (zero bias).

    With weights of variance :math:`g^2/\mathrm{fan\_in}` and no bias, the q-map is
    :math:`q \mapsto g^2\,\mathbb E[\varphi(\sqrt q z)^2]`; ``q = 1`` is a fixed point iff

    .. math::
        g = 1 / \sqrt{\mathbb E[\varphi(z)^2]},\qquad z \sim \mathcal N(0, 1).

    Computed in float64. Compare ``torch.nn.init.calculate_gain``:

    ===============  ==========================  =====================================
    activation       ``jinit.theory.gain``       ``torch.nn.init.calculate_gain``
    ===============  ==========================  =====================================
    linear           1                           1
    relu             √2 = 1.41421356             √2
    leaky_relu(a)    √(2/(1+a²))                 √(2/(1+a²))
    tanh             1.5925374197                5/3 = 1.6667
    selu             1                           3/4
    sigmoid          1.8462285                   1
    gelu             1.5335304412                (unsupported)
    silu             1.6765324703                (unsupported)
    ===============  ==========================  =====================================

    They agree where the second moment is exactly homogeneous (linear, relu, leaky_relu). The
    others differ because torch's values are rules of thumb, not solutions of a second-moment
    condition: tanh's 5/3 and sigmoid's 1 come with no derivation, and selu's 3/4 was "found
    empirically" (pytorch/pytorch PR 50664; torch itself recommends ``'linear'`` for
    self-normalising nets, which matches the exact value 1 here).
    The values here are exact for a unit second moment; they do not make the network critical
    (tanh at this gain has χ₁ ≈ 1.18, slightly chaotic; see :func:`critical_point`).

    Args:
      activation: a name, callable or :class:`Activation`.

    Returns:
      The gain as a Python float.

    Examples:
      >>> from jinit import theory
      >>> print(f"{theory.gain('relu'):.10f}")
      1.4142135624
      >>> print(f"{theory.gain('tanh'):.10f}")
      1.5925374197
    """
    act = _resolve("gain", activation)
    with jax.enable_x64(True):
        m2 = float(_moment_kernel(act, _RULE_1D, (1,), *_as_float(1.0, 0.0))[0])
    if not m2 > 0 or not math.isfinite(m2):
        raise ValueError(
            f"`gain` needs E[φ(z)²] to be positive and finite; got {m2!r} for {act.name!r}."
        )
    return 1.0 / math.sqrt(m2)


# ---------------------------------------------------------------------------------------------
# Moments used by the host-level functions (one jitted call per activation and precision)
# ---------------------------------------------------------------------------------------------


def _pair_moments(act: Activation, v, m, c):
    """E over (u, w) ~ N(m, v) at correlation c of: φ(u)φ(w), φ(u)²φ(w)², φ'(u)²φ'(w)²."""
    f, d = act.fn, act.derivative
    k = act.kinks
    return jnp.stack(
        [
            _expect2(f, f, k, k, v, v, c, _RULE_2D, m, m),
            _expect2(_Power(f, 2), _Power(f, 2), k, k, v, v, c, _RULE_2D, m, m),
            _expect2(_Power(d, 2), _Power(d, 2), k, k, v, v, c, _RULE_2D, m, m),
        ]
    )


_pair_moments_jit = jax.jit(_pair_moments, static_argnums=0)


# ---------------------------------------------------------------------------------------------
# q-map, c-map, χ, fixed points, depth scales, phase, critical line
# ---------------------------------------------------------------------------------------------


def q_map(activation, q, sigma_w2, sigma_b2):
    r"""The length map: next-layer pre-activation variance from this layer's.

    .. math::
        q^{l+1} = \sigma_w^2\,\mathbb E_z\big[\varphi(\sqrt{q^l} z)^2\big] + \sigma_b^2,

    for weights of variance :math:`\sigma_w^2/N` and biases of variance :math:`\sigma_b^2`
    (Poole et al. 2016). Jittable, broadcast over all array arguments.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.q_map('relu', 1.0, 2.0, 0.0)):.6f}")
      1.000000

    References:
      Poole et al. (2016), *Exponential expressivity in deep neural networks through transient
      chaos*.
    """
    api = "q_map"
    _checked(api, "sigma_w2", sigma_w2, kind="variance")
    _checked(api, "sigma_b2", sigma_b2, kind="variance")
    _checked(api, "q", q, kind="variance")
    return sigma_w2 * gaussian_second_moment(activation, q) + sigma_b2


def _chi_q_at(act: Activation, q, sigma_w2):
    """Slope of the q-map: σ_w² d/dq E[φ(√q z)²] = σ_w² E[φ(x) φ'(x) x] / q, x = √q z."""
    dtype = _float_dtype()
    floor = float(np.finfo(dtype).tiny) ** 0.5
    qe = jnp.maximum(jnp.asarray(q, dtype), floor)

    def one(qq):
        (val,) = _expect1(
            (lambda x: act.fn(x) * act.derivative(x) * x,), act.kinks, 0.0, jnp.sqrt(qq)
        )
        return val / qq

    return sigma_w2 * jnp.vectorize(one)(qe)


_DIVERGED = 1e30  # a q-map iterate beyond this is taken as divergence (q* = inf)


def _fixed_point(step, x0, lo, hi, max_iter: int):
    """Newton-accelerated fixed-point iteration x <- F(x) (jittable; step -> (F(x), F'(x)))."""
    dtype = _float_dtype()
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    atol = rtol * 1e-8
    x0 = jnp.asarray(x0, dtype)

    def cond(state):
        i, _, done = state
        return (i < max_iter) & ~done

    def body(state):
        i, x, _ = state
        fx, slope = step(x)
        newton = x + (fx - x) / jnp.where(slope < 1, 1 - slope, 1)
        use = (slope < 1 - 1e-3) & (newton >= lo) & (newton <= hi) & jnp.isfinite(newton)
        x_new = jnp.clip(jnp.where(use, newton, fx), lo, hi)
        x_new = jnp.where(x_new > _DIVERGED, jnp.inf, x_new)
        done = (jnp.abs(x_new - x) <= rtol * jnp.abs(x_new) + atol) | ~jnp.isfinite(x_new)
        return i + 1, x_new, done

    _, x, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), x0, jnp.bool_(False)))
    return x


def q_star(activation, sigma_w2, sigma_b2, *, q0=1.0, max_iter: int = 500):
    r"""The fixed point of the q-map reached from ``q0``: the depth-asymptotic variance.

    Iterates :math:`q \leftarrow \sigma_w^2 \mathbb E[\varphi(\sqrt q z)^2] + \sigma_b^2` from
    ``q0`` with Newton acceleration where the map is contracting, so it returns the *stable*
    fixed point the forward pass converges to (e.g. the non-zero one of tanh with
    :math:`\sigma_w^2 > 1, \sigma_b^2 = 0`). Returns ``inf`` when the map diverges (an
    iterate beyond 1e30, e.g. relu with :math:`\sigma_w^2 > 2`), and the last iterate after
    ``max_iter`` steps at exactly critical points, where convergence is only algebraic.
    Jittable and vmappable over ``sigma_w2``, ``sigma_b2`` and ``q0``.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.q_star('relu', 1.5, 0.1)):.6f}")  # σ_b² / (1 - σ_w²/2)
      0.400000
    """
    act = _resolve("q_star", activation)
    max_iter = _check_iter("q_star", max_iter)
    _checked("q_star", "sigma_w2", sigma_w2, kind="variance")
    _checked("q_star", "sigma_b2", sigma_b2, kind="variance")
    _checked("q_star", "q0", q0, kind="variance")
    return _q_star_kernel(act, max_iter, *_as_float(sigma_w2, sigma_b2, q0))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _q_star_kernel(act, max_iter, sigma_w2, sigma_b2, q0):
    def one(sw, sb, q_init):
        def step(q):
            return q_map(act, q, sw, sb), _chi_q_at(act, q, sw)

        return _fixed_point(step, q_init, 0.0, jnp.inf, max_iter)

    return jnp.vectorize(one)(sigma_w2, sigma_b2, q0)


def _check_iter(api: str, max_iter: Any) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"`{api}` needs `max_iter` to be a positive int; got {max_iter!r}.")
    return int(max_iter)


def c_map(activation, c, q, sigma_w2, sigma_b2):
    r"""The correlation map between two inputs of equal variance ``q``.

    .. math::
        c^{l+1} = \frac{\sigma_w^2\,\mathbb E[\varphi(u)\varphi(v)] + \sigma_b^2}
        {\sigma_w^2\,\mathbb E[\varphi(\sqrt q z)^2] + \sigma_b^2},
        \qquad \operatorname{corr}(u, v) = c^l,\ \operatorname{Var} u = \operatorname{Var} v = q,

    usually evaluated at ``q = q*`` (Poole et al. 2016). Jittable, broadcast over arrays.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.c_map('tanh', 1.0, 0.5, 1.5, 0.05)):.6f}")
      1.000000
    """
    api = "c_map"
    _checked(api, "c", c, kind="correlation")
    _checked(api, "q", q, kind="variance")
    _checked(api, "sigma_w2", sigma_w2, kind="variance")
    _checked(api, "sigma_b2", sigma_b2, kind="variance")
    num = sigma_w2 * gaussian_cross_moment(activation, q, c) + sigma_b2
    return num / q_map(activation, q, sigma_w2, sigma_b2)


def _chi_c_at(act: Activation, c, q, sigma_w2, sigma_b2):
    """Slope of the c-map at c: σ_w² q E[φ'(u)φ'(v)] / q_map(q) (Price's theorem)."""
    dd = gaussian_cross_moment(act, q, c, derivative=True)
    return sigma_w2 * q * dd / q_map(act, q, sigma_w2, sigma_b2)


def chi1(activation, sigma_w2, sigma_b2, *, q=None):
    r"""χ₁: the slope of the c-map at c = 1, i.e. the mean squared singular value of a layer.

    .. math::
        \chi_1 = \sigma_w^2\,\mathbb E_z\big[\varphi'(\sqrt{q^*} z)^2\big].

    χ₁ < 1 is the ordered phase (inputs collapse, gradients vanish), χ₁ > 1 the chaotic phase
    (inputs decorrelate, gradients explode), χ₁ = 1 the edge of chaos (Schoenholz et al. 2017).
    ``q`` defaults to :func:`q_star`. Jittable, broadcast over arrays.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.chi1('relu', 2.0, 0.0)):.6f}")
      1.000000

    References:
      Schoenholz et al. (2017), *Deep Information Propagation*.
    """
    act = _resolve("chi1", activation)
    _checked("chi1", "sigma_w2", sigma_w2, kind="variance")
    _checked("chi1", "sigma_b2", sigma_b2, kind="variance")
    if q is not None:
        _checked("chi1", "q", q, kind="variance")
    if q is None:
        q = q_star(act, sigma_w2, sigma_b2)  # may be inf (a diverging q-map): not re-checked
    return sigma_w2 * _moment_kernel(act, _RULE_1D, (2,), *_as_float(q, 0.0))[..., 0]


def c_star(activation, sigma_w2, sigma_b2, *, q=None, c0=0.0, max_iter: int = 500):
    r"""The stable fixed point of the c-map reached from ``c0`` (1 in the ordered phase).

    Iterates :func:`c_map` at ``q`` (default :func:`q_star`) with Newton acceleration where the
    map is contracting. In the ordered phase this is ``c* = 1``; in the chaotic phase the
    stable ``c* < 1`` (0 for odd φ without bias). Jittable, vmappable.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.c_star('tanh', 1.2, 0.1)):.6f}")
      1.000000
    """
    act = _resolve("c_star", activation)
    max_iter = _check_iter("c_star", max_iter)
    _checked("c_star", "sigma_w2", sigma_w2, kind="variance")
    _checked("c_star", "sigma_b2", sigma_b2, kind="variance")
    _checked("c_star", "c0", c0, kind="correlation")
    if q is not None:
        _checked("c_star", "q", q, kind="variance")
    if q is None:
        q = q_star(act, sigma_w2, sigma_b2, max_iter=max_iter)
    return _c_star_kernel(act, max_iter, *_as_float(sigma_w2, sigma_b2, q, c0))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _c_star_kernel(act, max_iter, sigma_w2, sigma_b2, q, c0):
    def one(sw, sb, qq, cc):
        def step(x):
            return c_map(act, x, qq, sw, sb), _chi_c_at(act, x, qq, sw, sb)

        return _fixed_point(step, cc, -1.0, 1.0, max_iter)

    return jnp.vectorize(one)(sigma_w2, sigma_b2, q, c0)


class DepthScales(NamedTuple):
    """Fixed points, slopes and depth scales of the q- and c-maps (see :func:`depth_scales`)."""

    q_star: jax.Array
    c_star: jax.Array
    chi_q: jax.Array
    chi_c: jax.Array
    xi_q: jax.Array
    xi_c: jax.Array


def _xi(chi):
    safe = jnp.where((chi > 0) & (chi < 1), chi, 0.5)
    return jnp.where((chi > 0) & (chi < 1), -1.0 / jnp.log(safe), jnp.where(chi <= 0, 0.0, jnp.inf))


def depth_scales(activation, sigma_w2, sigma_b2, *, max_iter: int = 500) -> DepthScales:
    r"""Depth scales over which lengths and correlations reach their fixed points.

    .. math::
        \chi_q = \frac{\partial q^{l+1}}{\partial q^l}\Big|_{q^*}
               = \frac{\sigma_w^2}{q^*}\,\mathbb E[\varphi(x)\varphi'(x)\,x],\qquad
        \chi_c = \sigma_w^2\,\mathbb E[\varphi'(u)\varphi'(v)]\big|_{c^*},\qquad
        \xi_q = -\frac{1}{\ln \chi_q},\quad \xi_c = -\frac{1}{\ln \chi_c},

    with :math:`x \sim \mathcal N(0, q^*)`, (u, v) at correlation c* (Schoenholz et al. 2017).
    In the ordered phase c* = 1 and χ_c = χ₁; ξ_c diverges at the edge of chaos. A slope
    ``>= 1`` (no contraction) gives an infinite depth scale. Jittable, vmappable.

    Returns:
      :class:`DepthScales` ``(q_star, c_star, chi_q, chi_c, xi_q, xi_c)``.

    Examples:
      >>> from jinit import theory
      >>> s = theory.depth_scales("relu", 1.5, 0.1)
      >>> print(f"{float(s.chi_c):.4f} {float(s.xi_c):.4f}")
      0.7500 3.4761

    References:
      Schoenholz et al. (2017), *Deep Information Propagation*.
    """
    act = _resolve("depth_scales", activation)
    max_iter = _check_iter("depth_scales", max_iter)
    _checked("depth_scales", "sigma_w2", sigma_w2, kind="variance")
    _checked("depth_scales", "sigma_b2", sigma_b2, kind="variance")
    sw, sb = _as_float(sigma_w2, sigma_b2)
    shape = jnp.broadcast_shapes(sw.shape, sb.shape)
    sw, sb = jnp.broadcast_to(sw, shape).reshape(-1), jnp.broadcast_to(sb, shape).reshape(-1)
    out = _depth_scales_kernel(act, max_iter, sw, sb)
    return DepthScales(*(o.reshape(shape) for o in out))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _depth_scales_kernel(act, max_iter, sigma_w2, sigma_b2):
    def one(sw, sb):
        qs = _q_star_kernel(act, max_iter, sw, sb, jnp.ones_like(sw))
        c1 = sw * gaussian_derivative_second_moment(act, qs)

        def chaotic(_):
            cs = _c_star_kernel(act, max_iter, sw, sb, qs, jnp.zeros_like(sw))
            return cs, sw * gaussian_cross_moment(act, qs, cs, derivative=True)

        def ordered(_):
            return jnp.ones_like(c1), c1

        cs, chi_c = jax.lax.cond(c1 > 1, chaotic, ordered, None)
        chi_q = _chi_q_at(act, qs, sw)
        return DepthScales(qs, cs, chi_q, chi_c, _xi(chi_q), _xi(chi_c))

    return jax.vmap(one)(sigma_w2, sigma_b2)


def _host_scalar(api: str, name: str, value: Any, *, nonneg: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
        raise TypeError(f"`{api}` needs `{name}` to be a real number; got {value!r}.")
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"`{api}` runs on the host; `{name}` cannot be a traced value.")
    if np.ndim(value) != 0:
        raise TypeError(f"`{api}` needs a scalar `{name}`; got shape {np.shape(value)}.")
    x = float(value)
    if not math.isfinite(x) or (nonneg and x < 0):
        raise ValueError(
            f"`{api}` needs a finite{' non-negative' if nonneg else ''} `{name}`; got {x!r}."
        )
    return x


def phase(activation, sigma_w2: float, sigma_b2: float, *, tol: float = 1e-6) -> str:
    r"""``"ordered"`` (χ₁ < 1), ``"chaotic"`` (χ₁ > 1) or ``"critical"``
    (:math:`|\chi_1 - 1| \le` ``tol``).

    χ₁ is evaluated at the stable fixed point q* (:func:`q_star`); when the q-map diverges
    (relu with :math:`\sigma_w^2 > 2`) at :math:`q = 10^6`, the large-q limit. Host-level,
    float64.

    Examples:
      >>> from jinit import theory
      >>> theory.phase("relu", 2.0, 0.0), theory.phase("tanh", 1.0, 0.5)
      ('critical', 'ordered')
    """
    act = _resolve("phase", activation)
    sw = _host_scalar("phase", "sigma_w2", sigma_w2)
    sb = _host_scalar("phase", "sigma_b2", sigma_b2)
    tol = _host_scalar("phase", "tol", tol)
    with jax.enable_x64(True):
        qs = float(q_star(act, sw, sb))
        if not math.isfinite(qs):
            qs = 1e6
        c1 = float(chi1(act, sw, sb, q=qs))
    if abs(c1 - 1) <= tol:
        return "critical"
    return "ordered" if c1 < 1 else "chaotic"


class CriticalPoint(NamedTuple):
    """Weight and bias variances on the edge of chaos (see :func:`critical_point`)."""

    sigma_w2: float
    sigma_b2: float


def critical_point(activation, q_star: float) -> CriticalPoint:
    r"""(σ_w², σ_b²) on the edge of chaos with pre-activation fixed point ``q_star``.

    Solves χ₁ = 1 and q* = q_map(q*):

    .. math::
        \sigma_w^2 = \frac{1}{\mathbb E[\varphi'(\sqrt{q^*} z)^2]},\qquad
        \sigma_b^2 = q^* - \sigma_w^2\,\mathbb E[\varphi(\sqrt{q^*} z)^2]

    (the recipe of Xiao et al. 2018's reference notebook, which uses q* = 1/depth for tanh).
    Homogeneous activations (relu, leaky_relu, abs, linear) give σ_b² = 0: for relu
    (2, 0), He initialisation, whatever q*. Host-level, float64.

    Raises:
      ValueError: when σ_b² would be negative (no critical point with fixed point q*:
        sigmoid, softplus, whose large mean already exceeds q*), or for an invalid q*.

    Examples:
      >>> from jinit import theory
      >>> sw2, sb2 = theory.critical_point("relu", 1.0)
      >>> print(f"{sw2:.6f} {sb2:.6f}")
      2.000000 0.000000

    References:
      Schoenholz et al. (2017), *Deep Information Propagation*; Pennington et al. (2017),
      *Resurrecting the sigmoid in deep learning through dynamical isometry*; Xiao et al.
      (2018), *Dynamical Isometry and a Mean Field Theory of CNNs*.
    """
    api = "critical_point"
    act = _resolve(api, activation)
    qs = _host_scalar(api, "q_star", q_star)
    if not qs > 0:
        raise ValueError(f"`{api}` needs `q_star` > 0; got {qs!r}. Pass e.g. `q_star=1.0`.")
    with jax.enable_x64(True):
        mom = np.asarray(_moments_jit(act, qs, 0.0))
    m2, d2 = float(mom[1]), float(mom[2])
    if not d2 > 0:
        raise ValueError(
            f"`{api}`: E[φ'(√q* z)²] = {d2!r} for {act.name!r} at q* = {qs!r}; no weight variance "
            f"makes χ₁ = 1."
        )
    sw = 1.0 / d2
    sb = qs - sw * m2
    if sb < -1e-12 * qs:
        raise ValueError(
            f"`{api}`: {act.name!r} has no critical point with q* = {qs!r}: it needs "
            f"σ_w² = {sw:.6g}, which alone gives σ_w² E[φ²] = {sw * m2:.6g} > q*, i.e. a "
            f"negative bias variance σ_b² = {sb:.6g}. Try a larger `q_star` or a zero-mean "
            f"activation."
        )
    return CriticalPoint(sw, max(sb, 0.0))


# ---------------------------------------------------------------------------------------------
# Whole-stack predictions
# ---------------------------------------------------------------------------------------------


class Prediction(NamedTuple):
    r"""Mean-field prediction for an MLP, one entry per layer (float64 numpy arrays, length L).

    Attributes:
      preact_second_moment: E[(h^l)²] per unit.
      act_second_moment: E[(x^l)²], x^l = φ(h^l) (φ(LN(h^l)) with LayerNorm).
      act_mean: E[x^l] per unit.
      grad_second_moment: E[(∂L/∂h^l)²] per unit, with unit cotangent second moment on h^L.
      fluctuation: relative finite-width std of one seed's activation second moment at layer
        l (Hanin & Nica 2019 for relu; a kurtosis-based approximation otherwise).
      preact_fluctuation: the same for the pre-activation second moment.
      grad_fluctuation: the same for the gradient second moment (approximation).
    """

    preact_second_moment: np.ndarray
    act_second_moment: np.ndarray
    act_mean: np.ndarray
    grad_second_moment: np.ndarray
    fluctuation: np.ndarray
    preact_fluctuation: np.ndarray
    grad_fluctuation: np.ndarray


def _per_layer(api: str, name: str, value: Any, n_layers: int) -> np.ndarray:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"`{api}` runs on the host; `{name}` cannot be a traced value.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"`{api}` needs `{name}` to be a number or a sequence of {n_layers} numbers; got "
            f"{value!r}."
        ) from e
    if arr.ndim == 0:
        arr = np.full(n_layers, float(arr))
    if arr.shape != (n_layers,):
        raise ValueError(
            f"`{api}` needs `{name}` to have one entry per layer ({n_layers}, from `widths`); "
            f"got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{api}` needs finite `{name}`; got {arr.tolist()}.")
    return arr


def _mix(single: float, pair: float, batch: int) -> float:
    """Noise of a batch average: 1/B of the single-input part, the rest from input pairs."""
    return single / batch + (1 - 1 / batch) * pair


def predict_mlp(
    activation,
    weight_var,
    bias_var,
    widths: Sequence[int],
    input_second_moment: float = 1.0,
    *,
    residual: bool = False,
    layernorm: bool = False,
    bias_mean=0.0,
    batch_size: int = 1,
    input_correlation: float = 0.0,
    random_input: bool = False,
    random_cotangent: bool = False,
) -> Prediction:
    r"""Mean-field prediction of forward and backward second moments through an MLP.

    The network (layers l = 1..L, widths ``(n_0, ..., n_L)``) is

    .. math::
        h^1 = W^1 x + b^1,\qquad x^l = \varphi(\tilde h^l),\qquad
        h^{l+1} = W^{l+1} x^l + b^{l+1}\ \ [+\ h^l \text{ if residual}],

    with :math:`\tilde h^l = h^l`, or with ``layernorm=True`` :math:`\tilde h^l =
    \mathrm{LN}(h^l) = (h^l - \bar h^l)/\operatorname{std}(h^l)` over the units (LayerNorm
    without affine, as at initialisation). With ``residual=True`` the block is
    :math:`h^{l+1} = h^l + W^{l+1}\varphi(\tilde h^l) + b^{l+1}` for l >= 1 (the first layer has
    no skip; a pre-LN block when combined with ``layernorm``), so every layer after the first
    needs the same width. Weights are zero-mean with variance ``weight_var[l]`` per entry (e.g.
    ``jinit.law(init, shape).variance``, 2/fan_in for ``he_normal``); biases have variance
    ``bias_var[l]`` and mean ``bias_mean[l]``.

    In the mean-field limit each unit is :math:`h^l \sim \mathcal N(m^l, v^l)` with

    .. math::
        v^l &= n_{l-1}\,\sigma^2_{w,l}\,\mathbb E[(x^{l-1})^2] + \sigma^2_{b,l}\ [+\, v^{l-1}],
        \qquad m^l = \mu_{b,l}\ [+\, m^{l-1}],\\
        \mathbb E[(x^0)^2] &= \text{input\_second\_moment},\qquad
        \mathbb E[(x^l)^2] = \mathbb E[\varphi(m^l + \sqrt{v^l} z)^2]
        \quad(\mathbb E[\varphi(z)^2] \text{ with LayerNorm}),

    and ``preact_second_moment`` is :math:`v^l + (m^l)^2` (before LN). Backward, with
    :math:`g^l = \mathbb E[(\partial L/\partial h^l)^2]` per unit and gradient independence
    (Schoenholz et al. 2017):

    .. math::
        g^L = 1,\qquad g^l = g^{l+1}\,\big([1 +]\ n_{l+1}\,\sigma^2_{w,l+1}\,
        \mathbb E[\varphi'(\tilde h^l)^2]\ [/\,v^l]_{\mathrm{LN}}\big),

    where ``[1 +]`` applies with ``residual`` and ``/ v^l`` (the LN Jacobian's scale) with
    ``layernorm``. These are infinite-width values; at width n they carry O(1/n) biases per
    layer (largest with LayerNorm, whose empirical std makes E[1/std²] > 1/v).

    **Finite-width fluctuation** (relative std of one seed's per-layer second moment, averaged
    over the units and a batch of ``batch_size`` inputs whose pairwise correlation starts at
    ``input_correlation``). With the excess kurtosis :math:`\kappa_l = \mathbb E[\varphi^4] /
    \mathbb E[\varphi^2]^2 - 1`, the log-slope :math:`\gamma_l = d\ln\mathbb E[\varphi^2]/d\ln
    v`, and the variances V of log second moments propagated by the delta method through
    independent layers:

    .. math::
        V^{act}_l = \gamma_l^2 V^{q}_l + \bar\kappa_l/n_l,\qquad
        V^{q}_{l+1} = \rho_{l+1}^2 V^{act}_l,\qquad \rho_{l+1} = 1 - \sigma^2_{b,l+1}/v^{l+1},
        \qquad \bar\kappa_l = \kappa_l / B + (1 - 1/B)\,\kappa^{pair}_l,

    where :math:`\kappa^{pair}_l = \mathbb E[\varphi(u)^2\varphi(u')^2]/\mathbb E[\varphi^2]^2 -
    1` for two inputs at the layer's correlation :math:`c^l` (tracked with the c-map), and
    ``fluctuation`` is :math:`\sqrt{e^{V^{act}_l} - 1}`. For relu without bias, a single input
    and a fixed input (the defaults; κ = 5, γ = ρ = 1) this is exactly Hanin & Nica's
    :math:`\sqrt{e^{5\sum_{k\le l} 1/n_k} - 1}`. For anything else it is an approximation,
    first order in 1/n. Its other parts:

    * the pre-activation adds the chi-square noise of the fresh weights,
      :math:`V^{pre}_l = V^q_l + \bar\kappa^h_l/n_l`, with :math:`\kappa^h = 2` for centred h;
    * residual streams add branch and cross terms;
    * LayerNorm sets γ = 0 and removes the first two Hermite components of φ² from κ, because
      it fixes Σĥ and Σĥ²;
    * ``grad_fluctuation`` uses :math:`V^g_l = V^g_{l+1} + \bar\kappa'_l/n_l` with
      :math:`\kappa' = 3\,\mathbb E[\varphi'^4]/\mathbb E[\varphi'^2]^2 - 1` (relu: 5). With
      ``residual`` this is weighted by the branch share, plus a cross term; with LayerNorm the
      noise of the empirical std is added. It ignores forward-backward correlations;
    * ``random_input`` and ``random_cotangent`` add the sampling noise of a Gaussian input and
      cotangent.

    Checked against Monte Carlo (width 256, 6 layers: relu, tanh, residual, LayerNorm, batch 1
    and 64): agreement is within about 20 %.

    Args:
      activation: a name, callable or :class:`Activation`.
      weight_var: per-layer weight variance (length L, or a scalar for every layer).
      bias_var: per-layer bias variance (length L or scalar).
      widths: ``(n_0, n_1, ..., n_L)``: the input width, then each layer's output width.
      input_second_moment: E[x_i²] of the input entries.
      residual: add the skip connection described above.
      layernorm: normalise each pre-activation over the units before φ.
      bias_mean: per-layer bias mean (length L or scalar); 0 for the usual zero-mean bias.
      batch_size: inputs averaged in each seed's statistic (fluctuations only); 1 gives the
        single-input fluctuation.
      input_correlation: correlation between two distinct inputs (fluctuations only; 0 for
        independent inputs).
      random_input: the input entries are redrawn i.i.d. Gaussian per seed; adds their
        sampling noise to the fluctuations (relative variance 2/(n_0 B) for independent
        inputs).
      random_cotangent: the cotangent on h^L is i.i.d. standard normal per seed; adds its
        sampling noise 2/(n_L B) to ``grad_fluctuation``.

    Returns:
      A :class:`Prediction` of float64 numpy arrays of length L.

    Raises:
      ValueError: inconsistent lengths, negative variances, or residual with unequal widths.
      TypeError: arguments of the wrong type.

    Examples:
      >>> from jinit import theory
      >>> p = theory.predict_mlp("relu", 2 / 512, 0.0, (512, 512, 512, 512))
      >>> p.preact_second_moment, p.grad_second_moment
      (array([2., 2., 2.]), array([1., 1., 1.]))
      >>> print(p.fluctuation.round(4))  # sqrt(exp(5 l / 512) - 1)
      [0.0991 0.1404 0.1724]

    References:
      Poole et al. (2016), *Exponential expressivity in deep neural networks through transient
      chaos*; Schoenholz et al. (2017), *Deep Information Propagation* (backward recursion);
      Hanin & Nica (2019), *Products of Many Large Random Matrices and Gradients in Deep Neural
      Networks*; Hanin (2018), *Which Neural Net Architectures Give Rise to Exploding and
      Vanishing Gradients?*
    """
    api = "predict_mlp"
    act = _resolve(api, activation)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (Sequence, np.ndarray)):
        raise TypeError(f"`{api}` needs `widths` to be a sequence of ints; got {widths!r}.")
    ws = []
    for n in widths:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (numbers.Integral, np.integer)):
            raise TypeError(f"`{api}` needs `widths` to hold ints; got {tuple(widths)!r}.")
        if n < 1:
            raise ValueError(f"`{api}` needs positive `widths`; got {tuple(widths)!r}.")
        ws.append(int(n))
    if len(ws) < 2:
        raise ValueError(
            f"`{api}` needs `widths` = (n_0, n_1, ..., n_L) with at least one layer; got "
            f"{tuple(ws)!r}."
        )
    n_layers = len(ws) - 1
    wv = _per_layer(api, "weight_var", weight_var, n_layers)
    bv = _per_layer(api, "bias_var", bias_var, n_layers)
    bm = _per_layer(api, "bias_mean", bias_mean, n_layers)
    for name, arr in (("weight_var", wv), ("bias_var", bv)):
        if np.any(arr < 0):
            raise ValueError(f"`{api}` needs non-negative `{name}`; got {arr.tolist()}.")
    x2 = _host_scalar(api, "input_second_moment", input_second_moment)
    rho_in = _host_scalar(api, "input_correlation", input_correlation, nonneg=False)
    if not -1 <= rho_in <= 1:
        raise ValueError(f"`{api}` needs `input_correlation` in [-1, 1]; got {rho_in!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"`{api}` needs `batch_size` to be an int; got {batch_size!r}.")
    batch = int(batch_size)
    if batch < 1:
        raise ValueError(f"`{api}` needs `batch_size` >= 1; got {batch}.")
    for name, flag in (
        ("residual", residual),
        ("layernorm", layernorm),
        ("random_input", random_input),
        ("random_cotangent", random_cotangent),
    ):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"`{api}` needs `{name}` to be a bool; got {flag!r}.")
    if residual and len(set(ws[1:])) > 1:
        raise ValueError(
            f"`{api}` with `residual=True` adds h^l to h^(l+1), so every layer after the first "
            f"needs the same width; got widths {tuple(ws)!r}."
        )

    # Exploding or vanishing stacks overflow to inf (or give nan): reported, never raised.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _predict_mlp(
            act,
            ws,
            wv,
            bv,
            bm,
            x2,
            rho_in,
            batch,
            residual,
            layernorm,
            random_input,
            random_cotangent,
        )


def _predict_mlp(
    act, ws, wv, bv, bm, x2, rho_in, batch, residual, layernorm, random_input, random_cotangent
) -> Prediction:
    L = len(ws) - 1
    var, mean, cov = np.zeros(L), np.zeros(L), np.zeros(L)
    a2, amean, d2, phiphi = np.zeros(L), np.zeros(L), np.zeros(L), np.zeros(L)
    gamma = np.zeros(L)
    k_act, k_act_pair = np.zeros(L), np.zeros(L)
    k_d, k_d_pair = np.zeros(L), np.zeros(L)
    xab = x2 * rho_in  # E[x_a x_b] between two inputs
    with jax.enable_x64(True):
        norm = np.asarray(_moments_jit(act, 1.0, 0.0)) if layernorm else None
        for i in range(L):
            scale = ws[i] * wv[i]
            if residual and i > 0:
                v = var[i - 1] + scale * x2 + bv[i]
                k = cov[i - 1] + scale * xab + bv[i]
                m = mean[i - 1] + bm[i]
            else:
                v, k, m = scale * x2 + bv[i], scale * xab + bv[i], bm[i]
            c = min(max(k / v, -1.0), 1.0) if v > 0 else 1.0
            mv, mm = (1.0, 0.0) if layernorm else (v, m)
            mom = norm if layernorm else np.asarray(_moments_jit(act, v, m))
            e1, e2, ed2, e4, eff, ed4, a_1, a_2 = (np.float64(t) for t in mom)
            var[i], mean[i], cov[i] = v, m, k
            a2[i], amean[i], d2[i] = e2, e1, ed2
            gamma[i] = 0.0 if (layernorm or e2 <= 0 or v <= 0) else eff / e2
            # LayerNorm fixes sum(ĥ) and sum(ĥ²), removing the 1st and 2nd Hermite components
            # of φ² from the noise of the unit average.
            h1, h2 = (a_1**2, a_2**2 / 2) if layernorm else (0.0, 0.0)
            k_act[i] = (e4 - e2**2 - h1 - h2) / e2**2 if e2 > 0 else 0.0
            k_d[i] = 3 * ed4 / ed2**2 - 1 if ed2 > 0 else 0.0
            if batch > 1:
                pp, p22, pd22 = (np.float64(t) for t in _pair_moments_jit(act, mv, mm, c))
                phiphi[i] = pp
                k_act_pair[i] = (p22 - e2**2 - h1 * c - h2 * c * c) / e2**2 if e2 > 0 else 0.0
                k_d_pair[i] = pd22 / ed2**2 - 1 if ed2 > 0 else 0.0
            x2, xab = e2, phiphi[i]
    pre = var + mean**2

    # Backward second moments.
    grad = np.ones(L)
    steps = np.zeros(L)
    for i in range(L - 2, -1, -1):
        step = ws[i + 2] * wv[i + 1] * d2[i]
        if layernorm:  # d LN(h)/dh scales by 1/std(h); 0/0 (zero weights) stays 0
            step = step / var[i] if var[i] > 0 else (np.inf if step > 0 else 0.0)
        steps[i] = step
        grad[i] = grad[i + 1] * ((1 + step) if residual else step)

    # Finite-width fluctuations: variances of the log second moments (delta method).
    v_act, v_pre, v_scale = np.zeros(L), np.zeros(L), np.zeros(L)
    v_in = _mix(2.0, 2.0 * rho_in**2, batch) / ws[0] if random_input else 0.0
    vs = 0.0  # residual stream
    for i in range(L):
        n = ws[i + 1]
        v, m, k, s2 = var[i], mean[i], cov[i], pre[i]
        c = min(max(k / v, -1.0), 1.0) if v > 0 else 1.0
        noise_act = _mix(k_act[i], k_act_pair[i], batch) / n
        if residual and i > 0 and s2 > 0:
            s_prev, v_prev, m_prev = pre[i - 1], var[i - 1], mean[i - 1]
            branch = ws[i] * wv[i] * a2[i - 1]
            g_prev = gamma[i - 1] * s_prev / v_prev if v_prev > 0 else 0.0
            c_phi = phiphi[i - 1] / a2[i - 1] if (batch > 1 and a2[i - 1] > 0) else 1.0
            c_h = (cov[i - 1] + m_prev**2) / s_prev if s_prev > 0 else 1.0
            noise_a = _mix(k_act[i - 1], k_act_pair[i - 1], batch) / ws[i]
            noise_w = _mix(2.0, 2.0 * c_phi**2, batch) / n
            cross = 4 * s_prev * branch * _mix(1.0, c_h * c_phi, batch) / (n * s2**2)
            vs = ((s_prev + branch * g_prev) / s2) ** 2 * vs
            vs += (branch / s2) ** 2 * (noise_a + noise_w) + cross
            v_pre[i] = vs
            vq = vs * (s2 / v) ** 2 if v > 0 else 0.0
        else:
            prev = v_act[i - 1] if i > 0 else v_in
            vq = ((v - bv[i]) / v) ** 2 * prev if v > 0 else 0.0
            kh = (2 * v * v + 4 * m * m * v) / s2**2 if s2 > 0 else 0.0
            kh_pair = (2 * k * k + 4 * m * m * k) / s2**2 if s2 > 0 else 0.0
            v_pre[i] = (v / s2) ** 2 * vq + _mix(kh, kh_pair, batch) / n if s2 > 0 else 0.0
            vs = v_pre[i]
        v_act[i] = gamma[i] ** 2 * vq + noise_act
        v_scale[i] = vq + _mix(2.0, 2.0 * c * c, batch) / n  # of the empirical variance of h
    v_grad = np.zeros(L)
    v_grad[L - 1] = 2.0 / (ws[L] * batch) if random_cotangent else 0.0
    for i in range(L - 2, -1, -1):
        n = ws[i + 1]
        noise = _mix(k_d[i], k_d_pair[i], batch) / n
        if layernorm:
            noise += v_scale[i]
        if residual:
            t = steps[i]
            share = t / (1 + t) if np.isfinite(t) else 1.0
            cross = 4 * t / ((1 + t) ** 2 * n * batch) if np.isfinite(t) else 0.0
            v_grad[i] = v_grad[i + 1] + share**2 * noise + cross
        else:
            v_grad[i] = v_grad[i + 1] + noise

    def rel(vv):
        return np.sqrt(np.expm1(np.maximum(vv, 0.0)))

    return Prediction(pre, a2, amean, grad, rel(v_act), rel(v_pre), rel(v_grad))
