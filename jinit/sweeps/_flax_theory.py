"""Per-layer mean-field predictions for any Flax model in a sweep (:func:`flax_prediction`):
the model is traced once and its computation handed to :mod:`jinit.theory._graph`."""

from __future__ import annotations

import inspect
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import has_law
from jinit._core._layouts import layouts
from jinit._core._paths import named_leaves
from jinit.sweeps._networks import settled_mean, weight_law_moments
from jinit.theory._graph import Moments, marked_norm_stats, propagate_moments
from jinit.theory._graph_rules import Param
from jinit.theory._graph_values import Known, data_stats
from jinit.trees._own import own_rules

_THEORY_SEED = 20261206
_DATA_SAMPLE = 4096  # examples drawn to estimate the data's moments


def flax_prediction(model, init, dtype, batch: int) -> tuple[dict[str, np.ndarray] | None, str]:
    """``(per-layer predictions, note)`` for the Flax ``model`` initialised with ``init``.

    The prediction arrays have one entry per layer (NaN where the theory does not cover the
    layer; the note lists why). Parameter laws are exact where the layer's own initialiser has
    a jinit law (:func:`jinit.own_rules`), otherwise estimated from one draw."""
    key = jax.random.key(_THEORY_SEED)
    kp, kx = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    x = model.sample_input(kx, batch, dtype)
    run_fn = model._run_linen if model.kind == "linen" else model._run_nnx
    params, run = run_fn(init, kp, x)
    names: list[tuple[str, ...]] = []
    _, cap_shapes = jax.eval_shape(lambda p: run(p, {}, names), params)
    probes = {
        "/".join(n): jnp.zeros(c[1].shape, c[1].dtype)
        for n, c in zip(names, cap_shapes, strict=True)
    }

    def fn(p, pr, xin):
        y, cap = run(p, pr, [], xin)
        return [y] + [t for pair in cap for t in pair]

    with marked_norm_stats():
        closed = jax.make_jaxpr(fn)(params, probes, x)
    laws, estimated = _param_laws(model, init, params, x, dtype)
    inputs = laws + [
        Known(np.zeros(np.shape(a)), ("b",) + ("p",) * (np.ndim(a) - 1))
        for a in jax.tree_util.tree_leaves(probes)
    ]
    xa = np.asarray(x)
    # the data's moments from more examples than one batch (the sweep redraws it per seed)
    big = model.sample_input(jax.random.fold_in(key, 2), _DATA_SAMPLE, dtype)
    stats = data_stats(big, batch)
    inputs.append(Known(xa, ("b",) + ("p",) * (xa.ndim - 1), stats=stats))
    outs = propagate_moments(closed, inputs, batch=batch, cotangent=0)
    y, caps = outs[0], outs[1:]
    layers = [(caps[2 * i], caps[2 * i + 1]) for i in range(len(names))]
    pred = _arrays(layers, y, model.residual)
    note = _note(layers, y, names, estimated)
    if not np.any(np.isfinite(pred["preact.second_moment"])):
        return None, note
    return pred, note


def _param_laws(model, init, params, x, dtype) -> tuple[list[Param], list[str]]:
    """A :class:`Param` per parameter leaf (tree-flatten order) and the paths whose law was
    estimated from the drawn values."""
    exact = _own_inits(model, init, x)
    calls = _call_shapes(model, init) if model.kind == "nnx" else {}
    out, estimated = [], []
    for path, arr, _ in named_leaves(params):
        a = np.asarray(arr, np.float64)
        fn, shape = _unwrapped(exact.get(path), calls.get(path, a.shape))
        if fn is not None and has_law(fn):  # the sweep's one reader of a law's moments
            mean, var, _ = weight_law_moments(fn, shape, dtype)
            if np.isfinite(var):
                out.append(Param(a.shape, mean, var, a if var == 0 else None, path))
                continue
        mean, var = float(a.mean()), float(a.var())
        if var > 0:
            estimated.append(path)
            mean = settled_mean(mean, var, a.size, exact=False)
        out.append(Param(a.shape, mean, var, a if var == 0 else None, path))
    return out, estimated


