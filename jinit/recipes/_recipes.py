r"""Depth-aware initialisation recipes and priors from the literature, as ``jinit.reinit`` rules.

A *recipe* that acts on a whole model returns an ordered list of ``(glob pattern, initialiser)``
rules for :func:`jinit.reinit` (the first matching rule wins); the others return initialisers.

=======================  ====================================================================
recipe                   what it sets
=======================  ====================================================================
:func:`gpt2`             N(0, 0.02²); residual projections 0.02/√(2L) (Radford et al. 2019)
:func:`olmo`             OLMo ``mitchell``, ``full_megatron``; OLMo-core ``llama``,
                         ``llama_depth`` (Groeneveld et al. 2024)
:func:`t5`               fan-in normals, query ÷ √d_kv, embeddings N(0, 1) (Raffel et al. 2020)
:func:`deepnorm`         xavier_normal(gain β) on v/out/ffn, (α, β) of DeepNet (Wang et al. 2022)
:func:`tfixup`           T-Fixup Xavier × 0.67 N^(-1/4) / (9M)^(-1/4) (Huang et al. 2020)
:func:`fixup`            branch layers × L^(-1/(2m-2)), last layer and classifier 0 (Zhang 2019)
:func:`zerO`             ZerO on every kernel, last layer of each residual branch 0 (Zhao 2022)
:func:`skipinit`,        zero residual gates (De & Smith 2020; Bachlechner et al. 2020)
:func:`rezero`
:func:`irnn`             identity recurrent kernel, N(0, 0.001²) input kernel (Le et al. 2015)
:func:`lstm`,            forget-gate bias 1 (Jozefowicz et al. 2015) for flax ``LSTMCell`` or a
:func:`lstm_bias`        packed 4H bias
:func:`chrono`,          chrono init b_f ~ log U(1, T_max − 1), b_i = −b_f (Tallec & Ollivier
:func:`chrono_bias`      2018)
:func:`retinanet`        classification prior bias −log((1−π)/π), N(0, 0.01²) kernels (Lin 2017)
=======================  ====================================================================

Recipes end with fallback rules (``jinit.Rule("*kernel", ..., fallback=True)``, ``"*bias"``, ...)
for the leaves no specific rule took; being marked as fallbacks, they may lose every leaf to
earlier rules without ``reinit(strict=True)`` reporting them as shadowed.

**Recipes never silently miss.** Each whole-model recipe returns a :class:`Recipe`: its rules,
plus the *defining* roles that make it this recipe (GPT-2's residual projections, Fixup's zero
last layers and scaled branch layers, T5's query, a prior's bias, ...). :func:`jinit.reinit`
raises a ValueError naming the recipe, each defining role whose patterns matched no parameter
path, a sample of the paths it saw and the fix (a naming option or preset), instead of letting a
fallback rule draw those layers with the wrong law. Recipes stay recipes under ``+`` (with a list
of rules on either side, or another recipe).

Patterns are :func:`jinit.reinit` globs (``*`` spans '/'), with defaults for Flax naming:
``flax.linen.MultiHeadDotProductAttention`` and ``nnx.MultiHeadAttention`` call their kernels
``query``, ``key``, ``value`` and ``out`` (``DenseGeneral`` kernels ``(d, heads, head_dim)`` and
``(heads, head_dim, d)``, whose fans the fan-based recipes compute correctly), ``nn.Embed`` its
table ``embedding``, ``LayerNorm``/``RMSNorm`` their gain ``scale``. The feed-forward layers are
recognised under the names of Flax's own example models as well as fairseq's: ``fc1``/``fc2``
(fairseq, torchscale), ``linear1``/``linear2`` (Flax lm1b, nnx) and ``MlpBlock_0/Dense_0``/
``Dense_1`` (Flax lm1b/wmt linen, google-research ViT); blocks as ``block_{i}``, ``blocks/{i}``,
``layers/{i}``, ``Block_{i}``, ``encoderblock_{i}`` and ``encoderdecoderblock_{i}``, 0-based; see
:class:`TransformerNames` to rename any of them. Residual-network recipes (:func:`fixup`,
:func:`zerO`) take ``preset="flax_resnet"`` for Flax's ImageNet ResNet (``ResNetBlock_i/Conv_j``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import (
    DTypeLike,
    check_choice,
    check_dtype_arg,
    check_int,
    check_key,
    check_real,
)
from jinit._core._fans import fans
from jinit._core._layouts import Layout, draw
from jinit._core._paths import is_nnx_module as _is_nnx_module
from jinit._core._paths import named_leaves
from jinit.initializers._base import Initializer
from jinit.initializers._basic import constant, normal, ones, truncated_normal, zeros
from jinit.initializers._extra import bias_prior, gpt2_residual, identity, transformer_normal
from jinit.initializers._extra import zerO as _zerO_init
from jinit.initializers._orthogonal import orthogonal
from jinit.initializers._variance_scaling import VarianceScaling, lecun_normal, variance_scaling
from jinit.laws import _laws as laws
from jinit.trees._reinit import Rule, contextual, glob_matcher, path_key, reinit

__all__ = [
    "ChronoBias",
    "Recipe",
    "DeepNormConstants",
    "FanScaled",
    "LSTMBias",
    "TransformerNames",
    "chrono",
    "chrono_bias",
    "deepnorm",
    "deepnorm_constants",
    "fan_scaled",
    "fixup",
    "gpt2",
    "irnn",
    "lstm",
    "lstm_bias",
    "olmo",
    "retinanet",
    "rezero",
    "skipinit",
    "t5",
    "tfixup",
    "zerO",
]

Rules = list[tuple[str, Any]]
Patterns = str | Sequence[str]

_P = "jinit.recipes."


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def _patterns(api: str, name: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    """A glob or a sequence of globs, as a tuple of non-empty strings."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise TypeError(
            f"`{api}` needs `{name}` to be a glob pattern (str) or a sequence of them; got "
            f"{value!r}. Pass e.g. `{name}='*fc2/kernel'` or "
            f"`{name}=('*fc2/kernel', '*w2/kernel')`."
        )
    if not value and not allow_empty:
        raise ValueError(f"`{api}` needs at least one pattern in `{name}`; got an empty sequence.")
    return tuple(value)


def _layers(api: str, name: str, value: Any, *, minimum: int = 1) -> int:
    return check_int(api, name, value, minimum=minimum)


def _rules(patterns: Sequence[str], init: Any) -> Rules:
    return [(p, init) for p in patterns]


def _scoped(scope: str, patterns: Sequence[str]) -> tuple[str, ...]:
    """The patterns restricted to paths under a component named ``scope`` (``""``: no scope)."""
    if not scope:
        return tuple(patterns)
    return tuple(f"*{scope}/{p}" if p.startswith("*") else f"*{scope}/*{p}" for p in patterns)


# ---------------------------------------------------------------------------------------------
# Recipes: rules that know which of them define the recipe
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Need:
    """A defining role of a recipe: at least one of ``patterns`` must match a parameter path."""

    api: str  # the public recipe, e.g. "jinit.recipes.gpt2"
    call: str  # how it was called, e.g. "gpt2(n_layers=4)"
    role: str  # e.g. "mlp_out (residual projection, N(0, (0.02/√(2L))²))"
    patterns: tuple[str, ...]
    fix: str  # the option that renames the role


class Recipe(list):
    """The rules of a recipe (a ``list`` of ``(pattern, initialiser)`` pairs) and its defining
    roles, which :func:`jinit.reinit` checks.

    A recipe is used exactly as a list of rules (index it, iterate it, concatenate it). In
    addition, ``reinit`` raises a ValueError when one of its defining roles (:attr:`needs`: the
    residual projections of :func:`gpt2`, the zero last layers of :func:`fixup`, ...) matches no
    parameter path, rather than letting the recipe's fallback rules (``*kernel`` ...) draw those
    layers silently with another law. The message names the recipe, the roles and their patterns,
    a sample of the paths seen and the option that renames the role.

    ``recipe + rules``, ``rules + recipe`` and ``recipe + recipe`` are recipes with the defining
    roles of every recipe involved; slicing or ``list(recipe)`` gives plain rules (no check).

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> params = {"block_0": {"attn": {"out": {"kernel": jnp.zeros((8, 8))}},
      ...                       "mlp": {"w2": {"kernel": jnp.zeros((16, 8))}}}}
      >>> try:
      ...     jinit.reinit(params, jax.random.key(0), jinit.recipes.gpt2(1))
      ... except ValueError as e:
      ...     print(str(e).splitlines()[1].split(":")[0])
        mlp_out (residual projection N(0, (0.02/√(2·1))²))
      >>> names = jinit.recipes.TransformerNames(mlp_out="*w2/kernel")
      >>> new = jinit.reinit(params, jax.random.key(0), jinit.recipes.gpt2(1, names=names))
      >>> round(float(new["block_0"]["mlp"]["w2"]["kernel"].std()), 2)  # 0.02 / √2
      0.01
    """

    needs: tuple[_Need, ...]

    def __init__(self, rules: Any = (), needs: Sequence[_Need] = ()):
        super().__init__(rules)
        self.needs = tuple(needs)

    def __add__(self, other: Any) -> Recipe:
        if not isinstance(other, list):
            return NotImplemented
        return Recipe([*self, *other], self.needs + getattr(other, "needs", ()))

    def __radd__(self, other: Any) -> Recipe:
        if not isinstance(other, list):
            return NotImplemented
        return Recipe([*other, *self], getattr(other, "needs", ()) + self.needs)

    def __iadd__(self, other: Any) -> Recipe:
        self.extend(other)
        self.needs = self.needs + tuple(getattr(other, "needs", ()))
        return self

    def __reduce__(self):
        return (Recipe, (list(self), self.needs))

    def missing(self, paths: Sequence[str]) -> list[_Need]:
        """The defining roles none of whose patterns matches any of ``paths``."""
        out = []
        for need in self.needs:
            matchers = [glob_matcher(p) for p in need.patterns]
            if not any(m(path) for m in matchers for path in paths):
                out.append(need)
        return out

    def check_paths(self, paths: Sequence[str], *, regex: bool = False) -> None:
        """Raises if a defining role matches none of ``paths`` (the parameter paths of the
        tree): called by :func:`jinit.reinit` before any draw."""
        if not self.needs:
            return
        first = self.needs[0]
        if regex:
            raise ValueError(
                f"`{first.api}`: a recipe's patterns are globs, but `jinit.reinit` was called "
                f"with regex=True. Call it with regex=False (the default), or pass "
                f"`list(recipe)` to treat the patterns as regular expressions without the "
                f"recipe's checks."
            )
        if not paths:
            return  # reinit itself reports an empty tree
        missing = self.missing(paths)
        if not missing:
            return
        api, call = missing[0].api, missing[0].call
        roles = "\n".join(
            f"  {n.role}: {', '.join(repr(p) for p in n.patterns)}"
            + ("" if n.api == api else f" (from {n.call})")
            for n in missing
        )
        fixes = list(dict.fromkeys(n.fix for n in missing))
        raise ValueError(
            f"`{api}` ({call}): its defining rules matched no parameter, so its fallback rules "
            f"would have drawn those layers with another law:\n{roles}\n"
            f"Paths in the tree (a sample):\n{_sample_paths(paths)}\n"
            f"Name the layers: pass {' or '.join(fixes)}."
        )


