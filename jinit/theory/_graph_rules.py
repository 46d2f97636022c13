r"""Forward rules of :mod:`jinit.theory._graph`: what each jaxpr primitive does to the law of
its operands (see :mod:`jinit.theory._graph_values` for the values).

* **Contraction with a weight** (``dot_general``, ``conv_general_dilated`` with one operand a
  parameter of zero mean and variance :math:`\sigma^2` per entry): for every output entry
  :math:`y_j = \sum_{i,k} J_{jik} x_i W_k` with 0/1 coefficients :math:`J` and at most one
  input per weight entry, :math:`\mathbb E_W[y_j^2] = \sigma^2 \sum_{i,k} J_{jik} x_i^2`,
  which is the same primitive applied to :math:`\mathbb E[x^2]` and a weight of ones. The
  same holds for the covariance of two examples, so fans, strides, padding, dilation, feature
  groups and ``Einsum``/``DenseGeneral`` contractions are read from the computation itself.
  The output is a fresh Gaussian source (central limit over the contracted units), independent
  of everything before it (it is odd in a weight nothing else uses).
* **Element-wise** ops on independent sources and constants: affine ones fold into a new
  Gaussian source; others stay symbolic (:class:`~jinit.theory._graph_values.Expr`).
* **Width averages** (a ``reduce_sum`` over unit axes, as in LayerNorm and RMSNorm)
  concentrate on their expectation.
* **Structural** ops (reshape, transpose, broadcast, squeeze) move the description along.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit.theory._graph_expect import moments
from jinit.theory._graph_tokens import data_tokens, mapped_tokens, scaled_tokens, sum_tokens
from jinit.theory._graph_values import (
    Const,
    Expr,
    Gauss,
    Known,
    NotCovered,
    Sampled,
    batch_axis,
    collapse,
    consts,
    data_law,
    full,
    known_state,
    new_id,
    own_spread,
    state_shape,
    structural_fn,
)

ELEMENTWISE = {
    "neg", "sign", "floor", "ceil", "round", "exp", "exp2", "log", "log1p", "expm1", "tanh",
    "logistic", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
    "atanh", "sqrt", "rsqrt", "cbrt", "abs", "pow", "integer_pow", "square", "erf", "erfc",
    "erf_inv", "add", "sub", "mul", "div", "max", "min", "select_n", "convert_element_type",
    "copy", "copy_p", "reduce_precision", "atan2", "clamp", "is_finite", "ne", "eq", "gt", "lt",
    "ge", "le", "and", "or", "not", "stop_gradient", "add_any", "nextafter", "rem",
}  # fmt: skip
STRUCTURAL = {"reshape", "transpose", "broadcast_in_dim", "squeeze", "expand_dims"}
IDENTITY = {"convert_element_type", "copy", "copy_p", "reduce_precision", "stop_gradient"}


@dataclasses.dataclass(frozen=True, eq=False)
class Param:
    """A parameter tensor not yet used: entries i.i.d. with ``mean`` and ``var`` (``value`` is
    the exact array of a constant initialiser); ``origin`` identifies it across reshapes."""

    shape: tuple[int, ...]
    mean: float
    var: float
    value: np.ndarray | None
    name: str
    origin: int = dataclasses.field(default_factory=new_id)

    @property
    def roles(self) -> tuple[str, ...]:
        return ("u",) * len(self.shape)


def realise(v: Any) -> Any:
    """A :class:`Param` used as a value: its constant array, or a Gaussian source with the
    same value for every example."""
    if not isinstance(v, Param):
        return v
    if v.var == 0:
        arr = v.value if v.value is not None else np.full(v.shape, v.mean)
        return Known(np.asarray(arr, np.float64), v.roles)
    shp = (1,) * len(v.shape)
    pid = new_id()
    return Gauss(
        v.shape,
        v.roles,
        np.full(shp, v.mean),
        np.full(shp, v.var),
        np.full(shp, v.var),
        frozenset({pid}),
        {},
    )


# ---------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------


def elementwise_roles(vals: list[Any], shape: tuple[int, ...]) -> tuple[str, ...]:
    """Per axis: the batch where any operand has it, units where every random operand has
    units, positions otherwise."""
    out = []
    rand = [v for v in vals if isinstance(v, (Gauss, Expr))]
    for ax in range(len(shape)):
        rs = [v.roles[ax] for v in vals if len(v.roles) == len(shape) and v.shape[ax] > 1]
        if "b" in rs:
            out.append("b")
        elif rand and all(v.roles[ax] == "u" or v.shape[ax] == 1 for v in rand):
            out.append("u" if shape[ax] > 1 or any(v.roles[ax] == "u" for v in rand) else "p")
        else:
            out.append("p")
    return tuple(out)


def _groups(in_shape, out_shape) -> list[tuple[list[int], list[int]]]:
    """Matching groups of input and output axes of a reshape (equal sizes)."""
    groups, i, j = [], 0, 0
    while i < len(in_shape) or j < len(out_shape):
        gi, gj, pi, pj = [], [], 1, 1
        if i < len(in_shape):
            gi, pi, i = [i], in_shape[i], i + 1
        if j < len(out_shape):
            gj, pj, j = [j], out_shape[j], j + 1
        while pi != pj:
            if pi < pj:
                gi, pi, i = gi + [i], pi * in_shape[i], i + 1
            else:
                gj, pj, j = gj + [j], pj * out_shape[j], j + 1
        groups.append((gi, gj))
    return groups


def reshape_roles(roles, in_shape, out_shape) -> tuple[str, ...]:
    """Roles after a reshape: a group of axes keeps its common role (positions when it mixes
    units and positions); a group merging the batch with other axes is not covered."""
    out = ["p"] * len(out_shape)
    for gi, gj in _groups(tuple(in_shape), tuple(out_shape)):
        rs = {roles[a] for a in gi if in_shape[a] > 1}
        if "b" in rs and len(rs) > 1:
            raise NotCovered("a reshape merges the batch axis with other axes")
        role = rs.pop() if len(rs) == 1 else "p"
        big = [b for b in gj if out_shape[b] > 1]
        for b in gj:
            out[b] = role if (b in big or not big and role == "b" and b == gj[0]) else "p"
    return tuple(out)


def structural_roles(eqn, v) -> tuple[str, ...]:
    name, p = eqn.primitive.name, eqn.params
    out_shape = tuple(eqn.outvars[0].aval.shape)
    if name == "transpose":
        return tuple(v.roles[a] for a in p["permutation"])
    if name == "squeeze":
        return tuple(r for a, r in enumerate(v.roles) if a not in p["dimensions"])
    if name == "expand_dims":
        raise NotCovered("expand_dims")
    if name == "broadcast_in_dim":
        out = ["p"] * len(out_shape)
        for a, d in enumerate(p["broadcast_dimensions"]):
            out[d] = v.roles[a] if v.shape[a] == out_shape[d] else "p"
        return tuple(out)
    return reshape_roles(v.roles, v.shape, out_shape)


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def structural(eqn, v: Any) -> Any:
    out_shape = tuple(eqn.outvars[0].aval.shape)
    if isinstance(v, Param):
        if eqn.primitive.name == "broadcast_in_dim" and math.prod(out_shape) != math.prod(v.shape):
            v = realise(v)
        else:
            value = v.value
            if value is not None:
                value = np.asarray(eqn.primitive.bind(jnp.asarray(value), **eqn.params))
            return dataclasses.replace(v, shape=out_shape, value=value)
    if isinstance(v, Known):
        out = np.asarray(eqn.primitive.bind(jnp.asarray(v.arr), **eqn.params))
        return Known(out, structural_roles(eqn, v), v.lin, tags=v.tags)
    roles = structural_roles(eqn, v)
    ins, outs = state_shape(v.shape, v.roles), state_shape(out_shape, roles)
    if isinstance(v, Gauss):
        f = structural_fn(eqn, ins, outs, 0)
        arrs = [collapse(f(a)) for a in (v.mean, v.var, v.cross)]
        return Gauss(
            out_shape, roles, *arrs, v.parents, v.lin, base=v.root, batch_mean_of=v.batch_mean_of,
            tokens=mapped_tokens(eqn, v, out_shape, roles), normed=v.normed,
        )  # fmt: skip
    return Expr(out_shape, roles, None, {"eqn": eqn}, (v,), structural_fn(eqn, ins, outs, 1))


def _affine(name: str, vals: list[Any]) -> Gauss | None:
    """The folded source when ``name`` applied to ``vals`` is affine in Gaussian sources."""
    rand = [v for v in vals if isinstance(v, (Gauss, Expr))]
    if not rand or any(isinstance(v, Expr) for v in rand):
        return None
    if name in IDENTITY or name == "neg":
        (g,) = rand
        return (
            g
            if name != "neg"
            else dataclasses.replace(
                g, mean=-g.mean, sid=new_id(), base=g.root, affine=_affine_of(g, -1.0, 0.0)
            )
        )
    if name in ("add", "sub", "add_any"):
        return _sum_fold(name, vals)
    if name in ("mul", "div"):
        a, b = vals
        if not (isinstance(b, Known) or (name == "mul" and isinstance(a, Known))):
            return None
        g, k = (a, b) if isinstance(a, Gauss) else (b, a)
        ks = known_state(k)
        ks = 1.0 / ks if name == "div" else ks
        lin = {t: c + (-2 if name == "div" else 2) * k.lin.get(t, 0.0) for t, c in g.lin.items()}
        for t, c in k.lin.items():
            lin.setdefault(t, (-2 if name == "div" else 2) * c)
        roles = elementwise_roles(vals, _shape(vals))
        return Gauss(
            _shape(vals),
            roles,
            collapse(g.mean * ks),
            collapse(g.var * ks**2),
            collapse(g.cross * ks**2),
            g.parents,
            lin,
            base=g.root,
            tokens=scaled_tokens(g, ks, _shape(vals), roles),
            affine=_affine_of(g, ks, 0.0),
            normed=1.0 if any(t[1] == g.root for t in k.tags) else g.normed,
        )
    return None


def _sum_fold(name: str, vals: list[Any]) -> Gauss | None:
    """A sum or difference of a source and a constant, or of two independent sources."""
    a, b = (data_source(v) if _varies_over_batch(v) else v for v in vals)
    vals = [a, b]
    sign = -1.0 if name == "sub" else 1.0
    if isinstance(a, Known) or isinstance(b, Known):
        g, k = (a, b) if isinstance(a, Gauss) else (b, a)
        ks = known_state(k)
        mean = g.mean + ks * (sign if g is a else 1.0)
        mean = mean if g is a else (-g.mean + ks if sign < 0 else mean)
        a_c = (1.0, sign * ks) if g is a else (sign, ks)
        return Gauss(
            _shape(vals), g.roles, collapse(mean), g.var, g.cross, g.parents, g.lin,
            base=g.root, tokens=sum_tokens(_shape(vals), g.roles, [g]),
            affine=_affine_of(g, *a_c), normed=g.normed,
        )  # fmt: skip
    if a is b:
        return None
    if name == "sub" and b.batch_mean_of is not None and b.batch_mean_of == a.root:
        return _centred(a, b, vals)
    if a.parents & b.parents:
        raise NotCovered("two dependent signals are added (a branch reused without a weight)")
    q1, q2 = float(np.mean(a.second_moment())), float(np.mean(b.second_moment()))
    lin = _mix_lin([(q1, a.lin), (q2, b.lin)])
    roles = elementwise_roles(vals, _shape(vals))
    return Gauss(
        _shape(vals),
        roles,
        collapse(a.mean + sign * b.mean),
        collapse(a.var + b.var),
        collapse(a.cross + b.cross),
        a.parents | b.parents,
        lin,
        tokens=sum_tokens(_shape(vals), roles, [a, b]),
        normed=(q1 * a.normed + q2 * b.normed) / (q1 + q2) if q1 + q2 > 0 else 0.0,
    )


def _affine_of(g: Gauss, a: Any, c: Any) -> tuple[Gauss, np.ndarray, np.ndarray]:
    """``a * g + c`` as an affine function of ``g``'s root source."""
    root, a0, c0 = g.affine if g.affine is not None else (g, 1.0, 0.0)
    return (
        root,
        collapse(np.asarray(a * a0, np.float64)),
        collapse(np.asarray(a * c0 + c, np.float64)),
    )


