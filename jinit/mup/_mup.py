r"""µP (maximal-update parametrisation): width-aware initialisation and learning rates.

A learning rate tuned on a narrow model transfers to a wide one when every parameter's
initialisation and learning rate scale with width as in Yang & Hu (2021), *Tensor Programs IV:
Feature Learning in Infinite-Width Neural Networks*, and Yang et al. (2022), *Tensor Programs V:
Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer* (µTransfer, arXiv
2203.03466, Table 3). The model is described by two parameter trees of the same structure: the
model at its real width (``params``) and at a **base** width (``base_params``, e.g. from
``jax.eval_shape``), where µP coincides with the standard parametrisation (SP) the user tuned.

**Width multipliers.** For a leaf with fans :math:`n_{in}, n_{out}` (:func:`jinit.fans` of its
shape, Flax layout by default) and base fans :math:`\bar n_{in}, \bar n_{out}`,
:math:`m_{in} = n_{in}/\bar n_{in}` and :math:`m_{out} = n_{out}/\bar n_{out}`. A dimension is
*infinite* when it differs from the base — or, given a third tree ``delta_params``, when the
delta differs from the base, which keeps the kinds at base width (the ``mup`` package's
``set_base_shapes(model, base, delta=...)`` rule). This classifies each leaf:

======  ===================  =====================  ==================  =================
kind    infinite dims        init variance          Adam lr multiplier  SGD lr multiplier
======  ===================  =====================  ==================  =================
input   fan_out only         SP(base)               1                   m_out
hidden  fan_in and fan_out   SP(base) / m_in        1 / m_in            m_out / m_in
output  fan_in only          0 or SP(base) / m_in²  1 / m_in            1 / m_in
vector  its one axis (bias)  SP(base)               1                   m (its axis)
finite  none                 SP(base)               1                   1
======  ===================  =====================  ==================  =================

"SP(base)" is the variance the user's SP initialiser gives at the *base* shape, so at base width
(all multipliers 1) µP is exactly SP. With a fan-in initialiser (``lecun_normal``, ``he_normal``)
the hidden variance :math:`\sigma^2/n_{in}` is already SP's and only the readout changes; a
constant-std initialiser (``normal(0.02)``) gets its std divided by :math:`\sqrt{m_{in}}` on
hidden weights, as ``mup.init.normal_`` does. The columns are Table 3 of Tensor Programs V with
every ``fan_in`` replaced by its ratio to the base (so the readout's
:math:`1/\mathrm{fan\_in}^2` variance becomes :math:`\mathrm{SP}/m_{in}^2`); the SGD column for
unequal :math:`m_{in} \ne m_{out}` and for vectors follows ``mup.optim.MuSGD``
(``fanin_fanout_mult_ratio``). The readout has no forward multiplier: Table 3 is equivalent to
the paper's formulations with an output multiplier, such as ``MuReadout``'s
``output_mult / width_mult`` (readout init and Adam lr scaled by the multiplier instead).

:func:`rules` returns the initialisation as jinit rules (``(glob pattern, initialiser)`` over
``'/'``-joined paths) and :func:`init` applies them directly; :func:`lr_multipliers`,
:func:`scale_by_mup`, :func:`adam` and :func:`sgd` give the optax side; :func:`coord_check`
and :func:`plot_coord_check` run the coordinate check of the paper (activation scale after a few
steps against width, flat under µP, growing under SP).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jinit._core._checks import check_choice, check_int, check_key, check_real
from jinit._core._fans import fans as _fans
from jinit._core._paths import is_array, is_variable, path_str, variable_value
from jinit._core._seeds import root_key, seed_keys
from jinit.initializers._base import Initializer
from jinit.initializers._basic import ones, zeros
from jinit.initializers._variance_scaling import he_normal, lecun_normal
from jinit.laws import _laws as laws
from jinit.trees._reinit import CheckedRule, LeafInfo, draw_dtype, is_float_dtype, path_key
from jinit.trees._reinit import draw_leaf as _draw_leaf

__all__ = [
    "CoordCheckResult",
    "DEFAULT_SP_RULES",
    "KINDS",
    "MupScaled",
    "WidthInfo",
    "adam",
    "coord_check",
    "init",
    "lr_multipliers",
    "scaled",
    "plot_coord_check",
    "rules",
    "scale_by_mup",
    "sgd",
    "width_info",
]

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


def _shape_of(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def _base_shapes(api: str, base_params: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of the base tree; arrays or ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape``)."""

    def is_leaf(x):
        return is_variable(x) or isinstance(x, jax.ShapeDtypeStruct)

    out = {}
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(base_params, is_leaf=is_leaf)[0]:
        value = variable_value(leaf) if is_variable(leaf) else leaf
        if is_array(value) or isinstance(value, jax.ShapeDtypeStruct):
            out[path_str(keypath)] = _shape_of(value)
    return out


def _leaves(api: str, params: Any) -> list[tuple[str, tuple[int, ...], Any]]:
    out = []

    def is_leaf(x):
        return is_variable(x) or isinstance(x, jax.ShapeDtypeStruct)

    for keypath, leaf in jax.tree_util.tree_flatten_with_path(params, is_leaf=is_leaf)[0]:
        value = variable_value(leaf) if is_variable(leaf) else leaf
        if is_array(value) or isinstance(value, jax.ShapeDtypeStruct):
            out.append((path_str(keypath), _shape_of(value), value.dtype))
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
    leaves = _leaves(api, params)
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


