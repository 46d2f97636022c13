r"""The abstract values of :mod:`jinit.theory._graph` and their Gaussian expectations.

A model at initialisation is traced to a jaxpr and every intermediate array is replaced by an
abstract value describing the law of its entries in the mean-field (infinite-width) limit:

* :class:`Known`: a deterministic array (the data, a constant parameter such as LayerNorm's
  scale, or a width average that concentrates, such as LayerNorm's mean and variance);
* :class:`Gauss`: a Gaussian *source*: the output of a contraction with a fresh zero-mean weight
  (a ``Dense``, ``Conv`` or ``Einsum``), a random parameter, or an affine combination of
  independent sources. Per position it has a mean :math:`\mu`, a variance :math:`v` and a
  covariance ``cross`` between the same unit's entries for two different examples;
* :class:`Expr`: an element-wise function of at most two independent sources (an activation,
  a normalised stream, a gated unit), kept symbolic and integrated only when a contraction or a
  width average needs its moments.

Arrays describing a value (means, variances, constants inside expressions) have the value's
rank with the batch axis of size 1 (examples are exchangeable) and any axis along which they do
not change collapsed to size 1. Every axis has a *role*: ``"b"`` the batch, ``"u"`` units
(entries independent across the axis, so a sum over it concentrates), ``"p"`` positions
(entries correlated across the axis: tokens, pixels, or copies of a broadcast parameter).

Expectations use a dense trapezoid rule on the Gaussian density (kinks such as relu's cost
O(h²), about 1e-4 relative with the default grids) rather than Gauss–Hermite, whose error on
kinked integrands is percents; where the integrand is analytic at the scale of the nodes the
same rule converges geometrically and a coarser grid is exact (:mod:`~._graph_quad`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit.theory._graph_quad import AFFINE, ANALYTIC, SAME, SMOOTH_SCALE, W1, Z1, rule2

_IDS = itertools.count(1)


def new_id() -> int:
    return next(_IDS)


class NotCovered(Exception):
    """The model does something the theory does not cover; the message is the reason."""


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Known:
    """A deterministic array at the value's full shape (``arr``); ``lin`` is its log-sensitivity
    to the finite-width noise atoms (``{atom: d ln value}``, see :mod:`jinit.theory._graph`)."""

    arr: np.ndarray
    roles: tuple[str, ...]
    lin: dict[int, float] = dataclasses.field(default_factory=dict)
    #: for the data: ``(E[x], E[x²], E[x_e x_e'], relative variance of a batch's mean square)``
    #: per entry, from a larger sample than the traced batch (see :func:`data_stats`) or the
    #: data's exact law (arrays broadcastable to the entries, batch axis first)
    stats: tuple | None = None
    #: the width statistics it is computed from: ``(statistic id, source id, units)``
    tags: frozenset = frozenset()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.arr))


@dataclasses.dataclass(frozen=True, eq=False)
class Gauss:
    """A Gaussian source; ``parents`` are the ids of the independent randomness it is built
    from (two sources sharing a parent are dependent and never combined as independent)."""

    shape: tuple[int, ...]
    roles: tuple[str, ...]
    mean: np.ndarray
    var: np.ndarray
    cross: np.ndarray
    parents: frozenset[int]
    lin: dict[int, float]
    sid: int = dataclasses.field(default_factory=new_id)
    #: the source this one is an affine function of, alone (a normalised or shifted stream)
    base: int | None = None
    #: the root of the source whose per-unit batch mean this is (BatchNorm's statistic)
    batch_mean_of: int | None = None
    #: a memoised thunk giving its covariances across tokens ``(within, across examples)``
    #: (see :mod:`jinit.theory._graph_tokens`); None where they are not known
    tokens: Any = None
    #: the share of its variance that is normalised over its units (a LayerNorm output: its
    #: per-token mean square is exact, not a sample over the units)
    normed: float = 0.0
    #: ``(root, a, c)`` where this source is ``a * root + c`` (state arrays), made by folding
    #: constants into one source; an expression of both is rewritten in terms of the root
    affine: Any = None

    @property
    def root(self) -> int:
        return self.sid if self.base is None else self.base

    def second_moment(self) -> np.ndarray:
        return self.var + self.mean**2


@dataclasses.dataclass(frozen=True, eq=False)
class Expr:
    """``prim(*args)`` element-wise (``args``: :class:`Gauss`, :class:`Expr` or state arrays),
    or a structural node (``struct`` = the jaxpr equation whose op it replays)."""

    shape: tuple[int, ...]
    roles: tuple[str, ...]
    prim: Any
    params: dict[str, Any]
    args: tuple[Any, ...]
    struct: Any = None

    @property
    def sources(self) -> dict[int, Gauss]:
        out: dict[int, Gauss] = {}
        for a in self.args:
            if isinstance(a, Gauss):
                out[a.sid] = a
            elif isinstance(a, Expr):
                out.update(a.sources)
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class Const:
    """A deterministic state array inside an :class:`Expr`, with its log-sensitivity ``lin``."""

    arr: np.ndarray
    lin: dict[int, float]
    tags: frozenset = frozenset()


@dataclasses.dataclass(frozen=True, eq=False)
class Sampled:
    """A random value known by joint draws of its whole array (``draws``: a leading draw axis,
    then the value's shape with the traced batch): what attention makes (a product of two
    signals, a softmax over tokens), integrated by Monte Carlo over its Gaussian sources drawn
    jointly across the batch and the tokens (:mod:`jinit.theory._graph_tokens`)."""

    draws: Any
    roles: tuple[str, ...]
    lin: dict[int, float]
    parents: frozenset[int]
    #: the noise atom of its own draws' spread, and the ids of the sources it is drawn from
    own: int | None = None
    srcs: frozenset = frozenset()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.draws.shape[1:])


Rand = Gauss | Expr


def batch_axis(roles: Sequence[str]) -> int | None:
    return roles.index("b") if "b" in roles else None


def state_shape(shape: Sequence[int], roles: Sequence[str]) -> tuple[int, ...]:
    """``shape`` with the batch axis set to 1."""
    return tuple(1 if r == "b" else int(n) for n, r in zip(shape, roles, strict=True))


def collapse(arr: Any) -> np.ndarray:
    """``arr`` (float64) with every axis along which it is constant reduced to size 1."""
    a = np.asarray(arr)
    a = a if a.dtype == bool or np.issubdtype(a.dtype, np.integer) else a.astype(np.float64)
    for ax in range(a.ndim):
        if a.shape[ax] > 1:
            first = np.take(a, [0], axis=ax)
            if np.array_equal(a, np.broadcast_to(first, a.shape), equal_nan=True):
                a = first
    return a


def full(arr: Any, shape: Sequence[int]) -> np.ndarray:
    return np.broadcast_to(np.asarray(arr, np.float64), tuple(shape))


def data_stats(sample: Any, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The data moments a contraction needs, from a sample of examples (axis 0): per entry
    E[x], E[x²] and E[x_e x_e'] for two different examples (batch axis kept, size 1), and the
    relative variance of one ``batch``'s mean square (the input's own seed-to-seed noise)."""
    a = np.asarray(sample, np.float64)
    n = a.shape[0]
    s1, s2 = a.sum(axis=0, keepdims=True), (a**2).sum(axis=0, keepdims=True)
    q = s2 / n
    c = (s1**2 - s2) / (n * (n - 1)) if n > 1 else q
    per_example = (a**2).reshape(n, -1).mean(axis=1)
    rel = float(np.var(per_example) / max(np.mean(per_example) ** 2, 1e-300) / batch)
    return s1 / n, q, c, rel