def _sample_paths(paths: Sequence[str], limit: int = 20) -> str:
    """Up to ``limit`` paths, kernels first, one per layer name with the block indices folded
    (digits folded in every component but the last two: the layer and its parameter)."""

    def fold(p: str) -> str:
        parts = p.split("/")
        return "/".join([re.sub(r"\d+", "#", c) for c in parts[:-2]] + parts[-2:])

    seen: dict[str, str] = {}
    for p in sorted(paths, key=lambda q: (not q.endswith(("kernel", "weight")), q)):
        seen.setdefault(fold(p), p)
    shown = list(seen.values())[:limit]
    more = len(paths) - len(shown)
    lines = [f"    {p}" for p in shown]
    if more > 0:
        lines.append(f"    ... ({len(paths)} paths in all)")
    return "\n".join(lines)


def _call(name: str, **kwargs: Any) -> str:
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"


def _need(api: str, call: str, role: str, patterns: Sequence[str], fix: str) -> list[_Need]:
    """A defining role, or none when its patterns are empty (the user said it is absent)."""
    return [_Need(api, call, role, tuple(patterns), fix)] if patterns else []


# ---------------------------------------------------------------------------------------------
# Names of a transformer's parameters
# ---------------------------------------------------------------------------------------------


_BLOCKS = (
    "block_{i}",
    "blocks/{i}",
    "layers/{i}",
    "Block_{i}",
    "encoderblock_{i}",
    "encoderdecoderblock_{i}",
)


@dataclasses.dataclass(frozen=True)
class TransformerNames:
    """Glob patterns naming the parameters of a transformer, for the transformer recipes.

    Each role is a glob or a tuple of globs matched by :func:`jinit.reinit` against the whole
    '/'-joined path (``*`` spans '/'; a leading ``*/`` also matches at the top level). The
    defaults recognise Flax's layers and the naming of Flax's own example models:

    ==========  =================================================================================
    role        default patterns (and whose naming they are)
    ==========  =================================================================================
    attention   ``*/query/kernel``, ``*/key/kernel``, ``*/value/kernel``, ``*/out/kernel``: linen
                ``MultiHeadDotProductAttention``, nnx ``MultiHeadAttention``
    mlp_in      ``*fc1/kernel`` (fairseq, torchscale), ``*linear1/kernel`` (Flax lm1b nnx
                ``MlpBlock``), ``*MlpBlock_0/Dense_0/kernel`` (Flax lm1b/wmt linen, ViT)
    mlp_out     ``*fc2/kernel``, ``*linear2/kernel``, ``*MlpBlock_0/Dense_1/kernel``
    embed       ``*embedding`` (``nn.Embed``/``nnx.Embed`` tables)
    head        ``*head/kernel`` (ViT ``head``, ``lm_head``), ``*logitdense/kernel`` (lm1b)
    block       ``block_{i}``, ``blocks/{i}``, ``layers/{i}`` (nnx lists), ``Block_{i}`` (linen
                auto-names), ``encoderblock_{i}`` (wmt, ViT), ``encoderdecoderblock_{i}`` (lm1b)
    ==========  =================================================================================

    A recipe raises (in :func:`jinit.reinit`) when one of the roles that define it matches no
    parameter; pass your names here then.

    Attributes:
      block: the path component(s) of the i-th block, with ``{i}`` for the layer index (a str
        or a tuple of str; the first that occurs in a path gives its index). Only the recipes
        whose init depends on the layer index use it.
      query: query projection kernels.
      key: key projection kernels.
      value: value projection kernels.
      attn_out: attention output projection kernels (they write into the residual stream).
      mlp_in: feed-forward input kernels (for a gated MLP, the gate projection).
      mlp_out: feed-forward output kernels (they write into the residual stream).
      mlp_up: the second input projection of a gated MLP (OLMo-core's ``w3``); ``()`` if none.
      embed: embedding tables.
      head: the output head (classifier / LM head) kernel; ``()`` for a model without one (tied
        embeddings, an encoder).
      encoder: the path component of the encoder of an encoder–decoder model.
      decoder: the path component of its decoder.
      index_base: the index of the first block in ``block`` names: 0 (default; Flax's
        ``Block_0``, ``layers/0``, lm1b's ``encoderdecoderblock_0``) or 1 (``h1``, ``layer_1``
        ... as in some torch ports). Recipes always use the 0-based layer index i.
      kernel: every other weight matrix, drawn by the recipe's fallback rule (``"*kernel"``,
        Flax; ``"*weight"`` for equinox, with ``norm`` naming the norm gains first).
      norm: the norm gains, set to 1 by the fallback rules (``"*scale"``, Flax's
        ``LayerNorm``/``RMSNorm``; e.g. ``"*norm*/weight"`` for equinox's ``LayerNorm``).

    **torch/equinox layout.** The recipes' fans come from each leaf's layer whenever
    :func:`jinit.reinit` knows it (an nnx or equinox module, or ``layouts=``; see
    :meth:`FanScaled.with_layout`), so an equinox transformer (``(out, in)`` weights) is drawn
    right once its names are given, e.g. ``TransformerNames(query="*query_proj/weight",
    key="*key_proj/weight", value="*value_proj/weight", attn_out="*output_proj/weight",
    mlp_in="*linear1/weight", mlp_out="*linear2/weight", embed="*embed*/weight",
    head="*head/weight", norm="*norm*/weight", kernel="*weight")``. A bare dict of torch-layout
    weights says nothing about its layout: pass ``layouts={"*weight": "torch"}`` to
    :func:`jinit.reinit`.

    Examples:
      >>> import jinit
      >>> names = jinit.recipes.TransformerNames(mlp_in="*w1/kernel", mlp_out="*w2/kernel")
      >>> jinit.recipes.gpt2(2, names=names)[1][0]
      '*w2/kernel'
    """

    block: str | tuple[str, ...] = _BLOCKS
    query: Patterns = "*/query/kernel"
    key: Patterns = "*/key/kernel"
    value: Patterns = "*/value/kernel"
    attn_out: Patterns = "*/out/kernel"
    mlp_in: Patterns = ("*fc1/kernel", "*linear1/kernel", "*MlpBlock_0/Dense_0/kernel")
    mlp_out: Patterns = ("*fc2/kernel", "*linear2/kernel", "*MlpBlock_0/Dense_1/kernel")
    mlp_up: Patterns = ()
    embed: Patterns = "*embedding"
    head: Patterns = ("*head/kernel", "*logitdense/kernel")
    encoder: str = "encoder"
    decoder: str = "decoder"
    index_base: int = 0
    kernel: Patterns = "*kernel"
    norm: Patterns = "*scale"

    def __post_init__(self):
        api = _P + "TransformerNames"
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("encoder", "decoder"):
                if not isinstance(v, str) or not v:
                    raise TypeError(f"`{api}` needs `{f.name}` to be a non-empty str; got {v!r}.")
            elif f.name == "index_base":
                object.__setattr__(self, f.name, _index_base(api, v))
            elif f.name == "block":
                blocks = _patterns(api, "block", v)
                bad = [b for b in blocks if "{i}" not in b]
                if bad:
                    raise ValueError(
                        f"`{api}` needs `block` to contain the placeholder '{{i}}' for the layer "
                        f"index; got {bad[0]!r}. Pass e.g. `block='block_{{i}}'` or "
                        f"`block='blocks/{{i}}'`."
                    )
                object.__setattr__(self, f.name, blocks[0] if len(blocks) == 1 else blocks)
            else:
                v = _patterns(api, f.name, v, allow_empty=f.name in ("mlp_up", "head", "norm"))
                object.__setattr__(self, f.name, v)

    @property
    def blocks(self) -> tuple[str, ...]:
        """:attr:`block` as a tuple."""
        return (self.block,) if isinstance(self.block, str) else self.block

    def block_regex(self) -> re.Pattern:
        """A regex finding the layer index (as written in the path) from :attr:`block`."""
        bodies = []
        for b in self.blocks:
            bodies.append(r"(\d+)".join(re.escape(p) for p in b.split("{i}")))
        return re.compile(r"(?:^|/)(?:" + "|".join(bodies) + r")(?:/|$)")

    def layer_index(self, path: str) -> int | None:
        """The 0-based layer index of ``path`` (None outside every block)."""
        m = self.block_regex().search(path)
        if m is None:
            return None
        return int(next(g for g in m.groups() if g is not None)) - self.index_base