# ---------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class MupScaled(Initializer):
    """``factor * init(key, shape, dtype)``; see :func:`scaled`."""

    init: Initializer
    factor: float

    api: ClassVar[str] = "mup.scaled"
    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True

    def _sample(self, key, shape, dtype):
        return (self.init(key, shape, dtype) * jnp.asarray(self.factor, dtype)).astype(dtype)

    def _law(self, shape, dtype):
        inner = laws.law(self.init, shape, dtype)
        try:
            return inner.scaled(self.factor)
        except NotImplementedError:
            raise NotImplementedError(
                f"`jinit.mup.scaled` has no closed-form law for a scaled {type(inner).__name__}."
            ) from None


def scaled(init: Initializer, factor: float) -> MupScaled:
    r"""Builds the initialiser :math:`c\,W`, :math:`W \sim` ``init``: µP's width rescaling.

    Args:
      init: a jinit initialiser.
      factor: the multiplier :math:`c` (standard deviation ratio), finite.

    Returns:
      An initialiser whose law is ``init``'s scaled by ``factor``.

    Examples:
      >>> import jinit
      >>> from jinit import mup
      >>> lw = jinit.law(mup.scaled(jinit.normal(0.02), 0.5), (4, 4))
      >>> round(lw.std, 6)
      0.01
    """
    if not isinstance(init, Initializer):
        raise TypeError(
            f"`jinit.mup.scaled` needs `init` to be a jinit initialiser; got {init!r}. Use the "
            f"jinit equivalent of a `jax.nn.initializers` function."
        )
    return MupScaled(init, check_real("jinit.mup.scaled", "factor", factor))


def _check_sp_rules(api: str, sp_rules: Any) -> tuple[tuple[str, Initializer], ...]:
    hint = (
        "Pass a sequence of (glob pattern, jinit initialiser) pairs such as "
        "`[('*bias', jinit.zeros), ('*', jinit.he_normal())]`."
    )
    if isinstance(sp_rules, str | Mapping) or not isinstance(sp_rules, Sequence):
        raise TypeError(
            f"`{api}` needs `sp_rules` to be a sequence of pairs; got {sp_rules!r}. {hint}"
        )
    out = []
    for r in sp_rules:
        if not (isinstance(r, tuple | list) and len(r) == 2 and isinstance(r[0], str)):
            raise TypeError(f"`{api}` got the rule {r!r} in `sp_rules`. {hint}")
        if not isinstance(r[1], Initializer):
            raise TypeError(
                f"`{api}` needs jinit initialisers in `sp_rules` (their exact laws give the µP "
                f"rescaling); got {r[1]!r} for pattern {r[0]!r}. {hint}"
            )
        out.append((r[0], r[1]))
    return tuple(out)


def _sp_init(api: str, path: str, sp_rules) -> Initializer:
    for pattern, ini in sp_rules:
        if fnmatch.fnmatchcase(path, pattern):
            return ini
    raise ValueError(
        f"`{api}`: no rule of `sp_rules` matches parameter {path!r} (patterns: "
        f"{[p for p, _ in sp_rules]}). Add a catch-all rule such as `('*', jinit.lecun_normal())`."
    )


def _variance(api: str, ini: Initializer, shape, dtype, path: str) -> float:
    try:
        with jax.ensure_compile_time_eval():  # `init` may run under jit/vmap
            return float(laws.law(ini, shape, dtype).variance)
    except NotImplementedError as e:
        raise ValueError(
            f"`{api}`: {ini!r} (for {path!r}) has no closed-form variance, which µP needs to "
            f"rescale it with width. Use a variance-scaling or normal/uniform initialiser there."
        ) from e


def _mup_factor(api: str, info: WidthInfo, sp: Initializer, dtype, readout: str) -> float:
    """The std multiplier turning the SP initialiser into the µP one (0 for a zero readout)."""
    if info.kind == "output" and readout == "zero":
        return 0.0
    v, vb = (_variance(api, sp, s, dtype, info.path) for s in (info.shape, info.base_shape))
    if v == 0.0:
        return 1.0  # deterministic initialisers (zeros, ones, identity) do not scale with width
    c = math.sqrt(vb / v / info.fan_in_mult**info.init_exponent)
    return 1.0 if abs(c - 1.0) < 1e-12 else c


def _mup_initializer(
    api: str, info: WidthInfo, sp: Initializer, dtype, readout: str
) -> Initializer:
    c = _mup_factor(api, info, sp, dtype, readout)
    return zeros if c == 0.0 else sp if c == 1.0 else scaled(sp, c)


def _glob_escape(path: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in path)


