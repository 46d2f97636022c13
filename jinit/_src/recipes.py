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

Patterns are :func:`jinit.reinit` globs (``*`` spans '/'), with defaults for Flax naming:
``flax.linen.MultiHeadDotProductAttention`` and ``nnx.MultiHeadAttention`` call their kernels
``query``, ``key``, ``value`` and ``out`` (``DenseGeneral`` kernels ``(d, heads, head_dim)`` and
``(heads, head_dim, d)``, whose fans the fan-based recipes compute correctly), ``nn.Embed`` its
table ``embedding``, ``LayerNorm``/``RMSNorm`` their gain ``scale``. The feed-forward layers default
to ``fc1``/``fc2`` (fairseq, torchscale); see :class:`TransformerNames` to rename any of them.
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

from jinit._src import laws
from jinit._src.base import (
    DTypeLike,
    Initializer,
    check_choice,
    check_dtype_arg,
    check_int,
    check_key,
    check_real,
)
from jinit._src.basic import constant, normal, ones, truncated_normal, zeros
from jinit._src.extra import bias_prior, gpt2_residual, identity, transformer_normal
from jinit._src.extra import zerO as _zerO_init
from jinit._src.fans import fans
from jinit._src.structured import orthogonal
from jinit._src.tree import Rule
from jinit._src.variance import VarianceScaling, lecun_normal, variance_scaling

