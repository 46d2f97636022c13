r"""Mean-field moments of any traced model at initialisation (:func:`propagate_moments`).

The model's computation (a jaxpr) is interpreted on abstract values that describe the law of
each intermediate array in the infinite-width limit (see :mod:`jinit.theory._graph_values`
and :mod:`jinit.theory._graph_rules`): contractions with fresh zero-mean weights make new
Gaussian sources whose second moment is the weight variance times the fan read from the
contraction itself; element-wise functions are integrated against the Gaussian law of their
sources; width averages (LayerNorm, RMSNorm) concentrate; residual additions of independent
branches add second moments. Whatever the rules do not cover (a statistic over the batch,
pooling over positions, attention scores, tied weights, ...) makes the values that depend on it
*not covered*, each with its reason, never a guess.

**Backward.** With the gradient-independence assumption (Schoenholz et al. 2017; Yang 2019),
the second moment of the cotangent is carried backwards: through a contraction it is the
weight variance times the transposed contraction of the cotangent's second moment with a
weight of ones (the fan-out read from the computation), through an element-wise op it is
multiplied by :math:`\mathbb E[(\partial f/\partial x)^2]`, and width averages contribute
O(1/width) terms that vanish in the limit.

**Finite-width fluctuation** (relative std of one seed's statistic): the delta method. Each
contraction with :math:`n` output units adds an independent noise atom of variance
:math:`\bar\kappa/n`, :math:`\bar\kappa = \kappa/B + (1-1/B)\,\kappa_{pair}` from the excess
kurtosis of its input (Hanin & Nica 2019 for relu: :math:`5/n` per layer); every value carries
the log-sensitivity of its second moment to those atoms, propagated exactly through the
element-wise maps and the concentrated statistics (so a LayerNorm output, whose second moment
is fixed, carries none). The backward pass adds :math:`(3r-1)/n` per contraction, r the ratio
:math:`\mathbb E[d^4]/\mathbb E[d^2]^2` of the element-wise derivatives since the last one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit.theory._graph_back import Cot, Unknown, add_cot, backward, noise_atom, noise_var
from jinit.theory._graph_expect import kurtosis_terms, moments
from jinit.theory._graph_rules import (
    ELEMENTWISE,
    IDENTITY,
    STRUCTURAL,
    Param,
    batch_stats,
    elementwise,
    elementwise_roles,
    known_arg,
    realise,
    sampled_roles,
    structural,
    structural_roles,
    width_sum,
)
from jinit.theory._graph_tokens import Sampler, contract_tokens, embedding, sampled_op
from jinit.theory._graph_values import (
    Expr,
    Gauss,
    Known,
    NotCovered,
    Sampled,
    collapse,
    consts,
    data_law,
    eval_sources,
    evaluate,
    expect,
    full,
    new_id,
    own_spread,
    state_shape,
)

_SUB_JAXPR = ("jaxpr", "call_jaxpr", "fun_jaxpr")
#: names of the jitted statistics of :func:`marked_norm_stats` -> their reduction axes
STATS_AXES: dict[str, tuple[int, ...]] = {}
_EPS = 1e-3


_LINEAR = {"add", "sub", "neg", "mul", "div", "add_any"} | IDENTITY
_CONTRACTIONS = ("dot_general", "conv_general_dilated")
#: entries of one op's draws (float64: 1 GiB)
_SAMPLE_BUDGET = 2**27
#: entries of all the draws held for the backward pass (float64: 4 GiB): a deep model's
#: attention layers beyond it are not covered (said per layer), never a memory error
_HELD_BUDGET = 2**29


@dataclasses.dataclass(frozen=True)
class Moments:
    """Predicted per-entry statistics of one array (averaged over its entries).

    Attributes:
      mean: E[x] (over units, examples and positions).
      second_moment: E[x²].
      fluctuation: relative std of one seed's average of x² (finite width).
      grad_second_moment: E[(∂L/∂x)²] for the cotangent the caller seeded (NaN if none).
      grad_fluctuation: relative std of one seed's average of the cotangent's square.
      reason: why the value is not covered ("" when it is).
    """

    mean: float
    second_moment: float
    fluctuation: float
    grad_second_moment: float
    grad_fluctuation: float
    reason: str = ""


class _Interpreter:
    def __init__(self, batch: int):
        self.batch = batch
        self.atoms: dict[int, float] = {}
        self.tape: list[tuple[str, Any, list[Any], Any]] = []
        self.weight_uses: dict[int, int] = {}
        self.sampler = Sampler(batch)
        self.held = 0  # entries of the draws kept for the backward pass
        self.held_ids: set[int] = set()
        #: per-token relative variance of the noise atoms (one token's mean square over the
        #: units of a contraction; the spread of the data's token norms)
        self.tok_atoms: dict[int, float] = {}

    # -- forward ------------------------------------------------------------------------------

    def run(self, jaxpr, consts_: Sequence[Any], args: Sequence[Any]) -> list[Any]:
        env: dict[Any, Any] = {}
        for v, c in zip(jaxpr.constvars, consts_, strict=True):
            env[v] = c
        for v, a in zip(jaxpr.invars, args, strict=True):
            env[v] = a

        def read(v):
            if hasattr(v, "val"):  # a literal (integers stay integers: indices)
                arr = np.asarray(v.val)
                arr = arr if np.issubdtype(arr.dtype, np.integer) else arr.astype(np.float64)
                return Known(arr, ("p",) * arr.ndim)
            return env[v]

        for eqn in jaxpr.eqns:
            ins = [read(v) for v in eqn.invars]
            try:
                outs = self.eqn(eqn, ins)
            except NotCovered as e:
                outs = self.linear_unknown(eqn, ins, str(e))
            for v, o in zip(eqn.outvars, outs, strict=True):
                env[v] = o
        return [read(v) for v in jaxpr.outvars]

    def eqn(self, eqn, ins: list[Any]) -> list[Any]:
        bad = next((v for v in ins if isinstance(v, Unknown)), None)
        name = eqn.primitive.name
        sub = next((eqn.params[k] for k in _SUB_JAXPR if k in eqn.params), None)
        stats_axes = STATS_AXES.get(str(eqn.params.get("name", "")))
        if stats_axes is not None and bad is None:
            x = realise(ins[0])
            if not isinstance(x, Known) and any(x.roles[a] == "b" for a in stats_axes):
                return batch_stats(x, stats_axes, [o.aval for o in eqn.outvars])
        if sub is not None and name not in ("while", "scan", "cond"):
            closed = sub if hasattr(sub, "jaxpr") else None
            jaxpr = closed.jaxpr if closed is not None else sub
            cs = [_const(c) for c in (closed.consts if closed is not None else [])]
            return self.run(jaxpr, cs, ins[len(ins) - len(jaxpr.invars) :])
        if bad is not None:
            return self.linear_unknown(eqn, ins, bad.reason)
        if ins and isinstance(ins[0], Param) and name in IDENTITY:
            return [ins[0]]  # a parameter cast to the computation's dtype
        if name == "gather" and isinstance(ins[0], Param) and isinstance(ins[1], Known):
            return [embedding(eqn, ins[0], ins[1])]
        weighted = name in _CONTRACTIONS and sum(isinstance(v, Param) for v in ins) == 1
        if any(isinstance(v, Sampled) for v in ins) and not weighted:
            return [self.sampled(eqn, ins)]
        if name in _CONTRACTIONS:
            out = self.contraction(eqn, ins)
        elif name in STRUCTURAL:
            out = structural(eqn, ins[0])
            self.tape.append(("struct", eqn, ins, out))
        elif name in ELEMENTWISE:
            try:
                out = elementwise(eqn, ins)
            except NotCovered:  # three or more sources, or dependent ones: drawn jointly
                return [self.sampled(eqn, ins)]
            if not isinstance(out, Known) and not any(out is v for v in ins):
                self.tape.append(("elem", eqn, [realise(v) for v in ins], out))
        elif name == "reduce_sum":
            v = realise(ins[0])
            if isinstance(v, Known):
                out = _known(eqn, v)
            elif any(v.roles[a] == "p" and v.shape[a] > 1 for a in eqn.params["axes"]):
                out = self.sampled(eqn, ins)  # a sum over tokens (pooling)
            else:
                out = width_sum(eqn, v, self.stat_lin, self.hetero)
        elif all(isinstance(realise(v), Known) for v in ins) and name not in ("rng_bit_generator",):
            outs = eqn.primitive.bind(*[known_arg(realise(v).arr) for v in ins], **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
            return [Known(np.asarray(o), ("p",) * np.ndim(o)) for o in outs]
        else:
            out = self.sampled(eqn, ins)  # integrated over draws of its sources
        return [out]

    def sampled(self, eqn, ins: list[Any]) -> Sampled:
        vals = [realise(v) for v in ins]
        n = math.prod(eqn.outvars[0].aval.shape) * self.sampler.n
        if n > _SAMPLE_BUDGET:
            raise NotCovered(f"the primitive {eqn.primitive.name!r} on a random signal this large")
        if self.held + n > _HELD_BUDGET:
            raise NotCovered(
                f"the primitive {eqn.primitive.name!r}: the draws held for the model's sampled "
                f"ops would exceed {_HELD_BUDGET * 8 / 2**30:.3g} GiB"
            )
        roles = sampled_roles(eqn, vals)
        out, fn, xs, rand = sampled_op(eqn, vals, roles, self.sampler, self.atoms, self.tok_atoms)
        for a in (out.draws, *xs):
            if id(a) not in self.held_ids:
                self.held_ids.add(id(a))
                self.held += int(np.size(a))
        self.tape.append(("sampled", eqn, rand, out, fn, xs))
        return out

    def linear_unknown(self, eqn, ins: list[Any], reason: str) -> list[Unknown]:
        """Not-covered outputs; where the op is linear in the uncovered value (a contraction
        with a weight, a sum, a reshape, a scaling) its roles and a tape entry are kept, so the
        backward pass (which needs no forward values there) still reaches the layers before
        it: an average-pooled ResNet head has gradients although its forward is not covered."""
        name, shape = eqn.primitive.name, tuple(eqn.outvars[0].aval.shape)
        plain = [Unknown(reason, tuple(o.aval.shape)) for o in eqn.outvars]
        vals = [realise(v) if not isinstance(v, Param) else v for v in ins]
        rand = [v for v in vals if not isinstance(v, (Known, Param))]
        if len(eqn.outvars) != 1 or len(rand) != 1 or getattr(rand[0], "roles", None) is None:
            return plain
        x = rand[0]
        try:
            if name == "reduce_sum":
                axes = tuple(eqn.params["axes"])
                out = Unknown(
                    reason, shape, tuple(r for a, r in enumerate(x.roles) if a not in axes)
                )
                self.tape.append(("sum", eqn, [x], out))
            elif name in STRUCTURAL:
                out = Unknown(reason, shape, structural_roles(eqn, x))
                self.tape.append(("struct", eqn, [x], out))
            elif name in ("dot_general", "conv_general_dilated"):
                w_rhs = isinstance(ins[1], Param)
                w = ins[1] if w_rhs else ins[0]
                if not isinstance(w, Param) or w.var == 0:
                    return plain
                roles, n_out = _contraction_roles(eqn, x, w, w_rhs)
                out = Unknown(reason, shape, roles)
                f = self._weight_map(eqn, x, w, w_rhs)
                xs = state_shape(x.shape, x.roles)
                self.tape.append(("contract", eqn, [x, w], out, f, xs, n_out))
            elif name in _LINEAR and not (name == "div" and vals[0] is not x):
                roles = elementwise_roles([v for v in vals if not isinstance(v, Param)], shape)
                out = Unknown(
                    reason, shape, tuple(x.roles) if len(x.roles) == len(shape) else roles
                )
                self.tape.append(("linear", eqn, vals, out))
            else:
                return plain
        except (NotCovered, ValueError, TypeError, IndexError):
            return plain
        return [out]

    def _weight_map(self, eqn, x, w, w_rhs):
        """The contraction with a weight of ones, on state arrays (batch 1) of ``x``."""
        ones = jnp.ones(w.shape, jnp.float64)
        params = {**eqn.params, "preferred_element_type": None}
        xs = state_shape(x.shape, x.roles)

        def f(a):
            a = jnp.broadcast_to(jnp.asarray(a, jnp.float64), xs)
            return eqn.primitive.bind(*((a, ones) if w_rhs else (ones, a)), **params)

        return f

    def contraction(self, eqn, ins: list[Any]) -> Gauss | Known:
        lhs, rhs = ins
        if all(isinstance(realise(v), Known) for v in ins):
            args = [known_arg(realise(v).arr) for v in ins]
            params = {**eqn.params, "preferred_element_type": None}
            out = np.asarray(eqn.primitive.bind(*args, **params))
            return Known(out, ("p",) * out.ndim)
        if isinstance(rhs, Param) and not isinstance(lhs, Param):
            x, w, w_rhs = realise(lhs), rhs, True
        elif isinstance(lhs, Param) and eqn.primitive.name == "dot_general":
            x, w, w_rhs = realise(rhs), lhs, False
        else:  # a product of two signals (attention scores, values weighted by attention)
            return self.sampled(eqn, ins)
        if w.var > 0 and abs(w.mean) > 1e-6 * math.sqrt(w.var):
            raise NotCovered(f"the weight {w.name} is not zero-mean")
        if w.var == 0 and w.mean == 0 and (w.value is None or not np.any(w.value)):
            roles, n_out = _contraction_roles(eqn, x, w, w_rhs)  # a zero weight (Fixup, zerO)
            shp = tuple(eqn.outvars[0].aval.shape)
            zero = np.zeros((1,) * len(shp))
            out = Gauss(shp, roles, zero, zero, zero, frozenset({new_id()}), {})  # exactly 0
            f, xs = self._weight_map(eqn, x, w, w_rhs), state_shape(x.shape, x.roles)
            self.tape.append(("contract", eqn, [x, w], out, f, xs, n_out))  # zero cotangent
            return out
        if w.var == 0:
            raise NotCovered(f"a contraction with the constant weight {w.name} is not covered")
        self.weight_uses[w.origin] = self.weight_uses.get(w.origin, 0) + 1
        if self.weight_uses[w.origin] > 1:
            raise NotCovered(f"the weight {w.name} is used twice (tied weights)")
        q, c, lin, kbar = self.input_moments(x)
        if isinstance(x, Known) and lin:
            self.tok_atoms[next(iter(lin))] = _token_spread(eqn, x, w_rhs)
        xs = state_shape(x.shape, x.roles)
        f = self._weight_map(eqn, x, w, w_rhs)

        out_shape = tuple(eqn.outvars[0].aval.shape)
        m1 = x.mean if isinstance(x, Gauss) else (moments(x)[0] if isinstance(x, Expr) else 1.0)
        zero_mean = bool(np.all(np.abs(m1) <= 1e-6 * np.sqrt(np.maximum(np.max(q), 1e-300))))
        roles, n_out = _contraction_roles(eqn, x, w, w_rhs, zero_mean)
        atom = new_id()
        self.atoms[atom] = kbar / n_out
        # the spread of one token's output variance: its input's mean square over the fan
        fan = float(np.mean(np.asarray(f(np.ones(xs)))))
        spread = 0.0
        if isinstance(x, (Gauss, Expr)) and fan > 0:
            sq = Expr(x.shape, x.roles, jax.lax.integer_pow_p, {"y": 2}, (x,))
            spread = own_spread(sq)
        self.tok_atoms[atom] = spread / fan if spread else 0.0
        var = collapse(w.var * np.asarray(f(q), np.float64))
        cross = collapse(w.var * np.asarray(f(c), np.float64))
        out = Gauss(
            out_shape, roles, np.zeros((1,) * len(out_shape)), var, cross,
            frozenset({atom}), {**lin, atom: 1.0},
            tokens=contract_tokens(eqn, x, w.var, w_rhs, self.sampler),
        )  # fmt: skip
        self.tape.append(("contract", eqn, [x, w], out, f, xs, n_out))
        return out

    def input_moments(self, x: Any) -> tuple[np.ndarray, np.ndarray, dict[int, float], float]:
        """Second moment, cross-example moment, log-sensitivity and noise of a contraction's
        input (a data array: its batch averages; a random value: its law)."""
        if isinstance(x, Known):
            if "b" not in x.roles:
                a = np.asarray(x.arr, np.float64)
                return a**2, a**2, {}, 0.0
            _, q, c, rel = data_law(x, self.batch)
            atom = new_id()
            self.atoms[atom] = rel
            return q, c, {atom: 1.0}, 0.0
        _, q, c = moments(x)
        if np.any(np.isnan(c)):
            c = np.zeros_like(q)  # not needed downstream unless a batch statistic asks
        kappa, pair = kurtosis_terms(x)
        w = full(q, np.broadcast_shapes(np.shape(q), np.shape(kappa)))
        k_mean = float(np.sum(kappa * w) / max(np.sum(w), 1e-300))
        p_mean = float(np.sum(pair * w) / max(np.sum(w), 1e-300))
        kbar = k_mean / self.batch + (1 - 1 / self.batch) * p_mean
        return q, c, self.stat_lin(x, "second"), kbar

    def hetero(self, lin: dict[int, float]) -> float:
        """The per-token relative variance a statistic inherits from the data's spread."""
        return sum(c * c * self.tok_atoms.get(t, 0.0) for t, c in lin.items())

    def stat_lin(self, v: Any, which: str) -> dict[int, float]:
        """Log-sensitivity of the position-averaged E[f] (``"mean"``) or E[f²] (``"second"``)
        of a random value to the noise atoms, by perturbing each source's variance and each
        constant of the expression."""
        if isinstance(v, (Gauss, Sampled)):
            return dict(v.lin) if which == "second" else {}
        srcs = v.sources

        def stat(vscale=None, cscale=None):
            vals, w = eval_sources(srcs, scale=vscale, of=v)
            f = jnp.asarray(evaluate(v, dict(zip(srcs, vals, strict=True)), cscale), jnp.float64)
            return float(np.mean(expect(f if which == "mean" else jnp.square(f), w)))

        base = stat()
        out: dict[int, float] = {}
        if not np.isfinite(base) or abs(base) < 1e-30:
            return out
        probes = [(s.lin, {sid: 1 + _EPS}, None) for sid, s in srcs.items() if s.lin]
        probes += [(c.lin, None, {id(c): 1 + _EPS}) for c in consts(v) if c.lin]
        for lin, vs, cs in probes:
            d = (stat(vs, cs) / base - 1) / _EPS
            for t, coef in lin.items():
                out[t] = out.get(t, 0.0) + d * coef
        return out

    # -- backward -----------------------------------------------------------------------------