def rules(
    params: Any,
    base_params: Any,
    *,
    sp_rules: Sequence[tuple[str, Initializer]] = DEFAULT_SP_RULES,
    readout: str = "zero",
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
) -> list[tuple[str, Initializer]]:
    r"""µP initialisation of a parameter tree, as jinit rules (one per parameter).

    ``sp_rules`` is the standard parametrisation one would use at base width; each parameter's
    µP initialiser is its SP initialiser rescaled (module table) so that its variance is
    :math:`\mathrm{Var}_{SP}(\text{base shape}) \cdot m_{in}^{-p}` with :math:`p = 1` for hidden
    weights, :math:`p = 0` for input weights and vectors, and for the readout either zeros
    (``readout="zero"``, the zero output-layer initialisation Tensor Programs V recommends, and
    ``MuReadout(readout_zero_init=True)``) or :math:`p = 2` (``readout="scaled"``, Table 3's
    :math:`1/\mathrm{fan\_in}^2`).
    Deterministic initialisers (zeros, ones, identity) are kept as they are.

    Args:
      params: the tree at target width (arrays or ``jax.ShapeDtypeStruct``).
      base_params: the tree at base width.
      sp_rules: ``(glob pattern, initialiser)`` pairs, first match wins (see
        :data:`DEFAULT_SP_RULES`).
      readout: ``"zero"`` or ``"scaled"``.
      delta_params, in_axis, out_axis, axes: as in :func:`width_info`.

    Returns:
      ``[(pattern, initialiser), ...]`` with one exact (glob-escaped) path per parameter, in tree
      order, ready for ``jinit.reinit(params, key, rules)``; leaves that are not floating point
      (step counters, RNG keys) get ``None``, which keeps them as they are.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jinit
      >>> from jinit import mup
      >>> def mlp(n):
      ...     return {"h": {"kernel": jnp.zeros((n, n))}, "out": {"kernel": jnp.zeros((n, 10))}}
      >>> r = mup.rules(mlp(256), mlp(64), sp_rules=[("*", jinit.normal(0.02))])
      >>> r[0]
      ('h/kernel', jinit.mup.scaled(init=jinit.normal(stddev=0.02), factor=0.5))
      >>> r[1]
      ('out/kernel', jinit.zeros)
    """
    api = "jinit.mup.rules"
    check_choice(api, "readout", readout, ("zero", "scaled"))
    sp_rules = _check_sp_rules(api, sp_rules)
    info = width_info(
        params,
        base_params,
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    dtypes = {p: d for p, _, d in _leaves(api, params)}
    out: list[tuple[str, Initializer | None]] = []
    for p, i in info.items():
        if not is_float_dtype(dtypes[p]):  # counters, RNG keys: not weights, kept
            out.append((_glob_escape(p), None))
            continue
        sp = _sp_init(api, p, sp_rules)
        ini = _mup_initializer(api, i, sp, draw_dtype(dtypes[p]), readout)
        out.append((_glob_escape(p), ini))
    return out


def _leaf_key(key: jax.Array, path: str) -> jax.Array:
    """The per-leaf key of :func:`jinit.reinit` (a stable hash of the path folded into ``key``)."""
    return path_key(key, path)


def _map_named(fn: Callable[[str, Any], Any], tree: Any) -> Any:
    """Maps ``fn(path, array)`` over array leaves, keeping ``nnx.Variable`` boxes."""

    def f(keypath, leaf):
        if is_variable(leaf):
            value = variable_value(leaf)
            return leaf.replace(fn(path_str(keypath), value)) if is_array(value) else leaf
        if is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct):
            return fn(path_str(keypath), leaf)
        return leaf

    return jax.tree_util.tree_map_with_path(f, tree, is_leaf=is_variable)


