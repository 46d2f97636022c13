"""Helpers of :func:`lsuv` over linen dicts, ``nnx.State`` and equinox modules alike: array
leaves and their paths, and forward passes that capture every layer's first output."""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jinit._core._flax import nnx_layer_calls
from jinit._core._paths import is_variable, path_str, variable_value

# ---------------------------------------------------------------------------------------------
# Tree helpers (linen dicts and nnx.State alike)
# ---------------------------------------------------------------------------------------------


def array_leaves(tree: Any) -> dict[str, jax.Array]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_variable)
    out = {}
    for kp, leaf in flat:
        value = variable_value(leaf) if is_variable(leaf) else leaf
        if isinstance(value, jax.Array):
            out[path_str(kp)] = value
    return out


def _abstract(tree: Any) -> Any:
    """Array leaves (tracers included) as ``jax.ShapeDtypeStruct``."""
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if isinstance(x, jax.Array) else x, tree
    )


def cast_like(x: jax.Array, old: jax.Array) -> jax.Array:
    """``x`` placed like ``old`` (a jitted result may not keep the input's sharding)."""
    return x if x.sharding == old.sharding else jax.device_put(x, old.sharding)


def output_var(out: Any) -> jax.Array:
    y = out[0] if isinstance(out, tuple | list) else out
    y = jnp.asarray(y)
    return jnp.var(y.astype(jnp.promote_types(y.dtype, jnp.float32)))


def crc_path_key(key: jax.Array, path: str) -> jax.Array:
    """A key for ``path`` that does not depend on the other layers (crc32 of the path)."""
    return jax.random.fold_in(key, zlib.crc32(path.encode()) & 0x7FFFFFFF)


# ---------------------------------------------------------------------------------------------
# Forward passes that capture every layer's first output
# ---------------------------------------------------------------------------------------------


def linen_runner(apply_fn, variables, is_layer, apply_kwargs, calls=None):
    """A forward pass returning (layer order, first outputs). With a dict ``calls``, each
    layer's unbound clone and abstract call arguments are recorded in it (for its layout)."""
    import flax.linen as nn

    rest = {k: v for k, v in variables.items() if k != "params"}

    def run(params, batch):
        order: list[tuple[str, ...]] = []
        outs: dict[tuple[str, ...], Any] = {}

        def icpt(next_fun, args, kwargs, ctx):
            out = next_fun(*args, **kwargs)
            if ctx.method_name == "__call__" and is_layer(ctx.module):
                path = tuple(str(c) for c in ctx.module.path)
                if path not in outs:  # a shared layer is normalised on its first call
                    outs[path] = out
                    order.append(path)
                    if calls is not None:
                        calls[path] = (ctx.module.clone(parent=None), _abstract((args, kwargs)))
            return out

        with nn.intercept_methods(icpt):
            apply_fn({**rest, "params": params}, batch, **apply_kwargs)
        return order, [outs[p] for p in order]

    return run


def nnx_runner(graphdef, rest, is_layer):
    from flax import nnx

    def run(params, batch):
        m = nnx.merge(graphdef, params, rest)
        order: list[tuple[str, ...]] = []
        outs: dict[tuple[str, ...], Any] = {}

        def hook(path, args, out):
            if path not in outs:  # a shared layer is normalised on its first call
                outs[path] = out
                order.append(path)
            return out

        with nnx_layer_calls(m, is_layer, hook):
            m(batch)
        return order, [outs[p] for p in order]

    return run


def eqx_layer_types(eqx: Any) -> tuple[type, ...]:
    return (eqx.nn.Linear, eqx.nn.Conv, eqx.nn.ConvTranspose)


def eqx_runner(static: Any, is_layer: Callable[[Any], bool]):
    """A forward pass of an equinox model on a batch, ``jax.vmap`` of the model over the leading
    axis (equinox layers take single examples), returning (layer order, first outputs): every
    layer (``is_layer``) is swapped for a function that records its output, returned out of
    the ``vmap`` stacked over the batch."""
    eqx = sys.modules["equinox"]  # loaded: the model is an equinox module (not a dependency)

    def run(params, batch):
        model = eqx.combine(params, static)
        flat, treedef = jax.tree_util.tree_flatten_with_path(model, is_leaf=is_layer)
        order: list[tuple[str, ...]] = []
        outs: dict[tuple[str, ...], Any] = {}

        def tap(path, layer):
            def call(*args, **kwargs):
                out = layer(*args, **kwargs)
                if path not in outs:  # a shared layer is normalised on its first call
                    outs[path] = out
                    order.append(path)
                return out

            return call

        leaves = [
            tap(tuple(path_str(kp).split("/")), leaf) if is_layer(leaf) else leaf
            for kp, leaf in flat
        ]
        tapped = jax.tree_util.tree_unflatten(treedef, leaves)

        def one(x):
            order.clear()
            outs.clear()
            tapped(x)
            return [outs[p] for p in order]

        stacked = jax.vmap(one)(batch)
        return list(order), stacked

    return run
