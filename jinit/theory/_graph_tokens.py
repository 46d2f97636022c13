r"""Correlations across tokens and Monte Carlo values for :mod:`jinit.theory._graph`.

Attention mixes tokens, so its law needs more than each entry's variance: a Gaussian source's
**token kernel**, the covariances :math:`C(p,p') = \mathbb E[x_{e,p,u}\,x_{e,p',u}]` within an
example and :math:`C^\times(p,p') = \mathbb E[x_{e,p,u}\,x_{e',p',u}]` across two examples
(averaged over the units :math:`u`; the *c-map* of the token axis). They are carried lazily
(a memoised thunk on each :class:`~jinit.theory._graph_values.Gauss`) and computed only when
attention, pooling over tokens or another token-mixing op asks:

* a contraction with a fresh zero-mean weight over unit axes keeps the token axis:
  :math:`C_y = \sigma^2\,n_{in}\,\bar P_x` with :math:`\bar P_x(p,p')` the input's raw
  second moment across tokens averaged over the contracted units;
* sums of independent sources add kernels; constants scale them; a parameter broadcast over
  the tokens is one value at every token (:math:`C = \sigma^2` everywhere), a parameter with
  its own token axis (a position embedding) is independent across tokens and the same for
  every example (:math:`C = C^\times = \sigma^2 I`);
* an element-wise function of sources, or anything sampled, has its kernel estimated from the
  draws.

**Sampling.** Where the rules meet a product of two signals (attention scores), a softmax
over tokens or a sum over positions, the value becomes :class:`Sampled`: its Gaussian sources
are drawn jointly over the traced batch and the tokens (independent across units, with the
token kernels above; the cross-example kernel makes examples correlated as they are through
shared weights) and the op is applied to the draws, so whatever follows (masking, softmax,
the attention-weighted sum of values, mean pooling) is integrated exactly up to Monte Carlo
error (relative :math:`\approx 1/\sqrt{\text{draws}\times\text{batch}\times\text{units}}`,
below a percent). A contraction with a fresh weight turns a sampled value back into a Gaussian
source (central limit over its units), with its kernel read from the draws. The draws of one
source are shared by every value built from it, so dependent values stay jointly drawn.

**Backward.** A cotangent may be correlated across tokens (an attention layer's gradient to
its values is :math:`A^\top g`, nearly constant across tokens at init): the moment-form
cotangent carries its own token kernel (None while independent across tokens); through a
sampled op the cotangent is drawn (independent of the forward draws: gradient independence)
and pulled back through the op's draws with ``jax.vjp`` (Yang 2020, "Tensor Programs II").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit.theory._graph_values import (
    Expr,
    Gauss,
    Known,
    NotCovered,
    Sampled,
    batch_axis,
    collapse,
    data_law,
    evaluate,
    full,
    new_id,
    sampled_moments,
    state_shape,
    structural_fn,
)

_CASTS = ("convert_element_type", "reduce_precision", "copy", "copy_p")
#: draws x traced batch: the joint draws of the traced batch (each draws every unit of every
#: source) are about this many examples in all, between 16 and 256 draws
DRAWN_EXAMPLES = 512
_SEED = 20261206


def lazy(fn: Callable[[], Any]) -> Callable[[], Any]:
    """A memoised thunk."""
    return functools.cache(fn)


def token_axis(shape: Sequence[int], roles: Sequence[str]) -> int | None:
    """The value's one position axis longer than 1 (its tokens), or None."""
    axes = [a for a, (n, r) in enumerate(zip(shape, roles, strict=True)) if r == "p" and n > 1]
    if len(axes) > 1:
        raise NotCovered(
            "mixing positions of a signal with more than one position axis (a feature map) "
            "is not covered"
        )
    return axes[0] if axes else None


def per_token(arr: Any, shape: Sequence[int], roles: Sequence[str], t: int | None) -> np.ndarray:
    """A state array averaged over every axis but the token axis ``t`` (length T, or 1)."""
    a = full(arr, state_shape(shape, roles))
    if t is None:
        return np.array([float(np.mean(a))])
    return np.moveaxis(a, t, 0).reshape(a.shape[t], -1).mean(axis=1)


