"""The first half of :func:`lsuv`: the orthogonal pre-initialisation of every kernel in its
matrix view (one compiled program), layer layouts, and the checks and hints run before it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._layout import Layout, default_layout
from jinit._core._layouts import layouts
from jinit._core._paths import map_named
from jinit.initializers._orthogonal import orthogonal
from jinit.trees._lsuv_capture import crc_path_key
from jinit.trees._lsuv_types import LSUV_API

# ---------------------------------------------------------------------------------------------
# The algorithm
# ---------------------------------------------------------------------------------------------


def linen_layer_layouts(calls: Mapping[tuple[str, ...], Any]) -> dict[str, Layout]:
    """The kernel layout of each recorded linen layer call, by kernel path, read by
    :func:`jinit.layouts` from the layer alone (its ``init`` traced on the call's abstract
    arguments; nothing is computed). A layer ``jinit.layouts`` cannot read is left out."""
    out: dict[str, Layout] = {}
    for path, (module, (args, kwargs)) in calls.items():
        found: dict[str, Layout] = {}

        def read(*a, module=module, kwargs=kwargs, found=found):
            found.update(layouts(module, *a, **kwargs))

        try:
            jax.eval_shape(read, *args)
        except Exception:  # a custom layer jinit.layouts cannot trace: the default view
            continue
        if "kernel" in found:
            out["/".join((*path, "kernel"))] = found["kernel"]
    return out


def _matrix_view(layout: Layout) -> tuple[tuple[int, ...], tuple[int, int, int]]:
    """The permutation taking a ``layout``-bound weight to (batch, receptive, in, out) order,
    and the (batch, rows, columns) shape it is then viewed as: one matrix of
    prod(receptive) * prod(in) rows by prod(out) columns per batch index (the map the layer
    applies, conv taps stacked with the inputs)."""
    shape = layout.shape
    rec = layout.receptive_axes()
    perm = (*layout.batch_axes, *rec, *layout.in_axes, *layout.out_axes)
    size = lambda axes: math.prod(shape[a] for a in axes)  # noqa: E731
    return perm, (size(layout.batch_axes), size(rec) * size(layout.in_axes), size(layout.out_axes))


def orthogonal_in_view(key: jax.Array, layout: Layout, dtype: Any) -> jax.Array:
    """A weight of ``layout.shape`` whose matrix view (:func:`_matrix_view`) is Haar
    orthogonal (scale 1) for each batch index. For jax's default view (in -2, out -1, no
    batch axes: Flax Dense and Conv) this is ``jinit.orthogonal()(key, shape)``, bit for bit."""
    perm, (nb, rows, cols) = _matrix_view(layout)
    if layout.batch_axes:
        keys = jax.random.split(key, nb)
        m = jax.vmap(lambda k: orthogonal()(k, (rows, cols), dtype))(keys)
    else:
        m = orthogonal()(key, (rows, cols), dtype)
    stored = m.reshape(tuple(layout.shape[a] for a in perm))
    return jnp.transpose(stored, np.argsort(perm))


def scale_layers(p: Any, s: jax.Array, index: tuple[tuple[str, int], ...]) -> Any:
    """Multiplies the leaf at each ``path`` of ``index`` by ``s[layer]`` (in its dtype)."""
    idx = dict(index)
    return map_named(lambda path, x: x * s[idx[path]].astype(x.dtype) if path in idx else x, p)


scaled_jit = jax.jit(scale_layers, static_argnums=2)


def _pre_init_fn(
    p: Any, root: jax.Array, kernels: tuple[tuple[str, Layout], ...], biases: tuple[str, ...]
) -> Any:
    """Kernels orthogonal in their layer's matrix view (key: ``root`` folded with the path's
    hash) and zero biases."""
    views = dict(kernels)

    def pre(path, x):
        if path in views:
            return orthogonal_in_view(crc_path_key(root, path), views[path], x.dtype)
        if path in biases:
            return jnp.zeros_like(x)
        return x

    return map_named(pre, p)


# One-off programs (a Haar draw per kernel: XLA's default optimisation spends seconds on the
# normal sampler and QR of each shape) compiled at low optimisation, cached per structure.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


_PRE_INIT_CACHE: dict[Any, Any] = {}


def pre_init(
    p: Any, root: jax.Array, kernels: tuple[tuple[str, Layout], ...], biases: tuple[str, ...]
) -> Any:
    """:func:`_pre_init_fn`, compiled at low optimisation once per tree structure, leaf
    shapes, dtypes and shardings, kernels and biases (a small cache of recent programs)."""
    leaves, treedef = jax.tree_util.tree_flatten((p, root))
    signature = (
        treedef,
        tuple((x.shape, x.dtype, getattr(x, "sharding", None)) for x in leaves),
        kernels,
        biases,
    )
    compiled = _PRE_INIT_CACHE.get(signature)
    if compiled is None:
        compiled = (
            jax.jit(_pre_init_fn, static_argnums=(2, 3))
            .lower(p, root, kernels, biases)
            .compile(_FAST_COMPILE)
        )
        if len(_PRE_INIT_CACHE) >= 32:
            _PRE_INIT_CACHE.pop(next(iter(_PRE_INIT_CACHE)))
        _PRE_INIT_CACHE[signature] = compiled
    return compiled(p, root)


# ---------------------------------------------------------------------------------------------
# Checks and hints
# ---------------------------------------------------------------------------------------------


def check_batch(batch: Any) -> None:
    """Arrays of numbers, >= 2 examples each, all finite: checked before any forward pass."""
    leaves = [x for x in jax.tree_util.tree_leaves(batch) if hasattr(x, "shape")]
    if not leaves:
        raise TypeError(
            f"`{LSUV_API}` needs `batch` to be an array (or a pytree of arrays) of inputs; got "
            f"{type(batch).__name__}. Pass e.g. the first 256 rows of your training data."
        )
    for x in leaves:
        dt = np.dtype(getattr(x, "dtype", np.dtype(object)))
        if not (np.issubdtype(dt, np.number) or dt == np.bool_ or dt.name == "bfloat16"):
            raise TypeError(
                f"`{LSUV_API}` needs `batch` to hold numeric arrays (the model's inputs); got an "
                f"array of dtype {dt} and shape {tuple(x.shape)}. Convert it first, e.g. "
                f"`jnp.asarray(batch, jnp.float32)`."
            )
        if len(x.shape) == 0 or x.shape[0] < 2:
            raise ValueError(
                f"`{LSUV_API}` needs a batch of at least 2 examples to measure a variance; got an "
                f"input of shape {tuple(x.shape)}. Pass a real batch (LSUV paper: a mini-batch, "
                f"e.g. 128-512 examples)."
            )
        if jnp.issubdtype(dt, jnp.inexact):
            n_bad = int(np.sum(~np.isfinite(np.asarray(x))))  # on the host: no compilation
            if n_bad:
                raise ValueError(
                    f"`{LSUV_API}` needs a finite `batch`; got an input of shape {tuple(x.shape)} "
                    f"with {n_bad} inf/NaN entries, which would make every output variance NaN. "
                    f"Clean the data (e.g. `jnp.nan_to_num`) or pass another batch."
                )


def run_hint(kind: str, e: Exception) -> str:
    """The fix for a model that did not run: BatchNorm's mutable statistics, or the inputs."""
    text = f"{type(e).__name__} {e}"
    if kind == "linen" and (
        "ModifyScopeVariableError" in text or "batch_stats" in text or "immutable" in text
    ):
        return (
            "A BatchNorm (or another layer writing a collection) in training mode must be "
            "allowed to update it: pass `apply_kwargs={'mutable': ['batch_stats'], 'train': "
            "True}` (the `train` flag is your model's own argument), or "
            "`apply_kwargs={'train': False}` to normalise with the running statistics."
        )
    if kind == "linen":
        return (
            "Pass the variables `model.init` returned for this same model, and a batch shaped "
            "like the input it was initialised with; extra arguments of `model.apply` (e.g. "
            "`train=`, `mutable=`) go in `apply_kwargs=`."
        )
    return "Pass a batch shaped like the input the model takes."


def view_layout(path: str, shape: tuple[int, ...], known: Mapping[str, Layout]) -> Layout:
    """The layer's own layout of the kernel at ``path`` (bound to ``shape``), else jax's default
    (in -2, out -1: Flax Dense and Conv)."""
    lay = known.get(path)
    if lay is not None and lay.shape == shape:
        return lay
    if lay is not None and lay.shape is None:
        return lay.bind(shape)
    return default_layout(shape) or Layout((), (0,)).bind(shape)
