r"""Layer-sequential unit-variance (LSUV) initialisation of a Flax model (linen or nnx).

LSUV (Mishkin & Matas, 2016) is data-dependent: after an orthogonal pre-initialisation of every
linear/conv kernel, it walks the layers in forward order and rescales each kernel until the
layer's output variance on a real batch is the target,

.. math::
    W_\ell \leftarrow W_\ell \sqrt{v^\star / \operatorname{Var}(y_\ell)},
    \qquad y_\ell = \text{output of layer } \ell \text{ on the batch},

repeating while :math:`|\operatorname{Var}(y_\ell)/v^\star - 1| > \text{tol}` (at most
``max_iters`` times per layer). Since layer :math:`\ell`'s output only depends on layers
:math:`\le \ell`, which are already fixed, one pass in forward order suffices.

The variance is the one of the whole output blob (all elements of the output over the batch,
spatial positions and channels, about their common mean), as in the paper's Caffe code.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import check_int, check_key, check_real
from jinit._core._flax import check_layers, nnx_layer_calls
from jinit._core._layouts import Layout, default_layout, is_equinox, layouts, tree_layouts
from jinit._core._paths import is_variable, path_str, variable_value
from jinit.initializers._orthogonal import orthogonal

__all__ = ["LSUVLayer", "LSUVReport", "lsuv"]

_API = "jinit.lsuv"
_BIAS_MODES = ("keep", "zero", "scale")


@dataclasses.dataclass(frozen=True)
class LSUVLayer:
    """What :func:`lsuv` did to one layer.

    Attributes:
      path: the '/'-joined path of the layer's kernel (e.g. ``"Dense_0/kernel"``).
      initial_var: the layer's output variance on the batch before rescaling (after the
        orthogonal pre-initialisation, if any, and after earlier layers were normalised).
      final_var: the output variance after the last rescaling.
      iterations: how many times the kernel was rescaled (0: it was already within ``tol``).
      converged: whether ``final_var`` is within ``tol`` of the target.
      scale: the total factor the kernel was multiplied by.
    """

    path: str
    initial_var: float
    final_var: float
    iterations: int
    converged: bool
    scale: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the fields."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LSUVReport:
    """The per-layer report of :func:`lsuv`: a sequence of :class:`LSUVLayer` in forward order.

    Prints as a table (``print(report)``; ``rich`` renders it through ``__rich__``).
    """

    layers: tuple[LSUVLayer, ...]
    target_var: float
    tol: float

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, i: int | str) -> LSUVLayer:
        if isinstance(i, str):
            for layer in self.layers:
                if layer.path == i:
                    return layer
            raise KeyError(f"no layer {i!r} in the LSUV report; layers: {self.paths}")
        return self.layers[i]

    @property
    def paths(self) -> list[str]:
        return [layer.path for layer in self.layers]

    @property
    def all_converged(self) -> bool:
        return all(layer.converged for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: target, tolerance and one dict per layer."""
        return {
            "target_var": self.target_var,
            "tol": self.tol,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def _table(self):
        from rich import box
        from rich.table import Table

        t = Table(
            title=f"LSUV: target variance {self.target_var:g} ± {self.tol:g} (relative)",
            box=box.SIMPLE_HEAVY,
        )
        for name, justify in [
            ("layer", "left"),
            ("initial var", "right"),
            ("final var", "right"),
            ("iters", "right"),
            ("scale", "right"),
            ("converged", "center"),
        ]:
            t.add_column(name, justify=justify)
        for layer in self.layers:
            t.add_row(
                layer.path,
                f"{layer.initial_var:.4g}",
                f"{layer.final_var:.4g}",
                str(layer.iterations),
                f"{layer.scale:.4g}",
                "yes" if layer.converged else "[bold red]NO[/]",
            )
        return t

    def __rich__(self):
        return self._table()

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=110, record=True, color_system=None, force_terminal=False)
        with console.capture() as cap:
            console.print(self._table())
        return "\n".join(line.rstrip() for line in cap.get().strip("\n").splitlines())


# ---------------------------------------------------------------------------------------------
# Tree helpers (linen dicts and nnx.State alike)
# ---------------------------------------------------------------------------------------------


