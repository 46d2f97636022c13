r"""Initialise a Flax parameter tree the way PyTorch initialises the equivalent modules.

:func:`init_like_torch` is :func:`jinit.reinit` with a fixed rule set that recognises each leaf's
module from its name (``kernel``, ``bias``, ``embedding``, ``scale``, ...), its rank and its
siblings, and draws torch's default (``reset_parameters``) law in the Flax layout:

* ``kernel`` of rank 2, ``(in, out)``: ``nn.Linear`` weight, :math:`U(\pm 1/\sqrt{in})`;
* ``kernel`` of rank 3-5, ``(*k, in/groups, out)``: ``nn.Conv{1,2,3}d`` weight,
  :math:`U(\pm 1/\sqrt{f})` with :math:`f = (in/groups)\prod k`;
* ``bias`` next to a ``kernel``: that module's bias, :math:`U(\pm 1/\sqrt{f})` with the
  *kernel's* torch fan-in :math:`f`;
* ``embedding``: ``nn.Embedding`` weight, :math:`\mathcal N(0, 1)`;
* ``scale``: Layer/Batch/Group/RMSNorm weight, ones; ``bias`` next to a ``scale``: zeros;
* ``mean`` / ``var``: BatchNorm running statistics, zeros / ones (``reset_running_stats``);
* ``negative_slope``: ``nn.PReLU`` weight, 0.25.

The weight law is ``kaiming_uniform_(w, a=sqrt(5))`` (He et al., 2015, with torch's
:math:`a=\sqrt 5` gain :math:`1/\sqrt 3`), whose bound is :math:`1/\sqrt{\mathrm{fan\_in}}`.

**ConvTranspose cannot be told from Conv by the tree alone** (both are ``(*k, a, b)`` kernels
with a bias). torch stores a transposed conv weight as ``(in, out/groups, *k)`` and computes
its "fan_in" from dimension 1, i.e. :math:`(out/groups)\prod k`; on the Flax ``ConvTranspose``
kernel ``(*k, in, out)`` that is the *fan_out*. Name such modules in ``module_types`` (e.g.
``{"*/ConvTranspose_0": "conv_transpose"}``), or they get the Conv law (wrong by
:math:`\sqrt{in/out}` in scale). A Flax ``ConvTranspose(transpose_kernel=True)`` kernel is
``(*k, out, in)``, whose Conv fan_in is already torch's: leave it as ``"conv"``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jinit._src import torch_init
from jinit._src.base import PRNGKey, check_key
from jinit._src.basic import constant, ones, zeros
from jinit._src.fans import fans
from jinit._src.paths import named_leaves
from jinit._src.tree import (
    Contextual,
    LeafInfo,
    Rule,
    _check_rules,
    _glob_matcher,
    _is_nnx_module,
    _reinit,
)

__all__ = ["MODULE_KINDS", "init_like_torch"]

_API = "jinit.torch.init_like_torch"

MODULE_KINDS = ("linear", "conv", "conv_transpose", "embedding", "norm")
"""The module kinds ``module_types`` accepts."""

_SQRT5 = math.sqrt(5)


@dataclasses.dataclass(frozen=True)
class _TorchKernel:
    """torch's default weight for a ``kernel``: Linear (rank 2), Conv (rank 3-5), ConvTranspose."""

    kind: str | None  # None: from the rank

    def __call__(self, key: PRNGKey, leaf: LeafInfo) -> jax.Array:
        return self.initializer(leaf)(key, leaf.shape, leaf.dtype)

    def describe(self, leaf: LeafInfo) -> str:
        return repr(self.initializer(leaf))

    def initializer(self, leaf: LeafInfo):
        kind = self.kind or _kind_from_rank(leaf.path, leaf.shape)
        if kind == "conv_transpose":
            _check_rank(leaf.path, leaf.shape, kind, (3, 4, 5))
            return torch_init.kaiming_uniform(a=_SQRT5, mode="fan_out")
        if kind == "conv":
            _check_rank(leaf.path, leaf.shape, kind, (3, 4, 5))
            return torch_init.conv_weight()
        _check_rank(leaf.path, leaf.shape, kind, (2,))
        return torch_init.linear_weight()

    def __repr__(self) -> str:
        what = {
            None: "Linear/Conv weight by rank",
            "linear": "Linear weight",
            "conv": "Conv weight",
            "conv_transpose": "ConvTranspose weight",
        }[self.kind]
        return f"torch {what}"


