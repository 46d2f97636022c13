"""Layer-sequential unit-variance (LSUV) initialisation of a Flax model (linen or nnx).

LSUV (Mishkin & Matas, 2016) is data-dependent: after an orthogonal pre-initialisation of every
linear/conv kernel, it walks the layers in forward order and rescales each kernel until the
layer's output variance on a real batch is the target,

.. math::
    W_\\ell \\leftarrow W_\\ell \\sqrt{v^\\star / \\operatorname{Var}(y_\\ell)},
    \\qquad y_\\ell = \text{output of layer } \\ell \text{ on the batch},

repeating while :math:`|\\operatorname{Var}(y_\\ell)/v^\\star - 1| > \text{tol}` (at most
``max_iters`` times per layer). Since layer :math:`\\ell`'s output only depends on layers
:math:`\\le \\ell`, which are already fixed, one pass in forward order suffices.

The variance is the one of the whole output blob (all elements of the output over the batch,
spatial positions and channels, about their common mean), as in the paper's Caffe code.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import check_int, check_key, check_real
from jinit._core._flax import check_layers
from jinit._core._layouts import is_equinox, tree_layouts
from jinit._core._paths import map_named
from jinit.trees._lsuv_capture import (
    array_leaves,
    cast_like,
    eqx_layer_types,
    eqx_runner,
    linen_runner,
    nnx_runner,
    output_var,
)
from jinit.trees._lsuv_pre import (
    check_batch,
    linen_layer_layouts,
    pre_init,
    run_hint,
    scale_layers,
    scaled_jit,
    view_layout,
)
from jinit.trees._lsuv_types import BIAS_MODES, LSUV_API, LSUVLayer, LSUVReport

# ---------------------------------------------------------------------------------------------
# The normalisation loop
# ---------------------------------------------------------------------------------------------


def _probe_names(params, batch, run, kind: str) -> list[tuple[str, ...]]:
    """The module names the model calls, in order, from a shape-only run (or a clear error)."""
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
            f"`{LSUV_API}` could not run the {kind} model on `batch` (shape "
            f"{jax.tree_util.tree_map(lambda x: tuple(np.shape(x)), batch)}) with the given "
            f"parameters: {type(e).__name__}: {first} " + run_hint(kind, e)
        ) from e
    return names


def _find_layers(
    leaves: Mapping[str, Any], names: list[tuple[str, ...]], kind: str, weight: str
) -> list[tuple[int, str, str | None]]:
    """The layers to normalise: (index in the capture order, kernel path, bias path or None)."""
    layers = []
    for i, name in enumerate(names):
        kpath = "/".join((*name, weight))
        if kpath not in leaves or not jnp.issubdtype(leaves[kpath].dtype, jnp.floating):
            continue
        bpath = "/".join((*name, "bias"))
        layers.append((i, kpath, bpath if bpath in leaves else None))
    if not layers:
        seen = ", ".join("/".join(n) or "<root>" for n in names) or "none"
        raise ValueError(
            f"`{LSUV_API}` found no linear/conv layer to normalise in the {kind} model (layer "
            f"calls seen: {seen}). LSUV needs Dense/DenseGeneral/Conv/ConvTranspose/Einsum (linen) "
            "or Linear/LinearGeneral/Conv/ConvTranspose/Einsum (nnx) layers with a `kernel`, "
            "equinox Linear/Conv/ConvTranspose layers with a `weight`, or pass `layers=` (a type, "
            "tuple of types or predicate) to select your own."
        )
    return layers


def _pre_initialise(
    params, leaves: Mapping[str, Any], layers: list, *, preinit: bool, bias: str, key, layouts_of
):
    """Paper step 1 and ``bias="zero"``: orthogonal kernels and zero biases (or ``params``)."""
    if preinit or bias == "zero":
        known = layouts_of() if preinit else {}
        kernels = (
            tuple((k, view_layout(k, leaves[k].shape, known)) for _, k, _ in layers)
            if preinit
            else ()
        )
        biases = tuple(b for _, _, b in layers if b is not None) if bias == "zero" else ()
        root = jax.random.key(0) if key is None else key
        params = pre_init(params, root, kernels, biases)
    return params


def _measure(
    variances, params, scales: np.ndarray, batch, li: int, kpath: str, target_var: float
) -> float:
    """Layer ``li``'s output variance at the current ``scales``; raises if non-finite or dead."""
    v = float(np.asarray(variances(params, np.asarray(scales, np.float32), batch))[li])
    if not math.isfinite(v):
        raise ValueError(
            f"`{LSUV_API}`: layer {kpath!r} has a non-finite output variance ({v}) on the "
            f"batch. Check the input batch and the earlier layers for inf/NaN."
        )
    if v <= 1e-30 * target_var:  # 0 up to rounding: rescaling would overflow
        raise ValueError(
            f"`{LSUV_API}`: layer {kpath!r} is dead: its output variance on the batch is "
            f"{v:g}, so no rescaling of its kernel can reach {target_var:g}. Its kernel "
            f"is zero or its input is all zeros (e.g. every unit of an earlier ReLU "
            f"layer is off); re-initialise it or pass another batch."
        )
    return v