def _contraction_roles(eqn, x, w, w_rhs, zero_mean: bool = False) -> tuple[tuple[str, ...], int]:
    """The output's roles (the weight's free axes are units; the input's surviving axes become
    positions, correlated through the shared weight) and the number of output units."""
    if eqn.primitive.name == "conv_general_dilated":
        dn = eqn.params["dimension_numbers"]
        out = ["p"] * len(eqn.outvars[0].aval.shape)
        out[dn.out_spec[0]], out[dn.out_spec[1]] = "b", "u"
        return tuple(out), int(w.shape[dn.rhs_spec[0]])
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    if lb or rb:
        raise NotCovered("a batched contraction with a weight is not covered")
    xc, wc = (lc, rc) if w_rhs else (rc, lc)
    # the input's surviving axes: the batch stays; units stay units when the input is
    # zero-mean (independent across them given the weight: MLP-Mixer's channels through a
    # token-mixing layer), else they become positions (correlated through the shared weight)
    keep_units = zero_mean and xc and all(x.roles[a] != "b" for a in xc)
    x_free = [
        x.roles[a] if x.roles[a] == "b" or (x.roles[a] == "u" and keep_units) else "p"
        for a in range(len(x.shape))
        if a not in xc
    ]
    w_free = [a for a in range(len(w.shape)) if a not in wc]
    n_out = math.prod(w.shape[a] for a in w_free)
    roles = x_free + ["u"] * len(w_free) if w_rhs else ["u"] * len(w_free) + x_free
    return tuple(roles), int(n_out)