@dataclasses.dataclass(frozen=True)
class _TorchBias:
    """torch's default bias: ``U(±1/√fan_in)`` with the sibling kernel's torch fan_in."""

    kind: str | None  # None: from the kernel's rank

    def __call__(self, key: PRNGKey, leaf: LeafInfo) -> jax.Array:
        return self.initializer(leaf)(key, leaf.shape, leaf.dtype)

    def describe(self, leaf: LeafInfo) -> str:
        return repr(self.initializer(leaf))

    def initializer(self, leaf: LeafInfo):
        kernel = leaf.siblings.get("kernel")
        if kernel is None:
            if self.kind is None and "scale" in leaf.siblings:
                return zeros  # a norm layer's bias
            raise ValueError(
                f"`{_API}` cannot tell which torch module {leaf.path!r} belongs to: a torch "
                f"Linear/Conv bias needs its kernel's fan_in, but {leaf.parent!r} has no "
                f"'kernel' (siblings: {sorted(leaf.siblings)}). If it is a norm layer's bias, pass "
                f"`module_types={{{leaf.parent!r}: 'norm'}}`; else give it a rule, e.g. "
                f"`rules=[({leaf.path!r}, jinit.zeros)]`."
            )
        shape = tuple(np.shape(kernel))
        kind = self.kind or _kind_from_rank(leaf.parent + "/kernel", shape)
        f = fans(shape)
        fan_in = f.fan_out if kind == "conv_transpose" else f.fan_in
        make = torch_init.linear_bias if kind == "linear" else torch_init.conv_bias
        return make(int(fan_in))

    def __repr__(self) -> str:
        what = "from its kernel" if self.kind is None else f"{self.kind}, from its kernel"
        return f"torch bias U(±1/√fan_in) ({what})"


def _kind_from_rank(path: str, shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return "linear"
    if len(shape) in (3, 4, 5):
        return "conv"
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
            f"`module_types`, or give the leaf its own rule."
        )


def _module_rules(api: str, module_types: Any) -> list[tuple[str, Any]]:
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
        if kind == "embedding":
            out.append((f"{pattern}/embedding", torch_init.embedding()))
        elif kind == "norm":
            out += [(f"{pattern}/scale", ones), (f"{pattern}/bias", zeros)]
        else:
            out += [
                (f"{pattern}/kernel", Contextual(_TorchKernel(kind))),
                (f"{pattern}/bias", Contextual(_TorchBias(kind))),
            ]
    return out


_DEFAULT_RULES: tuple[tuple[str, Any], ...] = (
    ("*/kernel", Contextual(_TorchKernel(None))),
    ("*/bias", Contextual(_TorchBias(None))),
    ("*/embedding", torch_init.embedding()),
    ("*/scale", ones),
    ("*/mean", zeros),
    ("*/var", ones),
    ("*/negative_slope", constant(0.25)),
)


