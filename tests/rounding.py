r"""Float32 rounding-error bounds of a JAX computation, for machine-independent tolerances.

A float32 result computed with another blocking (another CPU's vector width, another XLA
kernel or fusion, another device count) differs from a reference in its last bits, and a
test needs a tolerance for that. This module derives the tolerance from the computation
instead of from what one machine prints.

:func:`evaluate` traces ``fn`` on its float32 arguments and runs the jaxpr again in float64
(exact inputs, so the float64 result is the exact value ``y`` up to ``1e-16`` relative). Any
float32 evaluation of the same operations commits at operation ``k`` a local error
``ε_k`` with ``|ε_k| ≤ δ_k`` (``u = 2⁻²⁴``, ``γ_n = n·u / (1 - n·u)``):

* a sum or inner product of ``n`` terms in *any* order or blocking:
  ``δ = γ_n Σ |aᵢ||bᵢ|`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
  §3.1, eq. 3.5 — a fused multiply-add only removes roundings);
* ``+ - × ÷`` and ``x²``: ``δ = u·|v|``; ``xⁿ``: ``γ_|n|·|v|``;
* ``exp, tanh, erf, rsqrt, log, ...``: ``δ = C_FN·u·|v|``. XLA emits its own polynomial
  approximations (the same on every CPU; only FMA contraction changes their last bit): over
  every float32 in ``[-12, 12]`` their worst relative error is 1.4 u (exp), 5.7 u (tanh),
  5.3 u (erf) and 2.9 u (rsqrt) with FMA, AVX or SSE4.2 code; ``C_FN = 16`` is ~3 times that;
* ``max``, ``select``, reshapes, slices, pads, transposes: exact (``δ = 0``).

To first order in ``u`` the error of an output is ``Σ_k ∂y/∂v_k · ε_k``, so
``|ŷ - y| ≤ Σ_k |∂y/∂v_k| δ_k`` (running error analysis; Higham §3.3). The sensitivities
``∂y/∂v_k`` are exact derivatives of the float64 evaluation with a zero perturbation added
after every operation (one reverse-mode pass per output element), so cancellations are
accounted for and nothing compounds as a worst case through the layers. The neglected
``O(u²)`` terms are below ``1e-9`` relative wherever the bound itself is below ``1e-4``;
XLA's algebraic rewrites (folding ``(x·a)·b`` into ``x·(a·b)``, ``x / c`` into
``x · (1/c)``) trade one rounding for another of the same size. Both are covered by
comparing with :data:`SLACK` = 2 times the bound.

A branch (``x > 0`` in ``relu``'s derivative) is the one place where a rounding error is not
small: :func:`evaluate` also bounds every compared difference ``a - b`` below
:data:`NEAR_TIE` in absolute value and refuses (raises ``AssertionError``) if one is within
``SLACK`` times its bound, where a float32 evaluation could take the other branch. (Larger
differences cannot flip while every bound stays far below ``NEAR_TIE``, as in these tests.)
An equality of a value with itself (``x == max(x)``, exact in float64) is taken to hold in
float32 too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

U = 2.0**-24  # float32 unit roundoff
C_FN = 16  # ulps allowed for XLA's float32 exp/tanh/erf/rsqrt (worst measured: 5.7)
SLACK = 2.0  # second-order terms and XLA's algebraic rewrites
REL_FLOOR = 1e-12  # the float64 evaluation of the reference
# a one-off float64 program: XLA's slow optimisation passes cost more than they save
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
NEAR_TIE = 1e-3  # compared differences below this get their own rounding bound


def gamma(n: int) -> float:
    """Higham's ``γ_n = n·u / (1 - n·u)``: the error bound of an ``n``-term sum of products."""
    return n * U / (1 - n * U) if n > 0 else 0.0


_EXACT = {
    "broadcast_in_dim",
    "reshape",
    "transpose",
    "squeeze",
    "expand_dims",
    "slice",
    "pad",
    "concatenate",
    "gather",
    "dynamic_slice",
    "split",
    "rev",
    "copy",
    "copy_p",
    "stop_gradient",
    "neg",
    "abs",
    "max",
    "min",
    "reduce_max",
    "reduce_min",
    "select_n",
    "convert_element_type",
}
_ONE_ROUNDING = {"add", "add_any", "sub", "mul", "div", "square"}
_APPROXIMATED = {"exp", "exp2", "tanh", "erf", "logistic", "rsqrt", "sqrt", "log", "log1p", "expm1"}
_ORDER = {"gt", "ge", "lt", "le"}
_CALLS = {"jit", "pjit", "closed_call", "core_call", "remat", "checkpoint"}