def init(
    params: Any,
    base_params: Any,
    key: jax.Array,
    *,
    sp_rules: Sequence[tuple[str, Initializer]] = DEFAULT_SP_RULES,
    readout: str = "zero",
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
) -> Any:
    r"""Re-initialises ``params`` under µP (the initialisers of :func:`rules`).

    Every leaf gets the key ``jinit.path_key(key, path)``, so a leaf's value depends only on
    ``key`` and its path, and ``init`` equals ``jinit.reinit(params, key, rules(...))``; dtypes
    (exactly, as :func:`jinit.reinit` keeps them), non-float leaves and ``nnx.Variable`` boxes
    are kept. ``params`` may hold
    ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape`` output): the model is then never built
    at full width with its default initialisers.

    Args:
      params: the tree at target width.
      base_params: the tree at base width.
      key: a PRNG key.
      sp_rules, readout, delta_params, in_axis, out_axis, axes: as in :func:`rules`.

    Returns:
      A tree like ``params`` with µP values.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jinit import mup
      >>> def mlp(n):
      ...     return {"h": {"kernel": jnp.zeros((n, n))}, "out": {"kernel": jnp.zeros((n, 10))}}
      >>> p = mup.init(mlp(1024), mlp(64), jax.random.key(0))
      >>> round(float(p["h"]["kernel"].std() * 32), 2), float(abs(p["out"]["kernel"]).max())
      (1.0, 0.0)
    """
    key = check_key("jinit.mup.init", key)
    r = rules(
        params,
        base_params,
        sp_rules=sp_rules,
        readout=readout,
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    leaves = _leaves("jinit.mup.init", params)
    by_path = {
        p: (i, pattern, ini)
        for i, ((pattern, ini), (p, _, _)) in enumerate(zip(r, leaves, strict=True))
    }
    narrowed = []

    def draw(p: str, x: Any) -> Any:
        i, pattern, ini = by_path[p]
        if ini is None:
            return x
        info = LeafInfo(p, _shape_of(x), draw_dtype(x.dtype), x, {})
        if info.dtype != np.dtype(x.dtype):
            narrowed.append(f"{p} ({np.dtype(x.dtype).name})")
        rule = CheckedRule(i, pattern, ini, lambda _: True)
        return _draw_leaf("jinit.mup.init", rule, _leaf_key(key, p), info)

    out = _map_named(draw, params)
    if narrowed:
        warnings.warn(
            f"`jinit.mup.init`: {', '.join(narrowed[:5])} have a 64-bit dtype while "
            f"jax_enable_x64 is off: drawn in 32 bits and stored in their own 64-bit dtype. Run "
            f'`jax.config.update("jax_enable_x64", True)` for 64-bit draws.',
            UserWarning,
            stacklevel=2,
        )
    return out


# ---------------------------------------------------------------------------------------------
# Optimiser
# ---------------------------------------------------------------------------------------------


def lr_multipliers(
    params: Any,
    base_params: Any,
    optimizer: str = "adam",
    *,
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
) -> dict[str, float]:
    r"""Per-parameter learning-rate multipliers of µP (module table), by path.

    Adam (scale-invariant updates): hidden and readout weights :math:`1/m_{in}`, everything else
    1 (``mup.optim.MuAdam`` + ``MuReadout``; Tensor Programs V Table 3). SGD: input weights and
    vectors :math:`m_{out}`, hidden :math:`m_{out}/m_{in}`, readout :math:`1/m_{in}`
    (``mup.optim.MuSGD``; Table 3).

    Args:
      params: the tree at target width.
      base_params: the tree at base width.
      optimizer: ``"adam"`` (also right for AdamW, Adafactor-like, Lion, sign-based updates) or
        ``"sgd"`` (also momentum SGD).
      delta_params, in_axis, out_axis, axes: as in :func:`width_info`.

    Returns:
      ``{path: multiplier}``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit import mup
      >>> def mlp(n):
      ...     return {"in": jnp.zeros((8, n)), "h": jnp.zeros((n, n)), "out": jnp.zeros((n, 10))}
      >>> mup.lr_multipliers(mlp(256), mlp(64), "adam")
      {'h': 0.25, 'in': 1.0, 'out': 0.25}
      >>> mup.lr_multipliers(mlp(256), mlp(64), "sgd")
      {'h': 1.0, 'in': 4.0, 'out': 0.25}
    """
    check_choice("jinit.mup.lr_multipliers", "optimizer", optimizer, ("adam", "sgd"))
    info = width_info(
        params,
        base_params,
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    return {p: i.lr_multiplier(optimizer) for p, i in info.items()}


def _check_mult(api: str, path: str, value: Any) -> Any:
    """A positive real multiplier, or a traced scalar (multipliers passed through ``jit``)."""
    if isinstance(value, jax.core.Tracer) and jnp.ndim(value) == 0:
        return value
    return check_real(api, f"multipliers[{path!r}]", value, positive=True)


def scale_by_mup(multipliers: Mapping[str, float]) -> optax.GradientTransformation:
    r"""Multiplies each update by its parameter's µP learning-rate multiplier.

    Chain it after the optimiser: ``optax.chain(optax.adam(lr), scale_by_mup(m))`` gives every
    parameter the learning rate ``lr * m[path]``. With ``optax.adamw`` the decoupled weight decay
    is scaled too (``mup``'s ``MuAdamW(decoupled_wd=True)`` behaviour).

    Args:
      multipliers: ``{path: multiplier}``, e.g. from :func:`lr_multipliers`; the paths must be
        those of the updates (= of the parameters).

    Returns:
      A stateless ``optax.GradientTransformation``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit import mup
      >>> tx = mup.scale_by_mup({"a": 0.5, "b": 1.0})
      >>> u, _ = tx.update({"a": jnp.ones(2), "b": jnp.ones(2)}, tx.init(None))
      >>> u["a"].tolist(), u["b"].tolist()
      ([0.5, 0.5], [1.0, 1.0])
    """
    api = "jinit.mup.scale_by_mup"
    if not isinstance(multipliers, Mapping):
        raise TypeError(
            f"`{api}` needs `multipliers` to be a mapping path -> float; got "
            f"{type(multipliers).__name__}. Use `jinit.mup.lr_multipliers(params, base_params)`."
        )
    bad_keys = [p for p in multipliers if not isinstance(p, str)]
    if bad_keys:
        raise TypeError(
            f"`{api}` needs `multipliers` keyed by '/'-joined parameter paths (str); got the keys "
            f"{bad_keys[:5]}. Use `jinit.mup.lr_multipliers(params, base_params)`."
        )
    mults = {p: _check_mult(api, p, v) for p, v in multipliers.items()}

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params

        def scale(path, u):
            if path not in mults:
                raise ValueError(
                    f"`{api}` has no multiplier for parameter {path!r} (it knows "
                    f"{list(mults)[:5]}...). Compute the multipliers from the same parameter tree."
                )
            return u * jnp.asarray(mults[path], u.dtype)

        return _map_named(scale, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def _check_lr(api: str, learning_rate: Any) -> Any:
    """A finite learning rate > 0, or an optax schedule (a callable ``step -> lr``)."""
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, jax.core.Tracer) and jnp.ndim(learning_rate) == 0:
        return learning_rate
    return check_real(api, "learning_rate", learning_rate, positive=True)


# Hyper-parameters of optax.adam / optax.sgd: (low, high, high included); None: any finite value.
_OPT_RANGES: dict[str, tuple[float, float, bool]] = {
    "b1": (0.0, 1.0, False),
    "b2": (0.0, 1.0, False),
    "eps": (0.0, math.inf, True),
    "eps_root": (0.0, math.inf, True),
    "momentum": (0.0, math.inf, True),
}


def _check_opt_kwargs(api: str, make: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Unknown keyword arguments and out-of-range Adam/SGD hyper-parameters, before any work."""
    import inspect

    known = [n for n in inspect.signature(make).parameters if n != "learning_rate"]
    for name, value in kwargs.items():
        if name not in known:
            raise TypeError(
                f"`{api}` got the unexpected keyword argument {name!r}, which "
                f"`optax.{make.__name__}` does not take; it takes {known}."
            )
        if name not in _OPT_RANGES or (name == "momentum" and value is None):
            continue
        if isinstance(value, jax.core.Tracer):
            continue
        lo, hi, hi_ok = _OPT_RANGES[name]
        x = check_real(api, name, value, nonneg=True)
        if not (lo <= x < hi or (hi_ok and x == hi)):
            raise ValueError(
                f"`{api}` needs `{name}` in [{lo:g}, {hi:g}); got {x!r}. Adam's decay rates are "
                f"in [0, 1), e.g. b1=0.9, b2=0.999."
            )


def adam(
    learning_rate: float | optax.Schedule,
    params: Any,
    base_params: Any,
    *,
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
    **adam_kwargs: Any,
) -> optax.GradientTransformation:
    """µP Adam: ``optax.adam(learning_rate, **adam_kwargs)`` then :func:`scale_by_mup`.

    ``learning_rate`` is the one tuned at base width; hidden and readout weights get
    ``learning_rate / m_in`` (Tensor Programs V Table 3, ``mup.MuAdam``).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jinit import mup
      >>> p = {"h": jnp.ones((128, 128)), "b": jnp.ones(128)}
      >>> tx = mup.adam(1e-2, p, {"h": jnp.ones((32, 32)), "b": jnp.ones(32)})
      >>> u, _ = tx.update(p, tx.init(p), p)
      >>> float(u["h"][0, 0]), float(u["b"][0])
      (-0.0025, -0.01)
    """
    api = "jinit.mup.adam"
    learning_rate = _check_lr(api, learning_rate)
    _check_opt_kwargs(api, optax.adam, adam_kwargs)
    tx = optax.adam(learning_rate, **adam_kwargs)
    m = lr_multipliers(
        params,
        base_params,
        "adam",
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    return optax.chain(tx, scale_by_mup(m))


def sgd(
    learning_rate: float | optax.Schedule,
    params: Any,
    base_params: Any,
    *,
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
    **sgd_kwargs: Any,
) -> optax.GradientTransformation:
    """µP SGD: ``optax.sgd(learning_rate, **sgd_kwargs)`` then :func:`scale_by_mup`.

    Multipliers: input weights and vectors ``m_out``, hidden ``m_out / m_in``, readout
    ``1 / m_in`` (Tensor Programs V Table 3, ``mup.MuSGD``).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jinit import mup
      >>> p = {"out": jnp.ones((128, 10)), "b": jnp.ones(128)}
      >>> tx = mup.sgd(0.1, p, {"out": jnp.ones((32, 10)), "b": jnp.ones(32)})
      >>> u, _ = tx.update(p, tx.init(p), p)
      >>> float(u["out"][0, 0]), float(u["b"][0])
      (-0.025, -0.4)
    """
    api = "jinit.mup.sgd"
    learning_rate = _check_lr(api, learning_rate)
    _check_opt_kwargs(api, optax.sgd, sgd_kwargs)
    tx = optax.sgd(learning_rate, **sgd_kwargs)
    m = lr_multipliers(
        params,
        base_params,
        "sgd",
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    return optax.chain(tx, scale_by_mup(m))


# ---------------------------------------------------------------------------------------------
# Coordinate check
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class CoordCheckResult:
    """Activation scale per parametrisation, step, width, seed and layer.

    Attributes:
      widths: the hidden widths, increasing.
      layers: layer names (``Dense_0`` input … ``Dense_{depth}`` readout).
      parametrizations: ``("µP", "SP")``.
      steps: number of optimiser steps; records are taken before step 0 and after each step.
      values: ``{parametrisation: array (steps + 1, n_widths, seeds, n_layers)}`` of the mean
        absolute pre-activation (``Dense`` output) over the batch and units.
      config: the settings of the run.
    """

    widths: tuple[int, ...]
    layers: tuple[str, ...]
    parametrizations: tuple[str, ...]
    steps: int
    values: dict[str, np.ndarray]
    config: dict[str, Any]

    def scale(self, parametrization: str, layer: str | int = -1) -> np.ndarray:
        """Seed-mean activation scale, array ``(steps + 1, n_widths)`` for one layer."""
        li = self.layers.index(layer) if isinstance(layer, str) else layer
        return self.values[parametrization][..., li].mean(axis=2)

    def slope(self, parametrization: str, layer: str | int = -1, step: int = -1) -> float:
        r"""Least-squares slope of :math:`\log_2` scale against :math:`\log_2` width.

        0 means width-independent; 1 means the scale doubles when the width doubles.
        """
        y = np.log2(self.scale(parametrization, layer)[step])
        x = np.log2(np.asarray(self.widths, float))
        return float(np.polyfit(x, y, 1)[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: seed-mean scales and the slopes of every layer after each step."""
        out: dict[str, Any] = {
            "widths": list(self.widths),
            "layers": list(self.layers),
            "steps": self.steps,
            "config": self.config,
        }
        for p in self.parametrizations:
            out[p] = {
                layer: {
                    "scale": self.scale(p, layer).tolist(),
                    "slope_per_step": [
                        self.slope(p, layer, t) if np.all(self.scale(p, layer)[t] > 0) else None
                        for t in range(self.steps + 1)
                    ],
                }
                for layer in self.layers
            }
        return out


def _mlp_shapes(d_in: int, width: int, depth: int, n_out: int) -> dict[str, dict[str, Any]]:
    dims = [d_in] + [width] * depth + [n_out]
    return {
        f"Dense_{i}": {
            "kernel": jax.ShapeDtypeStruct((a, b), jnp.float32),
            "bias": jax.ShapeDtypeStruct((b,), jnp.float32),
        }
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True))
    }


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p, v in flat.items():
        layer, name = p.split("/")
        out.setdefault(layer, {})[name] = v
    return out


def _mlp_forward(params, x, depth: int, n_units):
    """ReLU MLP; returns the logits and the mean |pre-activation| of every Dense layer.

    Hidden layers may be zero-padded beyond their first ``n_units`` units: padded units have
    zero weights in and out, so they stay exactly 0 (also under training, their gradients are
    0) and the statistic averages over the real units only.
    """
    stats = []
    h = x
    for i in range(depth + 1):
        layer = params[f"Dense_{i}"]
        z = h @ layer["kernel"] + layer["bias"]
        if i < depth:
            real = jnp.arange(z.shape[-1]) < n_units
            stats.append(jnp.sum(jnp.abs(z) * real) / (z.shape[0] * n_units))
        else:
            stats.append(jnp.mean(jnp.abs(z)))
        h = jax.nn.relu(z)
    return z, jnp.stack(stats)


def _train_records(params, mults, n_units, x, y, *, depth, lr, steps, optimizer):
    """Records of every layer before step 0 and after each of ``steps`` optimiser steps."""

    def loss_fn(p):
        logits, stats = _mlp_forward(p, x, depth, n_units)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, stats

    base = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr)
    tx = optax.chain(base, scale_by_mup(mults))

    def step(carry, _):
        p, s = carry
        (_, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), stats

    (p, _), recs = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    _, last = _mlp_forward(p, x, depth, n_units)
    return jnp.concatenate([recs, last[None]], axis=0)