def _index_base(api: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value not in (0, 1):
        raise ValueError(
            f"`{api}` needs `index_base` to be 0 or 1 (the index of the first layer in the "
            f"names: 0 for Flax's Conv_0, Block_0, layers/0; 1 for conv1, layer_1); got "
            f"{value!r}."
        )
    return int(value)


def _tneed(api: str, call: str, nm: TransformerNames, role: str, what: str, patterns=None):
    """The defining role ``role`` of a transformer recipe (its patterns from ``nm``)."""
    pats = getattr(nm, role) if patterns is None else patterns
    fix = f"`names=jinit.recipes.TransformerNames({role}='*<your layer>/kernel')`"
    return _need(api, call, f"{role} ({what})", pats, fix)


def _fallbacks(nm: TransformerNames, kernel: Any) -> Rules:
    """The fallback rules of a transformer recipe: norm gains 1 (first, so that a ``*weight``
    kernel pattern does not take equinox's norm weights), other kernels ``kernel`` (none when
    None), biases 0."""
    rules: Rules = [Rule(p, ones, fallback=True) for p in nm.norm]
    if kernel is not None:
        rules += [Rule(p, kernel, fallback=True) for p in nm.kernel]
    return [*rules, Rule("*bias", zeros, fallback=True)]


def _names(api: str, names: Any) -> TransformerNames:
    if names is None:
        return TransformerNames()
    if not isinstance(names, TransformerNames):
        raise TypeError(
            f"`{api}` needs `names` to be a `jinit.recipes.TransformerNames`; got {names!r}. "
            f"Pass e.g. `names=jinit.recipes.TransformerNames(mlp_out='*Dense_1/kernel')`."
        )
    return names


# ---------------------------------------------------------------------------------------------
# fan_scaled: fan-based laws for dense and DenseGeneral kernels
# ---------------------------------------------------------------------------------------------

_LAYOUTS = ("out_last", "in_first", "embed", "flax")
_FAN_MODES = ("fan_in", "fan_out", "fan_avg")
_FAN_DISTS = ("normal", "uniform", "truncated_normal")


@dataclasses.dataclass(frozen=True, repr=False)
class FanScaled(Initializer):
    """Variance ``scale / fan``, fans by a DenseGeneral-aware layout; see :func:`fan_scaled`."""

    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "normal"
    layout: str = "out_last"
    cutoff: float | None = None
    dtype: np.dtype | None = None
    layer_layout: Layout | None = None

    api: ClassVar[str] = "recipes.fan_scaled"
    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " It is for dense kernels (in, out) and DenseGeneral kernels."

    @property
    def own_fan_rule(self) -> bool:
        """True when :attr:`layout` is a role's rule ("out_last", "in_first", "embed") rather
        than jax's default ("flax"): the tree tools do not warn that a rank >= 3 leaf of unknown
        layer gets jax's default fans, since it does not."""
        return self.layout != "flax"

    def axes(self, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(in_axes, out_axes)`` of a kernel of rank ``ndim`` under :attr:`layout` (other
        axes are receptive field)."""
        if self.layout == "in_first":
            return (0,), tuple(range(1, ndim))
        if self.layout == "embed":
            return (ndim - 1,), tuple(range(ndim - 1))
        if self.layout == "flax":
            return (ndim - 2,), (ndim - 1,)
        return tuple(range(ndim - 1)), (ndim - 1,)

    def fans(self, shape) -> tuple[float, float]:
        """``(fan_in, fan_out)`` of ``shape``: the leaf's layer layout when known
        (:meth:`with_layout`), else :attr:`layout`'s rule."""
        if self.layer_layout is not None:
            return self.layer_layout.fans(shape, api=self._label)
        i, o = self.axes(len(shape))
        return fans(shape, i, o, api=self._label)

    def with_layout(self, layout: Layout) -> FanScaled:
        r"""This initialiser with the fans of ``layout``, the layout of the leaf it draws (a
        bound :class:`jinit.Layout`; :func:`jinit.reinit` and :func:`jinit.summary` call this
        for every leaf whose layer is known).

        The layer's layout replaces the role's rule (:attr:`layout`), which only guesses the
        axes of a leaf whose layer is unknown: a convolution ``(*k, in, out)`` reached by a
        fallback rule gets :math:`\mathrm{fan\_in} = k\cdot\mathrm{in}`, a torch/equinox
        ``(out, in)`` weight :math:`\mathrm{fan\_in} = \mathrm{in}`, an embedding table
        (Flax ``Embed``, equinox ``Embedding``) :math:`\mathrm{fan\_in} =` features. Returns
        ``self`` when the rule already gives the layout's fan on the shape the layer calls the
        initialiser with (the draw is then unchanged bit for bit).
        """
        probe = dataclasses.replace(self, layer_layout=None)
        want = layout.fans().denominator(self.mode)
        try:
            own = probe.fans(layout.call_shape()).denominator(self.mode)
        except ValueError:
            own = None
        if own is not None and math.isclose(own, want, rel_tol=1e-12):
            return probe
        return dataclasses.replace(self, layer_layout=layout)

    def _delegate(self, shape: tuple[int, ...]) -> Initializer:
        if self.cutoff is None:
            if self.layer_layout is not None:
                return VarianceScaling(
                    self.scale, self.mode, self.distribution, layout=self.layer_layout
                )
            i, o = self.axes(len(shape))
            return VarianceScaling(self.scale, self.mode, self.distribution, i, o)
        return truncated_normal(self.std(shape), None, -self.cutoff, self.cutoff)

    def _check_shape(self, shape):
        self.fans(tuple(max(d, 1) for d in shape))

    def _check_call(self, shape, dtype):
        shape, dtype = super()._check_call(shape, dtype)
        if self.cutoff is not None and jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"`{self._label}` with a `cutoff` (a truncated normal) is defined for real dtypes "
                f"only; got {np.dtype(dtype).name}."
            )
        return shape, dtype

    def _sample(self, key, shape, dtype):
        return self._delegate(shape)._sample(key, shape, dtype)

    def _law(self, shape, dtype):
        return self._delegate(shape)._law(shape, dtype)

    def std(self, shape) -> float:
        r""":math:`\sqrt{\mathrm{scale}/\mathrm{fan}}` for ``shape`` (the untruncated std)."""
        return math.sqrt(self.scale / self.fans(tuple(shape)).denominator(self.mode))

    def describe(self) -> str:
        law = {"normal": "N", "uniform": "U", "truncated_normal": "truncated N"}[self.distribution]
        cut = f" cut at ±{self.cutoff:g}σ (std not corrected)" if self.cutoff is not None else ""
        where = self.layout if self.layer_layout is None else self.layer_layout.describe()
        return f"{law}(0, {self.scale:g}/{self.mode}), {where} fans{cut}"


def fan_scaled(
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "normal",
    *,
    layout: str = "out_last",
    cutoff: float | None = None,
    dtype: DTypeLike | None = None,
) -> FanScaled:
    r"""Builds a variance-scaling initializer whose fans suit dense and ``DenseGeneral`` kernels.

    Variance :math:`\mathrm{scale}/n` with :math:`n` the ``fan_in``, ``fan_out`` or their mean
    (``mode``), like :func:`jinit.variance_scaling`.

    **Fans.** When :func:`jinit.reinit` or :func:`jinit.summary` knows the layer of the leaf
    (an nnx or equinox module, or ``layouts=jinit.layouts(model, x)`` for linen), the fans are
    the layer's (:class:`jinit.Layout`, via :meth:`FanScaled.with_layout`): a Flax
    ``DenseGeneral``/attention kernel its contracted axes, a convolution ``(*k, in, out)``
    :math:`\mathrm{fan\_in} = k\cdot\mathrm{in}`, a torch/equinox ``(out, in, *k)`` weight
    torch's fans, an embedding table (Flax ``Embed``, equinox ``Embedding``) :math:`\mathrm{fan\_in}
    =` features. For a leaf whose layer is unknown (a bare params dict, a direct call) the
    fans are read from the rank by ``layout``, the recipe's rule for the role it draws:

    * ``"in_first"``: input axis 0, the others are output — query/key/value kernels
      ``(d, heads, head_dim)`` have :math:`\mathrm{fan\_in} = d`;
    * ``"out_last"``: output axis -1, the others are input — the attention output kernel
      ``(heads, head_dim, d)`` has :math:`\mathrm{fan\_in} = \mathrm{heads}\cdot\mathrm{head\_dim}`;
    * ``"embed"``: input axis -1, the others are output — an embedding table ``(vocab, d)`` or
      a position table ``(1, n, d)`` has :math:`\mathrm{fan\_in} = d` (Flax's ``Embed`` and
      torch's convention);
    * ``"flax"``: jax's default, input axis -2, output axis -1, the rest receptive field (Flax
      ``Dense`` and ``Conv``); :func:`jinit.reinit` warns when it meets a rank >= 3 leaf of
      unknown layer outside a convolution, as for :func:`jinit.variance_scaling`.

    All four agree on ``fan_in`` of a rank-2 ``(in, out)`` kernel except ``"embed"``.
    With ``cutoff`` (``distribution="normal"`` only) the draw is
    :math:`\sigma Z`, :math:`\sigma^2 = \mathrm{scale}/n`, :math:`Z \sim \mathcal N(0,1)`
    conditioned on :math:`|Z| < \mathrm{cutoff}`, **without** variance correction — PyTorch's
    ``trunc_normal_(std=σ, a=-3σ, b=3σ)`` that OLMo uses (std :math:`0.98658\,\sigma` at 3).

    Args:
      scale: the variance multiplier (finite, >= 0).
      mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
      distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"`` (variance-corrected,
        cut at ±2σ, as :func:`jinit.variance_scaling`).
      layout: the rule for leaves of unknown layer: ``"out_last"`` (default), ``"in_first"``,
        ``"embed"`` or ``"flax"``.
      cutoff: truncation in units of σ (> 0) for an uncorrected truncated normal, or None.
      dtype: the initializer's default dtype.

    Returns:
      An initializer (laws :class:`~jinit.laws.Normal`, :class:`~jinit.laws.Uniform` or
      :class:`~jinit.laws.TruncatedNormal`).

    Examples:
      >>> import jinit
      >>> q = jinit.recipes.fan_scaled(1 / 8, layout="in_first")  # T5 query, d_kv = 8
      >>> round(jinit.law(q, (32, 4, 8)).std ** 2 * 32 * 8, 4)  # (d_model d_kv)^-1
      1.0
    """
    api = _P + "fan_scaled"
    scale = check_real(api, "scale", scale, nonneg=True)
    mode = check_choice(api, "mode", mode, _FAN_MODES)
    distribution = check_choice(api, "distribution", distribution, _FAN_DISTS)
    layout = check_choice(api, "layout", layout, _LAYOUTS)
    if cutoff is not None:
        cutoff = check_real(api, "cutoff", cutoff, positive=True)
        if distribution != "normal":
            raise ValueError(
                f"`{api}` takes a `cutoff` only with distribution='normal' (it truncates that "
                f"normal without correcting its variance); got distribution={distribution!r}."
            )
    return FanScaled(
        scale, mode, distribution, layout, cutoff, check_dtype_arg(api, dtype, allow_complex=True)
    )


# ---------------------------------------------------------------------------------------------
# Per-layer (depth-indexed) initialisers
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _PerLayer:
    """A contextual initialiser: the layer index parsed from the path picks the initialiser."""

    api: str
    role: str
    names: TransformerNames
    n_layers: int
    make: Callable[[int], Initializer]
    formula: str

    def __call__(self, key, leaf):
        i = self.names.layer_index(leaf.path)
        if i is None:
            raise ValueError(
                f"`{self.api}`: the {self.role} {leaf.path!r} is not inside a block named like "
                f"{self.names.block!r}, so its layer index is unknown. Pass "
                f"`names=jinit.recipes.TransformerNames(block=...)` with your block naming "
                f"(e.g. 'Block_{{i}}' or 'blocks/{{i}}')."
            )
        if i < 0:
            raise ValueError(
                f"`{self.api}`: {leaf.path!r} is in block {i + self.names.index_base}, below "
                f"`index_base={self.names.index_base}`. Pass `TransformerNames(index_base=0)` "
                f"for 0-based block names."
            )
        if i >= self.n_layers:
            raise ValueError(
                f"`{self.api}`: {leaf.path!r} is in layer {i}, but the recipe was built with "
                f"n_layers={self.n_layers}. Pass the model's number of blocks."
            )
        init = self.make(i)
        if leaf.layout is not None:  # drawn as the layer draws it, with its fans
            return draw(init, key, leaf.layout, leaf.dtype)
        return init(key, leaf.shape, leaf.dtype)

    def __repr__(self) -> str:
        return f"{self.api}[{self.role}: {self.formula}]"


def _contextual(fn):

    return contextual(fn)


# ---------------------------------------------------------------------------------------------
# GPT-2
# ---------------------------------------------------------------------------------------------


def gpt2(n_layers: int, *, stddev: float = 0.02, names: TransformerNames | None = None) -> Recipe:
    r"""Rules for GPT-2's initialisation (nanoGPT's ``_init_weights``).

    .. math::
        W \sim \mathcal N(0, 0.02^2), \qquad
        W_\mathrm{attn\_out}, W_\mathrm{mlp\_out} \sim
        \mathcal N\bigl(0, (0.02/\sqrt{2L})^2\bigr), \qquad b = 0,

    for every kernel and embedding table; the two projections per block that write into the
    residual stream are scaled by :math:`1/\sqrt{2L}` (:func:`jinit.gpt2_residual`) so the
    :math:`2L` residual contributions sum to a depth-independent variance. LayerNorm gains 1.

    Args:
      n_layers: the number of transformer blocks L (int >= 1).
      stddev: the base standard deviation (0.02; finite, > 0).
      names: parameter names (:class:`TransformerNames`; uses ``attn_out``, ``mlp_out``,
        ``embed``).

    Returns:
      A :class:`Recipe`: residual projections, embeddings, every other ``*kernel``, ``*bias``
      → 0, ``*scale`` → 1. Defining roles: ``attn_out`` and ``mlp_out`` (``reinit`` raises if
      either matches nothing).

    Examples:
      >>> import jinit
      >>> for pattern, init in jinit.recipes.gpt2(12)[:3]:
      ...     print(pattern, init)
      */out/kernel jinit.gpt2_residual(n_layers=12)
      *fc2/kernel jinit.gpt2_residual(n_layers=12)
      *linear2/kernel jinit.gpt2_residual(n_layers=12)

    References:
      Radford, Wu, Child, Luan, Amodei & Sutskever, "Language Models are Unsupervised Multitask
      Learners", 2019; karpathy/nanoGPT ``model.py``.
    """
    api = _P + "gpt2"
    n_layers = _layers(api, "n_layers", n_layers)
    stddev = check_real(api, "stddev", stddev, positive=True)
    nm = _names(api, names)
    residual = gpt2_residual(n_layers, stddev)
    base = transformer_normal(stddev)
    call = _call("gpt2", n_layers=n_layers)
    what = f"residual projection N(0, ({stddev:g}/√(2·{n_layers}))²)"
    needs = _tneed(api, call, nm, "attn_out", what) + _tneed(api, call, nm, "mlp_out", what)
    rules = [
        *_rules(nm.attn_out, residual),
        *_rules(nm.mlp_out, residual),
        *_rules(nm.embed, base),
        *_fallbacks(nm, base),
    ]
    return Recipe(rules, needs)


# ---------------------------------------------------------------------------------------------
# OLMo
# ---------------------------------------------------------------------------------------------

_OLMO_VARIANTS = ("mitchell", "full_megatron", "llama", "llama_depth")


def olmo(
    n_layers: int,
    variant: str = "mitchell",
    *,
    init_std: float = 0.02,
    cutoff: float = 3.0,
    names: TransformerNames | None = None,
) -> Recipe:
    r"""Rules for the OLMo initialisations (all truncated normals, cut at ±3σ, uncorrected).

    With :math:`\mathcal T(\sigma)` the normal :math:`\mathcal N(0, \sigma^2)` truncated to
    :math:`\pm 3\sigma` (PyTorch ``trunc_normal_(std=σ, a=-3σ, b=3σ)``, std :math:`0.98658\sigma`),
    :math:`n` a kernel's fan-in, :math:`d` the model width, :math:`L` the number of blocks,
    :math:`i` the 0-based block index and :math:`s` = ``init_std``:

    ======================  ================  ====================  =====================  ======
    variant                 q/k/v, mlp_in     attn_out, mlp_out     embeddings             head
    ======================  ================  ====================  =====================  ======
    ``"mitchell"``          T(1/√n)           T(1/√(2n(i+1)))       T(1/√d)                T(1/√d)
    ``"full_megatron"``     T(s)              T(s/√(2L))            T(s)                   T(1/√d)
    ``"llama"``             T(s)              T(s/√(2L))            N(0, 1)                T(1/√d)
    ``"llama_depth"``       T(s)              T(s/√(2(i+1)))        N(0, 1)                T(1/√d)
    ======================  ================  ====================  =====================  ======

    ``mitchell`` and ``full_megatron`` are ``InitFnType`` of allenai/OLMo ``olmo/model.py``
    (``OLMoBlock.reset_parameters``: ``attn_out`` std :math:`1/\sqrt{2 d (i+1)}`, ``ff_out``
    :math:`1/\sqrt{2\,\mathrm{ff\_out.in\_features}\,(i+1)}`; both are :math:`1/\sqrt{2n(i+1)}`);
    ``llama`` and ``llama_depth`` are allenai/OLMo-core ``InitMethod``, which also scales a gated
    MLP's ``w3`` like the outputs (give it as ``names.mlp_up``). Biases 0, norm gains 1. Not
    included: OLMo's plain ``normal`` (every weight N(0, s²): :func:`jinit.transformer_normal`),
    ``kaiming_normal``/``fan_in``, and OLMo-core's nGPT ``normalized``.

    Per-layer variants find the block index in the path with ``names.block`` (``"block_{i}"``);
    a residual projection outside such a block raises, rather than silently getting another std.

    Args:
      n_layers: the number of blocks L (int >= 1).
      variant: one of ``"mitchell"``, ``"full_megatron"``, ``"llama"``, ``"llama_depth"``.
      init_std: s, OLMo's ``init_std`` (0.02).
      cutoff: the truncation in units of σ (OLMo's ``init_cutoff_factor``, default 3).
      names: parameter names (:class:`TransformerNames`).

    Returns:
      A :class:`Recipe`: residual projections (and ``mlp_up``), embeddings, head, every other
      ``*kernel`` (the input projections), ``*bias`` → 0, ``*scale`` → 1. Defining roles:
      ``attn_out``, ``mlp_out``, ``mlp_up`` (when given) and ``head`` (``names.head=()`` for a
      model without a separate head).

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> params = {"block_1": {"attn": {"out": {"kernel": jnp.zeros((64, 64))}},
      ...                       "mlp": {"fc2": {"kernel": jnp.zeros((256, 64))}}},
      ...           "head": {"kernel": jnp.zeros((64, 100))}}
      >>> new = jinit.reinit(params, jax.random.key(0), jinit.recipes.olmo(2))
      >>> w = new["block_1"]["attn"]["out"]["kernel"]
      >>> bool(abs(w).max() <= 3 / (2 * 64 * 2) ** 0.5)  # cut at 3σ, σ = 1/√(2·64·2)
      True

    References:
      Groeneveld et al., "OLMo: Accelerating the Science of Language Models", 2024;
      allenai/OLMo ``olmo/model.py``; allenai/OLMo-core ``nn/transformer/init.py``.
    """
    api = _P + "olmo"
    n_layers = _layers(api, "n_layers", n_layers)
    variant = check_choice(api, "variant", variant, _OLMO_VARIANTS)
    s = check_real(api, "init_std", init_std, positive=True)
    c = check_real(api, "cutoff", cutoff, positive=True)
    nm = _names(api, names)

    def trunc(std: float) -> Initializer:
        return truncated_normal(std, None, -c, c)

    def fan(scale: float, mode: str = "fan_in", layout: str = "out_last") -> FanScaled:
        return fan_scaled(scale, mode, layout=layout, cutoff=c)

    head = fan(1.0)
    if variant == "mitchell":
        out = _contextual(
            _PerLayer(
                api,
                "residual projection",
                nm,
                n_layers,
                lambda i: fan(1.0 / (2 * (i + 1))),
                "T(1/√(2·fan_in·(i+1)))",
            )
        )
        embed: Initializer = fan(1.0, layout="embed")  # fan_in = features = d
        qkv: Initializer = fan(1.0, layout="in_first")  # (d, heads, head_dim): fan_in d
        inner: Initializer = fan(1.0, layout="flax")
        up = qkv
    else:
        inner = qkv = trunc(s)
        embed = trunc(s) if variant == "full_megatron" else normal(1.0)
        if variant == "llama_depth":
            out = _contextual(
                _PerLayer(
                    api,
                    "residual projection",
                    nm,
                    n_layers,
                    lambda i: trunc(s / math.sqrt(2 * (i + 1))),
                    f"T({s:g}/√(2(i+1)))",
                )
            )
        else:
            out = trunc(s / math.sqrt(2 * n_layers))
        up = out if variant.startswith("llama") else inner
    call = _call("olmo", n_layers=n_layers, variant=variant)
    needs = [
        *_tneed(api, call, nm, "attn_out", "residual projection"),
        *_tneed(api, call, nm, "mlp_out", "residual projection"),
        *_tneed(api, call, nm, "mlp_up", "gated MLP up projection"),
        *_tneed(api, call, nm, "head", "output head T(1/√d)"),
    ]
    rules = [
        *_rules(nm.attn_out, out),
        *_rules(nm.mlp_out, out),
        *_rules(nm.mlp_up, up),
        *_rules(nm.embed, embed),
        *_rules(nm.head, head),
        *_rules(nm.query + nm.key + nm.value, qkv),
        *_fallbacks(nm, inner),
    ]
    return Recipe(rules, needs)


# ---------------------------------------------------------------------------------------------
# T5
# ---------------------------------------------------------------------------------------------


def t5(
    d_kv: int,
    *,
    distribution: str = "normal",
    embed_stddev: float = 1.0,
    names: TransformerNames | None = None,
) -> Recipe:
    r"""Rules for T5's (Mesh TensorFlow) initialisation: fan-in normals, query ÷ √d_kv.

    .. math::
        W_q \sim \mathcal N\bigl(0, (d_\mathrm{model} d_\mathrm{kv})^{-1}\bigr),\quad
        W_k, W_v \sim \mathcal N(0, d_\mathrm{model}^{-1}),\quad
        W_o \sim \mathcal N\bigl(0, (h\, d_\mathrm{kv})^{-1}\bigr),\quad
        W_i \sim \mathcal N(0, d_\mathrm{model}^{-1}),\quad
        W_{o,\mathrm{ff}} \sim \mathcal N(0, d_\mathrm{ff}^{-1}),

    embeddings :math:`\mathcal N(0, 1)`. Every kernel is :math:`\mathcal N(0, 1/\mathrm{fan\_in})`
    except the query, whose extra :math:`1/d_\mathrm{kv}` replaces the usual
    :math:`1/\sqrt{d_\mathrm{kv}}` scaling of the attention logits ("folded into the
    initializers"; T5 does not scale the logits). Fans are read per role
    (:func:`fan_scaled`), so ``DenseGeneral`` attention kernels get ``fan_in``
    :math:`d_\mathrm{model}` (q, k, v) and :math:`h\,d_\mathrm{kv}` (o). The LM head is a
    fan-in normal too (:math:`\mathcal N(0, d_\mathrm{model}^{-1})`, HF ``lm_head``).
    Relative-position bias tables are not covered (add a rule).

    Args:
      d_kv: the head dimension (int >= 1).
      distribution: ``"normal"`` (Mesh TF, HF) or ``"truncated_normal"`` (t5x: variance-scaling
        truncated normal, same variances).
      embed_stddev: the embeddings' std (1.0; finite, > 0).
      names: parameter names (:class:`TransformerNames`; uses ``query``, ``key``, ``value``,
        ``embed``).

    Returns:
      A :class:`Recipe`: query, key, value, embeddings, every other ``*kernel``, ``*bias`` → 0,
      ``*scale`` → 1. Defining roles: ``query``, ``key``, ``value``.

    Examples:
      >>> import jinit
      >>> q = jinit.recipes.t5(d_kv=64)[0][1]
      >>> round(jinit.law(q, (512, 8, 64)).std ** -2)  # d_model · d_kv
      32768

    References:
      Raffel et al., "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
      Transformer", JMLR 2020; tensorflow/mesh ``mesh_tensorflow/transformer/attention.py``;
      google-research/t5x ``examples/t5/layers.py``.
    """
    api = _P + "t5"
    d_kv = _layers(api, "d_kv", d_kv)
    distribution = check_choice(api, "distribution", distribution, ("normal", "truncated_normal"))
    embed_stddev = check_real(api, "embed_stddev", embed_stddev, positive=True)
    nm = _names(api, names)
    q = fan_scaled(1.0 / d_kv, "fan_in", distribution, layout="in_first")
    kv = fan_scaled(1.0, "fan_in", distribution, layout="in_first")
    call = _call("t5", d_kv=d_kv)
    needs = [
        *_tneed(api, call, nm, "query", "N(0, 1/(d_model·d_kv))"),
        *_tneed(api, call, nm, "key", "N(0, 1/d_model)"),
        *_tneed(api, call, nm, "value", "N(0, 1/d_model)"),
    ]
    rules = [
        *_rules(nm.query, q),
        *_rules(nm.key, kv),
        *_rules(nm.value, kv),
        *_rules(nm.attn_out, fan_scaled(1.0, "fan_in", distribution)),
        *_rules(nm.embed, normal(embed_stddev)),
        *_fallbacks(nm, fan_scaled(1.0, "fan_in", distribution, layout="flax")),
    ]
    return Recipe(rules, needs)


# ---------------------------------------------------------------------------------------------
# DeepNorm
# ---------------------------------------------------------------------------------------------


class DeepNormConstants(NamedTuple):
    """DeepNorm's residual weight α and init gain β, per side (None for a side that is absent)."""

    encoder_alpha: float | None
    encoder_beta: float | None
    decoder_alpha: float | None
    decoder_beta: float | None


_DEEPNORM_CONVENTIONS = ("paper", "torchscale")


def deepnorm_constants(
    encoder_layers: int = 0, decoder_layers: int = 0, *, convention: str = "paper"
) -> DeepNormConstants:
    r"""DeepNet's constants α (residual scale) and β (init gain), Wang et al. 2022, Figure 2.

    DeepNorm computes :math:`x_{l+1} = \mathrm{LN}(\alpha x_l + G_l(x_l))`, and multiplies the
    Xavier gain of the FFN, value and output projections by β. With N encoder and M decoder
    layers:

    ==============================  ===========================  ============================
    architecture                    α                            β
    ==============================  ===========================  ============================
    encoder-only (N)                :math:`(2N)^{1/4}`           :math:`(8N)^{-1/4}`
    decoder-only (M)                :math:`(2M)^{1/4}`           :math:`(8M)^{-1/4}`
    encoder–decoder, encoder        :math:`0.81 (N^4M)^{1/16}`   :math:`0.87 (N^4M)^{-1/16}`
    encoder–decoder, decoder        :math:`(3M)^{1/4}`           :math:`(12M)^{-1/4}`
    ==============================  ===========================  ============================

    **Reconciling the paper and torchscale.** microsoft/torchscale (``architecture/encoder.py``,
    ``decoder.py``) divides the weights by ``init_scale``: :math:`(8N)^{1/4}`, :math:`(8M)^{1/4}`,
    :math:`(12M)^{1/4}` — the paper's β exactly — but for the encoder of an encoder–decoder by
    ``init_scale = (N^4 M)^{1/16} / 1.15``, i.e. :math:`\beta = 1.15\,(N^4M)^{-1/16}`, which is
    the paper's :math:`0.87 \approx 1/1.15` applied the wrong way round (a factor
    :math:`1.15^2 = 1.3225` larger). The α of both agree. ``convention="paper"`` (default) uses the
    paper's table, as xformers' ``get_deepnorm_coefficients`` does; ``convention="torchscale"``
    reproduces torchscale's encoder β.

    Args:
      encoder_layers: N (int >= 0; 0 for a decoder-only model).
      decoder_layers: M (int >= 0; 0 for an encoder-only model). At least one must be >= 1.
      convention: ``"paper"`` or ``"torchscale"``.

    Returns:
      A :class:`DeepNormConstants`; the fields of an absent side are None.

    Examples:
      >>> import jinit
      >>> c = jinit.recipes.deepnorm_constants(decoder_layers=12)
      >>> round(c.decoder_alpha, 4), round(c.decoder_beta, 4)
      (2.2134, 0.3195)

    References:
      Wang, Ma, Dong, Huang, Zhang & Wei, "DeepNet: Scaling Transformers to 1,000 Layers", 2022
      (arXiv:2203.00555).
    """
    return _deepnorm_constants(
        _P + "deepnorm_constants", encoder_layers, decoder_layers, convention
    )


def _deepnorm_constants(
    api: str, encoder_layers: Any, decoder_layers: Any, convention: Any
) -> DeepNormConstants:
    """:func:`deepnorm_constants`, with errors naming ``api`` (the public function called)."""
    n = _layers(api, "encoder_layers", encoder_layers, minimum=0)
    m = _layers(api, "decoder_layers", decoder_layers, minimum=0)
    convention = check_choice(api, "convention", convention, _DEEPNORM_CONVENTIONS)
    if n == 0 and m == 0:
        raise ValueError(
            f"`{api}` needs `encoder_layers` or `decoder_layers` >= 1; got both 0. Pass e.g. "
            f"`decoder_layers=12` for a decoder-only model."
        )
    if m == 0:
        return DeepNormConstants((2 * n) ** 0.25, (8 * n) ** -0.25, None, None)
    if n == 0:
        return DeepNormConstants(None, None, (2 * m) ** 0.25, (8 * m) ** -0.25)
    nm4 = (n**4 * m) ** (1 / 16)
    enc_beta = 0.87 / nm4 if convention == "paper" else 1.15 / nm4
    return DeepNormConstants(0.81 * nm4, enc_beta, (3 * m) ** 0.25, (12 * m) ** -0.25)


def _xavier_normal(gain: float, layout: str) -> FanScaled:
    return fan_scaled(gain * gain, "fan_avg", "normal", layout=layout)


def deepnorm(
    encoder_layers: int = 0,
    decoder_layers: int = 0,
    *,
    convention: str = "paper",
    names: TransformerNames | None = None,
) -> Recipe:
    r"""Rules for DeepNorm's initialisation (DeepNet, Wang et al. 2022).

    The paper's pseudo-code: ``xavier_normal_(w, gain=β)`` for the FFN, ``v_proj`` and
    ``out_proj`` weights, ``xavier_normal_(w, gain=1)`` for ``q_proj`` and ``k_proj``, i.e.

    .. math::
        W_{v,o,\mathrm{ffn}} \sim \mathcal N\Bigl(0, \beta^2\frac{2}{\mathrm{fan\_in}
        + \mathrm{fan\_out}}\Bigr), \qquad
        W_{q,k} \sim \mathcal N\Bigl(0, \frac{2}{\mathrm{fan\_in} + \mathrm{fan\_out}}\Bigr),

    with β from :func:`deepnorm_constants` (the encoder's β inside ``names.encoder`` and the
    decoder's inside ``names.decoder`` for an encoder–decoder — the decoder's cross-attention
    included, as in torchscale; no scoping for encoder-only or decoder-only models). The model
    must also scale its residual by α (:func:`deepnorm_constants`). Both conventions draw
    Xavier normals (the paper); torchscale itself draws fairseq's Xavier uniforms and divides.
    Embeddings and the head are not covered by the paper: add rules for them. Biases 0.

    Args:
      encoder_layers: N (int >= 0).
      decoder_layers: M (int >= 0); at least one of N, M >= 1.
      convention: ``"paper"`` (default) or ``"torchscale"``; see :func:`deepnorm_constants`.
      names: parameter names (:class:`TransformerNames`; uses ``query``, ``key``, ``value``,
        ``attn_out``, ``mlp_in``, ``mlp_out``, ``encoder``, ``decoder``).

    Returns:
      A :class:`Recipe`: per side, value/out/ffn kernels (gain β) and query/key kernels (gain
      1); then ``*bias`` → 0, ``*scale`` → 1. Defining roles: the β-scaled ``value``,
      ``attn_out``, ``mlp_in``, ``mlp_out`` of each side.

    Examples:
      >>> import jinit
      >>> rules = jinit.recipes.deepnorm(decoder_layers=12)
      >>> rules[0][0], round(jinit.law(rules[0][1], (64, 64)).std * 8 * 96 ** 0.25, 6)
      ('*/value/kernel', 1.0)

    References:
      Wang, Ma, Dong, Huang, Zhang & Wei, "DeepNet: Scaling Transformers to 1,000 Layers", 2022
      (arXiv:2203.00555); microsoft/torchscale ``torchscale/architecture/encoder.py``.
    """
    api = _P + "deepnorm"
    c = _deepnorm_constants(api, encoder_layers, decoder_layers, convention)
    nm = _names(api, names)
    both = c.encoder_beta is not None and c.decoder_beta is not None
    sides = []
    if c.encoder_beta is not None:
        sides.append((nm.encoder if both else "", c.encoder_beta))
    if c.decoder_beta is not None:
        sides.append((nm.decoder if both else "", c.decoder_beta))
    rules: Rules = []
    needs: list[_Need] = []
    call = _call("deepnorm", encoder_layers=encoder_layers, decoder_layers=decoder_layers)
    for scope, beta in sides:
        rules += _rules(_scoped(scope, nm.value), _xavier_normal(beta, "in_first"))
        rules += _rules(
            _scoped(scope, nm.attn_out + nm.mlp_in + nm.mlp_out), _xavier_normal(beta, "out_last")
        )
        rules += _rules(_scoped(scope, nm.query + nm.key), _xavier_normal(1.0, "in_first"))
        where = f" in {scope!r}" if scope else ""
        for role in ("value", "attn_out", "mlp_in", "mlp_out"):
            pats = _scoped(scope, getattr(nm, role))
            needs += _tneed(api, call, nm, role, f"Xavier gain β = {beta:.4g}{where}", pats)
    rules += _fallbacks(nm, None)
    return Recipe(rules, needs)


# ---------------------------------------------------------------------------------------------
# T-Fixup
# ---------------------------------------------------------------------------------------------


def tfixup(
    encoder_layers: int = 0,
    decoder_layers: int = 0,
    *,
    names: TransformerNames | None = None,
) -> Recipe:
    r"""Rules for T-Fixup (Huang, Perez, Ba & Volkovs 2020): transformers without LayerNorm/warm-up.

    Xavier (uniform, gain 1) for every projection, then, with N encoder and M decoder layers:

    * encoder value, output, ``fc1``, ``fc2`` kernels × :math:`0.67\,N^{-1/4}`;
    * decoder value, output, ``fc1``, ``fc2`` kernels (self- and cross-attention) ×
      :math:`(9M)^{-1/4}`;
    * input embeddings :math:`\mathcal N(0, d^{-1})` (std :math:`d^{-1/2}`, fairseq's
      ``Embedding``) × :math:`(9N)^{-1/4}` (encoder) or :math:`(9M)^{-1/4}` (decoder);
    * the output head :math:`\mathcal N(0, d^{-1})`, unscaled (fairseq's ``embed_out``).

    The scale factors multiply the weights, so Xavier's variance :math:`2/(\mathrm{fan\_in} +
    \mathrm{fan\_out})` is multiplied by their square. Constants as in layer6ai-labs/T-Fixup
    (``fairseq/modules/transformer_layer.py``, ``fairseq/models/transformer.py``), which scale
    each side's embedding by its own depth; the reference code also multiplies ``v_proj`` by √2,
    which only undoes fairseq's ``xavier_uniform_(gain=1/√2)`` for q/k/v: here every projection
    is a gain-1 Xavier, so no √2 (the paper's "Xavier initialization for all parameters"). An
    encoder-only (decoder-only) model takes the encoder (decoder) constants with no scoping.

    Args:
      encoder_layers: N (int >= 0).
      decoder_layers: M (int >= 0); at least one of N, M >= 1.
      names: parameter names (:class:`TransformerNames`; uses ``query``, ``key``, ``value``,
        ``attn_out``, ``mlp_in``, ``mlp_out``, ``embed``, ``head``, ``encoder``, ``decoder``).

    Returns:
      A :class:`Recipe`: per side, scaled value/out/ffn kernels, query/key kernels, embeddings;
      then the head, ``*bias`` → 0, ``*scale`` → 1. Defining roles: each side's scaled
      ``value``, ``attn_out``, ``mlp_in``, ``mlp_out`` and ``embed``.

    Examples:
      >>> import jinit
      >>> v = jinit.recipes.tfixup(encoder_layers=6)[0][1]   # 0.67 · 6^(-1/4) · Xavier
      >>> round(jinit.law(v, (64, 64)).std / (2 / 128) ** 0.5, 4)
      0.4281

    References:
      Huang, Perez, Ba & Volkovs, "Improving Transformer Optimization Through Better
      Initialization", ICML 2020; layer6ai-labs/T-Fixup.
    """
    api = _P + "tfixup"
    n = _layers(api, "encoder_layers", encoder_layers, minimum=0)
    m = _layers(api, "decoder_layers", decoder_layers, minimum=0)
    if n == 0 and m == 0:
        raise ValueError(
            f"`{api}` needs `encoder_layers` or `decoder_layers` >= 1; got both 0. Pass e.g. "
            f"`encoder_layers=6, decoder_layers=6`."
        )
    nm = _names(api, names)
    both = n > 0 and m > 0
    sides = []
    if n:
        sides.append((nm.encoder if both else "", 0.67 * n**-0.25, (9 * n) ** -0.25))
    if m:
        sides.append((nm.decoder if both else "", (9 * m) ** -0.25, (9 * m) ** -0.25))

    def xavier(gain: float, layout: str) -> FanScaled:
        return fan_scaled(gain * gain, "fan_avg", "uniform", layout=layout)

    rules: Rules = []
    needs: list[_Need] = []
    call = _call("tfixup", encoder_layers=n, decoder_layers=m)
    for scope, g, e in sides:
        rules += _rules(_scoped(scope, nm.value), xavier(g, "in_first"))
        rules += _rules(_scoped(scope, nm.attn_out + nm.mlp_in + nm.mlp_out), xavier(g, "out_last"))
        rules += _rules(_scoped(scope, nm.query + nm.key), xavier(1.0, "in_first"))
        rules += _rules(_scoped(scope, nm.embed), fan_scaled(e * e, layout="embed"))
        where = f" in {scope!r}" if scope else ""
        for role in ("value", "attn_out", "mlp_in", "mlp_out"):
            pats = _scoped(scope, getattr(nm, role))
            needs += _tneed(api, call, nm, role, f"Xavier × {g:.4g}{where}", pats)
        needs += _tneed(api, call, nm, "embed", f"N(0, 1/d) × {e:.4g}{where}")
    rules += [
        *_rules(nm.head, fan_scaled(1.0, "fan_in")),
        *_fallbacks(nm, None),
    ]
    return Recipe(rules, needs)


# ---------------------------------------------------------------------------------------------
# Residual networks: Fixup, ZerO, SkipInit, ReZero
# ---------------------------------------------------------------------------------------------


#: Residual-network naming presets: ``{name: (layer, index_base, classifier)}``.
RESNET_PRESETS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    # Flax examples/imagenet/models.py: ResNetBlock_b/Conv_0, Conv_1 (BottleneckResNetBlock_b:
    # Conv_0..Conv_2), shortcut conv_proj, stem conv_init, classifier the top-level Dense_0.
    "flax_resnet": ("*Block_*/Conv_{j}/kernel", 0, ("*/Dense_0/kernel",)),
}
_FIXUP_DEFAULT = ("*block*/conv{j}/kernel", 1, ("*head/kernel",))