def _token_spread(eqn, x: Known, w_rhs: bool) -> float:
    """The relative variance over examples and tokens of the data's mean square over the
    contracted axes (each token's squared norm; LayerNorm divides by it)."""
    if eqn.primitive.name != "dot_general" or "b" not in x.roles:
        return 0.0
    (lc, rc), _ = eqn.params["dimension_numbers"]
    r = np.mean(np.square(np.asarray(x.arr, np.float64)), axis=tuple(lc if w_rhs else rc))
    m = float(np.mean(r))
    return float(np.var(r)) / m**2 if m > 0 else 0.0


def _const(c: Any) -> Known:
    arr = np.asarray(c, np.float64)
    return Known(arr, ("p",) * arr.ndim)


def _known(eqn, v: Known) -> Known:
    out = np.asarray(eqn.primitive.bind(jnp.asarray(v.arr), **eqn.params), np.float64)
    roles = tuple(r for a, r in enumerate(v.roles) if a not in eqn.params["axes"])
    return Known(out, roles, v.lin, tags=v.tags)


@contextlib.contextmanager
def marked_norm_stats():
    """While tracing, Flax's normalisation statistics (``_compute_stats`` of linen and nnx:
    BatchNorm, LayerNorm, GroupNorm) run as a jitted call named after their reduction axes, so
    the interpreter sees a statistic over the batch as one step (:func:`batch_stats`)."""
    mods = []
    for name in ("flax.linen.normalization", "flax.nnx.nn.normalization"):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:  # pragma: no cover - an older Flax
            continue
    saved = [(m, m._compute_stats) for m in mods if hasattr(m, "_compute_stats")]

    def wrap(orig):
        def stats(x, axes, *args, **kwargs):
            nd = np.ndim(x)
            ax = (axes,) if isinstance(axes, int) else tuple(axes)
            key = f"_jinit_stats_{new_id()}"
            STATS_AXES[key] = tuple(sorted(a % nd for a in ax))

            def inner(x):
                return orig(x, axes, *args, **kwargs)

            inner.__name__ = inner.__qualname__ = key
            return jax.jit(inner)(x)

        return stats

    try:
        for m, orig in saved:
            m._compute_stats = wrap(orig)
        yield
    finally:
        for m, orig in saved:
            m._compute_stats = orig