def _dims(shape: Sequence[int], roles: Sequence[str]) -> tuple[int | None, int | None, int, int]:
    """``(batch axis, token axis, batch size, token count)`` (sizes 1 where absent)."""
    t, b = token_axis(shape, roles), batch_axis(roles)
    return b, t, (shape[b] if b is not None else 1), (shape[t] if t is not None else 1)


def _from_moments(v: Gauss, axis: int | None, nb: int, n: int, spread: bool) -> np.ndarray:
    """A kernel from per-token variances and cross-example covariances: one value at every
    token where ``spread`` (a broadcast), else independent across tokens."""
    var = per_token(v.var, v.shape, v.roles, axis) * np.ones(n)
    cross = per_token(v.cross, v.shape, v.roles, axis) * np.ones(n)
    same = np.eye(nb, dtype=bool)[:, None, :, None]
    if spread:
        k = np.where(same, np.mean(var), np.mean(cross))
        return np.broadcast_to(k, (nb, n, nb, n)).copy()
    eye = np.eye(n)[None, :, None, :]
    return np.where(same, var[None, :, None, None] * eye, cross[None, :, None, None] * eye)


def tokens_of(g: Gauss) -> np.ndarray:
    """The source's covariance across the examples of the traced batch and its tokens,
    ``K[e, p, e', p']`` (averaged over units; batch size 1 without a batch axis)."""
    b, t, nb, n = _dims(g.shape, g.roles)
    if not np.any(g.var) and not np.any(g.cross):
        return np.zeros((nb, n, nb, n))
    if g.tokens is not None:
        try:
            return g.tokens()
        except NotCovered:
            if t is not None:
                raise
    elif t is not None:
        raise NotCovered("the correlation across tokens of this signal is not known")
    return _from_moments(g, None, nb, 1, False)


def operand_tokens(v: Gauss, axis: int, n: int, nb: int) -> np.ndarray:
    """The kernel of an operand along the output's token ``axis`` (``n`` tokens, batch
    ``nb``): one value at every token where it is broadcast, independent entries where that
    axis is units (a position embedding); the same for every example without a batch axis."""
    vb = batch_axis(v.roles)
    vnb = v.shape[vb] if vb is not None else 1
    if v.shape[axis] == 1:
        k = tokens_of(v) if token_axis(v.shape, v.roles) is None else None
        k = k if k is not None else _from_moments(v, None, vnb, 1, True)
    elif v.roles[axis] == "u":
        k = _from_moments(v, axis, vnb, n, False)
    elif token_axis(v.shape, v.roles) != axis:
        raise NotCovered("the token axes of two added signals differ")
    else:
        k = tokens_of(v)
    return np.broadcast_to(k, (nb, n, nb, n))


def sum_tokens(shape, roles, parts: Sequence[Gauss]) -> Callable[[], Any]:
    """The kernel of a sum of independent sources (or of one source shifted by a constant)."""

    def thunk():
        _, t, nb, n = _dims(shape, roles)
        if t is None:
            return sum(np.broadcast_to(tokens_of(v), (nb, 1, nb, 1)) for v in parts)
        return sum(operand_tokens(v, t, n, nb) for v in parts)

    return lazy(thunk)


def scaled_tokens(g: Gauss, factor: Any, shape, roles) -> Callable[[], Any]:
    """The kernel of ``g`` times a constant state array ``factor``."""

    def thunk():
        _, t, nb, n = _dims(shape, roles)
        k = operand_tokens(g, t, n, nb) if t is not None else tokens_of(g)
        f = np.sqrt(per_token(np.square(factor), shape, roles, t) * np.ones(n))
        return k * f[None, :, None, None] * f[None, None, None, :]

    return lazy(thunk)


def data_tokens(k: Known, shape, roles) -> Callable[[], Any]:
    """The kernel of the (centred) data added into a random signal: its Gram matrix over the
    traced batch and tokens, averaged over the features (centred by the law's mean where
    :attr:`Known.stats` gives it, else by the batch's)."""

    def thunk():
        t = token_axis(shape, roles)
        a = np.asarray(k.arr, np.float64) - data_law(k, 1)[0]
        return _pairs(a[None], k.roles, t)

    return lazy(thunk)