def _branch_layer(api: str, layer: Any, m: int, base: int) -> list[str]:
    if not isinstance(layer, str) or "{j}" not in layer:
        raise ValueError(
            f"`{api}` needs `layer` to be a glob with the placeholder '{{j}}' for the position "
            f"of a layer in its residual branch (counted from `index_base`); got {layer!r}. "
            f"Pass e.g. `layer='*block*/conv{{j}}/kernel'` (index_base=1) or "
            f"`layer='*Block_*/Conv_{{j}}/kernel', index_base=0` (or preset='flax_resnet')."
        )
    return [layer.replace("{j}", str(j)) for j in range(base, base + m)]


def _resnet_names(
    api: str, preset: Any, layer: Any, index_base: Any, classifier: Any
) -> tuple[str, int, tuple[str, ...]]:
    """(layer, index_base, classifier) from a preset and explicit overrides."""
    if preset is None:
        d_layer, d_base, d_cls = _FIXUP_DEFAULT
    else:
        preset = check_choice(api, "preset", preset, tuple(RESNET_PRESETS))
        d_layer, d_base, d_cls = RESNET_PRESETS[preset]
    layer = d_layer if layer is None else layer
    base = d_base if index_base is None else _index_base(api, index_base)
    cls = d_cls if classifier is None else _patterns(api, "classifier", classifier)
    return layer, base, cls