def _fluct(var: float) -> float:
    return float(math.sqrt(math.expm1(var))) if np.isfinite(var) else math.nan


def propagate_moments(
    closed_jaxpr, inputs: Sequence[Any], *, batch: int, cotangent: int | None = None
) -> list[Moments]:
    """Predicted :class:`Moments` of every output of ``closed_jaxpr`` at initialisation.

    Args:
      closed_jaxpr: ``jax.make_jaxpr(fn)(*args)``.
      inputs: one per flattened input: a :class:`Param` (a parameter with its law) or a
        :class:`Known` (the data, with ``"b"`` on its batch axis; constants).
      batch: the number of examples averaged in one seed's statistics.
      cotangent: the index of the output that receives a unit cotangent (a loss
        ``<v, y>`` with ``v ~ N(0, I)``); None for no backward pass.

    Examples:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from jinit.theory._graph import propagate_moments
      >>> from jinit.theory._graph_rules import Param
      >>> from jinit.theory._graph_values import Known
      >>> x = np.ones((8, 16))
      >>> closed = jax.make_jaxpr(lambda w, x: jnp.tanh(x @ w))(jnp.zeros((16, 4)), x)
      >>> w = Param((16, 4), 0.0, 1 / 16, None, "w")  # fan-in 16 read from the matmul
      >>> (m,) = propagate_moments(closed, [w, Known(x, ("b", "p"))], batch=8)
      >>> round(m.second_moment, 4)  # E[tanh(z)^2], z ~ N(0, 1)
      0.3943
    """
    with jax.enable_x64(True):  # the expectations in float64 (the model's dtype is irrelevant)
        return _propagate(closed_jaxpr, inputs, batch, cotangent)