__all__ = [
    "ChronoBias",
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
# Names of a transformer's parameters
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TransformerNames:
    """Glob patterns naming the parameters of a transformer, for the transformer recipes.

    Each role is a glob or a tuple of globs matched by :func:`jinit.reinit` against the whole
    '/'-joined path (``*`` spans '/'). The defaults follow Flax naming: a block's attention is a
    ``MultiHeadDotProductAttention`` (linen) or ``MultiHeadAttention`` (nnx), whose kernels are
    ``query``/``key``/``value``/``out``; the feed-forward layers are ``fc1`` and ``fc2``; the
    embedding tables are ``nn.Embed``'s ``embedding``; the output head is ``head``.

    Attributes:
      block: the path component of the i-th block, with ``{i}`` for the 0-based layer index
        (``"block_{i}"``; nnx lists: ``"blocks/{i}"``; linen auto-names: ``"Block_{i}"``). Only
        the recipes whose init depends on the layer index use it.
      query: query projection kernels.
      key: key projection kernels.
      value: value projection kernels.
      attn_out: attention output projection kernels (they write into the residual stream).
      mlp_in: feed-forward input kernels (for a gated MLP, the gate projection).
      mlp_out: feed-forward output kernels (they write into the residual stream).
      mlp_up: the second input projection of a gated MLP (OLMo-core's ``w3``); ``()`` if none.
      embed: embedding tables.
      head: the output head (classifier / LM head) kernel.
      encoder: the path component of the encoder of an encoder–decoder model.
      decoder: the path component of its decoder.

    Examples:
      >>> import jinit
      >>> names = jinit.recipes.TransformerNames(mlp_in="*Dense_0/kernel",
      ...                                        mlp_out="*Dense_1/kernel")
      >>> jinit.recipes.gpt2(2, names=names)[1][0]
      '*Dense_1/kernel'
    """

    block: str = "block_{i}"
    query: Patterns = "*query/kernel"
    key: Patterns = "*key/kernel"
    value: Patterns = "*value/kernel"
    attn_out: Patterns = "*out/kernel"
    mlp_in: Patterns = "*fc1/kernel"
    mlp_out: Patterns = "*fc2/kernel"
    mlp_up: Patterns = ()
    embed: Patterns = "*embedding"
    head: Patterns = "*head/kernel"
    encoder: str = "encoder"
    decoder: str = "decoder"

    def __post_init__(self):
        api = _P + "TransformerNames"
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("block", "encoder", "decoder"):
                if not isinstance(v, str) or not v:
                    raise TypeError(f"`{api}` needs `{f.name}` to be a non-empty str; got {v!r}.")
            else:
                v = _patterns(api, f.name, v, allow_empty=f.name == "mlp_up")
                object.__setattr__(self, f.name, v)
        if "{i}" not in self.block:
            raise ValueError(
                f"`{api}` needs `block` to contain the placeholder '{{i}}' for the layer index; "
                f"got {self.block!r}. Pass e.g. `block='block_{{i}}'` or `block='blocks/{{i}}'`."
            )

    def block_regex(self) -> re.Pattern:
        """A regex finding the layer index of a path from :attr:`block`."""
        parts = self.block.split("{i}")
        body = r"(\d+)".join(re.escape(p) for p in parts)
        return re.compile(r"(?:^|/)" + body + r"(?:/|$)")


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

_LAYOUTS = ("out_last", "in_first")
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

    api: ClassVar[str] = "recipes.fan_scaled"
    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " It is for dense kernels (in, out) and DenseGeneral kernels."

    def axes(self, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(in_axes, out_axes)`` of a kernel of rank ``ndim``."""
        if self.layout == "in_first":
            return (0,), tuple(range(1, ndim))
        return tuple(range(ndim - 1)), (ndim - 1,)

    def fans(self, shape) -> tuple[float, float]:
        """``(fan_in, fan_out)`` of ``shape`` under :attr:`layout`."""
        i, o = self.axes(len(shape))
        return fans(shape, i, o, api=self._label)

    def _delegate(self, shape: tuple[int, ...]) -> Initializer:
        i, o = self.axes(len(shape))
        if self.cutoff is None:
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
        return f"{law}(0, {self.scale:g}/{self.mode}), {self.layout} fans{cut}"


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
    (``mode``), like :func:`jinit.variance_scaling`, but the fans are read from the kernel's rank
    by ``layout`` instead of fixed axes, so one initializer serves Flax ``Dense`` kernels
    ``(in, out)`` and attention ``DenseGeneral`` kernels alike:

    * ``"in_first"``: input axis 0, the others are output — query/key/value kernels
      ``(d, heads, head_dim)`` have :math:`\mathrm{fan\_in} = d`;
    * ``"out_last"``: output axis -1, the others are input — the attention output kernel
      ``(heads, head_dim, d)`` has :math:`\mathrm{fan\_in} = \mathrm{heads}\cdot\mathrm{head\_dim}`,
      and an embedding table ``(vocab, d)`` has :math:`\mathrm{fan\_out} = d`.

    Both agree on rank-2 kernels. With ``cutoff`` (``distribution="normal"`` only) the draw is
    :math:`\sigma Z`, :math:`\sigma^2 = \mathrm{scale}/n`, :math:`Z \sim \mathcal N(0,1)`
    conditioned on :math:`|Z| < \mathrm{cutoff}`, **without** variance correction — PyTorch's
    ``trunc_normal_(std=σ, a=-3σ, b=3σ)`` that OLMo uses (std :math:`0.98658\,\sigma` at 3).

    Args:
      scale: the variance multiplier (finite, >= 0).
      mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
      distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"`` (variance-corrected,
        cut at ±2σ, as :func:`jinit.variance_scaling`).
      layout: ``"out_last"`` (default) or ``"in_first"``.
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
        m = self.names.block_regex().search(leaf.path)
        if m is None:
            raise ValueError(
                f"`{self.api}`: the {self.role} {leaf.path!r} is not inside a block named like "
                f"{self.names.block!r}, so its layer index is unknown. Pass "
                f"`names=jinit.recipes.TransformerNames(block=...)` with your block naming "
                f"(e.g. 'Block_{{i}}' or 'blocks/{{i}}')."
            )
        i = int(m.group(1))
        if i >= self.n_layers:
            raise ValueError(
                f"`{self.api}`: {leaf.path!r} is in layer {i}, but the recipe was built with "
                f"n_layers={self.n_layers}. Pass the model's number of blocks."
            )
        return self.make(i)(key, leaf.shape, leaf.dtype)

    def __repr__(self) -> str:
        return f"{self.api}[{self.role}: {self.formula}]"


def _contextual(fn):
    from jinit._src.tree import contextual

    return contextual(fn)


# ---------------------------------------------------------------------------------------------
# GPT-2
# ---------------------------------------------------------------------------------------------


def gpt2(n_layers: int, *, stddev: float = 0.02, names: TransformerNames | None = None) -> Rules:
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
      Rules: residual projections, embeddings, every other ``*kernel``, ``*bias`` → 0,
      ``*scale`` → 1.

    Examples:
      >>> import jinit
      >>> for pattern, init in jinit.recipes.gpt2(12)[:3]:
      ...     print(pattern, init)
      *out/kernel jinit.gpt2_residual(n_layers=12)
      *fc2/kernel jinit.gpt2_residual(n_layers=12)
      *embedding jinit.transformer_normal()

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
    return [
        *_rules(nm.attn_out, residual),
        *_rules(nm.mlp_out, residual),
        *_rules(nm.embed, base),
        Rule("*kernel", base, fallback=True),
        Rule("*bias", zeros, fallback=True),
        Rule("*scale", ones, fallback=True),
    ]


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
) -> Rules:
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
      Rules: residual projections (and ``mlp_up``), embeddings, head, every other ``*kernel``
      (the input projections), ``*bias`` → 0, ``*scale`` → 1.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> params = {"block_1": {"attn": {"out": {"kernel": jnp.zeros((64, 64))}},
      ...                       "mlp": {"fc1": {"kernel": jnp.zeros((64, 256))}}}}
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
        embed: Initializer = fan(1.0, "fan_out")
        inner: Initializer = fan(1.0, layout="in_first")
        up = inner
    else:
        inner = trunc(s)
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
    return [
        *_rules(nm.attn_out, out),
        *_rules(nm.mlp_out, out),
        *_rules(nm.mlp_up, up),
        *_rules(nm.embed, embed),
        *_rules(nm.head, head),
        Rule("*kernel", inner, fallback=True),
        Rule("*bias", zeros, fallback=True),
        Rule("*scale", ones, fallback=True),
    ]


# ---------------------------------------------------------------------------------------------
# T5
# ---------------------------------------------------------------------------------------------


def t5(
    d_kv: int,
    *,
    distribution: str = "normal",
    embed_stddev: float = 1.0,
    names: TransformerNames | None = None,
) -> Rules:
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
      Rules: query, key, value, embeddings, every other ``*kernel``, ``*bias`` → 0,
      ``*scale`` → 1.

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
    return [
        *_rules(nm.query, q),
        *_rules(nm.key, kv),
        *_rules(nm.value, kv),
        *_rules(nm.embed, normal(embed_stddev)),
        Rule("*kernel", fan_scaled(1.0, "fan_in", distribution), fallback=True),
        Rule("*bias", zeros, fallback=True),
        Rule("*scale", ones, fallback=True),
    ]


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
) -> Rules:
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
      Rules: per side, value/out/ffn kernels (gain β) and query/key kernels (gain 1); then
      ``*bias`` → 0, ``*scale`` → 1.

    Examples:
      >>> import jinit
      >>> rules = jinit.recipes.deepnorm(decoder_layers=12)
      >>> rules[0][0], round(jinit.law(rules[0][1], (64, 64)).std * 8 * 96 ** 0.25, 6)
      ('*value/kernel', 1.0)

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
    for scope, beta in sides:
        rules += _rules(_scoped(scope, nm.value), _xavier_normal(beta, "in_first"))
        rules += _rules(
            _scoped(scope, nm.attn_out + nm.mlp_in + nm.mlp_out), _xavier_normal(beta, "out_last")
        )
        rules += _rules(_scoped(scope, nm.query + nm.key), _xavier_normal(1.0, "in_first"))
    return [*rules, Rule("*bias", zeros, fallback=True), Rule("*scale", ones, fallback=True)]


# ---------------------------------------------------------------------------------------------
# T-Fixup
# ---------------------------------------------------------------------------------------------


def tfixup(
    encoder_layers: int = 0,
    decoder_layers: int = 0,
    *,
    names: TransformerNames | None = None,
) -> Rules:
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
      Rules: per side, scaled value/out/ffn kernels, query/key kernels, embeddings; then the
      head, ``*bias`` → 0, ``*scale`` → 1.

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
    for scope, g, e in sides:
        rules += _rules(_scoped(scope, nm.value), xavier(g, "in_first"))
        rules += _rules(_scoped(scope, nm.attn_out + nm.mlp_in + nm.mlp_out), xavier(g, "out_last"))
        rules += _rules(_scoped(scope, nm.query + nm.key), xavier(1.0, "in_first"))
        rules += _rules(_scoped(scope, nm.embed), fan_scaled(e * e, "fan_out"))
    return [
        *rules,
        *_rules(nm.head, fan_scaled(1.0, "fan_in")),
        Rule("*bias", zeros, fallback=True),
        Rule("*scale", ones, fallback=True),
    ]


# ---------------------------------------------------------------------------------------------
# Residual networks: Fixup, ZerO, SkipInit, ReZero
# ---------------------------------------------------------------------------------------------


def _branch_layer(api: str, layer: Any, m: int) -> list[str]:
    if not isinstance(layer, str) or "{j}" not in layer:
        raise ValueError(
            f"`{api}` needs `layer` to be a glob with the placeholder '{{j}}' for the 1-based "
            f"position of a layer in its residual branch; got {layer!r}. Pass e.g. "
            f"`layer='*block*/conv{{j}}/kernel'` or `layer='*block*/dense{{j}}/kernel'`."
        )
    return [layer.replace("{j}", str(j)) for j in range(1, m + 1)]


def fixup(
    n_branches: int,
    branch_layers: int = 2,
    *,
    layer: str = "*block*/conv{j}/kernel",
    classifier: Patterns = "*head/kernel",
    mode: str = "fan_in",
    multipliers: Patterns = "*scale",
) -> Rules:
    r"""Rules for Fixup (Zhang, Dauphin & Ma 2019): residual networks trained without normalisation.

    With :math:`L` residual branches of :math:`m` layers each:

    1. the classification layer and the last layer of every residual branch are zero;
    2. the other branch layers get He init scaled by :math:`L^{-1/(2m-2)}`:
       :math:`W \sim \mathcal N\bigl(0, \tfrac{2}{n} L^{-1/(m-1)}\bigr)`
       (:math:`m = 2`: std × :math:`L^{-1/2}`; :math:`m = 3`: × :math:`L^{-1/4}`);
    3. other kernels (stem, projection shortcuts) get plain He init;
    4. the scalar biases (Fixup's ``bias1a`` ...) and every ``*bias*`` are 0, the scalar
       multipliers (``multipliers``) are 1.

    The He fan is ``mode`` (:math:`n` = fan_in by default, like He et al.; hongyi-zhang/Fixup's
    ImageNet code uses torch's ``out·k·k``, i.e. ``mode="fan_out"``).

    Args:
      n_branches: the number of residual branches L (int >= 1).
      branch_layers: the number of layers m in a branch (int >= 2; the exponent needs m > 1).
      layer: a glob of the j-th layer of a branch, with ``{j}`` = 1..m
        (``"*block*/conv{j}/kernel"``).
      classifier: the classification layer's kernel(s).
      mode: ``"fan_in"`` or ``"fan_out"`` for He's fan.
      multipliers: the scalar multipliers' names (initialised to 1).

    Returns:
      Rules: last branch layers → 0, classifier → 0, other branch layers, other ``*kernel``,
      ``*bias*`` → 0, multipliers → 1.

    Examples:
      >>> import jinit
      >>> rules = jinit.recipes.fixup(16, 2)
      >>> [p for p, _ in rules[:3]]
      ['*block*/conv2/kernel', '*head/kernel', '*block*/conv1/kernel']
      >>> round(jinit.law(rules[2][1], (3, 3, 64, 64)).std * (9 * 64 / 2) ** 0.5, 6)  # 16^(-1/2)
      0.25

    References:
      Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning Without Normalization",
      ICLR 2019; hongyi-zhang/Fixup.
    """
    api = _P + "fixup"
    n = _layers(api, "n_branches", n_branches)
    m = _layers(api, "branch_layers", branch_layers, minimum=2)
    layers = _branch_layer(api, layer, m)
    classifier = _patterns(api, "classifier", classifier)
    mode = check_choice(api, "mode", mode, ("fan_in", "fan_out"))
    multipliers = _patterns(api, "multipliers", multipliers)
    scaled = variance_scaling(2.0 * n ** (-1.0 / (m - 1)), mode, "normal")
    return [
        (layers[-1], zeros),
        *_rules(classifier, zeros),
        *[(p, scaled) for p in layers[:-1]],
        Rule("*kernel", variance_scaling(2.0, mode, "normal"), fallback=True),
        ("*bias*", zeros),
        *_rules(multipliers, ones),
    ]


def zerO(  # noqa: N802 - the paper's spelling, as jinit.zerO
    branch_layers: int = 2,
    *,
    layer: str = "*block*/conv{j}/kernel",
) -> Rules:
    r"""Rules for ZerO initialisation of a residual network (Zhao, Schäfer & Anandkumar 2022).

    The last layer of every residual branch is zero, so each block starts as the identity; every
    other kernel is :func:`jinit.zerO` (identity, partial identity, or a normalised Hadamard
    block when widening; conv kernels at the spatial centre); biases 0, norm gains 1. The
    network is deterministic at initialisation: the key is not used.

    Args:
      branch_layers: the number of layers m in a residual branch (int >= 1).
      layer: a glob of the j-th layer of a branch, with ``{j}`` = 1..m.

    Returns:
      Rules: last branch layers → 0, ``*kernel`` → ZerO, ``*bias`` → 0, ``*scale`` → 1.

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
    layers = _branch_layer(api, layer, m)
    return [
        (layers[-1], zeros),
        Rule("*kernel", _zerO_init(), fallback=True),
        Rule("*bias", zeros, fallback=True),
        Rule("*scale", ones, fallback=True),
    ]


def skipinit(gates: Patterns = "*skip_gain") -> Rules:
    r"""Rules for SkipInit (De & Smith 2020): residual gates start at zero.

    Each residual block computes :math:`x + \alpha f(x)` with a learnable scalar :math:`\alpha`
    initialised to 0, so every block starts as the identity (NFNets call it ``skip_gain``).
    Combine with rules for the other parameters: ``skipinit() + other_rules``.

    Args:
      gates: glob(s) of the gate parameters (``"*skip_gain"``).

    Returns:
      Rules: the gates → 0.

    Examples:
      >>> import jinit
      >>> jinit.recipes.skipinit()
      [('*skip_gain', jinit.zeros)]

    References:
      De & Smith, "Batch Normalization Biases Residual Blocks Towards the Identity Function in
      Deep Networks", NeurIPS 2020.
    """
    return _rules(_patterns(_P + "skipinit", "gates", gates), zeros)


def rezero(gates: Patterns = "*alpha") -> Rules:
    r"""Rules for ReZero (Bachlechner et al. 2020): :math:`x_{i+1} = x_i + \alpha_i F(x_i)`,
    :math:`\alpha_i = 0`.

    Same rule as :func:`skipinit` with ReZero's name for the gate (the paper's :math:`\alpha`;
    the reference code calls it ``resweight``).

    Args:
      gates: glob(s) of the gate parameters (``"*alpha"``).

    Returns:
      Rules: the gates → 0.

    Examples:
      >>> import jinit
      >>> jinit.recipes.rezero(("*alpha", "*resweight"))
      [('*alpha', jinit.zeros), ('*resweight', jinit.zeros)]

    References:
      Bachlechner, Majumder, Mao, Cottrell & McAuley, "ReZero is All You Need: Fast Convergence
      at Large Depth", UAI 2021 (arXiv:2003.04887).
    """
    return _rules(_patterns(_P + "rezero", "gates", gates), zeros)


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
) -> Rules:
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
      Rules: recurrent kernel → gain·I, input kernel → N(0, input_stddev²), bias → 0.

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
    return [
        *_rules(_patterns(api, "recurrent", recurrent), identity(gain)),
        *_rules(_patterns(api, "inputs", inputs), normal(input_stddev)),
        *_rules(_patterns(api, "biases", biases), zeros),
    ]


def lstm(forget_bias: float = 1.0) -> Rules:
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
      Rules for every parameter of a flax ``LSTMCell``.

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
    return [
        ("*/hf/bias", constant(forget_bias)),
        ("*/h[igo]/bias", zeros),
        ("*/h[ifgo]/kernel", orthogonal()),
        ("*/i[ifgo]/kernel", lecun_normal()),
        ("*/if_/kernel", lecun_normal()),
    ]


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
    from jinit._src.paths import named_leaves
    from jinit._src.tree import contextual, path_key, reinit

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


def _is_nnx_module(x: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(x, nnx.Module)


# ---------------------------------------------------------------------------------------------
# RetinaNet
# ---------------------------------------------------------------------------------------------


def retinanet(
    prior: float = 0.01,
    *,
    cls_bias: Patterns = "*cls_score/bias",
    stddev: float = 0.01,
) -> Rules:
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
      Rules: classification bias → :func:`jinit.bias_prior` (π), ``*kernel`` → N(0, 0.01²),
      ``*bias`` → 0.

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
    return [
        *_rules(_patterns(api, "cls_bias", cls_bias), bias_prior(prior)),
        Rule("*kernel", normal(stddev), fallback=True),
        Rule("*bias", zeros, fallback=True),
    ]
