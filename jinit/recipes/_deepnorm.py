"""Deep post-LN transformer recipes: DeepNorm's (α, β) constants and T-Fixup's scaled Xavier
(Wang et al. 2022; Huang et al. 2020)."""

from __future__ import annotations

from typing import Any, NamedTuple

from jinit._core._checks import (
    check_choice,
)
from jinit.recipes._fan_scaled import FanScaled, fan_scaled
from jinit.recipes._names import (
    TransformerNames,
    check_names,
    transformer_fallbacks,
    transformer_role,
)
from jinit.recipes._recipe import (
    RECIPES_PREFIX,
    Need,
    Recipe,
    Rules,
    call_repr,
    check_layers,
    rules_for,
    scoped,
)

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
        RECIPES_PREFIX + "deepnorm_constants", encoder_layers, decoder_layers, convention
    )


def _deepnorm_constants(
    api: str, encoder_layers: Any, decoder_layers: Any, convention: Any
) -> DeepNormConstants:
    """:func:`deepnorm_constants`, with errors naming ``api`` (the public function called)."""
    n = check_layers(api, "encoder_layers", encoder_layers, minimum=0)
    m = check_layers(api, "decoder_layers", decoder_layers, minimum=0)
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
    api = RECIPES_PREFIX + "deepnorm"
    c = _deepnorm_constants(api, encoder_layers, decoder_layers, convention)
    nm = check_names(api, names)
    both = c.encoder_beta is not None and c.decoder_beta is not None
    sides = []
    if c.encoder_beta is not None:
        sides.append((nm.encoder if both else "", c.encoder_beta))
    if c.decoder_beta is not None:
        sides.append((nm.decoder if both else "", c.decoder_beta))
    rules: Rules = []
    needs: list[Need] = []
    call = call_repr("deepnorm", encoder_layers=encoder_layers, decoder_layers=decoder_layers)
    for scope, beta in sides:
        rules += rules_for(scoped(scope, nm.value), _xavier_normal(beta, "in_first"))
        rules += rules_for(
            scoped(scope, nm.attn_out + nm.mlp_in + nm.mlp_out), _xavier_normal(beta, "out_last")
        )
        rules += rules_for(scoped(scope, nm.query + nm.key), _xavier_normal(1.0, "in_first"))
        where = f" in {scope!r}" if scope else ""
        for role in ("value", "attn_out", "mlp_in", "mlp_out"):
            pats = scoped(scope, getattr(nm, role))
            needs += transformer_role(
                api, call, nm, role, f"Xavier gain β = {beta:.4g}{where}", pats
            )
    rules += transformer_fallbacks(nm, None)
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
    api = RECIPES_PREFIX + "tfixup"
    n = check_layers(api, "encoder_layers", encoder_layers, minimum=0)
    m = check_layers(api, "decoder_layers", decoder_layers, minimum=0)
    if n == 0 and m == 0:
        raise ValueError(
            f"`{api}` needs `encoder_layers` or `decoder_layers` >= 1; got both 0. Pass e.g. "
            f"`encoder_layers=6, decoder_layers=6`."
        )
    nm = check_names(api, names)
    both = n > 0 and m > 0
    sides = []
    if n:
        sides.append((nm.encoder if both else "", 0.67 * n**-0.25, (9 * n) ** -0.25))
    if m:
        sides.append((nm.decoder if both else "", (9 * m) ** -0.25, (9 * m) ** -0.25))

    def xavier(gain: float, layout: str) -> FanScaled:
        return fan_scaled(gain * gain, "fan_avg", "uniform", layout=layout)

    rules: Rules = []
    needs: list[Need] = []
    call = call_repr("tfixup", encoder_layers=n, decoder_layers=m)
    for scope, g, e in sides:
        rules += rules_for(scoped(scope, nm.value), xavier(g, "in_first"))
        rules += rules_for(
            scoped(scope, nm.attn_out + nm.mlp_in + nm.mlp_out), xavier(g, "out_last")
        )
        rules += rules_for(scoped(scope, nm.query + nm.key), xavier(1.0, "in_first"))
        rules += rules_for(scoped(scope, nm.embed), fan_scaled(e * e, layout="embed"))
        where = f" in {scope!r}" if scope else ""
        for role in ("value", "attn_out", "mlp_in", "mlp_out"):
            pats = scoped(scope, getattr(nm, role))
            needs += transformer_role(api, call, nm, role, f"Xavier × {g:.4g}{where}", pats)
        needs += transformer_role(api, call, nm, "embed", f"N(0, 1/d) × {e:.4g}{where}")
    rules += [
        *rules_for(nm.head, fan_scaled(1.0, "fan_in")),
        *transformer_fallbacks(nm, None),
    ]
    return Recipe(rules, needs)
