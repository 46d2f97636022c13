"""Decoder-transformer recipes: GPT-2's residual scaling, OLMo's variants and T5's fan-in
normals (Radford et al. 2019; Groeneveld et al. 2024; Raffel et al. 2020)."""

from __future__ import annotations

import math

from jinit._core._checks import (
    check_choice,
    check_real,
)
from jinit.initializers._base import Initializer
from jinit.initializers._basic import normal, truncated_normal
from jinit.initializers._conventions import gpt2_residual, transformer_normal
from jinit.recipes._fan_scaled import FanScaled, PerLayer, contextual_per_layer, fan_scaled
from jinit.recipes._names import (
    TransformerNames,
    check_names,
    transformer_fallbacks,
    transformer_role,
)
from jinit.recipes._recipe import RECIPES_PREFIX, Recipe, call_repr, check_layers, rules_for

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
    api = RECIPES_PREFIX + "gpt2"
    n_layers = check_layers(api, "n_layers", n_layers)
    stddev = check_real(api, "stddev", stddev, positive=True)
    nm = check_names(api, names)
    residual = gpt2_residual(n_layers, stddev)
    base = transformer_normal(stddev)
    call = call_repr("gpt2", n_layers=n_layers)
    what = f"residual projection N(0, ({stddev:g}/√(2·{n_layers}))²)"
    needs = transformer_role(api, call, nm, "attn_out", what) + transformer_role(
        api, call, nm, "mlp_out", what
    )
    rules = [
        *rules_for(nm.attn_out, residual),
        *rules_for(nm.mlp_out, residual),
        *rules_for(nm.embed, base),
        *transformer_fallbacks(nm, base),
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
    api = RECIPES_PREFIX + "olmo"
    n_layers = check_layers(api, "n_layers", n_layers)
    variant = check_choice(api, "variant", variant, _OLMO_VARIANTS)
    s = check_real(api, "init_std", init_std, positive=True)
    c = check_real(api, "cutoff", cutoff, positive=True)
    nm = check_names(api, names)

    out, up, embed, head, qkv, inner = _olmo_inits(api, variant, n_layers, s, c, nm)
    call = call_repr("olmo", n_layers=n_layers, variant=variant)
    needs = [
        *transformer_role(api, call, nm, "attn_out", "residual projection"),
        *transformer_role(api, call, nm, "mlp_out", "residual projection"),
        *transformer_role(api, call, nm, "mlp_up", "gated MLP up projection"),
        *transformer_role(api, call, nm, "head", "output head T(1/√d)"),
    ]
    rules = [
        *rules_for(nm.attn_out, out),
        *rules_for(nm.mlp_out, out),
        *rules_for(nm.mlp_up, up),
        *rules_for(nm.embed, embed),
        *rules_for(nm.head, head),
        *rules_for(nm.query + nm.key + nm.value, qkv),
        *transformer_fallbacks(nm, inner),
    ]
    return Recipe(rules, needs)


def _olmo_inits(
    api: str, variant: str, n_layers: int, s: float, c: float, nm: TransformerNames
) -> tuple[Initializer, ...]:
    """OLMo's ``(out, up, embed, head, qkv, inner)`` initialisers of ``variant`` (table above)."""

    def trunc(std: float) -> Initializer:
        return truncated_normal(std, None, -c, c)

    def fan(scale: float, mode: str = "fan_in", layout: str = "out_last") -> FanScaled:
        return fan_scaled(scale, mode, layout=layout, cutoff=c)

    head = fan(1.0)
    if variant == "mitchell":
        out = contextual_per_layer(
            PerLayer(
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
            out = contextual_per_layer(
                PerLayer(
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
    return out, up, embed, head, qkv, inner


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
    api = RECIPES_PREFIX + "t5"
    d_kv = check_layers(api, "d_kv", d_kv)
    distribution = check_choice(api, "distribution", distribution, ("normal", "truncated_normal"))
    embed_stddev = check_real(api, "embed_stddev", embed_stddev, positive=True)
    nm = check_names(api, names)
    q = fan_scaled(1.0 / d_kv, "fan_in", distribution, layout="in_first")
    kv = fan_scaled(1.0, "fan_in", distribution, layout="in_first")
    call = call_repr("t5", d_kv=d_kv)
    needs = [
        *transformer_role(api, call, nm, "query", "N(0, 1/(d_model·d_kv))"),
        *transformer_role(api, call, nm, "key", "N(0, 1/d_model)"),
        *transformer_role(api, call, nm, "value", "N(0, 1/d_model)"),
    ]
    rules = [
        *rules_for(nm.query, q),
        *rules_for(nm.key, kv),
        *rules_for(nm.value, kv),
        *rules_for(nm.attn_out, fan_scaled(1.0, "fan_in", distribution)),
        *rules_for(nm.embed, normal(embed_stddev)),
        *transformer_fallbacks(nm, fan_scaled(1.0, "fan_in", distribution, layout="flax")),
    ]
    return Recipe(rules, needs)