def _unwrapped(fn: Any, shape: tuple[int, ...]) -> tuple[Any, tuple[int, ...]]:
    """The initialiser inside linen ``DenseGeneral``'s or nnx ``LinearGeneral``'s wrapper
    (which draws the kernel at its flattened two-dimensional shape, so the fans are those of
    the flat matrix) and that shape; any other initialiser as it is."""
    name = getattr(fn, "__qualname__", "")
    if not (name.endswith("kernel_init_wrap") and ("General." in name)):
        return fn, shape
    try:
        env = inspect.getclosurevars(fn).nonlocals
        nb = env.get("n_batch_dims", env.get("n_batch_axis"))
        na = env.get("n_axis", env.get("n_in_features"))
        nf = env.get("n_features", env.get("n_out_features"))
        inner = env["kernel_init"] if "kernel_init" in env else env["self"].kernel_init
    except (KeyError, AttributeError, TypeError):
        return fn, shape
    if None in (nb, na, nf):
        return fn, shape
    flat = (math.prod(shape[: nb + na]), math.prod(shape[-nf:]))
    return getattr(inner, "fn", inner), flat


def _call_shapes(model, init) -> dict[str, tuple[int, ...]]:
    """``{path: the shape an nnx layer calls its initialiser with}`` where it differs from
    the stored one (``LinearGeneral`` and the attention projections draw the flat matrix)."""
    from flax import nnx

    try:
        table = layouts(model.build(init, nnx.Rngs(0)))
    except Exception:  # the stored shapes are then used
        return {}
    return {p: tuple(lay.call_shape()) for p, lay in table.items() if lay.call == "flat"}


def _own_inits(model, init, x) -> dict[str, Any]:
    """``{param path: the layer's own initialiser}`` (empty where it cannot be read)."""
    try:
        if model.kind == "linen":
            kw = {k: v for k, v in (model.apply_kwargs or {}).items() if k != "mutable"}
            rules = own_rules(model.build(init), x, **kw)
        else:
            from flax import nnx

            rules = own_rules(lambda: model.build(init, nnx.Rngs(0)))
    except Exception:  # the laws are then estimated from the draw
        return {}
    return {r.pattern[2:]: getattr(r.init, "fn", r.init) for r in rules}


def _arrays(layers: list[tuple[Moments, Moments]], y: Moments, stream: bool):
    n = len(layers)
    acts = [layers[i + 1][0] if i + 1 < n else y for i in range(n)]
    pre = [o for _, o in layers]

    def col(ms, attr):
        return np.array([getattr(m, attr) for m in ms], np.float64)

    def std(ms):
        return np.sqrt(np.maximum(col(ms, "second_moment") - col(ms, "mean") ** 2, 0.0))

    out = {
        "preact.second_moment": col(pre, "second_moment"),
        "preact.mean": col(pre, "mean"),
        "preact.std": std(pre),
        "act.second_moment": col(acts, "second_moment"),
        "act.mean": col(acts, "mean"),
        "act.std": std(acts),
        "grad.second_moment": col(pre, "grad_second_moment"),
        "fluctuation": col(acts, "fluctuation"),
        "preact.fluctuation": col(pre, "fluctuation"),
        "grad.fluctuation": col(pre, "grad_fluctuation"),
    }
    src = "preact" if stream else "act"
    out["output.second_moment"] = out[f"{src}.second_moment"]
    out["output.std"] = out[f"{src}.std"]
    return out


def _note(layers, y, names, estimated: list[str]) -> str:
    """Why some layers have no prediction (grouped by reason), and estimated laws."""
    n = len(layers)
    reasons: dict[str, list[str]] = {}
    for i, (inp, out) in enumerate(layers):
        act = layers[i + 1][0] if i + 1 < n else y
        r = out.reason or act.reason or inp.reason
        if r:
            reasons.setdefault(r, []).append("/".join(names[i]))
    parts = [f"not covered at {len(v)} layer(s) ({_few(v)}): {r}" for r, v in reasons.items()]
    if estimated:
        parts.append(f"law estimated from a draw for {_few(estimated)}")
    return "; ".join(parts)


def _few(items: list[str]) -> str:
    return ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
