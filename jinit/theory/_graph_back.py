"""The backward pass of :mod:`jinit.theory._graph`: cotangent second moments carried through
the tape of the forward interpretation (gradient independence; see that module)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit.theory._graph_expect import derivative_moments, expr_derivative
from jinit.theory._graph_tokens import (
    Sampler,
    cot_moments,
    derivative_pairs,
    draw_cot,
    per_token,
    spread,
    token_axis,
    token_map_ok,
)
from jinit.theory._graph_values import (
    Const,
    Expr,
    Gauss,
    Known,
    NotCovered,
    Sampled,
    collapse,
    consts,
    evaluate,
    full,
    known_state,
    new_id,
    state_shape,
    structural_fn,
)


def projection_factor(
    tags: Any, root: int, applied: frozenset, share: float
) -> tuple[float, frozenset, float]:
    r"""The cotangent's factor through a normalisation by k width statistics over n units
    (LayerNorm: k = 2, RMSNorm: k = 1) not yet ``applied``: its Jacobian projects out k of the
    n directions, which the width averages' O(1/n) cotangent terms carry (gradient independence
    drops them otherwise). The ``share`` of the cotangent that already passed a normalisation
    with no contraction since (a post-LN skip path) has no component left along those
    directions (the stream's direction changes little per block), so the factor is
    ``1 - (k/n)(1 - share)``. The normalisation's derivative is 1/σ with σ² the empirical
    second moment, which fluctuates per token (over the n units, and with the data), so its
    square is biased by :math:`\mathbb E[1/\hat\sigma^2]\,\sigma^2 \approx 1 + r`, r the
    relative variance of :math:`\hat\sigma^2` (Jensen; the delta method). Returns the factor,
    the statistics and the new share."""
    stats = {(t, n, rv) for (t, s, n, rv) in tags if s == root and t not in applied}
    if not stats:
        return 1.0, frozenset(), share
    n = min(n for _, n, _ in stats)
    factor = max(1.0 - len(stats) / n * (1.0 - share), 0.0) * (1.0 + max(r for *_, r in stats))
    return factor, frozenset(t for t, _, _ in stats), 1.0


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A value the theory does not cover, with the first reason met on its way."""

    reason: str
    shape: tuple[int, ...]
    roles: tuple[str, ...] | None = None  # known where linear ops carried them (backward)


#: a cotangent's finite-width noise: {atom: (coefficient, variance)} (its log-variance is
#: the sum of coefficient² x variance: the delta method over independent atoms)
Noise = dict[int, tuple[float, float]]


def noise_atom(noise: Noise, var: float) -> Noise:
    """``noise`` with one more independent atom of log-variance ``var`` (coefficient 1)."""
    return {**noise, new_id(): (1.0, float(var))}


def noise_var(noise: Noise) -> float:
    """The log-variance of ``noise``."""
    return float(sum(c * c * v for c, v in noise.values()))


def _noise_mix(na: Noise, nb: Noise, wa: float, wb: float) -> Noise:
    """The noise of a weighted sum of two cotangents (relative weights ``wa + wb = 1``): atoms
    both carry (everything downstream of the fork of a residual branch and its skip) keep
    their weight, the paths' own atoms are averaged down."""
    out: Noise = {}
    for k in na.keys() | nb.keys():
        ca, va = na.get(k, (0.0, 0.0))
        cb, vb = nb.get(k, (0.0, 0.0))
        out[k] = (wa * ca + wb * cb, max(va, vb))
    return out


@dataclasses.dataclass
class Cot:
    arr: np.ndarray
    var: Noise  # its finite-width noise (the log-variance of one seed's mean square)
    ratio: float  # E[d⁴]/E[d²]² of the element-wise derivatives since the last contraction
    applied: frozenset = frozenset()  # the width statistics whose projection is accounted for
    share: float = 0.0  # of it, the part projected by a normalisation since the last contraction
    #: its covariance across the value's tokens (averaged over units); None: independent
    tok: Any = None
    #: draws of it (leading draw axis), for a :class:`Sampled` value
    samples: Any = None

    def scaled(self, arr: Any, factor: float, tok_ok: bool = True, **kw: Any) -> Cot:
        """This cotangent with second moment ``arr``, its token kernel scaled by ``factor``
        (dropped where the op does not keep the token axis)."""
        tok = self.tok * factor if self.tok is not None and tok_ok else None
        return Cot(
            collapse(arr), kw.get("var", self.var), kw.get("ratio", self.ratio),
            kw.get("applied", self.applied), kw.get("share", self.share), tok,
        )  # fmt: skip


def backward(tape: list, seeds: dict[int, Cot], sampler: Sampler) -> dict[int, Cot]:
    """Cotangent second moments of every value the seeds reach, in reverse order of the tape."""
    cot = dict(seeds)
    for entry in reversed(tape):
        kind, eqn, ins, out = entry[:4]
        g = cot.get(id(out))
        if g is None:
            continue
        if kind == "contract":
            _contract_back(cot, entry, g, sampler)
        elif kind == "sampled":
            _sampled_back(cot, entry, g, sampler)
        elif kind == "sum":
            (v,) = ins
            gx = np.expand_dims(np.asarray(g.arr), tuple(eqn.params["axes"]))
            add_cot(cot, v, g.scaled(gx, 1.0, _same_tokens(v, out)), sampler)
        elif kind == "linear":
            _linear_back(cot, eqn, ins, g, sampler)
        elif kind == "struct":
            v = ins[0]
            if isinstance(v, (Gauss, Expr)) or getattr(v, "roles", None) is not None:
                ins_s = state_shape(v.shape, v.roles)
                f = structural_fn(eqn, ins_s, state_shape(out.shape, out.roles), 0)
                _, tr = jax.vjp(f, jnp.zeros(ins_s, jnp.float64))
                gy = full(g.arr, state_shape(out.shape, out.roles))
                (gx,) = tr(jnp.asarray(gy, jnp.float64))
                ok = _maps(eqn, v, out)
                add_cot(cot, v, g.scaled(np.asarray(gx, np.float64), 1.0, ok), sampler)
        elif isinstance(out, Gauss):  # an affine fold of independent sources
            args = tuple(v if isinstance(v, (Gauss, Expr)) else Const(_state(v), {}) for v in ins)
            node = Expr(out.shape, out.roles, eqn.primitive, dict(eqn.params), args)
            tags = frozenset().union(*(v.tags for v in ins if isinstance(v, Known)))
            for i, v in enumerate(ins):
                if isinstance(v, Gauss):
                    d2, _ = derivative_moments(node, i)
                    factor, new, share = projection_factor(tags, v.root, g.applied, g.share)
                    k = factor * float(np.mean(d2))
                    gv = g.scaled(factor * d2 * g.arr, k, _same_tokens(v, out))
                    add_cot(
                        cot,
                        v,
                        dataclasses.replace(gv, applied=g.applied | new, share=share),
                        sampler,
                    )
    return cot


def _contract_back(cot: dict[int, Cot], entry, g: Cot, sampler: Sampler) -> None:
    eqn, (x, w), out = entry[1], entry[2], entry[3]
    f, xs, n_out = entry[4:]
    _, tr = jax.vjp(f, jnp.zeros(xs, jnp.float64))
    gy = jnp.asarray(full(g.arr, state_shape(out.shape, out.roles)), jnp.float64)
    (gx,) = tr(gy)
    arr = collapse(w.var * np.asarray(gx, np.float64))
    ratio = float(np.mean(arr)) / max(float(np.mean(gy)), 1e-300)
    ok = eqn.primitive.name == "dot_general" and _same_tokens(x, out)
    noise = (3 * g.ratio - 1) / n_out
    gx_cot = g.scaled(arr, ratio, ok, var=noise_atom(g.var, noise), ratio=1.0)
    add_cot(cot, x, dataclasses.replace(gx_cot, applied=frozenset(), share=0.0), sampler)


def _sampled_back(cot: dict[int, Cot], entry, g: Cot, sampler: Sampler) -> None:
    """Through an op on draws: the drawn cotangent pulled back by ``jax.vjp``."""
    ins, out, fn, xs = entry[2], entry[3], entry[4], entry[5]
    gs = g.samples if g.samples is not None else draw_cot(sampler, out, g.arr, g.tok)
    _, tr = jax.vjp(fn, *xs)
    for v, gv in zip(ins, tr(jnp.asarray(gs, out.draws.dtype)), strict=True):
        g = dataclasses.replace(g, var=noise_atom(g.var, spread(gv)))
        if isinstance(v, Sampled):
            arr, _ = cot_moments(v, gv)
            _merge(cot, v, Cot(arr, g.var, 1.0, g.applied, g.share, samples=gv))
        elif isinstance(v, Gauss):
            arr, tok = cot_moments(v, gv)
            add_cot(cot, v, Cot(arr, g.var, 1.0, g.applied, g.share, tok), sampler)
        else:  # an expression: reported, then pulled back to its sources through its draws
            arr, tok = cot_moments(v, gv)
            _merge(cot, v, Cot(arr, g.var, 1.0, g.applied, g.share, tok))
            srcs = v.sources
            env = {k: sampler.source(s) for k, s in srcs.items()}
            keys = list(env)

            def ev(*vals, node=v, keys=keys):
                return evaluate(node, dict(zip(keys, vals, strict=True)), drawn=True)

            _, tr_v = jax.vjp(ev, *[env[k] for k in keys])
            gsrc = tr_v(jnp.broadcast_to(gv, (sampler.n, *v.shape)))
            for k, gk in zip(keys, gsrc, strict=True):
                arr_k, tok_k = cot_moments(srcs[k], gk)
                add_cot(cot, srcs[k], Cot(arr_k, g.var, 1.0, g.applied, g.share, tok_k), sampler)


def _same_tokens(v: Any, out: Any) -> bool:
    """Whether ``v`` and ``out`` have token axes of the same length (a kernel carries over)."""
    try:
        tv = token_axis(v.shape, v.roles)
        to = token_axis(out.shape, out.roles)
    except (NotCovered, TypeError, AttributeError):
        return False
    return tv is not None and to is not None and v.shape[tv] == out.shape[to]


def _maps(eqn, v: Any, out: Any) -> bool:
    try:
        return token_map_ok(eqn, v.shape, v.roles, out.shape, out.roles)
    except (NotCovered, TypeError, ValueError):
        return False


def _linear_back(cot: dict[int, Cot], eqn, ins: list[Any], g: Cot, sampler: Sampler) -> None:
    """The cotangent through an op linear in its one uncovered operand (scaled by a constant)."""
    name = eqn.primitive.name
    (i,) = [j for j, v in enumerate(ins) if isinstance(v, Unknown)]
    d2: Any = 1.0
    if name in ("mul", "div"):
        k = np.asarray(_state(ins[1 - i]), np.float64)
        d2 = k**2 if name == "mul" else 1.0 / k**2
    add_cot(cot, ins[i], g.scaled(d2 * g.arr, float(np.mean(d2))), sampler)


def _state(k: Any) -> np.ndarray:
    """A constant operand's state array; the data itself (varying over the batch, folded into a
    source by an addition) enters an addition's derivative as a placeholder zero."""
    try:
        return known_state(k)
    except NotCovered:
        return np.zeros((1,) * len(k.shape))


def add_cot(cot: dict[int, Cot], v: Any, g: Cot, sampler: Sampler) -> None:
    """Adds the cotangent ``g`` of ``v``; an element-wise expression passes it straight to its
    sources with the derivative of the whole expression (its parts are not independent).
    A batch statistic gets none (its cotangent terms are O(1/(batch × positions))); a sampled
    value gets it as draws."""
    if isinstance(v, Gauss) and v.batch_mean_of is not None:
        return
    if isinstance(v, Sampled):
        if g.samples is None:
            g = dataclasses.replace(g, samples=draw_cot(sampler, v, g.arr, g.tok))
        _merge(cot, v, g)
        return
    if isinstance(v, Expr):
        _merge(cot, v, g)  # for the report; the expression passes it on to its sources
        if v.struct is not None:
            inner = v.args[0]
            ins_s = state_shape(inner.shape, inner.roles)
            f = structural_fn(v.params["eqn"], ins_s, state_shape(v.shape, v.roles), 0)
            _, tr = jax.vjp(f, jnp.zeros(ins_s, jnp.float64))
            gy = jnp.asarray(full(g.arr, state_shape(v.shape, v.roles)), jnp.float64)
            (gx,) = tr(gy)
            ok = _maps(v.params["eqn"], inner, v)
            add_cot(cot, inner, g.scaled(np.asarray(gx, np.float64), 1.0, ok), sampler)
            return
        tags = frozenset().union(*(c.tags for c in consts(v)))
        for sid, s in v.sources.items():
            d2, d4 = expr_derivative(v, sid)
            factor, new, share = projection_factor(tags, s.root, g.applied, g.share)
            m2 = float(np.mean(d2))
            r = float(np.mean(d4)) / m2**2 if m2 > 0 else 1.0
            gs = g.scaled(factor * d2 * g.arr, 1.0, False, ratio=g.ratio * r)
            if g.tok is not None and _same_tokens(s, v):
                gs = dataclasses.replace(gs, tok=factor * derivative_pairs(v, sid, sampler) * g.tok)
            add_cot(cot, s, dataclasses.replace(gs, applied=g.applied | new, share=share), sampler)
        return
    _merge(cot, v, g)


def _tok(v: Any, g: Cot) -> np.ndarray | None:
    """``g``'s token kernel, made explicit (diagonal) where it is independent across tokens."""
    if g.tok is not None:
        return g.tok
    try:
        t = token_axis(v.shape, v.roles)
    except (NotCovered, AttributeError, TypeError):
        return None
    return None if t is None else np.diag(per_token(g.arr, v.shape, v.roles, t))


def _merge(cot: dict[int, Cot], v: Any, g: Cot) -> None:
    old = cot.get(id(v))
    if old is None:
        cot[id(v)] = g
        return
    a, b = float(np.mean(old.arr)), float(np.mean(g.arr))
    tot = a + b if a + b > 0 else 1.0
    tok = None
    if old.tok is not None or g.tok is not None:
        ta, tb = _tok(v, old), _tok(v, g)
        tok = ta + tb if ta is not None and tb is not None else None
    samples, arr = None, old.arr + g.arr
    if old.samples is not None and g.samples is not None:
        samples = old.samples + g.samples
        arr, _ = cot_moments(v, samples)
    cot[id(v)] = Cot(
        collapse(arr),
        _noise_mix(old.var, g.var, a / tot, b / tot),
        (a * old.ratio + b * g.ratio) / tot,
        old.applied | g.applied,
        (a * old.share + b * g.share) / tot,
        tok,
        samples,
    )
