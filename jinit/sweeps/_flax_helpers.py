"""Helpers of the Flax model adapters: per-layer statistics of a captured forward pass and
gradients, parameter-gradient norms, unboxing of partitioned parameters, and argument checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._flax import check_layers
from jinit.sweeps._statistics import (
    forward_stats,
    nonfinite_stat,
)

# ---------------------------------------------------------------------------------------------
# Any Flax model
# ---------------------------------------------------------------------------------------------


def _path_str(path) -> tuple[str, ...]:
    out = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                out.append(str(getattr(k, attr)))
                break
        else:
            out.append(str(k))
    return tuple(out)


def layer_param_norms(grads, layer_paths: list[tuple[str, ...]], sdt) -> dict[str, list]:
    """``{param name: [norm per layer (NaN where the layer has no such parameter)]}``."""
    flat = [(_path_str(p), leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]]
    per_layer: list[dict[str, jax.Array]] = []
    for lp in layer_paths:
        d = {}
        for comps, leaf in flat:
            n = len(lp)
            if comps[:n] == lp and len(comps) > n and all(c == "value" for c in comps[n + 1 :]):
                g = jnp.asarray(leaf).astype(sdt)
                d[comps[n]] = jnp.sqrt(jnp.sum(g * g))
        per_layer.append(d)
    names = sorted({k for d in per_layer for k in d})
    return {k: [d.get(k, jnp.array(jnp.nan, sdt)) for d in per_layer] for k in names}


def flax_stats(layers, y, grads_h, param_norms, sdt, sample_size, stream=False, exact_stats=True):
    """Stacks per-layer statistics of captured layers (in call order) into arrays over layers.

    ``layers`` is a list of ``(input, output)``: the output of layer ``i`` is its
    pre-activation, the input of layer ``i+1`` (the model output for the last) its activation.
    The ``output.*`` statistics are those of the activation, or with ``stream`` (the layers are
    residual blocks) of the layer's own output, the residual stream. ``grads_h`` (the
    gradients w.r.t. each layer's output) is None for a forward-only sweep. Without
    ``exact_stats`` the stds are one-pass and the non-finite counts are flags
    (:func:`~jinit.sweeps._statistics.forward_stats`).
    """
    per = []
    for i, (_, h) in enumerate(layers):
        a = layers[i + 1][0] if i + 1 < len(layers) else y
        st = forward_stats(h, a, h if stream else a, sdt, sample_size, exact_stats)
        samp = st["act.sample"]
        st["act.sample"] = jnp.pad(samp, (0, sample_size - samp.shape[0]), constant_values=jnp.nan)
        if grads_h is not None:
            g = grads_h[i].astype(sdt)
            g2 = jnp.mean(g * g)
            st["grad.second_moment"] = g2
            st["grad_output.second_moment"] = jnp.array(jnp.nan, sdt)
            st["grad.nonfinite"] = nonfinite_stat((g,), (g2,), exact_stats)
        st["units"] = jnp.asarray(h.shape[-1], jnp.float32)
        for name, norms in param_norms.items():
            st[f"param_grad_norm.{name}"] = norms[i]
        per.append(st)
    return {k: jnp.stack([jnp.asarray(d[k]) for d in per]) for k in per[0]}


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def unbox_tree(tree):
    """``tree`` with every Flax ``AxisMetadata`` box (``Partitioned``,
    ``LogicallyPartitioned``) replaced by its value, without a sharding constraint."""
    from flax.core import meta

    def one(x):
        if isinstance(x, meta.AxisMetadata):
            try:
                return x.unbox(apply_constraint=False)
            except TypeError:  # a box type without that option
                return x.unbox()
        return x

    return jax.tree_util.tree_map(one, tree, is_leaf=lambda x: isinstance(x, meta.AxisMetadata))


def check_flag(api: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`{api}` needs `{name}` to be True or False; got {value!r} of type "
            f"{type(value).__name__}. Pass `{name}=True` or `{name}=False`."
        )
    return bool(value)


def check_apply_kwargs(api: str, apply_kwargs: Any) -> dict[str, Any] | None:
    if apply_kwargs is None:
        return None
    if not isinstance(apply_kwargs, Mapping) or not all(isinstance(k, str) for k in apply_kwargs):
        raise TypeError(
            f"`{api}` needs `apply_kwargs` to be None or a dict of keyword arguments for the "
            f"model call; got {apply_kwargs!r} of type {type(apply_kwargs).__name__}. Pass e.g. "
            f"`apply_kwargs={{'train': True, 'mutable': ['batch_stats']}}`."
        )
    out = dict(apply_kwargs)
    if "rngs" in out:
        raise ValueError(
            f"`{api}` got `apply_kwargs` with 'rngs'; one fixed key would be shared by every "
            f"seed. Sweep the model in its deterministic mode (e.g. `apply_kwargs="
            f"{{'deterministic': True}}` or dropout rate 0)."
        )
    if api == "nnx_model" and "mutable" in out:
        raise ValueError(
            f"`{api}` got `apply_kwargs` with 'mutable'; nnx modules update their state (e.g. "
            f"BatchNorm statistics) in place, so there is nothing to make mutable. Drop it; pass "
            f"only the model's call arguments (e.g. `{{'train': True}}`)."
        )
    if "mutable" in out:
        m = out["mutable"]
        ok = isinstance(m, (bool, str)) or (
            isinstance(m, (list, tuple)) and all(isinstance(c, str) for c in m)
        )
        if not ok:
            raise TypeError(
                f"`{api}` needs `apply_kwargs['mutable']` to be a collection name, a list of "
                f"them or a bool (as `flax.linen.Module.apply` takes); got {m!r}. Pass e.g. "
                f"`['batch_stats']`."
            )
    return out


def check_flax_args(api, build, sample_input, layers, name):
    if not callable(build):
        what = "build(init) -> nn.Module" if api == "linen_model" else "build(init, rngs)"
        raise TypeError(
            f"`{api}` needs `build` to be a callable `{what}`; got {build!r} of type "
            f"{type(build).__name__}."
        )
    if not callable(sample_input):
        raise TypeError(
            f"`{api}` needs `sample_input` to be a callable `sample_input(key, batch, dtype) -> "
            f"array`; got {sample_input!r} of type {type(sample_input).__name__}."
        )
    if not isinstance(name, str):
        raise TypeError(
            f"`{api}` needs `name` to be a str (a label for reports); got {name!r} of type "
            f"{type(name).__name__}."
        )
    return check_layers(api, layers)
