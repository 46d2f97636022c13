"""Per-layer predictions for a built-in network without a closed-form theory (the
transformer): its layers are traced as the sweep runs them and handed to
:mod:`jinit.theory._graph` (:func:`traced_prediction`)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jinit.sweeps._networks import settled_mean, weight_law_moments
from jinit.theory._graph import Moments, propagate_moments
from jinit.theory._graph_rules import Param
from jinit.theory._graph_values import Known, iid_normal_stats

_THEORY_SEED = 20261207


def traced_prediction(net, init, bias_init, dtype, batch: int, input_second_moment: float):
    """``(per-layer predictions, note)`` for the built-in ``net`` with weights drawn by
    ``init`` and biases by ``bias_init``: the sweep's own layer functions (``pre``/``post``)
    unrolled over the layers and traced, every parameter with its initialiser's exact law,
    the data the sweep's (i.i.d. normal of second moment ``input_second_moment``)."""
    specs = net.param_specs()
    n = net.n_layers
    laws = []
    for layer in range(n):
        row = {}
        for spec in specs:
            row[spec.name] = _law(spec, init, bias_init, dtype, f"{layer}/{spec.name}")
        laws.append(row)
    zeros = [{k: jnp.zeros(p.shape, jnp.float32) for k, p in row.items()} for row in laws]
    key = jax.random.key(_THEORY_SEED)
    scale = math.sqrt(input_second_moment)
    x = np.asarray(jax.random.normal(key, (batch, *net.input_shape())) * scale)

    def fn(params, x):
        carry = net.initial_carry(x)
        caps = []
        for p in params:
            h, aux = net.pre(p, carry)
            carry, a = net.post(p, h, carry, aux)
            caps += [h, a, jax.tree_util.tree_leaves(carry)[0]]
        return [caps[-1] if net.loss_on_output else caps[-3], *caps]

    closed = jax.make_jaxpr(fn)(zeros, jnp.asarray(x, jnp.float32))
    roles = ("b",) + ("p",) * (x.ndim - 1)
    # the sweep draws the data i.i.d. normal: its exact law, not a sample's per-entry estimate
    stats = iid_normal_stats(input_second_moment, x.ndim, math.prod(x.shape[1:]), batch)
    inputs = [*jax.tree_util.tree_leaves(laws), Known(x, roles, stats=stats)]
    outs = propagate_moments(closed, inputs, batch=batch, cotangent=0)
    layers = [tuple(outs[1 + 3 * i : 4 + 3 * i]) for i in range(n)]
    pred = _arrays(layers)
    reasons = {m.reason for trio in layers for m in trio if m.reason}
    note = "; ".join(sorted(reasons))
    if not np.any(np.isfinite(pred["output.second_moment"])):
        return None, note or "no prediction"
    return pred, note


def _law(spec, init, bias_init, dtype, name: str) -> Param:
    if spec.role in ("ones", "zeros"):
        value = np.full(spec.shape, 1.0 if spec.role == "ones" else 0.0)
        return Param(spec.shape, float(value.flat[0]), 0.0, value, name)
    fn = init if spec.role == "weight" else bias_init
    mean, var, exact = weight_law_moments(fn, spec.shape, dtype)
    if not np.isfinite(var) or var < 0:
        raise ValueError(f"no law for {name}")
    mean = settled_mean(mean, var, math.prod(spec.shape), exact)
    value = np.full(spec.shape, mean) if var == 0 else None
    return Param(spec.shape, float(mean), float(var), value, name)


def _arrays(layers: list[tuple[Moments, Moments, Moments]]) -> dict[str, np.ndarray]:
    def col(i, attr):
        return np.array([getattr(t[i], attr) for t in layers], np.float64)

    def std(i):
        return np.sqrt(np.maximum(col(i, "second_moment") - col(i, "mean") ** 2, 0.0))

    return {
        "preact.second_moment": col(0, "second_moment"),
        "preact.mean": col(0, "mean"),
        "preact.std": std(0),
        "act.second_moment": col(1, "second_moment"),
        "act.mean": col(1, "mean"),
        "act.std": std(1),
        "output.second_moment": col(2, "second_moment"),
        "output.std": std(2),
        "grad.second_moment": col(0, "grad_second_moment"),
        "grad_output.second_moment": col(2, "grad_second_moment"),
        "fluctuation": col(1, "fluctuation"),
        "preact.fluctuation": col(0, "fluctuation"),
        "grad.fluctuation": col(0, "grad_fluctuation"),
        "grad_output.fluctuation": col(2, "grad_fluctuation"),
    }