def _leaves(tree: Any) -> dict[str, jax.Array]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_variable)
    out = {}
    for kp, leaf in flat:
        value = variable_value(leaf) if is_variable(leaf) else leaf
        if isinstance(value, jax.Array):
            out[path_str(kp)] = value
    return out


def _map_named(tree: Any, fn: Callable[[str, jax.Array], jax.Array]) -> Any:
    """Maps ``fn(path, array)`` over the array leaves, re-boxing ``nnx.Variable`` leaves."""

    def f(kp, leaf):
        if is_variable(leaf):
            value = variable_value(leaf)
            if isinstance(value, jax.Array):
                new = fn(path_str(kp), value)
                return leaf if new is value else leaf.replace(new)
            return leaf
        if isinstance(leaf, jax.Array):
            return fn(path_str(kp), leaf)
        return leaf

    return jax.tree_util.tree_map_with_path(f, tree, is_leaf=is_variable)


def _like(x: jax.Array, old: jax.Array) -> jax.Array:
    """``x`` placed like ``old`` (a jitted result may not keep the input's sharding)."""
    return x if x.sharding == old.sharding else jax.device_put(x, old.sharding)


def _output_var(out: Any) -> jax.Array:
    y = out[0] if isinstance(out, tuple | list) else out
    y = jnp.asarray(y)
    return jnp.var(y.astype(jnp.promote_types(y.dtype, jnp.float32)))


def _path_key(key: jax.Array, path: str) -> jax.Array:
    """A key for ``path`` that does not depend on the other layers (crc32 of the path)."""
    return jax.random.fold_in(key, zlib.crc32(path.encode()) & 0x7FFFFFFF)


# ---------------------------------------------------------------------------------------------
# Forward passes that capture every layer's first output
# ---------------------------------------------------------------------------------------------


def _linen_runner(apply_fn, variables, is_layer, apply_kwargs, calls=None):
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


def _nnx_runner(graphdef, rest, is_layer):
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


def _eqx_layer_types(eqx: Any) -> tuple[type, ...]:
    return (eqx.nn.Linear, eqx.nn.Conv, eqx.nn.ConvTranspose)


def _eqx_runner(static: Any, is_layer: Callable[[Any], bool]):
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


# ---------------------------------------------------------------------------------------------
# The algorithm
# ---------------------------------------------------------------------------------------------


def _abstract(tree: Any) -> Any:
    """Array leaves (tracers included) as ``jax.ShapeDtypeStruct``."""
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if isinstance(x, jax.Array) else x, tree
    )


def _linen_layer_layouts(calls: Mapping[tuple[str, ...], Any]) -> dict[str, Layout]:
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


def _scaled(p: Any, s: jax.Array, index: tuple[tuple[str, int], ...]) -> Any:
    """Multiplies the leaf at each ``path`` of ``index`` by ``s[layer]`` (in its dtype)."""
    idx = dict(index)
    return _map_named(p, lambda path, x: x * s[idx[path]].astype(x.dtype) if path in idx else x)


_scaled_jit = jax.jit(_scaled, static_argnums=2)


def _pre_init_fn(
    p: Any, root: jax.Array, kernels: tuple[tuple[str, Layout], ...], biases: tuple[str, ...]
) -> Any:
    """Kernels orthogonal in their layer's matrix view (key: ``root`` folded with the path's
    hash) and zero biases."""
    views = dict(kernels)

    def pre(path, x):
        if path in views:
            return orthogonal_in_view(_path_key(root, path), views[path], x.dtype)
        if path in biases:
            return jnp.zeros_like(x)
        return x

    return _map_named(p, pre)


# One-off programs (a Haar draw per kernel: XLA's default optimisation spends seconds on the
# normal sampler and QR of each shape) compiled at low optimisation, cached per structure.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


_PRE_INIT_CACHE: dict[Any, Any] = {}