def _rescale_layers(
    variances, params, batch, layers: list, *, target_var: float, tol: float, max_iters: int
) -> tuple[np.ndarray, list[LSUVLayer]]:
    """Paper step 2: each layer's kernel scale, in forward order, and its report row."""
    scales = np.ones(len(layers))
    rows = []
    for li, (_, kpath, _) in enumerate(layers):
        v = v0 = _measure(variances, params, scales, batch, li, kpath, target_var)
        iters = 0
        while abs(v / target_var - 1.0) > tol and iters < max_iters:
            scales[li] *= math.sqrt(target_var / v)
            iters += 1
            v = _measure(variances, params, scales, batch, li, kpath, target_var)
        converged = abs(v / target_var - 1.0) <= tol
        rows.append(LSUVLayer(kpath, v0, v, iters, converged, float(scales[li])))
    return scales, rows


def _warn_unconverged(rows: list[LSUVLayer], target_var: float, tol: float, max_iters: int) -> None:
    """Warns (at the caller of :func:`lsuv`) about the layers that did not converge."""
    bad = [r.path for r in rows if not r.converged]
    if bad:
        warnings.warn(
            f"`{LSUV_API}`: {len(bad)} layer(s) did not reach variance {target_var:g} ± {tol:g} "
            f"(relative) within max_iters={max_iters}: {bad}. With bias='keep' a large bias can "
            f"dominate the output variance; try bias='scale' or 'zero', or more max_iters.",
            RuntimeWarning,
            stacklevel=5,  # _warn_unconverged, _normalise, _lsuv_<kind>, lsuv, its caller
        )


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
    names = _probe_names(params, batch, run, kind)
    leaves = original = array_leaves(params)
    layers = _find_layers(leaves, names, kind, weight)

    # The loop triggers no compilation: the forward pass takes the per-layer kernel scales as a
    # traced vector (updated on the host). Pre-init and final scaling are module-level jits,
    # reused by any model with the same parameter structure.
    index = {k: li for li, (_, k, _) in enumerate(layers)}
    if bias == "scale":
        index.update({b: li for li, (_, _, b) in enumerate(layers) if b is not None})
    index_t = tuple(sorted(index.items()))

    @jax.jit
    def variances(p, s, b):
        _, outs = run(scale_layers(p, s, index_t), b)
        return jnp.stack([output_var(outs[i]) for i, _, _ in layers])

    params = _pre_initialise(
        params, leaves, layers, preinit=preinit, bias=bias, key=key, layouts_of=layouts_of
    )
    scales, rows = _rescale_layers(
        variances, params, batch, layers, target_var=target_var, tol=tol, max_iters=max_iters
    )
    params = scaled_jit(params, jnp.asarray(scales, jnp.float32), index_t)
    params = map_named(lambda path, x: cast_like(x, original[path]), params)
    report = LSUVReport(tuple(rows), target_var, tol)
    _warn_unconverged(rows, target_var, tol, max_iters)
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
    opts, is_layer = _check_options(
        target_var, tol, max_iters, orthogonal_preinit, key, bias, layers, apply_kwargs
    )
    if is_equinox(model):
        return _lsuv_equinox(model, args, layers, is_layer, apply_kwargs, opts)

    from flax import nnx

    if isinstance(model, nnx.Module):
        return _lsuv_nnx(model, args, is_layer, apply_kwargs, opts)
    return _lsuv_linen(model, args, is_layer, apply_kwargs, opts)


def _check_options(
    target_var: Any,
    tol: Any,
    max_iters: Any,
    orthogonal_preinit: Any,
    key: Any,
    bias: Any,
    layers: Any,
    apply_kwargs: Any,
) -> tuple[dict[str, Any], Any]:
    """Validates :func:`lsuv`'s options: the ``_normalise`` keywords and the layer predicate."""
    target_var = check_real(LSUV_API, "target_var", target_var, positive=True)
    if key is not None:
        key = check_key(LSUV_API, key)
    tol = check_real(LSUV_API, "tol", tol, positive=True)
    max_iters = check_int(LSUV_API, "max_iters", max_iters, minimum=1)
    if not isinstance(orthogonal_preinit, bool | np.bool_):
        raise TypeError(
            f"`{LSUV_API}` needs `orthogonal_preinit` to be a bool; got {orthogonal_preinit!r}."
        )
    if not isinstance(bias, str) or bias not in BIAS_MODES:
        raise ValueError(
            f"`{LSUV_API}` needs `bias` to be one of {BIAS_MODES}; got {bias!r}. Use 'keep' "
            f"(scale kernels only), 'zero' (zero biases first) or 'scale' (scale them too)."
        )
    is_layer = check_layers(LSUV_API, layers)
    if apply_kwargs is not None and not isinstance(apply_kwargs, Mapping):
        raise TypeError(f"`{LSUV_API}` needs `apply_kwargs` to be a dict; got {apply_kwargs!r}.")
    opts = dict(
        target_var=target_var,
        tol=tol,
        max_iters=max_iters,
        preinit=orthogonal_preinit,
        key=key,
        bias=bias,
    )
    return opts, is_layer