def iid_normal_stats(second_moment: float, ndim: int, entries: int, batch: int) -> tuple:
    r"""The exact :attr:`Known.stats` of data with i.i.d. :math:`N(0, s)` entries (``entries``
    per example, ``ndim`` axes): mean 0, :math:`E[x^2] = s`, no covariance across examples,
    and a batch's mean square of relative variance :math:`2/(\text{entries}\cdot\text{batch})`
    (:math:`\operatorname{Var} x^2 = 2s^2`). Constant arrays keep every expression built on
    the data collapsed to one position per token, where a sampled estimate varies per entry."""
    one = (1,) * ndim
    s = float(second_moment)
    return np.zeros(one), np.full(one, s), np.zeros(one), 2.0 / (entries * batch)


def data_law(k: Known, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The data's moments of :func:`data_stats` at ``k``'s own axes (batch axis of size 1):
    from :attr:`Known.stats` where given (a larger sample, or the exact law), else from the
    traced examples themselves (``batch`` examples per seed for the relative variance)."""
    b = batch_axis(k.roles)
    if k.stats is not None:
        mean, q, c, rel = k.stats
    else:
        mean, q, c, rel = data_stats(np.moveaxis(np.asarray(k.arr), b, 0), batch)
    mean, q, c = (np.moveaxis(np.asarray(v, np.float64), 0, b) for v in (mean, q, c))
    return mean, q, c, rel


def known_state(k: Known) -> np.ndarray:
    """A :class:`Known` as a state array (batch axis 1), or :class:`NotCovered` when it varies
    across the batch (data inside a random expression)."""
    b = batch_axis(k.roles)
    a = collapse(k.arr)
    if b is not None and a.shape[b] != 1:
        raise NotCovered("an element-wise op mixes the data itself into a random signal")
    return a


def structural_fn(eqn, in_state: tuple[int, ...], out_state: tuple[int, ...], lead: int):
    """The structural op of ``eqn`` on arrays with ``lead`` leading node axes, mapping a state
    array (broadcastable to ``in_state``) to one of shape ``out_state``."""
    name, p = eqn.primitive.name, eqn.params
    pre = tuple(range(lead))

    def f(a):
        a = jnp.broadcast_to(jnp.asarray(a), tuple(np.shape(a)[:lead]) + in_state)
        if name == "transpose":
            return jnp.transpose(a, pre + tuple(lead + x for x in p["permutation"]))
        if name == "squeeze":
            return jnp.squeeze(a, tuple(lead + d for d in p["dimensions"]))
        if name == "broadcast_in_dim":
            dims = pre + tuple(lead + d for d in p["broadcast_dimensions"])
            return jax.lax.broadcast_in_dim(a, a.shape[:lead] + out_state, dims)
        return jnp.reshape(a, a.shape[:lead] + out_state)

    return f


# ---------------------------------------------------------------------------------------------
# Quadrature
# ---------------------------------------------------------------------------------------------


def smooth(node: Any) -> bool:
    """Whether ``node`` is analytic in a strip around its nodes (:mod:`~._graph_quad`): built
    of affine maps, products and integer powers, and analytic functions whose argument's
    scale is at most ``SMOOTH_SCALE``: its coefficient of z where it is affine in the sources
    (a LayerNorm's output of a grown stream is affine at any scale), else its sources'
    largest standard deviation times its largest constant (tanh-GELU's cubic). Kinks, poles,
    unknown ops and steep arguments say False (the fine rule).

    Example:
      >>> import jax
      >>> g = Gauss((4, 8), ("b", "u"), np.zeros((1, 1)), np.ones((1, 1)), np.zeros((1, 1)),
      ...           frozenset({new_id()}), {})
      >>> smooth(Expr(g.shape, g.roles, jax.lax.tanh_p, {"accuracy": None}, (g,)))
      True
      >>> smooth(Expr(g.shape, g.roles, jax.lax.max_p, {}, (g, Const(np.zeros((1, 1)), {}))))
      False
    """
    return _z_scale(node)[0]


def _z_scale(v: Any) -> tuple[bool, float | None, float, float]:
    """``(analytic at its nodes' scale, the bound on its coefficient of z where affine in its
    sources (else None), its sources' largest standard deviation, its largest constant)``."""
    if isinstance(v, Gauss):
        sd = float(np.sqrt(np.max(np.maximum(v.var, 0.0))))
        return True, sd, sd, 0.0
    if isinstance(v, Const):
        return True, 0.0, 0.0, float(np.max(np.abs(np.asarray(v.arr, np.float64)), initial=0.0))
    if not isinstance(v, Expr):
        return False, None, 0.0, 0.0
    if v.struct is not None:
        return _z_scale(v.args[0])
    parts = [_z_scale(a) for a in v.args]
    sd, big = max(p[2] for p in parts), max(p[3] for p in parts)
    name, sc = v.prim.name, [p[1] for p in parts]
    if not all(p[0] for p in parts):
        return False, None, sd, big
    if name in SAME:
        return True, sc[0], sd, big
    if name in AFFINE:
        return True, None if None in sc else sc[0] + sc[1], sd, big
    if name == "mul":
        free = [x for a, x in zip(v.args, sc, strict=True) if not isinstance(a, Const)]
        if len(free) == 2 or None in free:
            return True, None, sd, big
        return True, (free[0] if free else 0.0) * big, sd, big
    if name == "div":  # by a constant: a product with its inverse
        low = float(np.min(np.abs(v.args[1].arr))) if isinstance(v.args[1], Const) else 0.0
        if not low > 0:
            return False, None, sd, big
        return True, None if sc[0] is None else sc[0] / low, sd, max(big, 1 / low)
    if name in ("integer_pow", "square"):
        return v.params.get("y", 2) >= 0, None, sd, big
    if name in ANALYTIC:  # an affine argument's own scale, else its sources' times constants
        scale = sc[0] if sc[0] is not None else sd * max(big, 1.0)
        return scale <= SMOOTH_SCALE, None, sd, big
    return False, None, sd, big


def _lead(a: np.ndarray, ndim: int) -> np.ndarray:
    return np.reshape(a, (-1,) + (1,) * ndim)


def evaluate(
    node: Any, env: dict[int, Any], scale: dict[int, float] | None = None, drawn: bool = False
) -> Any:
    """The value of ``node`` at the quadrature nodes: ``env[sid]`` holds each source's values
    (leading node axis); ``scale`` multiplies the :class:`Const` with that ``id()``. With
    ``drawn`` the values are draws of whole arrays (the batch included), not state arrays."""
    if isinstance(node, Gauss):
        return env[node.sid]
    if isinstance(node, Expr):
        args = [evaluate(a, env, scale, drawn) for a in node.args]
        if node.struct is not None and drawn:
            inner = node.args[0]
            return structural_fn(node.params["eqn"], inner.shape, node.shape, 1)(args[0])
        if node.struct is not None:
            return node.struct(args[0])
        if node.prim.name in _FLOAT_IDENTITY and _floating(node.params.get("new_dtype")):
            return args[0]  # a float cast (bf16 rounding is below the theory's resolution)
        args = [jnp.asarray(a, jnp.float64) if _floating(_dtype(a)) else a for a in args]
        return node.prim.bind(*jnp.broadcast_arrays(*args), **node.params)
    factor = (scale or {}).get(id(node), 1.0)
    return node.arr[None] * factor  # a Const


_FLOAT_IDENTITY = ("convert_element_type", "reduce_precision", "copy", "copy_p")


def _dtype(a: Any) -> Any:
    return getattr(a, "dtype", None) or np.result_type(type(a))


def _floating(dtype: Any) -> bool:
    return dtype is None or jnp.issubdtype(dtype, jnp.floating)


def consts(node: Any) -> list[Const]:
    """The :class:`Const` leaves of an expression (each once)."""
    if isinstance(node, Const):
        return [node]
    if not isinstance(node, Expr):
        return []
    seen: dict[int, Const] = {}
    for a in node.args:
        for c in consts(a):
            seen[id(c)] = c
    return list(seen.values())


def eval_sources(
    sources: dict[int, Gauss],
    pair: bool = False,
    scale: dict[int, float] | None = None,
    of: Any = None,
) -> tuple[list, np.ndarray]:
    """Source values at the nodes of the rule for ``sources`` (one or two independent ones)
    and the weights; with ``pair`` (one source) the values for two examples (same unit);
    ``scale`` multiplies the variance of the source with that id. Two-dimensional rules are
    coarse where the integrand ``of`` is :func:`smooth` (chosen before ``scale``)."""
    n_pos = max(int(np.prod(np.shape(s.var))) for s in sources.values())
    za2, zb2, w2 = rule2(n_pos, of is not None and (pair or len(sources) == 2) and smooth(of))
    if scale:
        sources = {k: scaled_source(s, scale.get(k, 1.0)) for k, s in sources.items()}
    if len(sources) > 2 or (pair and len(sources) > 1):
        raise NotCovered(
            f"an element-wise function of {len(sources)} independent signals"
            + (" across examples" if pair else "")
        )
    srcs = list(sources.values())
    if pair:
        (s,) = srcs
        nd = len(s.var.shape)
        sd = np.sqrt(np.maximum(s.var, 0.0))
        rho = np.where(s.var > 0, s.cross / np.where(s.var > 0, s.var, 1.0), 0.0)
        rho = np.clip(rho, -1.0, 1.0)
        za, zb = _lead(za2, nd), _lead(zb2, nd)
        e1 = s.mean + sd * za
        e2 = s.mean + sd * (rho * za + np.sqrt(1 - rho**2) * zb)
        return [e1, e2], w2
    if len(srcs) == 1:
        (s,) = srcs
        z, w = _lead(Z1, len(s.var.shape)), W1
        return [s.mean + np.sqrt(np.maximum(s.var, 0.0)) * z], w
    vals = []
    for s, z in zip(srcs, (za2, zb2), strict=True):
        zz = _lead(z, len(s.var.shape))
        vals.append(s.mean + np.sqrt(np.maximum(s.var, 0.0)) * zz)
    return vals, w2


def expect(values: Any, w: np.ndarray) -> np.ndarray:
    """Σ_i w_i values_i over the leading node axis (float64)."""
    v = np.asarray(values, np.float64)
    return np.tensordot(w, v, axes=(0, 0))


def moments(node: Rand) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, second moment, cross-example moment)`` per position of a random value (the
    cross moment is NaN where it is not computable: two sources)."""
    if isinstance(node, Gauss):
        return node.mean, node.second_moment(), node.cross + node.mean**2
    if isinstance(node, Sampled):
        return sampled_moments(node.draws, node.roles)
    srcs = node.sources
    vals, w = eval_sources(srcs, of=node)
    f = evaluate(node, dict(zip(srcs, vals, strict=True)))
    m1, m2 = expect(f, w), expect(jnp.square(jnp.asarray(f, jnp.float64)), w)
    if len(srcs) == 1:
        (sid,) = srcs
        (e1, e2), w2 = eval_sources(srcs, pair=True, of=node)
        f1 = evaluate(node, {sid: e1})
        f2 = evaluate(node, {sid: e2})
        cross = expect(jnp.asarray(f1, jnp.float64) * jnp.asarray(f2, jnp.float64), w2)
    else:
        cross = np.full_like(m2, np.nan)
    return m1, m2, cross


def kurtosis_terms(node: Rand) -> tuple[np.ndarray, np.ndarray]:
    """``(κ, κ_pair)`` per position: E[f⁴]/E[f²]² - 1 and Cov(f_e², f_e'²)/E[f²]² for two
    examples (the finite-width noise a contraction adds, see :mod:`jinit.theory._graph`)."""
    if isinstance(node, Sampled):
        _, m2, _ = sampled_moments(node.draws, node.roles)
        _, m4, pair4 = sampled_moments(jnp.square(node.draws), node.roles)
        safe = np.where(m2 > 0, m2, 1.0)
        return np.where(m2 > 0, m4 / safe**2 - 1, 0.0), np.where(m2 > 0, pair4 / safe**2 - 1, 0.0)
    srcs = node.sources if isinstance(node, Expr) else {node.sid: node}
    vals, w = eval_sources(srcs, of=node)
    f2 = jnp.square(jnp.asarray(evaluate(node, dict(zip(srcs, vals, strict=True))), jnp.float64))
    m2, m4 = expect(f2, w), expect(jnp.square(f2), w)
    safe = np.where(m2 > 0, m2, 1.0)
    kappa = np.where(m2 > 0, m4 / safe**2 - 1.0, 0.0)
    if len(srcs) != 1:
        return kappa, np.zeros_like(kappa)
    (sid,) = srcs
    (e1, e2), w2 = eval_sources(srcs, pair=True, of=node)
    g1 = jnp.square(jnp.asarray(evaluate(node, {sid: e1}), jnp.float64))
    g2 = jnp.square(jnp.asarray(evaluate(node, {sid: e2}), jnp.float64))
    pair = np.where(m2 > 0, expect(g1 * g2, w2) / safe**2 - 1.0, 0.0)
    return kappa, pair


def own_spread(node: Rand) -> float:
    """The relative variance of a width average of ``node`` (per unit i.i.d., times the
    number of units), position-averaged: ``Var(v)/E[v]²``, less the part of sources that
    are already normalised over the same units (a LayerNorm output's mean square is exact)."""
    m1, m2, _ = moments(node)
    var = np.asarray(m2) - np.asarray(m1) ** 2
    srcs = node.sources if isinstance(node, Expr) else {}
    part = [s for s in srcs.values() if s.normed > 0]
    if len(srcs) == 1 and part:  # its normalised part alone: the source's variance scaled
        (s,) = part
        vals, w = eval_sources({s.sid: scaled_source(s, s.normed)}, of=node)
        f = jnp.asarray(evaluate(node, {s.sid: vals[0]}), jnp.float64)
        var = var - (expect(jnp.square(f), w) - expect(f, w) ** 2)
    elif isinstance(node, Expr):
        normed = {t[1] for c in consts(node) for t in c.tags}
        srcs = node.sources
        keep = {k: s for k, s in srcs.items() if s.root in normed}
        if keep:
            vals, w = eval_sources(keep, of=node)
            env = {k: jnp.zeros((1,) * (len(s.var.shape) + 1)) for k, s in srcs.items()}
            env.update(zip(keep, vals, strict=True))
            f = jnp.asarray(evaluate(node, env), jnp.float64)
            var = var - (expect(jnp.square(f), w) - expect(f, w) ** 2)
    safe = np.where(np.asarray(m1) > 0, np.asarray(m1), 1.0)
    return float(np.mean(np.maximum(var, 0.0) / safe**2))


def sampled_moments(draws: Any, roles: Sequence[str]) -> tuple[np.ndarray, ...]:
    """``(mean, second moment, cross-example moment)`` state arrays of sampled draws (averaged
    over the draws, the batch and the unit axes)."""
    d = np.asarray(draws, np.float64)
    b = batch_axis(roles)
    units = tuple(1 + a for a, r in enumerate(roles) if r == "u")
    red = (0, *units) + ((1 + b,) if b is not None else ())
    m1 = d.mean(axis=red, keepdims=True)[0]
    m2 = (d**2).mean(axis=red, keepdims=True)[0]
    if b is None or d.shape[1 + b] < 2:
        return m1, m2, m2
    n = d.shape[1 + b]
    s1, s2 = d.sum(axis=1 + b, keepdims=True), (d**2).sum(axis=1 + b, keepdims=True)
    cross = ((s1**2 - s2) / (n * (n - 1))).mean(axis=(0, *units), keepdims=True)[0]
    return m1, m2, cross


def derivative_moments(node: Expr, arg: int) -> tuple[np.ndarray, np.ndarray]:
    """``(E[d²], E[d⁴])`` per position of d = ∂ node / ∂ args[arg] (an element-wise op)."""
    srcs = node.sources
    vals, w = eval_sources(srcs, of=node)
    env = dict(zip(srcs, vals, strict=True))
    args = [jnp.asarray(evaluate(a, env), jnp.float64) for a in node.args]
    args = list(jnp.broadcast_arrays(*args))

    def f(x):
        a = list(args)
        a[arg] = x
        return node.prim.bind(*a, **node.params)

    _, d = jax.jvp(f, (args[arg],), (jnp.ones_like(args[arg]),))
    d2 = jnp.square(d)
    return expect(d2, w), expect(jnp.square(d2), w)


def expr_derivative(node: Expr, sid: int) -> tuple[np.ndarray, np.ndarray]:
    """``(E[d²], E[d⁴])`` per position of d = ∂ node / ∂ (its source ``sid``) through the
    whole expression."""
    srcs = node.sources
    vals, w = eval_sources(srcs, of=node)
    env = {k: jnp.asarray(v, jnp.float64) for k, v in zip(srcs, vals, strict=True)}

    def f(x):
        return evaluate(node, {**env, sid: x})

    _, d = jax.jvp(f, (env[sid],), (jnp.ones_like(env[sid]),))
    d2 = jnp.square(d)
    return expect(d2, w), expect(jnp.square(d2), w)


def scaled_source(s: Gauss, factor: float) -> Gauss:
    """``s`` with its variance and cross covariance scaled (a sensitivity probe)."""
    return dataclasses.replace(s, var=s.var * factor, cross=s.cross * factor, sid=s.sid)
