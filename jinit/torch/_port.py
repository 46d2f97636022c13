r"""Initialise a Flax or equinox parameter tree the way PyTorch initialises the equivalent modules.

:func:`init_like_torch` is :func:`jinit.reinit` with a fixed rule set that recognises each leaf's
module from its layer (:func:`jinit.layouts`: which axes of a kernel are input, output and
receptive field), its name (``kernel``, ``bias``, ``embedding``, ``scale``, ``weight``, ...), its
rank and its siblings, and draws torch's default (``reset_parameters``) law:

* a Linear-like kernel (Flax ``Dense``/``DenseGeneral``/``Einsum``, the q/k/v/out projections of
  attention, nnx ``Linear``/``LinearGeneral``, equinox ``Linear``): ``nn.Linear`` weight,
  :math:`U(\pm 1/\sqrt{f})` with :math:`f` the **contracted** size (the layer's input axes),
  e.g. :math:`f = d_{model}` for a query kernel ``(d_model, heads, head_dim)``;
* a Conv kernel (Flax ``(*k, in/groups, out)``, equinox ``(out, in/groups, *k)``):
  ``nn.Conv{1,2,3}d`` weight, :math:`U(\pm 1/\sqrt{f})`, :math:`f = (in/groups)\prod k`;
* a ConvTranspose kernel: torch's transposed-conv fan, :math:`f = (out/groups)\prod k`;
* ``bias`` next to such a kernel: that module's bias, :math:`U(\pm 1/\sqrt{f})` with the
  *kernel's* :math:`f`;
* ``embedding`` (Flax ``Embed``) or an equinox ``Embedding`` weight: :math:`\mathcal N(0, 1)`;
* ``scale`` (Flax norms) or an equinox ``LayerNorm``/``GroupNorm``/``RMSNorm``/``BatchNorm``
  ``weight``: ones; the bias of a norm: zeros;
* ``mean`` / ``var``: BatchNorm running statistics, zeros / ones (``reset_running_stats``);
* ``negative_slope``: ``nn.PReLU`` weight, 0.25.

The weight law is ``kaiming_uniform_(w, a=sqrt(5))`` (He et al., 2015, with torch's
:math:`a=\sqrt 5` gain :math:`1/\sqrt 3`), whose bound is :math:`1/\sqrt{\mathrm{fan\_in}}`.

**Layouts.** Equinox stores torch's own layout ``(out, in, *k)``, so its weights get torch's law
*without* transposition (``jinit.torch.*(layout="torch")``). Flax kernels are read with the
layout of their layer: known for an ``nnx.Module`` and for an equinox module, and for a linen
``params`` dict when ``layouts=jinit.layouts(model, x)`` is passed. Without a known layer a
kernel of rank 2 is a Linear ``(in, out)`` and one of rank 3-5 is a Conv kernel — but only if its
module path says ``conv``: otherwise (e.g. a linen attention kernel ``(d, heads, head_dim)``) the
rank cannot tell, and ``init_like_torch`` raises rather than guess.

**Attention.** Each projection of Flax's ``MultiHeadDotProductAttention``/``MultiHeadAttention``
and of equinox's ``MultiheadAttention`` is a Linear-like layer of its own, so it gets torch's
``nn.Linear`` default (with the contracted fan-in). That is what a torch model written with
``nn.Linear`` projections (most transformer code) has. torch's fused ``nn.MultiheadAttention``
instead draws ``xavier_uniform_`` on its packed ``(3E, E)`` in-projection and zeroes the
in/out-projection biases; to port such a model, give the projections rules, e.g.
``rules=[("*/attn/*/kernel", jinit.torch.xavier_uniform(layout=...)), ("*/attn/*/bias",
jinit.zeros)]``.

**ConvTranspose without a known layer cannot be told from Conv by the tree alone** (both are
``(*k, a, b)`` kernels with a bias). torch stores a transposed conv weight as ``(in,
out/groups, *k)`` and computes its "fan_in" from dimension 1, i.e. :math:`(out/groups)\prod k`;
on the Flax ``ConvTranspose`` kernel ``(*k, in, out)`` that is the *fan_out*. Pass the layouts,
or name such modules in ``module_types`` (e.g. ``{"*/ConvTranspose_0": "conv_transpose"}``), or
they get the Conv law (wrong by :math:`\sqrt{in/out}` in scale). A Flax
``ConvTranspose(transpose_kernel=True)`` kernel is ``(*k, out, in)``, whose Conv fan_in is
already torch's: leave it as ``"conv"``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jinit._core._checks import PRNGKey, check_key
from jinit._core._fans import fans
from jinit._core._layout import Layout, is_ambiguous
from jinit._core._paths import is_nnx_module as _is_nnx_module
from jinit._core._paths import named_leaves, path_str
from jinit.initializers._basic import constant, ones, zeros
from jinit.torch._base import SQRT5, TORCH_LAYOUT
from jinit.torch._defaults import conv_bias, conv_weight, embedding, linear_bias, linear_weight
from jinit.torch._fan_scaled import kaiming_uniform
from jinit.torch._simple import uniform
from jinit.trees._leaf_checks import check_layouts, resolve_layouts
from jinit.trees._reinit import reinit_rules
from jinit.trees._rules import Contextual, LeafInfo, Rule, check_rules, glob_matcher

__all__ = ["MODULE_KINDS", "init_like_torch"]

_API = "jinit.torch.init_like_torch"

MODULE_KINDS = ("linear", "conv", "conv_transpose", "embedding", "norm")
"""The module kinds ``module_types`` accepts."""

_WEIGHT_NAMES = ("kernel", "weight")  # Flax, equinox/torch


@dataclasses.dataclass(frozen=True)
class _Module:
    """What an equinox module says about its ``weight``/``bias``: kind and conv groups."""

    kind: str
    groups: int = 1


@dataclasses.dataclass(frozen=True)
class _Context:
    """Per-call facts the contextual rules read: each leaf's layout (``None``: layer unknown)
    and, for equinox trees, the kind of module at each module path."""

    layouts: Mapping[str, Layout | None] = dataclasses.field(default_factory=dict)
    modules: Mapping[str, _Module] = dataclasses.field(default_factory=dict)

    def __hash__(self) -> int:  # identity: the mappings are not hashable, and never compared
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def _kind_from_layout(layout: Layout) -> str:
    """The torch module kind of a kernel whose layer is known (from the layer's name)."""
    layer = layout.layer
    if "ConvTranspose" in layer:
        return "conv_transpose"
    if "Embed" in layer:
        return "embedding"
    if "Conv" in layer:
        return "conv"  # Conv, ConvLocal (positions are batch axes)
    return "linear"  # Dense, DenseGeneral, Linear, LinearGeneral, Einsum, attention


def _own_layout(layout: Layout | None, shape: tuple[int, ...]) -> Layout | None:
    """``layout``, or None when jax's default axes (in -2, out -1) give the same fans: the
    draw is then the plain initialiser's, bit for bit as before layouts existed."""
    if layout is None:
        return None
    try:
        if fans(shape) == layout.fans(shape):
            return None
    except ValueError:
        pass
    torch = TORCH_LAYOUT
    if (layout.in_axes, layout.out_axes, layout.batch_axes, layout.call) == (
        torch.in_axes,
        torch.out_axes,
        torch.batch_axes,
        torch.call,
    ):
        return torch  # the same axes; shows as layout='torch'
    return layout


@dataclasses.dataclass(frozen=True)
class _Resolved:
    """A leaf's torch module: its kind, its layout (None: jax's default) and torch's fan."""

    kind: str
    layout: Layout | None
    fan: float
    groups: int = 1


def _resolve_kernel(
    ctx: _Context, kind: str | None, path: str, shape: tuple[int, ...]
) -> _Resolved:
    """The torch module of the weight at ``path`` (a ``kernel`` or ``weight`` leaf)."""
    parent = path.rpartition("/")[0]
    module = ctx.modules.get(parent)
    layout = ctx.layouts.get(path)
    groups = 1
    if kind is None and module is not None:
        kind, groups = module.kind, module.groups
    if kind is None and layout is not None:
        kind = _kind_from_layout(layout)
    if kind is None:
        kind = _kind_from_rank(path, shape)
    if kind in ("linear", "conv", "conv_transpose") and layout is None:
        _check_rank(path, shape, kind, (2,) if kind == "linear" else (3, 4, 5))
    if kind == "embedding" or kind == "norm":
        return _Resolved(kind, layout, math.nan)
    f = layout.fans(shape) if layout is not None else fans(shape, api=_API)
    fan = f.fan_out / groups if kind == "conv_transpose" else f.fan_in
    return _Resolved(kind, _own_layout(layout, shape), fan, groups)


@dataclasses.dataclass(frozen=True)
class _TorchKernel:
    """torch's default weight for a ``kernel`` (Flax) or ``weight`` (equinox) leaf."""

    kind: str | None  # None: from the layer, else the rank
    ctx: _Context = dataclasses.field(default_factory=_Context)

    def __call__(self, key: PRNGKey, leaf: LeafInfo) -> jax.Array:
        return self.initializer(leaf)(key, leaf.shape, leaf.dtype)

    def describe(self, leaf: LeafInfo) -> str:
        return repr(self.initializer(leaf))

    def initializer(self, leaf: LeafInfo):
        r = _resolve_kernel(self.ctx, self.kind, leaf.path, leaf.shape)
        if r.kind == "embedding":
            return embedding()
        if r.kind == "norm":
            return ones
        if r.kind == "conv_transpose":
            if r.groups > 1:  # torch: (out/groups)·prod(k), which no axis product gives
                b = 1 / math.sqrt(r.fan)
                return uniform(-b, b)
            return kaiming_uniform(a=SQRT5, mode="fan_out", layout=r.layout)
        if r.kind == "conv":
            return conv_weight(layout=r.layout)
        return linear_weight(layout=r.layout)

    def __repr__(self) -> str:
        what = {
            None: "Linear/Conv weight by layer (or rank)",
            "linear": "Linear weight",
            "conv": "Conv weight",
            "conv_transpose": "ConvTranspose weight",
        }[self.kind]
        return f"torch {what}"


@dataclasses.dataclass(frozen=True)
class _TorchBias:
    """torch's default bias: ``U(±1/√fan_in)`` with the sibling kernel's torch fan_in."""

    kind: str | None  # None: from the kernel's layer (or rank)
    ctx: _Context = dataclasses.field(default_factory=_Context)

    def __call__(self, key: PRNGKey, leaf: LeafInfo) -> jax.Array:
        return self.initializer(leaf)(key, leaf.shape, leaf.dtype)

    def describe(self, leaf: LeafInfo) -> str:
        return repr(self.initializer(leaf))

    def initializer(self, leaf: LeafInfo):
        module = self.ctx.modules.get(leaf.parent)
        if self.kind == "norm" or (
            self.kind is None and module is not None and (module.kind == "norm")
        ):
            return zeros
        name = next((n for n in _WEIGHT_NAMES if n in leaf.siblings), None)
        if name is None:
            if self.kind is None and "scale" in leaf.siblings:
                return zeros  # a Flax norm layer's bias
            raise ValueError(
                f"`{_API}` cannot tell which torch module {leaf.path!r} belongs to: a torch "
                f"Linear/Conv bias needs its kernel's fan_in, but {leaf.parent!r} has no "
                f"'kernel' or 'weight' (siblings: {sorted(leaf.siblings)}). If it is a norm "
                f"layer's bias, pass `module_types={{{leaf.parent!r}: 'norm'}}`; else give it a "
                f"rule, e.g. `rules=[({leaf.path!r}, jinit.zeros)]`."
            )
        shape = tuple(np.shape(leaf.siblings[name]))
        kpath = f"{leaf.parent}/{name}" if leaf.parent else name
        r = _resolve_kernel(self.ctx, self.kind, kpath, shape)
        if r.kind in ("embedding", "norm"):
            return zeros
        make = linear_bias if r.kind == "linear" else conv_bias
        return make(int(r.fan))

    def __repr__(self) -> str:
        what = "from its kernel" if self.kind is None else f"{self.kind}, from its kernel"
        return f"torch bias U(±1/√fan_in) ({what})"


def _kind_from_rank(path: str, shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return "linear"
    if len(shape) in (3, 4, 5) and not is_ambiguous(path, shape):
        return "conv"
    if len(shape) in (3, 4, 5):
        parent = path.rpartition("/")[0]
        raise ValueError(
            f"`{_API}` cannot tell whether {path!r} of shape {shape} is a Conv{len(shape) - 2}d "
            f"kernel or a DenseGeneral/attention/einsum kernel (torch Linear, fan_in = its "
            f"contracted axes): its layer is not known and its module path does not say 'conv'. "
            f"Pass `layouts=jinit.layouts(model, x)` (linen), the nnx/equinox module itself "
            f"instead of its parameters, or `module_types={{{parent!r}: 'conv'}}`."
        )
    raise ValueError(
        f"`{_API}` cannot tell which torch module the kernel {path!r} of shape {shape} comes from "
        f"(rank {len(shape)}; Linear kernels have rank 2, Conv kernels rank 3-5). Give it a rule, "
        f"e.g. `rules=[({path!r}, jinit.torch.linear_weight())]`."
    )


def _check_rank(path: str, shape: tuple[int, ...], kind: str, ranks: tuple[int, ...]) -> None:
    if len(shape) not in ranks:
        raise ValueError(
            f"`{_API}`: {path!r} has shape {shape}, of rank {len(shape)}, but its module kind is "
            f"{kind!r}, whose kernels have rank {' or '.join(map(str, ranks))}. Fix "
            f"`module_types`, pass `layouts=jinit.layouts(model, x)`, or give the leaf its own "
            f"rule."
        )


def _eqx_modules(tree: Any) -> dict[str, _Module]:
    """{module path: _Module} for the equinox layers whose torch defaults are known."""
    eqx = sys.modules.get("equinox")
    if eqx is None or not isinstance(tree, eqx.Module):
        return {}
    nn = eqx.nn
    kinds: list[tuple[type, str]] = [
        (nn.ConvTranspose, "conv_transpose"),
        (nn.Conv, "conv"),
        (nn.Linear, "linear"),
        (nn.Embedding, "embedding"),
        (nn.LayerNorm, "norm"),
        (nn.GroupNorm, "norm"),
        (nn.BatchNorm, "norm"),
    ]
    if hasattr(nn, "RMSNorm"):
        kinds.append((nn.RMSNorm, "norm"))
    known = tuple(t for t, _ in kinds)
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, known))
    out: dict[str, _Module] = {}
    for keypath, leaf in flat:
        kind = next((k for t, k in kinds if isinstance(leaf, t)), None)
        if kind is not None:
            out[path_str(keypath)] = _Module(kind, int(getattr(leaf, "groups", 1) or 1))
    return out