def _rebased(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` with every source folded from a root that another argument also uses written
    as an affine function of one of them (the *anchor*, the first met), so the expression
    has one source where it had two copies of it (``x * erf(x / sqrt(2))``)."""
    found: dict[int, list[Gauss]] = {}
    for v in args:
        for s in [v] if isinstance(v, Gauss) else list(getattr(v, "sources", {}).values()):
            group = found.setdefault(_root_of(s).sid, [])
            if all(s is not g for g in group):
                group.append(s)
    anchors = {r: g[0] for r, g in found.items() if len(g) > 1}
    return tuple(_rewrite(v, anchors) for v in args) if anchors else args


def _root_of(g: Gauss) -> Gauss:
    return g.affine[0] if g.affine is not None else g


def _rewrite(v: Any, anchors: dict[int, Gauss]) -> Any:
    if isinstance(v, Gauss):
        anchor = anchors.get(_root_of(v).sid)
        if anchor is None or anchor is v:
            return v
        _, a_v, c_v = _affine_of(v, 1.0, 0.0)
        _, a_h, c_h = _affine_of(anchor, 1.0, 0.0)
        if np.any(a_h == 0):
            raise NotCovered("an element-wise op combines two dependent signals")
        a, c = collapse(a_v / a_h), collapse(c_v - a_v * c_h / a_h)
        scaled = Expr(v.shape, v.roles, jax.lax.mul_p, {}, (anchor, Const(a, {})))
        return Expr(v.shape, v.roles, jax.lax.add_p, {}, (scaled, Const(c, {})))
    if isinstance(v, Expr) and v.struct is None:
        return dataclasses.replace(v, args=tuple(_rewrite(x, anchors) for x in v.args))
    return v


def _varies_over_batch(v: Any) -> bool:
    b = batch_axis(v.roles) if isinstance(v, Known) else None
    return b is not None and collapse(v.arr).shape[b] > 1


def data_source(k: Known) -> Gauss:
    """The data, added to a random signal (a residual stream that starts at the input), as a
    source: per position its mean, variance and cross-example covariance over the examples
    (from :attr:`Known.stats` where the data's moments were sampled), independent of every
    weight. Its law is taken as Gaussian, which is exact for what an addition, a width average
    and a later contraction need (second moments), and for Gaussian data; its last axis (the
    features a ``Dense`` contracts) is taken as units, so LayerNorm's average over it
    concentrates as it does over a layer's units."""
    mean, q, c, _ = data_law(k, k.shape[batch_axis(k.roles)])
    shp = tuple(k.shape)
    roles = tuple(k.roles[:-1]) + ("u",) if k.roles[-1] != "b" else tuple(k.roles)
    return Gauss(
        shp, roles, collapse(mean), collapse(np.maximum(q - mean**2, 0.0)),
        collapse(c - mean**2), frozenset({new_id()}), dict(k.lin),
        tokens=data_tokens(k, shp, roles),
    )  # fmt: skip


def _shape(vals: list[Any]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*[tuple(v.shape) for v in vals]))


def _mix_lin(parts: list[tuple[float, dict[int, float]]]) -> dict[int, float]:
    """Log-sensitivity of a sum of independent second moments ``q_i`` with sensitivities."""
    tot = sum(q for q, _ in parts)
    out: dict[int, float] = {}
    if tot <= 0:
        return out
    for q, lin in parts:
        for t, c in lin.items():
            out[t] = out.get(t, 0.0) + c * q / tot
    return out


def elementwise(eqn, vals: list[Any]) -> Any:
    name = eqn.primitive.name
    vals = [realise(v) for v in vals]
    shape = tuple(eqn.outvars[0].aval.shape)
    if all(isinstance(v, Known) for v in vals):
        args = [known_arg(v.arr) for v in vals]
        out = np.asarray(eqn.primitive.bind(*args, **eqn.params))
        tags = frozenset().union(*(v.tags for v in vals))
        return Known(out, elementwise_roles(vals, shape), _known_lin(eqn, vals, out), tags=tags)
    folded = _affine(name, vals)
    if folded is not None:
        return folded
    args = tuple(
        v if isinstance(v, (Gauss, Expr)) else Const(known_state(v), v.lin, v.tags) for v in vals
    )
    args = _rebased(args)
    node = Expr(shape, elementwise_roles(vals, shape), eqn.primitive, dict(eqn.params), args)
    srcs = list(node.sources.values())
    for i, a in enumerate(srcs):
        for b in srcs[i + 1 :]:
            if a.parents & b.parents:
                raise NotCovered("an element-wise op combines two dependent signals")
    if len(srcs) > 2:
        raise NotCovered(f"an element-wise function of {len(srcs)} independent signals")
    return node


def known_arg(arr: Any) -> jax.Array:
    """A deterministic array as an operand: floating ones in float64 (the data may be float32,
    the theory's own constants float64; a primitive needs one dtype)."""
    a = jnp.asarray(arr)
    return a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a


def _known_lin(eqn, vals: list[Known], out: np.ndarray) -> dict[int, float]:
    """Log-sensitivity of a deterministic op's output, by finite differences in log space."""
    if not any(v.lin for v in vals) or eqn.primitive.name in ("eq", "ne", "gt", "lt", "ge", "le"):
        return {}
    lin: dict[int, float] = {}
    base = float(np.mean(np.abs(out)))
    if base == 0 or not np.isfinite(base):
        return {}
    for i, v in enumerate(vals):
        if not v.lin:
            continue
        args = [known_arg(w.arr) for w in vals]
        args[i] = args[i] * (1 + 1e-3)
        bumped = float(np.mean(np.abs(np.asarray(eqn.primitive.bind(*args, **eqn.params)))))
        d = (bumped / base - 1) / 1e-3
        for t, c in v.lin.items():
            lin[t] = lin.get(t, 0.0) + d * c
    return lin


def width_sum(eqn, v: Any, stat_lin, hetero=None) -> Known:
    r"""``reduce_sum`` over unit axes: concentrates on the expectation (LayerNorm's mean and
    mean square). Other axes (batch, positions) are not covered. A sum of a positive
    quantity (a mean square) records the relative variance of its per-token value: over its
    n units (:func:`own_spread` / n) and, through ``hetero(lin)``, from its log-sensitivities
    to the noise atoms (the finite width of the contractions before it, the spread of the
    data's token norms; see :func:`projection_factor`)."""
    axes = tuple(eqn.params["axes"])
    out_shape = tuple(eqn.outvars[0].aval.shape)
    bad = [v.roles[a] for a in axes if v.roles[a] != "u" and v.shape[a] > 1]
    if "b" in bad:
        raise NotCovered("a statistic over the batch (BatchNorm in training mode) is not covered")
    if bad:
        raise NotCovered("a sum over positions (pooling, attention) is not covered")
    m1, m2, _ = moments(v)
    mean = full(m1, state_shape(v.shape, v.roles))
    total = np.sum(mean, axis=axes)
    roles = tuple(r for a, r in enumerate(v.roles) if a not in axes)
    n = math.prod(v.shape[a] for a in axes)
    sids = {s.root for s in v.sources.values()} if isinstance(v, Expr) else {v.root}
    stat = new_id()
    lin = stat_lin(v, "mean")
    rv = 0.0
    if np.all(np.asarray(m1) > 0.2 * np.sqrt(np.asarray(m2))):  # a mean square: its spread
        rv = own_spread(v) / n + (hetero(lin) if hetero is not None else 0.0)
    tags = frozenset((stat, sid, n, rv) for sid in sids)
    tags |= frozenset().union(*(c.tags for c in consts(v))) if isinstance(v, Expr) else frozenset()
    return Known(np.array(full(total, out_shape)), roles, lin, tags=tags)


def batch_stats(x: Any, axes: tuple[int, ...], out_shapes) -> list[Any]:
    r"""BatchNorm's statistics in training mode (``_compute_stats`` over the batch and positions).

    Per unit, the mean over the batch is its *common* component :math:`\xi` (the same for every
    example: its second moment is the cross-example moment of ``x``); the variance over the
    batch concentrates on the within-unit variance :math:`\mathbb E[x^2] - \mathbb E[\xi^2]`.
    Positions are averaged with the per-unit common component taken as the same at every
    position (exact for a stationary signal; zero padding makes it approximate at the borders).
    The finite-batch corrections are O(1/(batch × positions)).
    """
    if not isinstance(x, Gauss):
        raise NotCovered("BatchNorm of a signal after a nonlinearity is not covered")
    if any(x.roles[a] == "u" and x.shape[a] > 1 for a in axes):
        raise NotCovered("BatchNorm reducing over unit axes is not covered")
    xs = state_shape(x.shape, x.roles)
    red = tuple(a for a in axes if x.roles[a] != "b")

    def stat(arr):
        arr = full(arr, xs)
        return np.squeeze(np.mean(arr, axis=red, keepdims=True) if red else arr, axis=axes)

    mean, common, second = stat(x.mean), stat(x.cross + x.mean**2), stat(x.var + x.mean**2)
    keep = tuple(a for a in range(len(x.shape)) if a not in axes)
    mshape, vshape = (tuple(o.shape) for o in out_shapes)
    roles = tuple(x.roles[a] for a in keep)
    spread = collapse(np.maximum(common - mean**2, 0.0))
    xi = Gauss(
        mshape, roles, collapse(mean), spread, spread, x.parents, dict(x.lin),
        batch_mean_of=x.root,
    )  # fmt: skip
    within = np.maximum(second - common, 0.0)
    var = Known(np.array(full(within, vshape)), roles, dict(x.lin))
    return [xi, var]


def _centred(x: Gauss, xi: Gauss, vals: list[Any]) -> Gauss:
    """``x`` minus its own per-unit batch mean: the within-unit part, uncorrelated across
    examples (see :func:`batch_stats`)."""
    shape = _shape(vals)
    var = collapse(np.maximum(x.var - x.cross, 0.0))
    mean = collapse(x.mean - xi.mean)
    zero = np.zeros((1,) * len(shape))
    return Gauss(shape, x.roles, mean, var, zero, x.parents, dict(x.lin), base=x.root)


def sampled_roles(eqn, vals: list[Any]) -> tuple[str, ...]:
    """The roles of an op's output on draws: a contraction's batch dimensions keep the batch
    (or units on both sides), its free axes keep theirs; reductions drop axes; element-wise
    ops take the batch from any operand, units where every random operand has units."""
    name, shape = eqn.primitive.name, tuple(eqn.outvars[0].aval.shape)
    rand = [v for v in vals if isinstance(v, (Gauss, Expr, Sampled)) and len(v.shape) > 0]
    if name == "dot_general":
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lhs, rhs = vals
        roles = [
            "b" if "b" in (lhs.roles[i], rhs.roles[j])
            else "u" if lhs.roles[i] == rhs.roles[j] == "u" else "p"
            for i, j in zip(lb, rb, strict=True)
        ]  # fmt: skip
        for v, c, b in ((lhs, lc, lb), (rhs, rc, rb)):
            roles += [r for a, r in enumerate(v.roles) if a not in c and a not in b]
        return tuple(roles)
    if name in STRUCTURAL and len(rand) == 1:
        return structural_roles(eqn, rand[0])
    if "axes" in eqn.params and len(vals) == 1:
        axes = eqn.params["axes"]
        return tuple(r for a, r in enumerate(vals[0].roles) if a not in axes)
    vals = [v for v in vals if len(v.shape) > 0]  # scalars broadcast
    if all(len(v.shape) == len(shape) for v in vals):
        out = []
        for ax, n in enumerate(shape):
            if any(v.roles[ax] == "b" and v.shape[ax] > 1 for v in vals):
                out.append("b")
                continue
            rs = {v.roles[ax] for v in rand if v.shape[ax] == n and n > 1}
            out.append("u" if rs == {"u"} else "p")
        return tuple(out)
    raise NotCovered(f"the primitive {name!r} on a random signal is not covered")
