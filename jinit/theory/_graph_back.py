"""The backward pass of :mod:`jinit.theory._graph`: cotangent second moments carried through
the tape of the forward interpretation (gradient independence; see that module)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit.theory._graph_rules import structural_fn
from jinit.theory._graph_values import (
    Const,
    Expr,
    Gauss,
    Known,
    NotCovered,
    collapse,
    consts,
    derivative_moments,
    expr_derivative,
    full,
    known_state,
    projection_factor,
    state_shape,
)


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A value the theory does not cover, with the first reason met on its way."""

    reason: str
    shape: tuple[int, ...]
    roles: tuple[str, ...] | None = None  # known where linear ops carried them (backward)


@dataclasses.dataclass
class Cot:
    arr: np.ndarray
    var: float  # log-variance
    ratio: float  # E[d⁴]/E[d²]² of the element-wise derivatives since the last contraction
    applied: frozenset = frozenset()  # the width statistics whose projection is accounted for
    share: float = 0.0  # of it, the part projected by a normalisation since the last contraction


def backward(tape: list, seeds: dict[int, Cot]) -> dict[int, Cot]:
    """Cotangent second moments of every value the seeds reach, in reverse order of the tape."""
    cot = dict(seeds)
    for entry in reversed(tape):
        kind, eqn, ins, out = entry[:4]
        g = cot.get(id(out))
        if g is None:
            continue
        if kind == "contract":
            x, w = ins
            f, xs, n_out = entry[4:]
            _, tr = jax.vjp(f, jnp.zeros(xs, jnp.float64))
            gy = jnp.asarray(full(g.arr, state_shape(out.shape, out.roles)), jnp.float64)
            (gx,) = tr(gy)
            arr = collapse(w.var * np.asarray(gx, np.float64))
            add_cot(cot, x, Cot(arr, g.var + (3 * g.ratio - 1) / n_out, 1.0))
        elif kind == "sum":
            (v,) = ins
            gx = np.expand_dims(np.asarray(g.arr), tuple(eqn.params["axes"]))
            add_cot(cot, v, Cot(collapse(gx), g.var, g.ratio, g.applied, g.share))
        elif kind == "linear":
            _linear_back(cot, eqn, ins, g)
        elif kind == "struct":
            v = ins[0]
            if isinstance(v, (Gauss, Expr)) or getattr(v, "roles", None) is not None:
                ins_s = state_shape(v.shape, v.roles)
                f = structural_fn(eqn, ins_s, state_shape(out.shape, out.roles), 0)
                _, tr = jax.vjp(f, jnp.zeros(ins_s, jnp.float64))
                gy = full(g.arr, state_shape(out.shape, out.roles))
                (gx,) = tr(jnp.asarray(gy, jnp.float64))
                add_cot(
                    cot,
                    v,
                    Cot(collapse(np.asarray(gx, np.float64)), g.var, g.ratio, g.applied, g.share),
                )
        elif isinstance(out, Gauss):  # an affine fold of independent sources
            args = tuple(v if isinstance(v, (Gauss, Expr)) else Const(_state(v), {}) for v in ins)
            node = Expr(out.shape, out.roles, eqn.primitive, dict(eqn.params), args)
            tags = frozenset().union(*(v.tags for v in ins if isinstance(v, Known)))
            for i, v in enumerate(ins):
                if isinstance(v, Gauss):
                    d2, _ = derivative_moments(node, i)
                    factor, new, share = projection_factor(tags, v.root, g.applied, g.share)
                    arr = collapse(factor * d2 * g.arr)
                    add_cot(cot, v, Cot(arr, g.var, g.ratio, g.applied | new, share))
    return cot


def _linear_back(cot: dict[int, Cot], eqn, ins: list[Any], g: Cot) -> None:
    """The cotangent through an op linear in its one uncovered operand (scaled by a constant)."""
    name = eqn.primitive.name
    (i,) = [j for j, v in enumerate(ins) if isinstance(v, Unknown)]
    d2: Any = 1.0
    if name in ("mul", "div"):
        k = np.asarray(_state(ins[1 - i]), np.float64)
        d2 = k**2 if name == "mul" else 1.0 / k**2
    add_cot(cot, ins[i], Cot(collapse(d2 * g.arr), g.var, g.ratio, g.applied, g.share))


def structural_fn_of(v: Expr, ins_s: tuple[int, ...]):
    """The structural op of the node ``v`` as a function of state arrays (no node axis)."""
    return lambda a: v.struct(a[None])[0]


def _state(k: Any) -> np.ndarray:
    """A constant operand's state array; the data itself (varying over the batch, folded into a
    source by an addition) enters an addition's derivative as a placeholder zero."""
    try:
        return known_state(k)
    except NotCovered:
        return np.zeros((1,) * len(k.shape))


def add_cot(cot: dict[int, Cot], v: Any, g: Cot) -> None:
    """Adds the cotangent ``g`` of ``v``; an element-wise expression passes it straight to its
    sources with the derivative of the whole expression (its parts are not independent).
    A batch statistic gets none (its cotangent terms are O(1/(batch × positions)))."""
    if isinstance(v, Gauss) and v.batch_mean_of is not None:
        return
    if isinstance(v, Expr):
        _merge(cot, v, g)  # for the report; the expression passes it on to its sources
        if v.struct is not None:
            inner = v.args[0]
            ins_s = state_shape(inner.shape, inner.roles)
            f = structural_fn_of(v, ins_s)
            _, tr = jax.vjp(f, jnp.zeros(ins_s, jnp.float64))
            gy = jnp.asarray(full(g.arr, state_shape(v.shape, v.roles)), jnp.float64)
            (gx,) = tr(gy)
            add_cot(
                cot,
                inner,
                Cot(collapse(np.asarray(gx, np.float64)), g.var, g.ratio, g.applied, g.share),
            )
            return
        tags = frozenset().union(*(c.tags for c in consts(v)))
        for sid, s in v.sources.items():
            d2, d4 = expr_derivative(v, sid)
            factor, new, share = projection_factor(tags, s.root, g.applied, g.share)
            m2 = float(np.mean(d2))
            r = float(np.mean(d4)) / m2**2 if m2 > 0 else 1.0
            arr = collapse(factor * d2 * g.arr)
            add_cot(cot, s, Cot(arr, g.var, g.ratio * r, g.applied | new, share))
        return
    _merge(cot, v, g)


def _merge(cot: dict[int, Cot], v: Any, g: Cot) -> None:
    old = cot.get(id(v))
    if old is None:
        cot[id(v)] = g
        return
    a, b = float(np.mean(old.arr)), float(np.mean(g.arr))
    tot = a + b if a + b > 0 else 1.0
    cot[id(v)] = Cot(
        collapse(old.arr + g.arr),
        (a**2 * old.var + b**2 * g.var) / tot**2,
        (a * old.ratio + b * g.ratio) / tot,
        old.applied | g.applied,
        (a * old.share + b * g.share) / tot,
    )