def _module_rules(api: str, module_types: Any, ctx: _Context) -> list[tuple[str, Any]]:
    if module_types is None:
        return []
    if isinstance(module_types, Mapping):
        items = list(module_types.items())
    elif isinstance(module_types, Sequence) and not isinstance(module_types, str):
        items = list(module_types)
    else:
        raise TypeError(
            f"`{api}` needs `module_types` to be a mapping {{module pattern: kind}}; got "
            f"{module_types!r}. Pass e.g. `{{'*/ConvTranspose_0': 'conv_transpose'}}`."
        )
    out: list[tuple[str, Any]] = []
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(
                f"`{api}` needs `module_types` entries to be (pattern, kind) pairs; got {item!r}."
            )
        pattern, kind = item
        if not isinstance(pattern, str):
            raise TypeError(
                f"`{api}` needs each `module_types` pattern to be a str; got {pattern!r}. Pass "
                f"a glob over module paths such as '*/ConvTranspose_0'."
            )
        kinds = ", ".join(map(repr, MODULE_KINDS))
        if not isinstance(kind, str):
            raise TypeError(
                f"`{api}` needs each `module_types` kind to be a str, one of {kinds}; got "
                f"{kind!r} of type {type(kind).__name__} for {pattern!r}."
            )
        if kind not in MODULE_KINDS:
            close = difflib.get_close_matches(kind, MODULE_KINDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"`{api}` needs each `module_types` kind to be one of {kinds}; got {kind!r} for "
                f"{pattern!r}.{hint} Other modules (LSTM, attention...) need their own `rules`."
            )
        pattern = pattern.rstrip("/")
        if kind == "embedding":  # Flax Embed's `embedding`, equinox Embedding's `weight`
            out += [(f"{pattern}/{n}", embedding()) for n in ("embedding", "weight")]
        elif kind == "norm":
            out += [(f"{pattern}/{n}", ones) for n in ("scale", "weight")]
            out.append((f"{pattern}/bias", zeros))
        else:
            out += [(f"{pattern}/{n}", Contextual(_TorchKernel(kind, ctx))) for n in _WEIGHT_NAMES]
            out.append((f"{pattern}/bias", Contextual(_TorchBias(kind, ctx))))
    return out