_RESNET_FIX = (
    "`preset='flax_resnet'` (Flax's ImageNet ResNet: ResNetBlock_i/Conv_j, 0-based) or "
    "`layer='*<block>*/<conv>{j}/kernel', index_base=0 or 1` (and `classifier=`)"
)


def _gains_to_one(key, leaf):
    """Scalar multipliers → 1; a norm gain vector (e.g. BatchNorm γ) is kept as it is."""
    del key
    if math.prod(leaf.shape) == 1:
        return jnp.ones(leaf.shape, leaf.dtype)
    return leaf.value


def fixup(
    n_branches: int,
    branch_layers: int = 2,
    *,
    layer: str | None = None,
    index_base: int | None = None,
    classifier: Patterns | None = None,
    mode: str = "fan_in",
    multipliers: Patterns = "*scale",
    preset: str | None = None,
) -> Recipe:
    r"""Rules for Fixup (Zhang, Dauphin & Ma 2019): residual networks trained without normalisation.

    With :math:`L` residual branches of :math:`m` layers each:

    1. the classification layer and the last layer of every residual branch are zero;
    2. the other branch layers get He init scaled by :math:`L^{-1/(2m-2)}`:
       :math:`W \sim \mathcal N\bigl(0, \tfrac{2}{n} L^{-1/(m-1)}\bigr)`
       (:math:`m = 2`: std × :math:`L^{-1/2}`; :math:`m = 3`: × :math:`L^{-1/4}`);
    3. other kernels (stem, projection shortcuts) get plain He init;
    4. the scalar biases (Fixup's ``bias1a`` ...) and every ``*bias*`` are 0, the scalar
       multipliers (``multipliers``) are 1. A non-scalar leaf matching ``multipliers`` (a
       BatchNorm or LayerNorm gain γ) is **kept** as the model initialised it: Flax's ImageNet
       ResNet zero-initialises the last γ of each block on purpose.

    The He fan is ``mode`` (:math:`n` = fan_in by default, like He et al.; hongyi-zhang/Fixup's
    ImageNet code uses torch's ``out·k·k``, i.e. ``mode="fan_out"``).

    **Naming.** ``layer`` names the j-th layer of a branch with ``{j}`` counted from
    ``index_base``: the default ``"*block*/conv{j}/kernel"`` with ``index_base=1`` (``conv1``,
    ``conv2``, as in the paper's code). ``preset="flax_resnet"`` names Flax's ImageNet ResNet
    (``examples/imagenet/models.py``): ``layer="*Block_*/Conv_{j}/kernel"``, ``index_base=0``
    (``Conv_0``, ``Conv_1``; ``branch_layers=3`` for ``BottleneckResNetBlock``),
    ``classifier="*/Dense_0/kernel"``; explicit arguments override a preset. If the last branch
    layers, the other branch layers or the classifier match no parameter, ``reinit`` raises.

    Args:
      n_branches: the number of residual branches L (int >= 1).
      branch_layers: the number of layers m in a branch (int >= 2; the exponent needs m > 1).
      layer: a glob of the j-th layer of a branch, with ``{j}``.
      index_base: the index of the first layer of a branch in ``layer`` names (0 or 1).
      classifier: the classification layer's kernel(s).
      mode: ``"fan_in"`` or ``"fan_out"`` for He's fan.
      multipliers: the scalar multipliers' names (initialised to 1).
      preset: ``None`` or ``"flax_resnet"``.

    Returns:
      A :class:`Recipe`: last branch layers → 0, classifier → 0, other branch layers, other
      ``*kernel``, ``*bias*`` → 0, scalar multipliers → 1.

    Examples:
      >>> import jinit
      >>> rules = jinit.recipes.fixup(16, 2)
      >>> [p for p, _ in rules[:3]]
      ['*block*/conv2/kernel', '*head/kernel', '*block*/conv1/kernel']
      >>> round(jinit.law(rules[2][1], (3, 3, 64, 64)).std * (9 * 64 / 2) ** 0.5, 6)  # 16^(-1/2)
      0.25
      >>> [p for p, _ in jinit.recipes.fixup(8, 2, preset="flax_resnet")[:3]]
      ['*Block_*/Conv_1/kernel', '*/Dense_0/kernel', '*Block_*/Conv_0/kernel']

    References:
      Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning Without Normalization",
      ICLR 2019; hongyi-zhang/Fixup.
    """
    api = _P + "fixup"
    n = _layers(api, "n_branches", n_branches)
    m = _layers(api, "branch_layers", branch_layers, minimum=2)
    layer, base, classifier = _resnet_names(api, preset, layer, index_base, classifier)
    layers = _branch_layer(api, layer, m, base)
    mode = check_choice(api, "mode", mode, ("fan_in", "fan_out"))
    multipliers = _patterns(api, "multipliers", multipliers)
    scaled = variance_scaling(2.0 * n ** (-1.0 / (m - 1)), mode, "normal")
    call = _call("fixup", n_branches=n, branch_layers=m)
    needs = [
        *_need(api, call, "last layer of each branch (zero)", layers[-1:], _RESNET_FIX),
        *_need(
            api, call, f"other branch layers (He × {n}^(-1/{2 * m - 2}))", layers[:-1], _RESNET_FIX
        ),
        *_need(api, call, "classifier (zero)", classifier, _RESNET_FIX),
    ]
    gains = _contextual(_gains_to_one)
    rules = [
        (layers[-1], zeros),
        *_rules(classifier, zeros),
        *[(p, scaled) for p in layers[:-1]],
        Rule("*kernel", variance_scaling(2.0, mode, "normal"), fallback=True),
        ("*bias*", zeros),
        *_rules(multipliers, gains),
    ]
    return Recipe(rules, needs)