def _coord_run(draws, factors, mults, n_units, x, y, *, depth, lr, steps, optimizer):
    """Records ``(parametrisation, seed, step, layer)``: SP draws × per-leaf µP/SP factor."""

    def one(fac, mult):
        params = _map_named(lambda p, d: d * fac[p].astype(d.dtype), draws)
        train = functools.partial(
            _train_records, depth=depth, lr=lr, steps=steps, optimizer=optimizer
        )
        return jax.vmap(train, in_axes=(0, None, None, None, None))(params, mult, n_units, x, y)

    return jax.vmap(one)(factors, mults)


def _check_coord_data(api: str, data: Any, n_out: int) -> tuple[jax.Array, jax.Array]:
    """``data=(x, y)``: finite features (batch, d_in), integer labels in [0, n_out)."""
    hint = (
        "Pass `data=(x, y)` with x a float array of shape (batch, features) and y integer "
        "labels of shape (batch,) in [0, n_out)."
    )
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise TypeError(f"`{api}` got `data={data!r}`, which is not a pair (x, y). {hint}")
    raw_x, raw_y = data
    for name, v in (("x", raw_x), ("y", raw_y)):
        dt = getattr(v, "dtype", None)
        if dt is None or not (np.issubdtype(np.dtype(dt), np.number) or np.dtype(dt) == bool):
            raise TypeError(
                f"`{api}` needs `data` = (x, y) of numeric arrays; its {name} is {v!r:.80} of "
                f"type {type(v).__name__}. {hint}"
            )
    x = jnp.asarray(raw_x, jnp.float32)
    if x.ndim != 2 or np.shape(raw_y) != x.shape[:1] or x.shape[0] < 1:
        raise ValueError(
            f"`{api}` needs `data=(x, y)` with x of shape (batch, features) and y of shape "
            f"(batch,); got {x.shape} and {np.shape(raw_y)}. {hint}"
        )
    if not jnp.issubdtype(raw_y.dtype, jnp.integer):
        raise TypeError(
            f"`{api}` needs integer class labels in `data=(x, y)`; y has dtype {raw_y.dtype}. "
            f"{hint}"
        )
    y = jnp.asarray(raw_y, jnp.int32)
    if not bool(jnp.isfinite(x).all()):
        raise ValueError(f"`{api}` needs finite features in `data=(x, y)`; x has inf/NaN entries.")
    lo, hi = int(jnp.min(y)), int(jnp.max(y))
    if lo < 0 or hi >= n_out:
        raise ValueError(
            f"`{api}` needs labels in [0, n_out) = [0, {n_out}); `data`'s y has labels from {lo} "
            f"to {hi}. Pass `n_out` = the number of classes ({hi + 1} at least)."
        )
    return x, y


