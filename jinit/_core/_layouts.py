"""Layout discovery: the layout of every kernel of a linen, nnx or equinox model, read from the
layers that own them (:func:`layouts`), and lookup of a leaf's layout by path."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jinit._core._layout import Layout
from jinit._core._paths import is_box, path_str, unbox
from jinit._core._paths import is_nnx_module as _is_nnx

# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------


def _stack(lay: Layout, shape: tuple[int, ...], base_rank: int) -> Layout | None:
    """Binds ``lay`` (for a kernel of rank ``base_rank``) to ``shape``; extra leading axes
    (layers stacked by scan/vmap) become batch axes, and the call becomes raw."""
    extra = len(shape) - base_rank
    if extra < 0:
        return None
    if extra == 0:
        return lay.bind(shape)
    base = lay.bind(shape[extra:])
    return Layout(
        tuple(a + extra for a in base.in_axes),
        tuple(a + extra for a in base.out_axes),
        tuple(range(extra)) + tuple(a + extra for a in base.batch_axes),
        call="raw",
        shape=shape,
        layer=f"{lay.layer} (stacked x{math.prod(shape[:extra])})",
    )


def _nnx_layouts(module: Any) -> dict[str, tuple[str, Layout, int]]:
    """{path: (param name, unbound layout, kernel rank)} for the known nnx layers."""
    from flax import nnx

    out: dict[str, tuple[Layout, int]] = {}
    for mpath, mod in nnx.iter_modules(module):
        prefix = "/".join(str(p) for p in mpath)
        name = f"flax.nnx.{type(mod).__name__}"
        found: dict[str, tuple[Layout, int]] = {}
        if isinstance(mod, nnx.LinearGeneral):
            ni, no, nb = len(mod.in_features), len(mod.out_features), len(mod.batch_axis)
            found["kernel"] = (Layout.dense_general(ni, no, nb, name), ni + no + nb)
        elif isinstance(mod, nnx.Linear):
            found["kernel"] = (Layout((0,), (1,), layer=name), 2)
        elif isinstance(mod, nnx.Einsum):
            lay = Layout.einsum(mod.einsum_str, f"{name} {mod.einsum_str!r}")
            found["kernel"] = (lay, len(mod.kernel_shape))
        elif isinstance(mod, nnx.ConvTranspose):
            t = bool(mod.transpose_kernel)
            found["kernel"] = (
                Layout((-1,) if t else (-2,), (-2,) if t else (-1,), layer=name),
                len(mod.kernel_shape),
            )
        elif isinstance(mod, nnx.Conv):
            found["kernel"] = (Layout((-2,), (-1,), layer=name), len(mod.kernel_shape))
        elif isinstance(mod, nnx.Embed):
            found["embedding"] = (Layout.embed(name), 2)
        for attr, v in found.items():
            out[f"{prefix}/{attr}" if prefix else attr] = v
    return out


def _eqx_known(eqx: Any) -> tuple[type, ...]:
    nn = eqx.nn
    return (nn.Linear, nn.Conv, nn.ConvTranspose, nn.Embedding)


def _eqx_layouts(tree: Any, eqx: Any) -> dict[str, tuple[Layout, int]]:
    known = _eqx_known(eqx)
    out: dict[str, tuple[Layout, int]] = {}
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, known))
    for keypath, leaf in flat:
        if not isinstance(leaf, known):
            continue
        prefix = path_str(keypath)
        name = f"equinox.nn.{type(leaf).__name__}"
        w = getattr(leaf, "weight", None)
        if w is None or not hasattr(w, "shape"):
            continue
        lay = Layout.embed(name) if isinstance(leaf, eqx.nn.Embedding) else Layout.torch(name)
        rank = (
            2 if isinstance(leaf, eqx.nn.Linear | eqx.nn.Embedding) else 2 + leaf.num_spatial_dims
        )
        out[f"{prefix}/weight" if prefix else "weight"] = (lay, rank)
    return out


def _is_abstract(x: Any) -> bool:
    return isinstance(x, jax.ShapeDtypeStruct)


def _is_arraylike(x: Any) -> bool:
    """An input :func:`jax.eval_shape` should trace: a jax/numpy array or a ShapeDtypeStruct."""
    return isinstance(x, jax.ShapeDtypeStruct | jax.Array | np.ndarray)


def _linen_layouts(model: Any, args, kwargs, rngs) -> tuple[dict[str, tuple[Layout, int]], Any]:
    import flax.linen as nn

    seen: dict[tuple[str, ...], Any] = {}

    def interceptor(next_fun, a, kw, context):
        mod = context.module
        if mod.scope is not None and tuple(mod.path) not in seen:
            seen[tuple(mod.path)] = mod
        return next_fun(*a, **kw)

    if rngs is None:
        rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    # Array-like leaves (arrays, jax.ShapeDtypeStruct) are traced arguments of eval_shape, so
    # abstract inputs work; everything else (train=False, strings) stays a static Python value.
    leaves, treedef = jax.tree_util.tree_flatten((rngs, args, kwargs), is_leaf=_is_abstract)
    dynamic = [i for i, v in enumerate(leaves) if _is_arraylike(v)]

    def init(*arrays):
        full = list(leaves)
        for i, a in zip(dynamic, arrays, strict=True):
            full[i] = a
        r, a, kw = jax.tree_util.tree_unflatten(treedef, full)
        return model.init(r, *a, **kw)

    with nn.intercept_methods(interceptor):
        variables = jax.eval_shape(init, *[leaves[i] for i in dynamic])
    out: dict[str, tuple[Layout, int]] = {}
    for mpath, mod in seen.items():
        prefix = "/".join(mpath)
        name = f"flax.linen.{type(mod).__name__}"
        found: dict[str, tuple[Layout, int]] = {}
        if isinstance(mod, nn.DenseGeneral):
            feats = mod.features if isinstance(mod.features, Sequence) else (mod.features,)
            axis = mod.axis if isinstance(mod.axis, Sequence) else (mod.axis,)
            bd = mod.batch_dims if isinstance(mod.batch_dims, Sequence) else (mod.batch_dims,)
            ni, no, nb = len(axis), len(feats), len(bd)
            found["kernel"] = (Layout.dense_general(ni, no, nb, name), ni + no + nb)
        elif isinstance(mod, nn.Dense):
            found["kernel"] = (Layout((0,), (1,), layer=name), 2)
        elif isinstance(mod, nn.Einsum):
            lay = Layout.einsum(mod.einsum_str, f"{name} {mod.einsum_str!r}")
            found["kernel"] = (lay, len(mod.shape))
        elif isinstance(mod, nn.ConvLocal):
            nd = len(mod.kernel_size) if isinstance(mod.kernel_size, Sequence) else 1
            found["kernel"] = (Layout((-2,), (-1,), tuple(range(nd)), layer=name), nd + 2)
        elif isinstance(mod, nn.ConvTranspose):
            nd = len(mod.kernel_size) if isinstance(mod.kernel_size, Sequence) else 1
            t = bool(mod.transpose_kernel)
            found["kernel"] = (
                Layout((-1,) if t else (-2,), (-2,) if t else (-1,), layer=name),
                nd + 2,
            )
        elif isinstance(mod, nn.Conv):
            nd = len(mod.kernel_size) if isinstance(mod.kernel_size, Sequence) else 1
            found["kernel"] = (Layout((-2,), (-1,), layer=name), nd + 2)
        elif isinstance(mod, nn.Embed):
            found["embedding"] = (Layout.embed(name), 2)
        for attr, v in found.items():
            out[f"{prefix}/{attr}" if prefix else attr] = v
    return out, variables


def _bind_all(
    found: Mapping[str, tuple[Layout, int]], leaves: Mapping[str, tuple[int, ...]]
) -> dict[str, Layout]:
    out = {}
    for path, (lay, rank) in found.items():
        shape = leaves.get(path)
        if shape is None:
            continue
        bound = _stack(lay, shape, rank)
        if bound is not None:
            out[path] = bound
    return out


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_box)
    out = {}
    for keypath, leaf in flat:
        value = unbox(leaf)
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            out[path_str(keypath)] = tuple(value.shape)
    return out


def _is_linen(x: Any) -> bool:
    try:
        import flax.linen as nn
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(x, nn.Module)


def is_equinox(x: Any) -> bool:
    """True for an equinox module (equinox is not imported: it exists only once loaded)."""
    eqx = sys.modules.get("equinox")
    return eqx is not None and isinstance(x, eqx.Module)


def tree_layouts(tree: Any) -> dict[str, Layout]:
    """The layouts :func:`layouts` can read from ``tree`` alone ({} for a bare dict/State)."""
    if _is_nnx(tree):
        from flax import nnx

        return _bind_all(_nnx_layouts(tree), _shapes(nnx.state(tree, nnx.Param)))
    if is_equinox(tree):
        return _bind_all(_eqx_layouts(tree, sys.modules["equinox"]), _shapes(tree))
    return {}


def layouts(model: Any, *args: Any, rngs: Any = None, **kwargs: Any) -> dict[str, Layout]:
    r"""The :class:`Layout` of every kernel of a model whose layer is known, by parameter path.

    * an ``nnx.Module``: read from its layers (``Linear``, ``LinearGeneral`` and the
      ``MultiHeadAttention`` projections built on it, ``Einsum``, ``Conv``, ``ConvTranspose``,
      ``Embed``); paths as in ``nnx.state(model, nnx.Param)`` (``"attn/query/kernel"``);
    * an equinox module: ``Linear``, ``Conv*``, ``ConvTranspose*``, ``Embedding`` (inside
      ``MLP``, ``MultiheadAttention``...), torch layout ``(out, in, *k)``; paths as
      :func:`jinit.reinit` names them (``"layers/0/weight"``);
    * a linen module **with example inputs** (``jinit.layouts(model, x)``): ``model.init(rngs,
      *args, **kwargs)`` is traced under :func:`jax.eval_shape` (no arrays computed) with
      ``flax.linen.intercept_methods`` recording each submodule's type and attributes
      (``Dense``, ``DenseGeneral`` and attention, ``Einsum``, ``Conv``, ``ConvTranspose``,
      ``ConvLocal``, ``Embed``); paths are those of the ``params`` collection
      (``"MultiHeadDotProductAttention_0/query/kernel"``; :func:`jinit.reinit` and
      :func:`jinit.summary` also accept them with a leading ``"params/"``).

    Layers stacked by ``scan``/``vmap`` get their extra leading axes as batch axes. Leaves of
    other layers (norm scales, biases, custom ``self.param`` kernels) are not listed: the tree
    tools use jax's default for them (in -2, out -1) and warn where a rank >= 3 leaf outside a
    convolution makes that guess doubtful.

    Args:
      model: an nnx module, an equinox module, or a linen module.
      *args: example inputs (linen only; arrays or ``jax.ShapeDtypeStruct``).
      rngs: the ``rngs`` of ``model.init`` (linen only; default ``{"params": key(0),
        "dropout": key(1)}``).
      **kwargs: keyword arguments of ``model.init`` (linen only, e.g. ``train=False``).

    Returns:
      ``{path: Layout}`` with each layout bound to its leaf's shape.

    Raises:
      TypeError: a linen module without inputs, or a tree that carries no layer information
        (a params dict: pass the module that made it).

    Examples:
      >>> import jinit
      >>> from flax import nnx
      >>> mha = nnx.MultiHeadAttention(4, 64, decode=False, rngs=nnx.Rngs(0))
      >>> lay = jinit.layouts(mha)["query/kernel"]
      >>> lay.shape, lay.fans()
      ((64, 4, 16), Fans(fan_in=64.0, fan_out=64.0))
    """
    api = "jinit.layouts"
    if _is_linen(model):
        if not args and not kwargs:
            raise TypeError(
                f"`{api}` needs example inputs for a linen module (its params dict does not say "
                f"which layer made each kernel): call `jinit.layouts(model, x)` with the inputs "
                f"of `model.init(key, x)` (arrays or `jax.ShapeDtypeStruct`; nothing is computed)."
            )
        found, variables = _linen_layouts(model, args, kwargs, rngs)
        params = variables.get("params", {}) if isinstance(variables, Mapping) else {}
        return _bind_all(found, _shapes(params))
    if args or kwargs or rngs is not None:
        raise TypeError(
            f"`{api}` takes example inputs only for a linen module; got a "
            f"{type(model).__name__} with inputs. Call `jinit.layouts(model)`."
        )
    if _is_nnx(model) or is_equinox(model):
        return tree_layouts(model)
    raise TypeError(
        f"`{api}` needs an nnx module, an equinox module, or a linen module with example inputs; "
        f"got a {type(model).__name__}, which does not say which layer made each kernel. Pass the "
        f"model (e.g. `jinit.layouts(linen_model, x)`), or write the layouts yourself: "
        f"`{{'attn/query/kernel': jinit.Layout.dense_general(1, 2)}}`."
    )


def lookup(table: Mapping[str, Layout], path: str) -> Layout | None:
    """``table[path]``, also trying the path without a leading ``params/`` (linen variables)."""
    lay = table.get(path)
    if lay is None and path.startswith("params/"):
        lay = table.get(path[len("params/") :])
    return lay