def zerO(  # noqa: N802 - the paper's spelling, as jinit.zerO
    branch_layers: int = 2,
    *,
    layer: str | None = None,
    index_base: int | None = None,
    preset: str | None = None,
) -> Recipe:
    r"""Rules for ZerO initialisation of a residual network (Zhao, Schäfer & Anandkumar 2022).

    The last layer of every residual branch is zero, so each block starts as the identity; every
    other kernel is :func:`jinit.zerO` (identity, partial identity, or a normalised Hadamard
    block when widening; conv kernels at the spatial centre); biases 0, norm gains 1. The
    network is deterministic at initialisation: the key is not used.

    Args:
      branch_layers: the number of layers m in a residual branch (int >= 1).
      layer: a glob of the j-th layer of a branch, with ``{j}`` counted from ``index_base``
        (default ``"*block*/conv{j}/kernel"``, 1-based; see :func:`fixup` for the presets).
      index_base: the index of the first layer of a branch in ``layer`` names (0 or 1).
      preset: ``None`` or ``"flax_resnet"`` (``*Block_*/Conv_{j}/kernel``, 0-based).

    Returns:
      A :class:`Recipe`: last branch layers → 0, ``*kernel`` → ZerO, ``*bias`` → 0,
      ``*scale`` → 1. Defining role: the last branch layers (``reinit`` raises if none match).

    Examples:
      >>> import jinit
      >>> jinit.recipes.zerO(2)[:2]
      [('*block*/conv2/kernel', jinit.zeros), Rule('*kernel', jinit.zerO(), fallback=True)]

    References:
      Zhao, Schäfer & Anandkumar, "ZerO Initialization: Initializing Neural Networks with only
      Zeros and Ones", TMLR 2022 (arXiv:2110.12661), Algorithm 2.
    """
    api = _P + "zerO"
    m = _layers(api, "branch_layers", branch_layers)
    layer, base, _ = _resnet_names(api, preset, layer, index_base, None)
    layers = _branch_layer(api, layer, m, base)
    call = _call("zerO", branch_layers=m)
    needs = _need(api, call, "last layer of each branch (zero)", layers[-1:], _RESNET_FIX)
    rules = [
        (layers[-1], zeros),
        Rule("*kernel", _zerO_init(), fallback=True),
        Rule("*bias", zeros, fallback=True),
        Rule("*scale", ones, fallback=True),
    ]
    return Recipe(rules, needs)