@functools.partial(jax.jit, static_argnums=(0, 1))
def _draw(ini: Initializer, shape: tuple[int, ...], keys: jax.Array) -> jax.Array:
    return jax.vmap(lambda k: ini(k, shape, jnp.float32))(keys)


def coord_check(
    widths: Sequence[int] = (64, 128, 256, 512, 1024),
    *,
    base_width: int | None = None,
    depth: int = 3,
    steps: int = 4,
    seeds: int = 3,
    learning_rate: float = 1e-2,
    optimizer: str = "adam",
    readout: str = "zero",
    batch: int = 64,
    d_in: int = 32,
    n_out: int = 10,
    sp_rules: Sequence[tuple[str, Initializer]] = (("*bias", zeros), ("*", he_normal())),
    data: tuple[Any, Any] | None = None,
    seed: int = 0,
) -> CoordCheckResult:
    r"""Coordinate check (Tensor Programs V; ``mup.coord_check``): µP against SP.

    Trains a ReLU MLP (``d_in`` → ``depth`` hidden layers of each width → ``n_out`` logits,
    softmax cross-entropy) for ``steps`` full-batch steps on one fixed batch, for every width,
    under µP (:func:`init` + :func:`scale_by_mup`, base ``base_width``) and under SP (the same
    ``sp_rules`` at every width, the same ``learning_rate`` everywhere), ``seeds`` initialisations
    in one ``vmap``. It records the mean :math:`|z|` of every layer's pre-activation :math:`z`
    before the first step and after each step. Under µP these stay :math:`\Theta(1)` as the
    width grows; under SP with Adam the updates :math:`\Delta W x` add up coherently over
    :math:`n` inputs and grow :math:`\propto n`, and so do the logits.

    Args:
      widths: hidden widths, increasing, at least 2.
      base_width: the width where µP equals SP (default ``widths[0]``).
      depth: number of hidden layers.
      steps: optimiser steps.
      seeds: initialisations per width.
      learning_rate: base learning rate (both parametrisations).
      optimizer: ``"adam"`` or ``"sgd"``.
      readout: µP readout, ``"zero"`` or ``"scaled"``.
      batch: batch size of the random batch (ignored with ``data``), >= 1.
      d_in: input features of the random batch (ignored with ``data``), >= 1.
      n_out: classes, >= 2.
      sp_rules: the SP initialisation (first match wins).
      data: optional ``(x, y)``: features ``(batch, d_in)`` and integer labels in ``[0, n_out)``.
      seed: seed of the batch and the initialisations (int >= 0).

    Returns:
      A :class:`CoordCheckResult`; :func:`plot_coord_check` draws it.

    Raises:
      TypeError, ValueError: any bad argument (checked before anything is compiled or
        trained): widths not increasing ints, non-positive counts or learning rate, fewer
        than 2 classes, ``data`` that is not a pair of finite features and integer labels in
        ``[0, n_out)``.

    Examples:
      >>> from jinit import mup
      >>> r = mup.coord_check((32, 64, 128), depth=2, steps=2, seeds=1, batch=16,
      ...                     learning_rate=0.03)
      >>> # slope of log2 |logits| against log2 width after 2 steps: ~1 under SP, ~0 under µP
      >>> bool(r.slope("SP") > 0.5 and abs(r.slope("µP")) < 0.15)
      True
    """
    api = "jinit.mup.coord_check"
    if isinstance(widths, str) or not isinstance(widths, Sequence):
        raise TypeError(
            f"`{api}` needs `widths` to be a sequence of ints; got {widths!r} of type "
            f"{type(widths).__name__}. Pass e.g. `widths=(64, 128, 256)`."
        )
    if len(widths) < 2:
        raise ValueError(
            f"`{api}` needs at least two `widths` (a slope against width); got {widths!r}. "
            f"Pass e.g. `widths=(64, 128, 256)`."
        )
    widths = tuple(check_int(api, "widths[i]", w, minimum=1) for w in widths)
    if list(widths) != sorted(set(widths)):
        raise ValueError(f"`{api}` needs strictly increasing `widths`; got {widths}.")
    base_width = (
        widths[0] if base_width is None else check_int(api, "base_width", base_width, minimum=1)
    )
    depth = check_int(api, "depth", depth, minimum=1)
    steps = check_int(api, "steps", steps, minimum=1)
    seeds = check_int(api, "seeds", seeds, minimum=1)
    lr = check_real(api, "learning_rate", learning_rate, positive=True)
    check_choice(api, "optimizer", optimizer, ("adam", "sgd"))
    check_choice(api, "readout", readout, ("zero", "scaled"))
    sp_rules = _check_sp_rules(api, sp_rules)
    batch = check_int(api, "batch", batch, minimum=1)
    d_in = check_int(api, "d_in", d_in, minimum=1)
    n_out = check_int(api, "n_out", n_out, minimum=2)
    seed = check_int(api, "seed", seed, minimum=0)
    if data is not None:
        x, y = _check_coord_data(api, data, n_out)
        d_in = int(x.shape[1])
    # the seeds engine's key policy: threefry keys; seed s initialises from fold_in(root, s),
    # the batch (shared by every seed) from fold_in(root, 2**32 - 1)
    root = root_key(api, seed, None)
    kx, ky = jax.random.split(jax.random.fold_in(root, 2**32 - 1))
    if data is None:
        x = jax.random.normal(kx, (batch, d_in), jnp.float32)
        y = jax.random.randint(ky, (batch,), 0, n_out)
    keys = jnp.stack(seed_keys(root, range(seeds)))

    @functools.cache
    def leaf_keys(path: str) -> jax.Array:  # computed outside jit: threefry compiles slowly
        return jax.vmap(_leaf_key, in_axes=(0, None))(keys, path)

    def padded_shape(path: str) -> tuple[int, ...]:
        layer, name = path.split("/")
        return padded[layer][name].shape

    base = _mlp_shapes(d_in, base_width, depth, n_out)
    delta = _mlp_shapes(d_in, 2 * base_width, depth, n_out)  # marks the width axes
    padded = _mlp_shapes(d_in, widths[-1], depth, n_out)
    # One compiled program for every width: each width's SP draws (at their true shapes) are
    # zero-padded to the largest width, which leaves the narrow network's training exact.
    # µP = SP draw × per-leaf factor (what `init` samples); both are vmapped in one call.
    run = jax.jit(
        functools.partial(_coord_run, depth=depth, lr=lr, steps=steps, optimizer=optimizer)
    )
    out: list[np.ndarray] = []
    for w in widths:
        info = width_info(_mlp_shapes(d_in, w, depth, n_out), base, delta_params=delta)
        sp = {p: _sp_init(api, p, sp_rules) for p in info}
        draws = {}
        for p, i in info.items():
            d = _draw(sp[p], i.shape, leaf_keys(p))
            pad = [(0, 0)] + [(0, m - n) for n, m in zip(i.shape, padded_shape(p), strict=True)]
            draws[p] = jnp.pad(d, pad)
        factors = {
            p: jnp.asarray([_mup_factor(api, i, sp[p], jnp.float32, readout), 1.0], jnp.float32)
            for p, i in info.items()
        }
        mults = {
            p: jnp.asarray([i.lr_multiplier(optimizer), 1.0], jnp.float32) for p, i in info.items()
        }
        rec = run(_nest(draws), factors, mults, jnp.float32(w), x, y)  # (2, seeds, t, layers)
        out.append(np.asarray(jnp.swapaxes(rec, 1, 2)))
    names = ("µP", "SP")
    values = {n: np.stack([o[k] for o in out], axis=1) for k, n in enumerate(names)}
    config = dict(
        base_width=base_width,
        depth=depth,
        steps=steps,
        seeds=seeds,
        learning_rate=lr,
        optimizer=optimizer,
        readout=readout,
        batch=int(x.shape[0]),
        d_in=d_in,
        n_out=n_out,
        data="given" if data is not None else "random normal",
        seed=seed,
    )
    return CoordCheckResult(
        widths=widths,
        layers=tuple(f"Dense_{i}" for i in range(depth + 1)),
        parametrizations=names,
        steps=steps,
        values=values,
        config=config,
    )


