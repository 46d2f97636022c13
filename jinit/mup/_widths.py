"""Width multipliers: the fans of each leaf at its real and base widths, and the µP kind (input,
hidden, output, vector) they classify it as (:class:`WidthInfo`, :func:`width_info`)."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from jinit._core._checks import check_choice
from jinit._core._fans import fans as _fans
from jinit._core._paths import is_array, is_variable, path_str, variable_value
from jinit.initializers._base import Initializer
from jinit.initializers._basic import ones, zeros
from jinit.initializers._variance_scaling import lecun_normal

KINDS = ("input", "hidden", "output", "vector", "finite")

#: Standard-parametrisation rules used when none are given: Flax's defaults (biases 0, norm
#: scales 1, embeddings N(0, 1), every other weight LeCun normal, variance 1/fan_in).
DEFAULT_SP_RULES: tuple[tuple[str, Initializer], ...] = (
    ("*bias", zeros),
    ("*scale", ones),
    ("*embedding", lecun_normal(out_axis=0)),
    ("*", lecun_normal()),
)

# ---------------------------------------------------------------------------------------------
# Width multipliers and classification
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WidthInfo:
    """How one parameter scales with width (see the module table).

    Attributes:
      path: the '/'-joined parameter path.
      shape: its shape at the model's width.
      base_shape: its shape at the base width.
      kind: ``"input"``, ``"hidden"``, ``"output"``, ``"vector"`` or ``"finite"``.
      fan_in, fan_out: fans at the model's width (a vector's one axis counts as fan_out).
      base_fan_in, base_fan_out: the same at base width.
    """

    path: str
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    kind: str
    fan_in: float
    fan_out: float
    base_fan_in: float
    base_fan_out: float

    @property
    def fan_in_mult(self) -> float:
        """:math:`m_{in} = n_{in} / \\bar n_{in}`."""
        return self.fan_in / self.base_fan_in

    @property
    def fan_out_mult(self) -> float:
        """:math:`m_{out} = n_{out} / \\bar n_{out}`."""
        return self.fan_out / self.base_fan_out

    @property
    def init_exponent(self) -> int:
        """p in init variance = SP(base) / m_in^p: 1 hidden, 2 output, 0 otherwise."""
        return {"hidden": 1, "output": 2}.get(self.kind, 0)

    def lr_multiplier(self, optimizer: str = "adam") -> float:
        """The learning-rate multiplier of the module table for ``"adam"`` or ``"sgd"``."""
        check_choice("WidthInfo.lr_multiplier", "optimizer", optimizer, ("adam", "sgd"))
        mi, mo = self.fan_in_mult, self.fan_out_mult
        if optimizer == "adam":
            return 1.0 / mi if self.kind in ("hidden", "output") else 1.0
        return {
            "input": mo,
            "hidden": mo / mi,
            "output": 1.0 / mi,
            "vector": mo,
            "finite": 1.0,
        }[self.kind]


def _check_axes_overrides(api: str, axes: Any) -> None:
    hint = "Write e.g. `axes=[('*/weight', (-1, -2))]` for torch-layout (out, in) weights."
    if isinstance(axes, str | Mapping) or not isinstance(axes, Sequence):
        raise TypeError(
            f"`{api}` needs `axes` to be a sequence of (glob pattern, (in_axis, out_axis)) pairs; "
            f"got {axes!r} of type {type(axes).__name__}. {hint}"
        )
    for entry in axes:
        ok = isinstance(entry, tuple | list) and len(entry) == 2
        if not (ok and isinstance(entry[0], str) and isinstance(entry[1], tuple)):
            raise TypeError(
                f"`{api}` needs `axes` to be a sequence of (glob pattern, (in_axis, out_axis)) "
                f"pairs; got the entry {entry!r}. {hint}"
            )
        if len(entry[1]) != 2:
            raise TypeError(
                f"`{api}` needs each `axes` entry to give (in_axis, out_axis); got {entry!r}. "
                f"{hint}"
            )


#: Flax's attention kernels (linen ``MultiHeadDotProductAttention``, nnx ``MultiHeadAttention``:
#: ``DenseGeneral`` query/key/value ``(features, heads, head_dim)`` and out ``(heads, head_dim,
#: features)``): their fan axes when the default ``in_axis=-2, out_axis=-1`` are in force.
_FLAX_ATTENTION_AXES: tuple[tuple[tuple[str, ...], tuple[Any, Any]], ...] = (
    (("query/kernel", "key/kernel", "value/kernel"), (0, (1, 2))),
    (("out/kernel",), ((0, 1), 2)),
)


def _leaf_axes(
    api: str,
    path: str,
    in_axis: Any,
    out_axis: Any,
    axes: Sequence[tuple[str, tuple[Any, Any]]],
    shape: tuple[int, ...] = (),
) -> tuple[Any, Any]:
    for pattern, ax in axes:
        if fnmatch.fnmatchcase(path, pattern):
            return ax
    if len(shape) == 3 and (in_axis, out_axis) == (-2, -1):
        for suffixes, ax in _FLAX_ATTENTION_AXES:
            if any(path == s or path.endswith("/" + s) for s in suffixes):
                return ax
    return in_axis, out_axis


def _check_rank(api: str, path: str, shape, other, name: str) -> None:
    if len(shape) != len(other):
        raise ValueError(
            f"`{api}`: parameter {path!r} has shape {shape} but shape {other} in `{name}`; the "
            f"base (and delta) model must have the same parameters with the same ranks, only "
            f"narrower or wider along the width axes."
        )
    if any(d == 0 for d in shape + other):
        raise ValueError(
            f"`{api}`: parameter {path!r} has a zero-size dimension (shape {shape}, {name} "
            f"{other}); its width multipliers are undefined."
        )


def _info(
    api: str,
    path: str,
    shape: tuple[int, ...],
    base: tuple[int, ...],
    delta: tuple[int, ...] | None,
    in_axis,
    out_axis,
) -> WidthInfo:
    _check_rank(api, path, shape, base, "base_params")
    ref = shape if delta is None else delta
    if delta is not None:
        _check_rank(api, path, shape, delta, "delta_params")
        grown = [i for i in range(len(shape)) if shape[i] != base[i] and delta[i] == base[i]]
        if grown:
            raise ValueError(
                f"`{api}`: parameter {path!r} (shape {shape}, base {base}) differs from the base "
                f"along axes {grown}, where `delta_params` (shape {delta}) says its size is "
                f"fixed. Build `delta_params` from the model at a width different from the base."
            )
    if len(shape) == 0:
        return WidthInfo(path, shape, base, "finite", 1.0, 1.0, 1.0, 1.0)
    if len(shape) == 1:
        n, b = float(shape[0]), float(base[0])
        kind = "vector" if ref[0] != base[0] else "finite"
        return WidthInfo(path, shape, base, kind, 1.0, n, 1.0, b)
    f = _fans(shape, in_axis, out_axis, api=api)
    fb = _fans(base, in_axis, out_axis, api=api)
    fr = _fans(ref, in_axis, out_axis, api=api)
    nd = len(shape)
    named = set()
    for ax in (in_axis, out_axis):
        named.update(a % nd for a in ((ax,) if isinstance(ax, int) else ax))
    other = [i for i in range(nd) if i not in named and ref[i] != base[i]]
    if other:
        raise ValueError(
            f"`{api}`: parameter {path!r} (shape {ref}, base {base}) changes size along axes "
            f"{other}, which are neither `in_axis`={in_axis} nor `out_axis`={out_axis}. µP "
            f"needs the width to change only along the fan axes; pass the right axes for this "
            f"parameter with `axes=[({path!r}, (in_axis, out_axis))]`."
        )
    inf_in = fr.fan_in != fb.fan_in
    inf_out = fr.fan_out != fb.fan_out
    kind = (
        "hidden" if inf_in and inf_out else "output" if inf_in else "input" if inf_out else "finite"
    )
    return WidthInfo(path, shape, base, kind, f.fan_in, f.fan_out, fb.fan_in, fb.fan_out)


def shape_of(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def _base_shapes(api: str, base_params: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of the base tree; arrays or ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape``)."""

    def is_leaf(x):
        return is_variable(x) or isinstance(x, jax.ShapeDtypeStruct)

    out = {}
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(base_params, is_leaf=is_leaf)[0]:
        value = variable_value(leaf) if is_variable(leaf) else leaf
        if is_array(value) or isinstance(value, jax.ShapeDtypeStruct):
            out[path_str(keypath)] = shape_of(value)
    return out