def init_like_torch(
    params: Any,
    key: PRNGKey,
    *,
    module_types: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    rules: Sequence[tuple[str, Any]] | Mapping[str, Any] = (),
    strict: bool = True,
    explain: bool = False,
) -> Any:
    r"""Initialises a Flax parameter tree as PyTorch initialises the equivalent modules.

    Every leaf is recognised by its name, rank and siblings (see the table in
    :mod:`jinit._src.torch_port`) and drawn with torch's default law in the Flax layout:
    Dense/Conv kernels and their biases :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})` (torch's
    ``kaiming_uniform_(a=√5)``, He et al., 2015; the bias bound from the *kernel's* fan-in),
    Embed :math:`\mathcal N(0, 1)`, norm scales ones and biases zeros, BatchNorm running
    statistics zeros (mean) and ones (var), PReLU slopes 0.25.

    It is :func:`jinit.reinit` with the rules ``rules`` (yours, tried first), then those from
    ``module_types``, then the defaults — so keys, strictness, dtypes, shardings and accepted
    trees (linen, ``nnx.State``, ``nnx.Module``) are as in :func:`jinit.reinit`.

    **ConvTranspose** kernels look like Conv kernels, so they must be named in ``module_types``:
    torch's transposed conv takes its fan_in from ``out_channels/groups · prod(k)``, which
    :math:`U(\pm 1/\sqrt{\cdot})` needs. Attention/``DenseGeneral`` kernels of rank 3 would be
    taken for Conv1d kernels; give them ``rules``.

    Args:
      params: a Flax parameter tree (linen ``params`` or ``{"params": ...}`` variables, an
        ``nnx.State``) or an ``nnx.Module``.
      key: a PRNG key.
      module_types: ``{module pattern: kind}``, a glob over module paths (the leaf path without
        its last component, matched like :func:`jinit.reinit` patterns), with kind one of
        ``"linear"``, ``"conv"``, ``"conv_transpose"``, ``"embedding"``, ``"norm"``. Each
        pattern must match at least one module.
      rules: extra :func:`jinit.reinit` rules (glob patterns), tried before everything else.
      strict: if True, leaves no rule recognises raise a ValueError listing them (give them
        ``rules``); if False they are kept.
      explain: also return the :class:`jinit.ReinitTable`.

    Returns:
      The initialised tree (``(tree, table)`` with ``explain=True``).

    Raises:
      TypeError, ValueError: bad ``module_types`` or ``rules``, unrecognised leaves under
        ``strict``, a ``module_types`` pattern matching no module.

    Examples:
      >>> import math, jax, jax.numpy as jnp, jinit
      >>> import flax.linen as nn
      >>> class Net(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         x = nn.Conv(8, (3, 3))(x)                         # torch Conv2d(3, 8, 3)
      ...         x = nn.ConvTranspose(4, (2, 2), strides=(2, 2))(x)  # ConvTranspose2d(8, 4, 2)
      ...         return nn.Dense(10)(nn.LayerNorm()(x.mean((1, 2))))
      >>> params = Net().init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))["params"]
      >>> params = jinit.torch.init_like_torch(
      ...     params, jax.random.key(1), module_types={"ConvTranspose_0": "conv_transpose"})
      >>> def bound_ok(w, fan_in):  # all of |w| <= 1/sqrt(fan_in), and close to it
      ...     m = float(jnp.abs(w).max()) * math.sqrt(fan_in)
      ...     return 0.5 < m <= 1
      >>> bound_ok(params["Conv_0"]["kernel"], 3 * 3 * 3)
      True
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
    user = _check_rules(_API, rules, False)
    module = _module_rules(_API, module_types)
    all_rules = _check_rules(
        _API,
        [*(Rule(r.pattern, r.init, fallback=r.fallback) for r in user), *module, *_DEFAULT_RULES],
        False,
    )
    _check_module_patterns(params, module_types, module)
    out = _reinit(
        params,
        key,
        all_rules,
        strict=bool(strict),
        explain=bool(explain),
        api=_API,
        shadow_checked=len(user),
    )
    if not explain:
        return out
    new, table = out  # built-in rules a model does not need are not worth reporting
    unused = tuple(i for i in table.unused if i < len(user))
    return new, dataclasses.replace(table, unused=unused)


def _check_module_patterns(params: Any, module_types: Any, module_rules: list) -> None:
    if not module_rules:
        return
    if _is_nnx_module(params):
        from flax import nnx

        params = nnx.state(params, nnx.Param)
    parents = sorted({p.rpartition("/")[0] for p, _, _ in named_leaves(params)})
    items = module_types.items() if isinstance(module_types, Mapping) else module_types
    for pattern, kind in items:
        pattern = pattern.rstrip("/")
        match = _glob_matcher(pattern)
        if not any(match(m) for m in parents):
            raise ValueError(
                f"`{_API}`: the module_types pattern {pattern!r} ({kind!r}) matches no module; "
                f"the modules are {parents[:12]}{' ...' if len(parents) > 12 else ''}. Patterns "
                f"match whole module paths: with a `{{'params': ...}}` tree, write "
                f"'*/{pattern}'."
            )