def _pre_init(
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


def _check_batch(batch: Any) -> None:
    """Arrays of numbers, >= 2 examples each, all finite: checked before any forward pass."""
    leaves = [x for x in jax.tree_util.tree_leaves(batch) if hasattr(x, "shape")]
    if not leaves:
        raise TypeError(
            f"`{_API}` needs `batch` to be an array (or a pytree of arrays) of inputs; got "
            f"{type(batch).__name__}. Pass e.g. the first 256 rows of your training data."
        )
    for x in leaves:
        dt = np.dtype(getattr(x, "dtype", np.dtype(object)))
        if not (np.issubdtype(dt, np.number) or dt == np.bool_ or dt.name == "bfloat16"):
            raise TypeError(
                f"`{_API}` needs `batch` to hold numeric arrays (the model's inputs); got an "
                f"array of dtype {dt} and shape {tuple(x.shape)}. Convert it first, e.g. "
                f"`jnp.asarray(batch, jnp.float32)`."
            )
        if len(x.shape) == 0 or x.shape[0] < 2:
            raise ValueError(
                f"`{_API}` needs a batch of at least 2 examples to measure a variance; got an "
                f"input of shape {tuple(x.shape)}. Pass a real batch (LSUV paper: a mini-batch, "
                f"e.g. 128-512 examples)."
            )
        if jnp.issubdtype(dt, jnp.inexact):
            n_bad = int(np.sum(~np.isfinite(np.asarray(x))))  # on the host: no compilation
            if n_bad:
                raise ValueError(
                    f"`{_API}` needs a finite `batch`; got an input of shape {tuple(x.shape)} "
                    f"with {n_bad} inf/NaN entries, which would make every output variance NaN. "
                    f"Clean the data (e.g. `jnp.nan_to_num`) or pass another batch."
                )


def _run_hint(kind: str, e: Exception) -> str:
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


def _view_layout(path: str, shape: tuple[int, ...], known: Mapping[str, Layout]) -> Layout:
    """The layer's own layout of the kernel at ``path`` (bound to ``shape``), else jax's default
    (in -2, out -1: Flax Dense and Conv)."""
    lay = known.get(path)
    if lay is not None and lay.shape == shape:
        return lay
    if lay is not None and lay.shape is None:
        return lay.bind(shape)
    return default_layout(shape) or Layout((), (0,)).bind(shape)


def _normalise(
    params,
    batch,
    run,
    *,
    target_var,
    tol,
    max_iters,
    preinit,
    key,
    bias,
    kind,
    layouts_of,
    weight="kernel",
):
    names: list[tuple[str, ...]] = []

    def probe(p, b):
        order, outs = run(p, b)
        names[:] = order
        return outs

    try:
        jax.eval_shape(probe, params, batch)
    except Exception as e:  # the model does not run on these parameters and this batch
        first = (str(e).strip().splitlines() or [""])[0][:300]
        exc = TypeError if isinstance(e, TypeError) else ValueError
        raise exc(
            f"`{_API}` could not run the {kind} model on `batch` (shape "
            f"{jax.tree_util.tree_map(lambda x: tuple(np.shape(x)), batch)}) with the given "
            f"parameters: {type(e).__name__}: {first} " + _run_hint(kind, e)
        ) from e
    leaves = original = _leaves(params)
    layers = []  # (index in the capture order, kernel path, bias path or None)
    for i, name in enumerate(names):
        kpath = "/".join((*name, weight))
        if kpath not in leaves or not jnp.issubdtype(leaves[kpath].dtype, jnp.floating):
            continue
        bpath = "/".join((*name, "bias"))
        layers.append((i, kpath, bpath if bpath in leaves else None))
    if not layers:
        seen = ", ".join("/".join(n) or "<root>" for n in names) or "none"
        raise ValueError(
            f"`{_API}` found no linear/conv layer to normalise in the {kind} model (layer calls "
            f"seen: {seen}). LSUV needs Dense/DenseGeneral/Conv/ConvTranspose/Einsum (linen) or "
            f"Linear/LinearGeneral/Conv/ConvTranspose/Einsum (nnx) layers with a `kernel`, "
            f"equinox Linear/Conv/ConvTranspose layers with a `weight`, or pass `layers=` (a "
            f"type, tuple of types or predicate) to select your own."
        )

    # The loop triggers no compilation: the forward pass takes the per-layer kernel scales as a
    # traced vector (updated on the host). Pre-init and final scaling are module-level jits,
    # reused by any model with the same parameter structure.
    index = {k: li for li, (_, k, _) in enumerate(layers)}
    if bias == "scale":
        index.update({b: li for li, (_, _, b) in enumerate(layers) if b is not None})
    index_t = tuple(sorted(index.items()))

    @jax.jit
    def variances(p, s, b):
        _, outs = run(_scaled(p, s, index_t), b)
        return jnp.stack([_output_var(outs[i]) for i, _, _ in layers])

    if preinit or bias == "zero":
        known = layouts_of() if preinit else {}
        kernels = (
            tuple((k, _view_layout(k, leaves[k].shape, known)) for _, k, _ in layers)
            if preinit
            else ()
        )
        biases = tuple(b for _, _, b in layers if b is not None) if bias == "zero" else ()
        root = jax.random.key(0) if key is None else key
        params = _pre_init(params, root, kernels, biases)

    scales = np.ones(len(layers))
    rows = []
    for li, (_, kpath, _) in enumerate(layers):

        def measure(li=li, kpath=kpath):
            v = float(np.asarray(variances(params, np.asarray(scales, np.float32), batch))[li])
            if not math.isfinite(v):
                raise ValueError(
                    f"`{_API}`: layer {kpath!r} has a non-finite output variance ({v}) on the "
                    f"batch. Check the input batch and the earlier layers for inf/NaN."
                )
            if v <= 1e-30 * target_var:  # 0 up to rounding: rescaling would overflow
                raise ValueError(
                    f"`{_API}`: layer {kpath!r} is dead: its output variance on the batch is "
                    f"{v:g}, so no rescaling of its kernel can reach {target_var:g}. Its kernel "
                    f"is zero or its input is all zeros (e.g. every unit of an earlier ReLU "
                    f"layer is off); re-initialise it or pass another batch."
                )
            return v

        v = v0 = measure()
        iters = 0
        while abs(v / target_var - 1.0) > tol and iters < max_iters:
            scales[li] *= math.sqrt(target_var / v)
            iters += 1
            v = measure()
        converged = abs(v / target_var - 1.0) <= tol
        rows.append(LSUVLayer(kpath, v0, v, iters, converged, float(scales[li])))

    params = _scaled_jit(params, jnp.asarray(scales, jnp.float32), index_t)
    params = _map_named(params, lambda path, x: _like(x, original[path]))
    report = LSUVReport(tuple(rows), target_var, tol)
    bad = [r.path for r in rows if not r.converged]
    if bad:
        warnings.warn(
            f"`{_API}`: {len(bad)} layer(s) did not reach variance {target_var:g} ± {tol:g} "
            f"(relative) within max_iters={max_iters}: {bad}. With bias='keep' a large bias can "
            f"dominate the output variance; try bias='scale' or 'zero', or more max_iters.",
            RuntimeWarning,
            stacklevel=3,
        )
    return params, report


def lsuv(
    model: Any,
    *args: Any,
    target_var: float = 1.0,
    tol: float = 0.1,
    max_iters: int = 10,
    orthogonal_preinit: bool = True,
    key: jax.Array | None = None,
    bias: str = "keep",
    layers: Any = None,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Any, LSUVReport]:
    r"""Layer-sequential unit-variance initialisation (Mishkin & Matas, 2016).

    Two call forms:

    * linen: ``lsuv(model.apply, {"params": params, ...}, batch)`` returns
      ``(new_variables, report)``; only ``"params"`` changes, other collections are passed to
      ``apply_fn`` as they are.
    * nnx: ``lsuv(model, batch)`` returns ``(new_model, report)``; ``model`` is not modified.
    * equinox: ``lsuv(model, batch)`` returns ``(new_model, report)``; the model is applied as
      ``jax.vmap(model)(batch)`` (equinox layers take single examples), its layers are
      ``equinox.nn.Linear``/``Conv*``/``ConvTranspose*`` and their ``weight`` is torch's
      ``(out, in, *k)``.

    Algorithm: (1) if ``orthogonal_preinit``, every selected layer's kernel is replaced by a Haar
    orthogonal matrix (:func:`jinit.orthogonal`, scale 1) **in the layer's matrix view**: the
    kernel's :class:`jinit.Layout` (read by :func:`jinit.layouts` from the layer: Flax
    ``DenseGeneral``/``LinearGeneral`` and the attention projections ``(d, heads, head_dim)``,
    ``Einsum``, ``Conv``, ``ConvTranspose``...) is viewed as one
    :math:`(\prod \text{receptive} \cdot \prod \text{in}) \times \prod \text{out}` matrix
    per batch index (a conv kernel as :math:`(\prod \text{spatial} \cdot c_\text{in}) \times
    c_\text{out}`, a query kernel as :math:`d \times (\text{heads}\cdot\text{head\_dim})`);
    a layer without a known layout gets jax's default view (input -2, output -1). Keys are
    folded from ``key`` and a hash of the kernel's path; (2) for each layer in forward order, while
    :math:`|v_\ell / v^\star - 1| > \text{tol}` and at most ``max_iters`` times,
    :math:`W_\ell \leftarrow W_\ell\sqrt{v^\star / v_\ell}`, where :math:`v_\ell` is the
    variance of all the elements of layer :math:`\ell`'s output on ``batch``. The tolerance is
    relative: for the paper's :math:`v^\star = 1` it is the paper's absolute ``Tol_var``.

    Biases (``bias=``): ``"keep"`` (default; the paper's algorithm scales weights only, and
    iterates because a bias does not scale), ``"zero"`` (zero the biases of the selected layers
    first: the paper's Caffe setting), or ``"scale"`` (multiply the bias by the same factor, so
    the output scales exactly and one step converges).

    A layer called several times (weight sharing) is normalised on its first call. Layers whose
    parameters have no ``kernel`` leaf (equinox: ``weight``) are skipped.

    Args:
      model: a linen ``apply_fn`` (e.g. ``model.apply``), an ``nnx.Module`` or an equinox
        module.
      *args: ``variables, batch`` for linen; ``batch`` for nnx and equinox. ``batch`` is the
        model's input (an array or pytree of arrays, leading axis >= 2 examples).
      target_var: the target output variance :math:`v^\star` (> 0).
      tol: relative tolerance on the variance (> 0).
      max_iters: maximum rescalings per layer (>= 1).
      orthogonal_preinit: orthogonal pre-initialisation of the kernels (paper step 1).
      key: key for the orthogonal pre-init (``None``: ``jax.random.key(0)``, deterministic).
      bias: ``"keep"``, ``"zero"`` or ``"scale"`` (see above).
      layers: which module calls are layers: ``None`` (Flax ``Dense``, ``DenseGeneral``,
        ``Conv``, ``ConvTranspose``, ``ConvLocal``, ``Einsum``, nnx ``Linear``,
        ``LinearGeneral``..., equinox ``Linear``, ``Conv``, ``ConvTranspose``), a type, a tuple
        of types or a predicate ``module -> bool``.
      apply_kwargs: extra keyword arguments for the linen ``apply_fn`` (e.g.
        ``{"train": False}`` or ``{"mutable": ["batch_stats"]}``).

    Returns:
      ``(new_variables_or_model, report)``; the :class:`LSUVReport` lists, per layer, its
      kernel path, initial and final output variance, iterations, convergence and total scale.

    Raises:
      ValueError: no layer found, a batch of fewer than 2 examples or with inf/NaN entries, a
        model that does not run on the variables and batch, a dead layer (output variance 0:
        no rescaling can help) or a non-finite output variance, naming the layer; bad
        hyper-parameters. All but the last two are raised before any forward pass.
      TypeError: wrong call form, a non-callable model, a malformed key, a non-numeric batch.

    Warns:
      RuntimeWarning: some layer did not converge within ``max_iters``.

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit
      >>> from jinit import lsuv
      >>> model = nn.Sequential([nn.Dense(64), nn.tanh, nn.Dense(64), nn.tanh, nn.Dense(10)])
      >>> x = jax.random.normal(jax.random.key(1), (256, 32))
      >>> variables = model.init(jax.random.key(0), x)
      >>> new_vars, report = lsuv(model.apply, variables, x)
      >>> report.paths
      ['layers_0/kernel', 'layers_2/kernel', 'layers_4/kernel']
      >>> all(abs(r.final_var - 1) <= 0.1 for r in report)
      True

    References:
      Mishkin & Matas, "All you need is a good init", ICLR 2016 (arXiv:1511.06422), Algorithm 1.
      Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
      linear neural networks", ICLR 2014 (the orthogonal pre-initialisation).
    """
    target_var = check_real(_API, "target_var", target_var, positive=True)
    if key is not None:
        key = check_key(_API, key)
    tol = check_real(_API, "tol", tol, positive=True)
    max_iters = check_int(_API, "max_iters", max_iters, minimum=1)
    if not isinstance(orthogonal_preinit, bool | np.bool_):
        raise TypeError(
            f"`{_API}` needs `orthogonal_preinit` to be a bool; got {orthogonal_preinit!r}."
        )
    if not isinstance(bias, str) or bias not in _BIAS_MODES:
        raise ValueError(
            f"`{_API}` needs `bias` to be one of {_BIAS_MODES}; got {bias!r}. Use 'keep' "
            f"(scale kernels only), 'zero' (zero biases first) or 'scale' (scale them too)."
        )
    is_layer = check_layers(_API, layers)
    if apply_kwargs is not None and not isinstance(apply_kwargs, Mapping):
        raise TypeError(f"`{_API}` needs `apply_kwargs` to be a dict; got {apply_kwargs!r}.")
    opts = dict(
        target_var=target_var,
        tol=tol,
        max_iters=max_iters,
        preinit=orthogonal_preinit,
        key=key,
        bias=bias,
    )

    if is_equinox(model):
        eqx = sys.modules["equinox"]  # loaded, since the model is an equinox module

        if len(args) != 1:
            raise TypeError(
                f"`{_API}` with an equinox model is called as `lsuv(model, batch)` (the model "
                f"is mapped over the batch's leading axis); got {len(args)} positional "
                f"argument(s) after the model."
            )
        (batch,) = args
        if apply_kwargs:
            raise TypeError(
                f"`{_API}`: `apply_kwargs` is for linen `apply_fn`s, not equinox models."
            )
        _check_batch(batch)
        if layers is None:
            types = _eqx_layer_types(eqx)
            is_layer = lambda m: isinstance(m, types)  # noqa: E731
        params, static = eqx.partition(model, eqx.is_inexact_array)
        new_params, report = _normalise(
            params,
            batch,
            _eqx_runner(static, is_layer),
            kind="equinox",
            layouts_of=lambda: tree_layouts(model),
            weight="weight",
            **opts,
        )
        return eqx.combine(new_params, static), report

    from flax import nnx

    if isinstance(model, nnx.Module):
        if len(args) != 1:
            raise TypeError(
                f"`{_API}` with an nnx model is called as `lsuv(model, batch)`; got "
                f"{len(args)} positional argument(s) after the model."
            )
        (batch,) = args
        if apply_kwargs:
            raise TypeError(f"`{_API}`: `apply_kwargs` is for linen `apply_fn`s, not nnx models.")
        _check_batch(batch)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        run = _nnx_runner(graphdef, rest, is_layer)
        new_params, report = _normalise(
            params, batch, run, kind="nnx", layouts_of=lambda: tree_layouts(model), **opts
        )
        return nnx.merge(graphdef, new_params, rest), report

    if not callable(model):
        raise TypeError(
            f"`{_API}` needs a linen `apply_fn` (e.g. `model.apply`) or an nnx Module as its "
            f"first argument; got {model!r} of type {type(model).__name__}. Call "
            f"`lsuv(model.apply, variables, batch)` or `lsuv(nnx_model, batch)`."
        )
    if len(args) != 2:
        raise TypeError(
            f"`{_API}` with a linen apply_fn is called as `lsuv(model.apply, variables, batch)`; "
            f"got {len(args)} positional argument(s) after the apply_fn."
        )
    variables, batch = args
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise TypeError(
            f"`{_API}` needs `variables` to be the dict `model.init` returns, with a 'params' "
            f"entry; got {type(variables).__name__}"
            + (f" with keys {list(variables)}" if isinstance(variables, Mapping) else "")
            + ". Pass `{'params': params}`."
        )
    _check_batch(batch)
    calls: dict[tuple[str, ...], Any] = {}
    run = _linen_runner(model, variables, is_layer, dict(apply_kwargs or {}), calls)
    new_params, report = _normalise(
        variables["params"],
        batch,
        run,
        kind="linen",
        layouts_of=lambda: _linen_layer_layouts(calls),
        **opts,
    )
    out = {**variables, "params": new_params}
    if type(variables) is not dict:
        try:
            out = type(variables)(out)
        except TypeError:
            pass
    return out, report