def token_map_ok(eqn, in_shape, in_roles, out_shape, out_roles) -> bool:
    """Whether the structural op carries the input's token axis onto the output's."""
    t_in, t_out = token_axis(in_shape, in_roles), token_axis(out_shape, out_roles)
    if t_in is None or t_out is None:
        return t_in is None and t_out is None
    ins, outs = state_shape(in_shape, in_roles), state_shape(out_shape, out_roles)
    idx = np.arange(ins[t_in], dtype=np.float64).reshape(
        [-1 if a == t_in else 1 for a in range(len(ins))]
    )
    got = np.asarray(structural_fn(eqn, ins, outs, 0)(np.broadcast_to(idx, ins)))
    want = np.arange(outs[t_out], dtype=np.float64).reshape(
        [-1 if a == t_out else 1 for a in range(len(outs))]
    )
    return got.shape == outs and np.array_equal(got, np.broadcast_to(want, outs))


def mapped_tokens(eqn, v: Gauss, shape, roles) -> Callable[[], Any]:
    """The kernel after a structural op (the token axis moved, or a broadcast over tokens)."""

    def thunk():
        if token_axis(v.shape, v.roles) is None:  # broadcast along a new token axis
            k = tokens_of(v)
            n = shape[token_axis(shape, roles)]
            return np.broadcast_to(k, (k.shape[0], n, k.shape[2], n))
        if not token_map_ok(eqn, v.shape, v.roles, shape, roles):
            raise NotCovered("a reshape or transpose that merges or splits the token axis")
        return tokens_of(v)

    return lazy(thunk)


# ---------------------------------------------------------------------------------------------
# Raw second moments across tokens
# ---------------------------------------------------------------------------------------------


def _pairs(d: Any, roles: Sequence[str], t: int | None) -> np.ndarray:
    """Raw second moments ``K[e, p, e', p']`` of draws ``d`` (leading draw axis) across the
    examples and tokens, averaged over the draws and the other axes."""
    d = np.asarray(d, np.float64)
    b = batch_axis(roles)
    lead = [0] + ([1 + b] if b is not None else []) + ([1 + t] if t is not None else [])
    d = np.moveaxis(d, lead, list(range(len(lead))))
    s, n_b = d.shape[0], (d.shape[1] if b is not None else 1)
    d = d.reshape(s, n_b, d.shape[len(lead) - 1] if t is not None else 1, -1)
    return np.einsum("sepr,sfqr->epfq", d, d, optimize=True) / (s * d.shape[-1])


def within(k: np.ndarray) -> np.ndarray:
    """The within-example part of a kernel, averaged over the examples (T x T)."""
    return np.einsum("epeq->pq", k) / k.shape[0]


def pair_moments(x: Any, t: int | None, sampler: Sampler) -> np.ndarray:
    """Raw second moments of ``x`` across the examples and its token axis ``t``."""
    if isinstance(x, Known):
        return _pairs(np.asarray(x.arr, np.float64)[None], x.roles, t)
    if isinstance(x, Gauss):
        k = tokens_of(x)
        m = full(x.mean, state_shape(x.shape, x.roles))
        m = np.moveaxis(m, t, 0).reshape(m.shape[t], -1) if t is not None else m.reshape(1, -1)
        return k + (m @ m.T / m.shape[1])[None, :, None, :]
    return _pairs(sampler.draw(x), x.roles, t)


def contract_tokens(eqn, x: Any, w_var: float, w_rhs: bool, sampler: Sampler):
    """The kernel of a contraction's output with a fresh zero-mean weight of variance
    ``w_var``: the weight's central limit over the contracted units."""

    def thunk():
        if eqn.primitive.name != "dot_general":
            raise NotCovered("correlations across tokens through a convolution are not covered")
        (lc, rc), _ = eqn.params["dimension_numbers"]
        xc = tuple(lc if w_rhs else rc)
        free = [a for a in range(len(x.shape)) if a not in xc and x.roles[a] != "b"]
        free = [a for a in free if x.shape[a] > 1]
        if len(free) > 1 or (not isinstance(x, Known) and any(x.roles[a] != "u" for a in xc)):
            raise NotCovered("a contraction mixing tokens (token mixing) is not covered")
        t = free[0] if free else None
        fan = math.prod(x.shape[a] for a in xc)
        return w_var * fan * pair_moments(x, t, sampler)

    return lazy(thunk)