def plot_coord_check(result: CoordCheckResult, path: str | os.PathLike | None = None):
    """Draws a coordinate check: one row per parametrisation, one panel per layer.

    x: width (log2 axis); y: seed-mean absolute pre-activation (log axis, shared); one line per step
    (t = 0 is the initialisation). Flat lines mean the layer's scale does not depend on width.

    Args:
      result: a :class:`CoordCheckResult`.
      path: optional file to write (PNG, rendered with Agg; no global backend change).

    Returns:
      The ``matplotlib.figure.Figure``.

    Examples:
      >>> from jinit import mup
      >>> r = mup.coord_check((16, 32), depth=1, steps=1, seeds=1, batch=8)
      >>> len(mup.plot_coord_check(r).axes)
      4
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    api = "jinit.mup.plot_coord_check"
    if not isinstance(result, CoordCheckResult):
        raise TypeError(
            f"`{api}` needs a CoordCheckResult from `coord_check`; got {result!r:.80} of type "
            f"{type(result).__name__}."
        )
    if path is not None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"`{api}` needs `path` to be a file name (str or path) or None; got {path!r} of "
                f"type {type(path).__name__}."
            )
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if os.path.isdir(os.fspath(path)) or not os.path.isdir(folder):
            raise ValueError(
                f"`{api}` cannot write `path={os.fspath(path)!r}`: "
                + ("it is a folder" if os.path.isdir(os.fspath(path)) else "no folder " + folder)
                + ". Pass a file name such as 'coord_check.png' in an existing folder."
            )
    n_l, n_p = len(result.layers), len(result.parametrizations)
    fig = Figure(figsize=(2.8 * n_l + 0.6, 2.6 * n_p + 0.8), layout="constrained")
    axs = fig.subplots(n_p, n_l, sharex=True, sharey=True, squeeze=False)
    cmap = colormaps["viridis"]
    w = np.asarray(result.widths)
    for r, p in enumerate(result.parametrizations):
        for c, layer in enumerate(result.layers):
            ax = axs[r][c]
            s = result.scale(p, layer)
            for t in range(result.steps + 1):
                pos = s[t] > 0
                ax.plot(
                    w[pos],
                    s[t][pos],
                    "o-",
                    ms=3,
                    lw=1.5,
                    color=cmap(t / max(result.steps, 1)),
                    label=f"t={t}",
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            kind = "readout" if c == n_l - 1 else ("input" if c == 0 else "hidden")
            sl = result.slope(p, layer) if np.all(s[-1] > 0) else float("nan")
            ax.set_title(
                f"{p} · {layer} ({kind})\nslope at t={result.steps}: {sl:+.2f}", fontsize=9
            )
            if r == n_p - 1:
                ax.set_xlabel("width")
            if c == 0:
                ax.set_ylabel("mean |pre-activation|")
            ax.grid(True, which="both", alpha=0.3)
    axs[0][-1].legend(fontsize=7, title="step", title_fontsize=7)
    c = result.config
    fig.suptitle(
        f"µP coordinate check: {c['depth']}-hidden-layer ReLU MLP, {c['optimizer']} lr "
        f"{c['learning_rate']:g} at every width, {c['seeds']} seeds, base width {c['base_width']}, "
        f"readout {c['readout']}"
    )
    if path is not None:
        fig.savefig(os.fspath(path), dpi=110)
    return fig