def skipinit(gates: Patterns = "*skip_gain") -> Recipe:
    r"""Rules for SkipInit (De & Smith 2020): residual gates start at zero.

    Each residual block computes :math:`x + \alpha f(x)` with a learnable scalar :math:`\alpha`
    initialised to 0, so every block starts as the identity (NFNets call it ``skip_gain``).
    Combine with rules for the other parameters: ``skipinit() + other_rules``.

    Args:
      gates: glob(s) of the gate parameters (``"*skip_gain"``).

    Returns:
      A :class:`Recipe`: the gates → 0 (``reinit`` raises if no gate matches).

    Examples:
      >>> import jinit
      >>> jinit.recipes.skipinit()
      [('*skip_gain', jinit.zeros)]

    References:
      De & Smith, "Batch Normalization Biases Residual Blocks Towards the Identity Function in
      Deep Networks", NeurIPS 2020.
    """
    api = _P + "skipinit"
    gates = _patterns(api, "gates", gates)
    fix = "`gates='*<your gate>'`"
    return Recipe(_rules(gates, zeros), _need(api, "skipinit()", "gates (zero)", gates, fix))


def rezero(gates: Patterns = "*alpha") -> Recipe:
    r"""Rules for ReZero (Bachlechner et al. 2020): :math:`x_{i+1} = x_i + \alpha_i F(x_i)`,
    :math:`\alpha_i = 0`.

    Same rule as :func:`skipinit` with ReZero's name for the gate (the paper's :math:`\alpha`;
    the reference code calls it ``resweight``).

    Args:
      gates: glob(s) of the gate parameters (``"*alpha"``).

    Returns:
      A :class:`Recipe`: the gates → 0 (``reinit`` raises if no gate matches).

    Examples:
      >>> import jinit
      >>> jinit.recipes.rezero(("*alpha", "*resweight"))
      [('*alpha', jinit.zeros), ('*resweight', jinit.zeros)]

    References:
      Bachlechner, Majumder, Mao, Cottrell & McAuley, "ReZero is All You Need: Fast Convergence
      at Large Depth", UAI 2021 (arXiv:2003.04887).
    """
    api = _P + "rezero"
    gates = _patterns(api, "gates", gates)
    fix = "`gates='*<your gate>'`"
    return Recipe(_rules(gates, zeros), _need(api, "rezero()", "gates (zero)", gates, fix))


# ---------------------------------------------------------------------------------------------
# Recurrent networks: IRNN, LSTM gate biases, chrono
# ---------------------------------------------------------------------------------------------


def irnn(
    gain: float = 1.0,
    input_stddev: float = 0.001,
    *,
    recurrent: Patterns = ("*/h/kernel", "*/dense_h/kernel"),
    inputs: Patterns = ("*/i/kernel", "*/dense_i/kernel"),
    biases: Patterns = ("*/i/bias", "*/dense_i/bias"),
) -> Recipe:
    r"""Rules for an IRNN (Le, Jaitly & Hinton 2015): ReLU RNN with identity recurrence.

    .. math::
        W_{hh} = \mathrm{gain}\cdot I, \qquad W_{xh} \sim \mathcal N(0, 0.001^2), \qquad b = 0.

    Default names are Flax's ``SimpleCell``: linen ``h``/``i``, nnx ``dense_h``/``dense_i``
    (use ``activation_fn=jax.nn.relu``); the rules touch only the cell's parameters. Le et al.
    also use a scaled identity (e.g. 0.01·I for some tasks): pass ``gain``.

    Args:
      gain: the recurrent identity's scale (finite, > 0).
      input_stddev: the input kernel's std (0.001, the Keras ``mnist_irnn`` example; > 0).
      recurrent: glob(s) of the recurrent kernel.
      inputs: glob(s) of the input kernel.
      biases: glob(s) of the cell's bias.

    Returns:
      A :class:`Recipe`: recurrent kernel → gain·I, input kernel → N(0, input_stddev²), bias
      → 0. Defining roles: the recurrent and input kernels.

    Examples:
      >>> import jinit
      >>> jinit.recipes.irnn()[0]
      ('*/h/kernel', jinit.identity())

    References:
      Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
      Units", 2015 (arXiv:1504.00941).
    """
    api = _P + "irnn"
    gain = check_real(api, "gain", gain, positive=True)
    input_stddev = check_real(api, "input_stddev", input_stddev, positive=True)
    recurrent = _patterns(api, "recurrent", recurrent)
    inputs = _patterns(api, "inputs", inputs)
    rules = [
        *_rules(recurrent, identity(gain)),
        *_rules(inputs, normal(input_stddev)),
        *_rules(_patterns(api, "biases", biases), zeros),
    ]
    needs = [
        *_need(api, "irnn()", "recurrent kernel (gain·I)", recurrent, "`recurrent='*<h>/kernel'`"),
        *_need(api, "irnn()", "input kernel", inputs, "`inputs='*<i>/kernel'`"),
    ]
    return Recipe(rules, needs)


def lstm(forget_bias: float = 1.0) -> Recipe:
    r"""Rules for Flax's ``LSTMCell`` (linen and nnx) with the forget-gate bias set to 1.

    Flax's cell has one dense layer per gate and input: input kernels ``ii``, ``if`` (nnx:
    ``if_``), ``ig``, ``io`` without bias and recurrent ``hi``, ``hf``, ``hg``, ``ho`` with bias.
    The rules keep Flax's defaults — input kernels ``lecun_normal``, recurrent kernels
    ``orthogonal``, biases 0 — except the forget-gate bias ``hf/bias`` = ``forget_bias``, so the
    cell starts by remembering (:math:`\sigma(1) = 0.73`), as Jozefowicz et al. 2015 recommend
    (Gers et al. 2000 introduced it). For packed ``4H`` biases use :func:`lstm_bias`.

    Args:
      forget_bias: the forget-gate bias (1.0).

    Returns:
      A :class:`Recipe` for every parameter of a flax ``LSTMCell`` (``reinit`` raises if no
      ``hf/bias`` matches).

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit
      >>> cell = nn.LSTMCell(8)
      >>> x = jnp.ones((1, 4))
      >>> params = cell.init(jax.random.key(0), cell.initialize_carry(jax.random.key(1), x.shape),
      ...                    x)["params"]
      >>> new = jinit.reinit(params, jax.random.key(2), jinit.recipes.lstm())
      >>> float(new["hf"]["bias"][0]), float(new["hi"]["bias"][0])
      (1.0, 0.0)

    References:
      Jozefowicz, Zaremba & Sutskever, "An Empirical Exploration of Recurrent Network
      Architectures", ICML 2015; Gers, Schmidhuber & Cummins, "Learning to Forget", 2000.
    """
    api = _P + "lstm"
    forget_bias = check_real(api, "forget_bias", forget_bias)
    rules = [
        ("*/hf/bias", constant(forget_bias)),
        ("*/h[igo]/bias", zeros),
        ("*/h[ifgo]/kernel", orthogonal()),
        ("*/i[ifgo]/kernel", lecun_normal()),
        ("*/if_/kernel", lecun_normal()),
    ]
    fix = "the parameters of a Flax `LSTMCell` (or `jinit.recipes.lstm_bias` for a packed bias)"
    needs = _need(api, "lstm()", "forget-gate bias hf/bias", ("*/hf/bias",), fix)
    return Recipe(rules, needs)


def _gate_order(api: str, gate_order: Any) -> str:
    if not isinstance(gate_order, str) or sorted(gate_order) != sorted("ifgo"):
        raise ValueError(
            f"`{api}` needs `gate_order` to be a permutation of 'ifgo' (input, forget, cell, "
            f"output) giving the order of the gates in the packed 4H axis; got {gate_order!r}. "
            f"PyTorch and Keras use 'ifgo' (Keras calls g 'c'), Haiku 'igfo'."
        )
    return gate_order


def _check_packed(api: str, shape: tuple[int, ...]) -> None:
    if not shape or shape[-1] % 4:
        raise ValueError(
            f"`{api}` needs a packed LSTM bias whose last axis holds the 4 gates (size 4H); got "
            f"shape {shape}. Pass a shape such as (4 * hidden,)."
        )


@dataclasses.dataclass(frozen=True, repr=False)
class LSTMBias(Initializer):
    """A packed ``4H`` LSTM bias: ``forget_bias`` on the forget block, 0 elsewhere."""

    forget_bias: float = 1.0
    gate_order: str = "ifgo"
    dtype: np.dtype | None = None

    api: ClassVar[str] = "recipes.lstm_bias"
    family: ClassVar[str] = "recipe"
    min_rank: ClassVar[int] = 1

    def _check_shape(self, shape):
        _check_packed(self._label, shape)

    def _host(self, shape, dtype) -> np.ndarray:
        h = shape[-1] // 4
        k = self.gate_order.index("f")
        v = np.zeros(shape, dtype)
        v[..., k * h : (k + 1) * h] = np.asarray(self.forget_bias, dtype)
        return v

    def _sample(self, key, shape, dtype):
        del key  # deterministic
        return jnp.asarray(self._host(shape, dtype))

    def _law(self, shape, dtype):
        return laws.DeterministicLaw(self._host(shape, dtype), dtype=dtype)

    def describe(self) -> str:
        return f"forget block {self.forget_bias:g}, others 0 (gate order {self.gate_order})"