def _default_rules(ctx: _Context) -> list[tuple[str, Any]]:
    return [
        ("*/kernel", Contextual(_TorchKernel(None, ctx))),
        ("*/weight", Contextual(_TorchKernel(None, ctx))),  # equinox (torch names)
        ("*/bias", Contextual(_TorchBias(None, ctx))),
        ("*/embedding", embedding()),
        ("*/scale", ones),
        ("*/mean", zeros),
        ("*/var", ones),
        ("*/negative_slope", constant(0.25)),
    ]


def init_like_torch(
    params: Any,
    key: PRNGKey,
    *,
    module_types: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    rules: Sequence[tuple[str, Any]] | Mapping[str, Any] = (),
    strict: bool = True,
    explain: bool = False,
    layouts: Mapping[str, Layout | str | None] | None = None,
) -> Any:
    r"""Initialises a Flax or equinox parameter tree as PyTorch initialises the equivalent modules.

    Every leaf is recognised by its layer (when known), name, rank and siblings (see the table
    in `jinit.torch`) and drawn with torch's default law: Linear-like and Conv
    kernels and their biases :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})` (torch's
    ``kaiming_uniform_(a=√5)``, He et al., 2015; the bias bound from the *kernel's* fan-in, which
    for a DenseGeneral/attention kernel is its contracted size), Embed/Embedding
    :math:`\mathcal N(0, 1)`, norm weights ones and biases zeros, BatchNorm running statistics
    zeros (mean) and ones (var), PReLU slopes 0.25.

    It is :func:`jinit.reinit` with the rules ``rules`` (yours, tried first), then those from
    ``module_types``, then the defaults — so keys, strictness, dtypes, shardings and accepted
    trees (linen, ``nnx.State``, ``nnx.Module``, equinox modules) are as in
    :func:`jinit.reinit`.

    **Layers.** An ``nnx.Module`` and an equinox module say which layer owns each kernel;
    equinox weights are in torch's layout ``(out, in, *k)`` already and get torch's law as they
    are. For a linen ``params`` dict pass ``layouts=jinit.layouts(model, x)``; without it a
    rank-2 kernel is a Linear ``(in, out)``, a rank 3-5 kernel under a path that says ``conv`` is
    a Conv kernel, and any other rank >= 3 kernel (an attention/``DenseGeneral`` kernel such as
    ``(d_model, heads, head_dim)``) raises instead of being guessed. **ConvTranspose** kernels
    look like Conv kernels: without layouts, name them in ``module_types`` (torch's transposed
    conv takes its fan_in from ``out_channels/groups · prod(k)``). **Attention** projections are
    drawn as torch ``nn.Linear`` layers (see the module docstring for torch's fused
    ``nn.MultiheadAttention`` and how to port it).

    Args:
      params: a Flax parameter tree (linen ``params`` or ``{"params": ...}`` variables, an
        ``nnx.State``, ``jax.eval_shape`` shapes), an ``nnx.Module`` or an equinox module.
      key: a PRNG key.
      module_types: ``{module pattern: kind}``, a glob over module paths (the leaf path without
        its last component, matched like :func:`jinit.reinit` patterns), with kind one of
        ``"linear"``, ``"conv"``, ``"conv_transpose"``, ``"embedding"``, ``"norm"``. Each
        pattern must match at least one module.
      rules: extra :func:`jinit.reinit` rules (glob patterns), tried before everything else.
      strict: if True, leaves no rule recognises raise a ValueError listing them (give them
        ``rules``); if False they are kept.
      explain: also return the :class:`jinit.ReinitTable`.
      layouts: ``{path or glob: jinit.Layout}`` for a tree that does not carry its layers (a
        linen ``params`` dict): pass ``jinit.layouts(model, x)``. nnx and equinox modules
        carry them; given layouts override theirs.

    Returns:
      The initialised tree (``(tree, table)`` with ``explain=True``).

    Raises:
      TypeError, ValueError: bad ``module_types``, ``rules`` or ``layouts``, unrecognised
        leaves under ``strict``, a ``module_types`` pattern matching no module, a rank >= 3
        kernel whose layer is unknown and whose path does not say ``conv``.

    Examples:
      >>> import math, jax, jax.numpy as jnp, jinit
      >>> import flax.linen as nn
      >>> class Net(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         x = nn.ConvTranspose(4, (2, 2), strides=(2, 2))(x)  # ConvTranspose2d(3, 4, 2)
      ...         return nn.Dense(10)(nn.LayerNorm()(x.mean((1, 2))))
      >>> x = jnp.ones((1, 8, 8, 3))
      >>> shapes = jax.eval_shape(Net().init, jax.random.key(0), x)["params"]  # no FLOPs
      >>> params = jinit.torch.init_like_torch(
      ...     shapes, jax.random.key(1), module_types={"ConvTranspose_0": "conv_transpose"})
      >>> def bound_ok(w, fan_in):  # all of |w| <= 1/sqrt(fan_in), and close to it
      ...     m = float(jnp.abs(w).max()) * math.sqrt(fan_in)
      ...     return 0.5 < m <= 1
      >>> bound_ok(params["ConvTranspose_0"]["kernel"], 4 * 2 * 2)  # torch: out * prod(k)
      True
      >>> bound_ok(params["Dense_0"]["bias"], 4)
      True
      >>> params["LayerNorm_0"]["scale"].tolist()
      [1.0, 1.0, 1.0, 1.0]
    """
    key = check_key(_API, key)
    for name, flag in (("strict", strict), ("explain", explain)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(
                f"`{_API}` needs `{name}` to be a bool; got {flag!r} of type "
                f"{type(flag).__name__}. Pass `{name}=True` or `{name}=False`."
            )
    user = check_rules(_API, rules, False)
    given = check_layouts(_API, layouts)
    ctx = _context(params, given)
    module = _module_rules(_API, module_types, ctx)
    all_rules = check_rules(
        _API,
        [
            *(Rule(r.pattern, r.init, fallback=r.fallback) for r in user),
            *module,
            *_default_rules(ctx),
        ],
        False,
    )
    _check_module_patterns(params, module_types, module)
    out = reinit_rules(
        params,
        key,
        all_rules,
        strict=bool(strict),
        explain=bool(explain),
        api=_API,
        shadow_checked=len(user),
        layouts=given,
    )
    if not explain:
        return out
    new, table = out  # built-in rules a model does not need are not worth reporting
    unused = tuple(i for i in table.unused if i < len(user))
    return new, dataclasses.replace(table, unused=unused)


def _context(params: Any, given: Mapping[str, Layout | None]) -> _Context:
    """Each leaf's layout (given, or read from an nnx/equinox module) and equinox's modules."""
    tree = params
    if _is_nnx_module(params):
        from flax import nnx

        tree = nnx.state(params, nnx.Param)
    leaves = [(p, a) for p, a, _ in named_leaves(tree, shapes=True)]
    # `resolve_layouts` reads the layers of an nnx/equinox module (not of its state)
    return _Context(resolve_layouts(_API, params, leaves, given), _eqx_modules(params))


def _check_module_patterns(params: Any, module_types: Any, module_rules: list) -> None:
    if not module_rules:
        return
    if _is_nnx_module(params):
        from flax import nnx

        params = nnx.state(params, nnx.Param)
    parents = sorted({p.rpartition("/")[0] for p, _, _ in named_leaves(params, shapes=True)})
    items = module_types.items() if isinstance(module_types, Mapping) else module_types
    for pattern, kind in items:
        pattern = pattern.rstrip("/")
        match = glob_matcher(pattern)
        if not any(match(m) for m in parents):
            raise ValueError(
                f"`{_API}`: the module_types pattern {pattern!r} ({kind!r}) matches no module; "
                f"the modules are {parents[:12]}{' ...' if len(parents) > 12 else ''}. Patterns "
                f"match whole module paths: with a `{{'params': ...}}` tree, write "
                f"'*/{pattern}'."
            )