def shaped_leaves(api: str, params: Any) -> list[tuple[str, tuple[int, ...], Any]]:
    out = []

    def is_leaf(x):
        return is_variable(x) or isinstance(x, jax.ShapeDtypeStruct)

    for keypath, leaf in jax.tree_util.tree_flatten_with_path(params, is_leaf=is_leaf)[0]:
        value = variable_value(leaf) if is_variable(leaf) else leaf
        if is_array(value) or isinstance(value, jax.ShapeDtypeStruct):
            out.append((path_str(keypath), shape_of(value), value.dtype))
    if not out:
        raise ValueError(
            f"`{api}` found no array in `params` (got {type(params).__name__}); pass a parameter "
            f"tree such as `variables['params']`, an `nnx.State` or an equinox module."
        )
    return out


def width_info(
    params: Any,
    base_params: Any,
    *,
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
) -> dict[str, WidthInfo]:
    r"""Width multipliers and µP kind of every parameter, by path.

    Each leaf's fans come from :func:`jinit.fans` with ``in_axis``/``out_axis`` (Flax layouts:
    Dense ``(in, out)``, Conv ``(*spatial, in, out)``, Embed ``(vocab, features)`` — so an
    embedding table is an *input* weight); rank-1 leaves (biases, norm scales) are vectors whose
    single axis is the fan-out. A fan is infinite when it differs from the base.

    Args:
      params: the parameter tree at the target width (arrays or ``jax.ShapeDtypeStruct``).
      base_params: the same tree at base width (``jax.eval_shape`` of the base model suffices).
      delta_params: optional tree at a third width, which decides the infinite dimensions
        (those differing between it and the base), as ``mup.set_base_shapes(model, base,
        delta=...)``. Without it the infinite dimensions are those where ``params`` differs from
        the base, so at base width every parameter is "finite" (SP); pass it to keep the µP
        kinds (a zero readout, say) at base width too.
      in_axis: default input axis or axes of weights.
      out_axis: default output axis or axes.
      axes: ``(glob pattern, (in_axis, out_axis))`` overrides, first match wins; e.g.
        ``[("*/weight", (-1, -2))]`` for torch/equinox ``(out, in)`` weights. Without an
        override (and with the default ``in_axis``/``out_axis``), Flax's rank-3 attention kernels
        (paths ending in ``query/kernel``, ``key/kernel``, ``value/kernel``: ``(features, heads,
        head_dim)``, fans ``(0, (1, 2))``; ``out/kernel``: ``(heads, head_dim, features)``,
        fans ``((0, 1), 2)``) get their ``DenseGeneral`` fan axes, so widening the model width
        and the number of heads makes them hidden weights.

    Returns:
      ``{path: WidthInfo}`` in tree order.

    Raises:
      ValueError: the trees hold different paths or ranks, or a leaf changes size along an axis
        that is neither fan axis.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit import mup
      >>> def mlp(n):
      ...     return {"in": {"kernel": jnp.zeros((8, n))}, "h": {"kernel": jnp.zeros((n, n))},
      ...             "out": {"kernel": jnp.zeros((n, 10)), "bias": jnp.zeros(10)}}
      >>> info = mup.width_info(mlp(256), mlp(64))
      >>> [(p, i.kind, i.fan_in_mult) for p, i in info.items()]
      [('h/kernel', 'hidden', 4.0), ('in/kernel', 'input', 1.0), ('out/bias', 'finite', 1.0), ('out/kernel', 'output', 4.0)]
    """  # noqa: E501
    api = "jinit.mup.width_info"
    _check_axes_overrides(api, axes)
    leaves = shaped_leaves(api, params)
    paths = [p for p, _, _ in leaves]
    trees = {"base_params": base_params, "delta_params": delta_params}
    shapes = {k: _base_shapes(api, t) for k, t in trees.items() if t is not None}
    for name, other in shapes.items():
        missing = [p for p in paths if p not in other]
        extra = sorted(set(other) - set(paths))
        if missing or extra:
            raise ValueError(
                f"`{api}` needs `params` and `{name}` to hold the same parameters; only in "
                f"params: {missing[:5]}, only in {name}: {extra[:5]}. Build `{name}` from the "
                f"same model at another width (e.g. `jax.eval_shape(model.init, ...)`)."
            )
    delta = shapes.get("delta_params")
    return {
        p: _info(
            api,
            p,
            s,
            shapes["base_params"][p],
            None if delta is None else delta[p],
            *_leaf_axes(api, p, in_axis, out_axis, axes, tuple(s)),
        )
        for p, s, _ in leaves
    }