def _propagate(closed_jaxpr, inputs, batch, cotangent) -> list[Moments]:
    it = _Interpreter(batch)
    cs = [_const(c) for c in closed_jaxpr.consts]
    outs = it.run(closed_jaxpr.jaxpr, cs, list(inputs))
    cot: dict[int, Cot] = {}
    if cotangent is not None and getattr(outs[cotangent], "roles", None) is not None:
        y = realise(outs[cotangent])
        ones = np.ones(state_shape(y.shape, y.roles))
        seed: dict[int, Cot] = {}
        add_cot(
            seed,
            y,
            Cot(collapse(ones), noise_atom({}, 2.0 / max(math.prod(y.shape), 1)), 1.0),
            it.sampler,
        )
        cot = backward(it.tape, seed, it.sampler)
    result = []
    for o in outs:
        o = realise(o)
        g = cot.get(id(o))
        if g is not None and getattr(o, "roles", None) is not None:
            gm = float(np.mean(full(g.arr, state_shape(o.shape, o.roles))))
            gf = _fluct(noise_var(g.var))
        else:
            gm = gf = math.nan
        if isinstance(o, Unknown):
            result.append(Moments(math.nan, math.nan, math.nan, gm, gf, reason=o.reason))
        elif isinstance(o, Known):
            a = np.asarray(o.arr, np.float64)
            result.append(Moments(float(a.mean()), float((a**2).mean()), 0.0, gm, gf))
        else:
            m1, m2, _ = moments(o)
            shp = state_shape(o.shape, o.roles)
            lin = it.stat_lin(o, "second")
            var = sum(c * c * it.atoms.get(t, 0.0) for t, c in lin.items())
            m1, m2 = float(np.mean(full(m1, shp))), float(np.mean(full(m2, shp)))
            result.append(Moments(m1, m2, _fluct(var), gm, gf))
    return result