def _is_float(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _params64(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for k in ("preferred_element_type", "new_dtype", "out_dtype"):
        dt = out.get(k)
        if dt is not None and jnp.issubdtype(dt, jnp.floating):
            out[k] = jnp.float64
    return out


def _local_bound(eqn, vals, out) -> jax.Array | None:
    """``δ``: the error one float32 evaluation of ``eqn`` on exact inputs may commit."""
    name = eqn.primitive.name
    if not _is_float(out) or name in _EXACT:
        return None
    if name in _ONE_ROUNDING:
        return U * jnp.abs(out)
    if name == "integer_pow":
        return gamma(max(abs(eqn.params["y"]), 1)) * jnp.abs(out)
    if name in _APPROXIMATED:
        return C_FN * U * jnp.abs(out)
    if name == "reduce_sum":
        n = math.prod(vals[0].shape[i] for i in eqn.params["axes"])
        return gamma(n - 1) * jnp.sum(jnp.abs(vals[0]), axis=eqn.params["axes"])
    if name == "dot_general":
        (ca, _), _ = eqn.params["dimension_numbers"]
        n = math.prod(vals[0].shape[i] for i in ca)
        mag = jax.lax.dot_general(
            jnp.abs(vals[0]),
            jnp.abs(vals[1]),
            eqn.params["dimension_numbers"],
            preferred_element_type=jnp.float64,
        )
        return gamma(n) * mag
    raise NotImplementedError(f"no rounding rule for the primitive {name!r}")


def _inputs(args, arg_ulps, eps, rec, counter):
    """The float64 inputs, with the local error ``δ = ulps·u·|a|`` of each input that another
    program may round differently (``arg_ulps[i] > 0``) recorded and added like an operation's."""
    out = []
    for a, ulps in zip(args, arg_ulps, strict=True):
        if ulps > 0 and _is_float(a):
            if rec is not None:
                rec["delta"].append(ulps * U * jnp.abs(a))
            if eps is not None:
                a = a + eps[len(counter)]
            counter.append(None)
        out.append(a)
    return out


def _run(jaxpr, consts, args, eps, rec, counter):
    """Evaluates ``jaxpr`` in float64, adding ``eps[k]`` after the k-th rounding operation.

    With ``rec`` (a dict) it records the local bounds ``δ_k``; ``counter`` (a list shared by
    the nested calls) counts the rounding operations met so far. Returns the outputs and the
    differences ``a - b`` of every order comparison.
    """
    env: dict[Any, jax.Array] = {}
    diffs: list[jax.Array] = []

    def read(v):
        if isinstance(v, jax.extend.core.Literal):
            return jnp.asarray(v.val, jnp.float64 if _is_float(v.val) else None)
        return env[v]

    for v, c in zip(jaxpr.constvars, consts, strict=True):
        env[v] = jnp.asarray(c, jnp.float64 if _is_float(c) else None)
    for v, a in zip(jaxpr.invars, args, strict=True):
        env[v] = a
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        inner = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
        if name in _CALLS or name.startswith("custom_jvp_call") or name.startswith("custom_vjp"):
            if inner is None:
                raise NotImplementedError(f"no sub-jaxpr in the primitive {name!r}")
            closed = inner if hasattr(inner, "consts") else jax.extend.core.ClosedJaxpr(inner, [])
            outs, sub = _run(closed.jaxpr, closed.consts, ins, eps, rec, counter)
            diffs += sub
        else:
            if name in _ORDER and _is_float(ins[0]):
                diffs.append(
                    jnp.broadcast_to(ins[0] - ins[1], jnp.broadcast_shapes(*[x.shape for x in ins]))
                )
            if name in ("eq", "ne") and _is_float(ins[0]):
                # unequal values could round to equal ones: checked as an order comparison
                d = jnp.where(ins[0] == ins[1], jnp.inf, ins[0] - ins[1])
                diffs.append(jnp.broadcast_to(d, jnp.broadcast_shapes(*[x.shape for x in ins])))
            outs = eqn.primitive.bind(*ins, **_params64(eqn.params))
            outs = list(outs) if eqn.primitive.multiple_results else [outs]
            delta = _local_bound(eqn, ins, outs[0])
            if delta is not None:
                if rec is not None:
                    rec["delta"].append(delta)
                if eps is not None:
                    outs = [outs[0] + eps[len(counter)]]
                counter.append(None)
        for v, x in zip(eqn.outvars, outs, strict=True):
            env[v] = x
    return [read(v) for v in jaxpr.outvars], diffs


def evaluate(
    fn: Callable[..., Any], *args: Any, arg_ulps: tuple[float, ...] | None = None
) -> tuple[Any, Any]:
    """``fn(*args)`` in float64, and a bound on any float32 evaluation's error, per element.

    ``args`` are float32 arrays (exact in float64), or pytrees of them. ``arg_ulps`` (one entry
    per argument, default all 0) says how many float32 roundings ``u·|a|`` each element of an
    argument may differ by in the evaluation being bounded: inputs that another program computed
    (e.g. random draws whose last multiply-add XLA may contract into one rounding or not) enter
    the bound like the output of an operation. Returns two pytrees shaped like ``fn``'s output,
    as numpy float64: the values and the first-order error bounds ``Σ_k |∂y/∂v_k| δ_k``.
    """
    closed, shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    tree = jax.tree.structure(shape)
    ulps = (0.0,) * len(args) if arg_ulps is None else tuple(arg_ulps)
    if len(ulps) != len(args):
        raise ValueError(f"arg_ulps has {len(ulps)} entries for {len(args)} arguments")
    flat_ulps = [u for a, u in zip(args, ulps, strict=True) for _ in jax.tree.leaves(a)]

    n = tree.num_leaves

    def outputs(flat, eps, rec):
        counter: list[None] = []
        ins = _inputs(flat, flat_ulps, eps, rec, counter)
        outs, diffs = _run(closed.jaxpr, closed.consts, ins, eps, rec, counter)
        return outs, diffs

    def values(flat):
        rec: dict[str, list] = {"delta": []}
        outs, diffs = outputs(flat, None, rec)
        return outs, diffs, rec["delta"]

    def bounds(flat, deltas, near):
        # rows: every output, and the compared differences that are near a tie (few or none),
        # flattened into one vector: one reverse pass is traced and batched over its elements
        def rows(eps):
            outs, diffs = outputs(flat, eps, None)
            picked = [d.ravel()[i] for d, i in zip(diffs, near, strict=True)]
            return jnp.concatenate([jnp.ravel(r).astype(jnp.float64) for r in outs + picked])

        zeros = [jnp.zeros_like(d) for d in deltas]
        flat_rows, vjp = jax.vjp(rows, zeros)
        size = flat_rows.shape[0]

        def one(i):
            (g,) = vjp(jnp.zeros(size, jnp.float64).at[i].set(1.0))
            return sum(jnp.sum(jnp.abs(gk) * dk) for gk, dk in zip(g, deltas, strict=True))

        return (
            jax.lax.map(one, jnp.arange(size), batch_size=min(size, 32))
            if size
            else jnp.zeros((0,), jnp.float64)
        )

    with jax.enable_x64(True):
        flat = [jnp.asarray(np.asarray(a), jnp.float64) for a in jax.tree.leaves(args)]
        outs, diffs, deltas = (
            jax.jit(values).lower(flat).compile(compiler_options=_FAST_COMPILE)(flat)
        )
        # only differences near a tie (usually none) get a bound of their own
        near = [np.flatnonzero(np.abs(np.asarray(d)) < NEAR_TIE) for d in diffs]
        near_idx = [jnp.asarray(i) for i in near]
        compiled = (
            jax.jit(bounds).lower(flat, deltas, near_idx).compile(compiler_options=_FAST_COMPILE)
        )
        flat_bounds = np.asarray(compiled(flat, deltas, near_idx), np.float64)
        shapes = [np.shape(o) for o in outs] + [i.shape for i in near]
        bnds, at = [], 0
        for shp in shapes:
            size = math.prod(shp)
            bnds.append(flat_bounds[at : at + size].reshape(shp))
            at += size
        for d, i, b in zip(diffs, near, bnds[n:], strict=True):
            close = np.abs(np.asarray(d).ravel()[i]) <= SLACK * np.asarray(b)
            if close.any():
                raise AssertionError(
                    f"{int(close.sum())} compared values are within their rounding bound "
                    "of each other: a float32 evaluation may take the other branch"
                )
        vals = [np.asarray(v, np.float64) for v in outs]
        errs = [np.asarray(b, np.float64) for b in bnds[:n]]
    return jax.tree.unflatten(tree, vals), jax.tree.unflatten(tree, errs)


def excess(got: Any, ref: Any, bound: Any) -> float:
    """The largest ``|got - ref| / (SLACK·bound + REL_FLOOR·|ref|)``: within the bound iff ≤ 1."""
    worst = 0.0
    leaves = zip(jax.tree.leaves(got), jax.tree.leaves(ref), jax.tree.leaves(bound), strict=True)
    for g, r, b in leaves:
        g, r, b = (np.asarray(x, np.float64) for x in (g, r, b))
        tol = SLACK * b + REL_FLOOR * np.abs(r) + np.finfo(np.float64).tiny
        worst = max(worst, float(np.max(np.abs(g - r) / tol, initial=0.0)))
    return worst


def assert_within(got: Any, ref: Any, bound: Any, what: str = "") -> None:
    """Asserts ``|got - ref| ≤ SLACK·bound + REL_FLOOR·|ref|`` elementwise."""
    x = excess(got, ref, bound)
    assert x <= 1.0, f"{what}: off by {x:.3g} times the float32 rounding bound"