def _lsuv_equinox(
    model: Any,
    args: tuple,
    layers: Any,
    is_layer: Any,
    apply_kwargs: Any,
    opts: dict[str, Any],
) -> tuple[Any, LSUVReport]:
    """:func:`lsuv` for an equinox module: ``lsuv(model, batch)``."""
    eqx = sys.modules["equinox"]  # loaded, since the model is an equinox module

    if len(args) != 1:
        raise TypeError(
            f"`{LSUV_API}` with an equinox model is called as `lsuv(model, batch)` (the model "
            f"is mapped over the batch's leading axis); got {len(args)} positional "
            f"argument(s) after the model."
        )
    (batch,) = args
    if apply_kwargs:
        raise TypeError(
            f"`{LSUV_API}`: `apply_kwargs` is for linen `apply_fn`s, not equinox models."
        )
    check_batch(batch)
    if layers is None:
        types = eqx_layer_types(eqx)
        is_layer = lambda m: isinstance(m, types)  # noqa: E731
    params, static = eqx.partition(model, eqx.is_inexact_array)
    new_params, report = _normalise(
        params,
        batch,
        eqx_runner(static, is_layer),
        kind="equinox",
        layouts_of=lambda: tree_layouts(model),
        weight="weight",
        **opts,
    )
    return eqx.combine(new_params, static), report


def _lsuv_nnx(
    model: Any, args: tuple, is_layer: Any, apply_kwargs: Any, opts: dict[str, Any]
) -> tuple[Any, LSUVReport]:
    """:func:`lsuv` for an ``nnx.Module``: ``lsuv(model, batch)``."""
    from flax import nnx

    if len(args) != 1:
        raise TypeError(
            f"`{LSUV_API}` with an nnx model is called as `lsuv(model, batch)`; got "
            f"{len(args)} positional argument(s) after the model."
        )
    (batch,) = args
    if apply_kwargs:
        raise TypeError(f"`{LSUV_API}`: `apply_kwargs` is for linen `apply_fn`s, not nnx models.")
    check_batch(batch)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    run = nnx_runner(graphdef, rest, is_layer)
    new_params, report = _normalise(
        params, batch, run, kind="nnx", layouts_of=lambda: tree_layouts(model), **opts
    )
    return nnx.merge(graphdef, new_params, rest), report


def _lsuv_linen(
    model: Any, args: tuple, is_layer: Any, apply_kwargs: Any, opts: dict[str, Any]
) -> tuple[Any, LSUVReport]:
    """:func:`lsuv` for a linen ``apply_fn``: ``lsuv(model.apply, variables, batch)``."""
    if not callable(model):
        raise TypeError(
            f"`{LSUV_API}` needs a linen `apply_fn` (e.g. `model.apply`) or an nnx Module as its "
            f"first argument; got {model!r} of type {type(model).__name__}. Call "
            f"`lsuv(model.apply, variables, batch)` or `lsuv(nnx_model, batch)`."
        )
    if len(args) != 2:
        raise TypeError(
            f"`{LSUV_API}` with a linen apply_fn is called as `lsuv(model.apply, variables, "
            f"batch)`; got {len(args)} positional argument(s) after the apply_fn."
        )
    variables, batch = args
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise TypeError(
            f"`{LSUV_API}` needs `variables` to be the dict `model.init` returns, with a 'params' "
            f"entry; got {type(variables).__name__}"
            + (f" with keys {list(variables)}" if isinstance(variables, Mapping) else "")
            + ". Pass `{'params': params}`."
        )
    check_batch(batch)
    calls: dict[tuple[str, ...], Any] = {}
    run = linen_runner(model, variables, is_layer, dict(apply_kwargs or {}), calls)
    new_params, report = _normalise(
        variables["params"],
        batch,
        run,
        kind="linen",
        layouts_of=lambda: linen_layer_layouts(calls),
        **opts,
    )
    out = {**variables, "params": new_params}
    if type(variables) is not dict:
        try:
            out = type(variables)(out)
        except TypeError:
            pass
    return out, report