def embedding(eqn, table: Any, ids: Known) -> Gauss:
    r"""A lookup (``gather``) of rows of a random table by the data's indices (``nn.Embed``):
    every entry is a table entry, i.i.d. with the table's mean and variance; two entries are
    the same random variable exactly where they copy the same table entry, so the
    covariances across examples and tokens are :math:`\sigma^2` times the frequency of equal
    indices in the traced batch, which is exact for it."""
    if table.var <= 0:
        raise NotCovered("a lookup in a constant table")
    entry = jnp.arange(math.prod(table.shape)).reshape(table.shape)
    params = {**eqn.params, "fill_value": -1}
    which = np.asarray(eqn.primitive.bind(entry, jnp.asarray(ids.arr), **params))
    offset = set(eqn.params["dimension_numbers"].offset_dims)
    id_roles = [r for a, r in enumerate(ids.roles) if a != len(ids.roles) - 1]
    roles = tuple("u" if a in offset else id_roles.pop(0) for a in range(which.ndim))
    shape = tuple(which.shape)
    b = batch_axis(roles)
    if b is None:
        raise NotCovered("a lookup by indices that are not the data")
    t = token_axis(shape, roles)
    lead = [b] + ([t] if t is not None else [])
    w = np.moveaxis(which, lead, list(range(len(lead))))
    nb, n = w.shape[0], (w.shape[1] if t is not None else 1)
    w = w.reshape(nb * n, -1)
    same = (w[:, None, :] == w[None, :, :]).mean(axis=-1).reshape(nb, n, nb, n)
    kernel = table.var * same
    off = ~np.eye(nb, dtype=bool)
    cross = np.einsum("epfp->p", np.where(off[:, None, :, None], same, 0.0)) / max(nb * (nb - 1), 1)
    one = [1] * len(shape)
    if t is not None:
        one[t] = n
    mean = np.full([1] * len(shape), table.mean)
    return Gauss(
        shape, roles, mean, np.full([1] * len(shape), table.var),
        collapse(table.var * cross.reshape(one)), frozenset({new_id()}), {},
        tokens=lambda: kernel,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Draws
# ---------------------------------------------------------------------------------------------


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """``L`` with ``L Lᵀ = m`` for a symmetric positive semi-definite ``m``: its Cholesky
    factor (a relative 1e-12 on the diagonal for rounding), or from its eigenvalues clipped at
    zero where it is singular."""
    m = 0.5 * (m + m.T)
    scale = float(np.max(np.abs(np.diag(m)), initial=0.0))
    try:
        return np.linalg.cholesky(m + 1e-12 * scale * np.eye(len(m)))
    except np.linalg.LinAlgError:
        lam, vec = np.linalg.eigh(m)
        return vec * np.sqrt(np.clip(lam, 0.0, None))


class Sampler:
    """Joint draws of the sources (cached per source, so dependent values share them)."""

    def __init__(self, batch: int, seed: int = _SEED):
        self.n = int(np.clip(DRAWN_EXAMPLES // max(batch, 1), 16, 256))
        self.key = jax.random.key(seed)
        self.count = 0
        self.cache: dict[int, Any] = {}
        self.exprs: dict[int, tuple[Any, Any]] = {}  # expressions' draws (the node kept alive)

    def normal(self, shape: Sequence[int]) -> jax.Array:
        self.count += 1
        return jax.random.normal(
            jax.random.fold_in(self.key, self.count), tuple(shape), jnp.float64
        )

    def correlated(self, shape, roles, k: np.ndarray, normalise: bool = True) -> jax.Array:
        """Normal draws of an array of ``shape`` with covariance ``k[e, p, e', p']`` across
        its examples and tokens (with ``normalise``, its correlations: unit variances),
        independent across every other axis."""
        b, t, n_b, n_t = _dims(shape, roles)
        rest = [a for a in range(len(shape)) if a not in (b, t)]
        n_r = math.prod(shape[a] for a in rest)
        m = np.broadcast_to(k, (n_b, n_t, n_b, n_t)).reshape(n_b * n_t, n_b * n_t)
        if normalise:
            d = np.sqrt(np.clip(np.diag(m), 0.0, None))
            inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
            m = m * np.outer(inv, inv)
        z = jnp.einsum("ij,sju->siu", _sqrt_psd(m), self.normal((self.n, n_b * n_t, n_r)))
        order = ([b] if b is not None else []) + ([t] if t is not None else []) + rest
        z = z.reshape((self.n,) + tuple(shape[a] for a in order))
        return jnp.transpose(z, [0] + [1 + order.index(a) for a in range(len(shape))])

    def source(self, g: Gauss) -> jax.Array:
        hit = self.cache.get(g.sid)
        if hit is None:
            z = self.correlated(g.shape, g.roles, tokens_of(g), normalise=False)
            # per-unit scales relative to the kernel's unit average (1 where units are alike)
            t = token_axis(g.shape, g.roles)
            avg = per_token(g.var, g.shape, g.roles, t)
            if t is not None:
                avg = avg.reshape([-1 if a == t else 1 for a in range(len(g.shape))])
            rel = np.where(avg > 0, g.var / np.where(avg > 0, avg, 1.0), 0.0)
            hit = jnp.asarray(g.mean) + jnp.sqrt(jnp.asarray(rel)) * z
            self.cache[g.sid] = hit
        return hit

    def draw(self, v: Any) -> jax.Array:
        """Draws of a random value (the traced batch and every unit)."""
        if isinstance(v, Sampled):
            return v.draws
        if isinstance(v, Gauss):
            return self.source(v)
        hit = self.exprs.get(id(v))
        if hit is None or hit[0] is not v:
            draws = evaluate(v, {k: self.source(s) for k, s in v.sources.items()}, drawn=True)
            hit = self.exprs[id(v)] = (v, draws)
        return hit[1]


# ---------------------------------------------------------------------------------------------
# Sampled ops
# ---------------------------------------------------------------------------------------------


def sampled_op(eqn, vals: list[Any], roles, sampler: Sampler, atoms: dict, tok_atoms: dict):
    """``eqn`` applied to the draws of its random operands (constants as they are). Returns
    the :class:`Sampled` output and the function of the random operands' draws (for the
    backward pass) with those draws."""
    rand = [i for i, v in enumerate(vals) if isinstance(v, (Gauss, Expr, Sampled))]
    _check_independent([vals[i] for i in rand])
    consts = {i: _const(v) for i, v in enumerate(vals) if i not in rand}
    xs = [sampler.draw(vals[i]) for i in rand]

    params = dict(eqn.params)
    if "preferred_element_type" in params:
        params["preferred_element_type"] = None  # the draws stay float64
    cast = eqn.primitive.name in _CASTS and jnp.issubdtype(params.get("new_dtype"), jnp.floating)

    def one(*r):
        args = [consts[i] if i in consts else r[rand.index(i)] for i in range(len(vals))]
        if cast or eqn.primitive.name in _CASTS[2:]:
            return args[0]
        return eqn.primitive.bind(*args, **params)

    def fn(*xs_):
        y = jax.vmap(one)(*xs_)
        return y.astype(jnp.float64) if jnp.issubdtype(y.dtype, jnp.floating) else y

    if eqn.primitive.multiple_results:
        raise NotCovered(f"the primitive {eqn.primitive.name!r} on a random signal")
    out = fn(*xs)
    atom = new_id()
    sq = np.asarray(jnp.square(out.astype(jnp.float64)))
    atoms[atom] = spread(out)
    # one token's mean square over the units (the draws, examples and tokens as its samples)
    units = tuple(1 + a for a, r in enumerate(roles) if r == "u")
    per = sq.mean(axis=units) if units else sq
    tok_atoms[atom] = float(np.var(per) / np.mean(per) ** 2) if np.mean(per) > 0 else 0.0
    lin: dict[int, float] = {atom: 1.0}
    for v in (vals[i] for i in rand):
        for k, c in _upstream_lin(v).items():
            lin[k] = max(lin.get(k, 0.0), c)
    parents = frozenset().union(*(_parents(vals[i]) for i in rand))
    srcs = frozenset().union(*(_sources(vals[i]) for i in rand))
    res = Sampled(out, roles, lin, parents, atom, srcs)
    return res, fn, xs, [vals[i] for i in rand]


def spread(d: Any) -> float:
    """The relative variance across draws of the mean square of draws ``d`` (one seed's
    statistic at the model's own width, batch and heads)."""
    sq = np.square(np.asarray(d, np.float64))
    m = sq.reshape(sq.shape[0], -1).mean(axis=1)
    return float(np.var(m) / np.mean(m) ** 2) if np.mean(m) > 0 else 0.0


def _upstream_lin(v: Any) -> dict[int, float]:
    if isinstance(v, Sampled):
        return {k: c for k, c in v.lin.items() if k != v.own}
    if isinstance(v, Gauss):
        return dict(v.lin)
    out: dict[int, float] = {}
    for s in v.sources.values():
        for k, c in s.lin.items():
            out[k] = max(out.get(k, 0.0), c)
    return out


def _parents(v: Any) -> frozenset:
    if isinstance(v, Expr):
        return frozenset().union(*(s.parents for s in v.sources.values()))
    return v.parents


def _sources(v: Any) -> frozenset:
    if isinstance(v, Expr):
        return frozenset(v.sources)
    if isinstance(v, Gauss):
        return frozenset({v.sid})
    return v.srcs


def _check_independent(vals: list[Any]) -> None:
    for i, a in enumerate(vals):
        for b in vals[i + 1 :]:
            if a is b or isinstance(a, Sampled) or isinstance(b, Sampled):
                continue
            if (_parents(a) & _parents(b)) and not (_sources(a) & _sources(b)):
                raise NotCovered("an op combines two dependent signals drawn apart")


def _const(v: Any) -> Any:
    a = jnp.asarray(v.arr)
    return a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a


# ---------------------------------------------------------------------------------------------
# Cotangents
# ---------------------------------------------------------------------------------------------


def cot_moments(v: Any, g: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """A drawn cotangent ``g`` of ``v`` in moment form: its second moment (state array,
    averaged over units) and its kernel across tokens (None without a token axis)."""

    _, m2, _ = sampled_moments(g, v.roles)
    try:
        t = token_axis(v.shape, v.roles)
    except NotCovered:  # attention scores (two token axes) need no kernel
        return collapse(m2), None
    tok = within(_pairs(g, v.roles, t)) if t is not None else None
    return collapse(m2), tok


def draw_cot(sampler: Sampler, v: Any, arr: Any, tok: np.ndarray | None) -> jax.Array:
    """Draws of a cotangent of ``v`` with second moment ``arr`` and token kernel ``tok``
    (independent across examples and of the forward draws: gradient independence)."""
    if tok is None:  # independent across tokens
        z = sampler.normal((sampler.n, *v.shape))
    else:  # independent across examples
        n_b = _dims(v.shape, v.roles)[2]
        k = np.eye(n_b)[:, None, :, None] * tok[None, :, None, :]
        z = sampler.correlated(v.shape, v.roles, k)
    return jnp.sqrt(jnp.asarray(full(arr, state_shape(v.shape, v.roles)))) * z


def derivative_pairs(node: Expr, sid: int, sampler: Sampler) -> np.ndarray:
    """``E[d_p d_p']`` across tokens of d = ∂ node / ∂ (source ``sid``), from the draws."""
    srcs = node.sources
    env = {k: sampler.source(s) for k, s in srcs.items()}

    def f(x):
        return evaluate(node, {**env, sid: x}, drawn=True)

    _, d = jax.jvp(f, (env[sid],), (jnp.ones_like(env[sid]),))
    d = jnp.broadcast_to(d, (sampler.n, *node.shape))
    return within(_pairs(d, node.roles, token_axis(node.shape, node.roles)))