def lstm_bias(
    forget_bias: float = 1.0, gate_order: str = "ifgo", dtype: DTypeLike | None = None
) -> LSTMBias:
    r"""Builds the initializer of a packed LSTM bias ``(..., 4H)`` with forget-gate bias 1.

    The last axis holds the four gates' biases in ``gate_order``; the forget block is
    ``forget_bias`` (Jozefowicz et al. 2015), the others 0.

    Args:
      forget_bias: the forget-gate bias (1.0).
      gate_order: the order of the gates along the last axis, a permutation of ``"ifgo"``
        (PyTorch/Keras ``"ifgo"``, Haiku ``"igfo"``).
      dtype: the initializer's default dtype.

    Returns:
      An initializer whose law is the exact array.

    Examples:
      >>> import jax, jinit
      >>> jinit.recipes.lstm_bias(gate_order="igfo")(jax.random.key(0), (8,)).tolist()
      [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]

    References:
      Jozefowicz, Zaremba & Sutskever, "An Empirical Exploration of Recurrent Network
      Architectures", ICML 2015.
    """
    api = _P + "lstm_bias"
    return LSTMBias(
        check_real(api, "forget_bias", forget_bias),
        _gate_order(api, gate_order),
        check_dtype_arg(api, dtype, allow_complex=False),
    )


def _chrono_forget(key, shape, dtype, t_max: float) -> jax.Array:
    """``log U(1, t_max - 1)`` drawn in float32 (at least) and cast."""
    work = jnp.promote_types(dtype, jnp.float32)
    u = jax.random.uniform(key, shape, work, 1.0, t_max - 1.0)
    return jnp.log(u).astype(dtype)


@dataclasses.dataclass(frozen=True, repr=False)
class ChronoBias(Initializer):
    """A packed ``4H`` LSTM bias with chrono init; see :func:`chrono_bias`."""

    t_max: float
    gate_order: str = "ifgo"
    dtype: np.dtype | None = None

    api: ClassVar[str] = "recipes.chrono_bias"
    family: ClassVar[str] = "recipe"
    min_rank: ClassVar[int] = 1

    def _check_shape(self, shape):
        _check_packed(self._label, shape)

    def _sample(self, key, shape, dtype):
        h = shape[-1] // 4
        b_f = _chrono_forget(key, (*shape[:-1], h), dtype, self.t_max)
        blocks = {"f": b_f, "i": -b_f, "g": jnp.zeros_like(b_f), "o": jnp.zeros_like(b_f)}
        return jnp.concatenate([blocks[g] for g in self.gate_order], axis=-1)

    def _law(self, shape, dtype):
        raise NotImplementedError(
            f"`{self._label}` has no law in jinit.laws: its forget block is log-uniform, "
            f"log U(1, {self.t_max:g} - 1), and its input block the negative of it."
        )

    def describe(self) -> str:
        return f"b_f ~ log U(1, {self.t_max:g} - 1), b_i = -b_f, others 0 ({self.gate_order})"


def _t_max(api: str, t_max: Any) -> float:
    t = check_real(api, "t_max", t_max)
    if not t > 2:
        raise ValueError(
            f"`{api}` needs `t_max` > 2 (b_f ~ log U(1, t_max - 1) needs t_max - 1 > 1); got "
            f"{t!r}. Pass the longest time dependency you expect, e.g. the sequence length."
        )
    return t


def chrono_bias(
    t_max: float, gate_order: str = "ifgo", dtype: DTypeLike | None = None
) -> ChronoBias:
    r"""Builds the chrono initializer of a packed LSTM bias ``(..., 4H)`` (Tallec & Ollivier 2018).

    .. math::
        b_f = \log u,\ u \sim U(1, T_\mathrm{max} - 1), \qquad b_i = -b_f, \qquad b_g = b_o = 0,

    so the forget gates' characteristic times :math:`1/(1 - \sigma(b_f)) \approx 1 + u` spread
    over :math:`[2, T_\mathrm{max}]`, matching dependencies up to :math:`T_\mathrm{max}` steps.

    Args:
      t_max: the longest expected time dependency (> 2).
      gate_order: the gate order along the last axis, a permutation of ``"ifgo"``.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> b = jinit.recipes.chrono_bias(100.0)(jax.random.key(0), (4 * 3,))
      >>> bool((b[:3] == -b[3:6]).all()), bool((b[3:6] >= 0).all()), b[6:].tolist()
      (True, True, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])

    References:
      Tallec & Ollivier, "Can Recurrent Neural Networks Warp Time?", ICLR 2018.
    """
    api = _P + "chrono_bias"
    return ChronoBias(
        _t_max(api, t_max),
        _gate_order(api, gate_order),
        check_dtype_arg(api, dtype, allow_complex=False),
    )


def chrono(
    params: Any,
    key: jax.Array,
    t_max: float,
    *,
    forget: str = "hf",
    input_gate: str = "hi",
) -> Any:
    r"""Applies chrono initialisation to the gate biases of Flax ``LSTMCell`` parameters.

    For every bias whose path ends in ``{forget}/bias`` (Flax: ``hf/bias``) draws
    :math:`b_f = \log u`, :math:`u \sim U(1, T_\mathrm{max} - 1)` with the key
    :func:`jinit.path_key` ``(key, path)``, and sets the input-gate bias next to it
    (``{input_gate}/bias``, Flax ``hi/bias``) to :math:`-b_f` exactly; every other leaf is kept.
    Flax stores the two biases in different leaves, so this is a function of the tree rather than
    a rule (a rule draws each leaf on its own); for packed biases use :func:`chrono_bias`.
    Jit- and vmap-compatible.

    Args:
      params: a tree with Flax ``LSTMCell`` parameters (linen dict, ``nnx.State`` or module).
      key: a PRNG key.
      t_max: the longest expected time dependency (> 2).
      forget: the forget gate's layer name.
      input_gate: the input gate's layer name.

    Returns:
      The tree with chrono forget/input biases.

    Raises:
      ValueError: no forget-gate bias, or one without its input-gate sibling.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> params = {"hf": {"bias": jnp.zeros(4)}, "hi": {"bias": jnp.zeros(4)}}
      >>> new = jinit.recipes.chrono(params, jax.random.key(0), t_max=50.0)
      >>> bool((new["hi"]["bias"] == -new["hf"]["bias"]).all())
      True

    References:
      Tallec & Ollivier, "Can Recurrent Neural Networks Warp Time?", ICLR 2018.
    """

    api = _P + "chrono"
    key = check_key(api, key)
    t = _t_max(api, t_max)
    for name, v in (("forget", forget), ("input_gate", input_gate)):
        if not isinstance(v, str) or not v or "/" in v:
            raise TypeError(f"`{api}` needs `{name}` to be a layer name (str); got {v!r}.")
    tree = params
    if _is_nnx_module(params):
        from flax import nnx

        tree = nnx.state(params, nnx.Param)
    paths = {p for p, _, _ in named_leaves(tree)}
    suffix_f, suffix_i = f"{forget}/bias", f"{input_gate}/bias"
    forget_paths = [p for p in paths if p == suffix_f or p.endswith("/" + suffix_f)]
    if not forget_paths:
        raise ValueError(
            f"`{api}` found no forget-gate bias (a path ending in {suffix_f!r}) in `params`. "
            f"Pass the parameters of a Flax LSTMCell, or set `forget=` to your layer name."
        )
    values = {p: a for p, a, _ in named_leaves(tree)}
    not_float = [
        f"{p} ({values[p].dtype})"
        for p in forget_paths
        if not jnp.issubdtype(values[p].dtype, jnp.floating)
    ]
    if not_float:
        raise ValueError(
            f"`{api}` needs floating-point gate biases; got {not_float}. Chrono biases are "
            f"logarithms: initialise the LSTM with a float `param_dtype`."
        )
    pairs = {}
    for p in forget_paths:
        q = p[: len(p) - len(suffix_f)] + suffix_i
        if q not in paths:
            raise ValueError(
                f"`{api}`: the forget-gate bias {p!r} has no input-gate bias {q!r} next to it. "
                f"Set `input_gate=` to your layer name."
            )
        pairs[q] = p
    # Draw b_f with the path key of the forget bias (as a rule would), then mirror it.
    draws = {
        p: _chrono_forget(path_key(key, p), values[p].shape, values[p].dtype, t)
        for p in forget_paths
    }

    def forget_init(k, leaf):
        del k
        return draws[leaf.path]

    def input_init(k, leaf):
        del k
        return -draws[pairs[leaf.path]]

    rules = [(p, contextual(forget_init)) for p in forget_paths]
    rules += [(q, contextual(input_init)) for q in pairs]
    return reinit(params, key, rules, strict=False)


# ---------------------------------------------------------------------------------------------
# RetinaNet
# ---------------------------------------------------------------------------------------------


def retinanet(
    prior: float = 0.01,
    *,
    cls_bias: Patterns = "*cls_score/bias",
    stddev: float = 0.01,
) -> Recipe:
    r"""Rules for a RetinaNet head (Lin et al. 2017): prior bias on the classification logits.

    .. math::
        b_\mathrm{cls} = -\log\frac{1 - \pi}{\pi}\ (\pi = 0.01:\ -4.59512), \qquad
        W \sim \mathcal N(0, 0.01^2), \qquad b = 0,

    so every anchor starts by predicting foreground with probability :math:`\pi` and the easy
    negatives do not swamp the focal loss in the first iterations. Kernels and the other biases
    follow detectron2's ``RetinaNetHead`` (``cls_subnet``, ``bbox_subnet``, ``cls_score``,
    ``bbox_pred``: N(0, 0.01²), bias 0); the default names are detectron2's. Apply to the head's
    parameters (the backbone has its own init).

    Args:
      prior: π, the foreground prior (strictly between 0 and 1).
      cls_bias: glob(s) of the classification logits' bias.
      stddev: the kernels' std (0.01; finite, > 0).

    Returns:
      A :class:`Recipe`: classification bias → :func:`jinit.bias_prior` (π), ``*kernel`` →
      N(0, 0.01²), ``*bias`` → 0 (``reinit`` raises if ``cls_bias`` matches nothing).

    Examples:
      >>> import jinit
      >>> jinit.recipes.retinanet()[0]
      ('*cls_score/bias', jinit.bias_prior(p=0.01))

    References:
      Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object Detection", ICCV 2017;
      facebookresearch/detectron2 ``modeling/meta_arch/retinanet.py``.
    """
    api = _P + "retinanet"
    prior = check_real(api, "prior", prior)
    if not 0 < prior < 1:
        raise ValueError(
            f"`{api}` needs the foreground prior `prior` strictly between 0 and 1 (its logit "
            f"-log((1 - prior) / prior) is infinite at 0 and 1); got {prior!r}. RetinaNet uses "
            f"prior=0.01."
        )
    stddev = check_real(api, "stddev", stddev, positive=True)
    cls_bias = _patterns(api, "cls_bias", cls_bias)
    rules = [
        *_rules(cls_bias, bias_prior(prior)),
        Rule("*kernel", normal(stddev), fallback=True),
        Rule("*bias", zeros, fallback=True),
    ]
    role = f"classification bias (prior {prior:g})"
    needs = _need(api, _call("retinanet", prior=prior), role, cls_bias, "`cls_bias='*<cls>/bias'`")
    return Recipe(rules, needs)
