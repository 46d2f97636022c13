"""Residual-network recipes: Fixup, ZerO, SkipInit and ReZero (Zhang et al. 2019; Zhao et al.
2022; De & Smith 2020; Bachlechner et al. 2020), with presets for Flax's ImageNet ResNet."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

from jinit._core._checks import (
    check_choice,
)
from jinit.initializers._basic import ones, zeros
from jinit.initializers._deterministic import zerO as _zerO_init
from jinit.initializers._variance_scaling import variance_scaling
from jinit.recipes._fan_scaled import contextual_per_layer
from jinit.recipes._names import check_index_base
from jinit.recipes._recipe import (
    RECIPES_PREFIX,
    Patterns,
    Recipe,
    call_repr,
    check_layers,
    check_patterns,
    defining_role,
    rules_for,
)
from jinit.trees._rules import Rule

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
    base = d_base if index_base is None else check_index_base(api, index_base)
    cls = d_cls if classifier is None else check_patterns(api, "classifier", classifier)
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
    api = RECIPES_PREFIX + "fixup"
    n = check_layers(api, "n_branches", n_branches)
    m = check_layers(api, "branch_layers", branch_layers, minimum=2)
    layer, base, classifier = _resnet_names(api, preset, layer, index_base, classifier)
    layers = _branch_layer(api, layer, m, base)
    mode = check_choice(api, "mode", mode, ("fan_in", "fan_out"))
    multipliers = check_patterns(api, "multipliers", multipliers)
    scaled = variance_scaling(2.0 * n ** (-1.0 / (m - 1)), mode, "normal")
    call = call_repr("fixup", n_branches=n, branch_layers=m)
    needs = [
        *defining_role(api, call, "last layer of each branch (zero)", layers[-1:], _RESNET_FIX),
        *defining_role(
            api, call, f"other branch layers (He × {n}^(-1/{2 * m - 2}))", layers[:-1], _RESNET_FIX
        ),
        *defining_role(api, call, "classifier (zero)", classifier, _RESNET_FIX),
    ]
    gains = contextual_per_layer(_gains_to_one)
    rules = [
        (layers[-1], zeros),
        *rules_for(classifier, zeros),
        *[(p, scaled) for p in layers[:-1]],
        Rule("*kernel", variance_scaling(2.0, mode, "normal"), fallback=True),
        ("*bias*", zeros),
        *rules_for(multipliers, gains),
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
    api = RECIPES_PREFIX + "zerO"
    m = check_layers(api, "branch_layers", branch_layers)
    layer, base, _ = _resnet_names(api, preset, layer, index_base, None)
    layers = _branch_layer(api, layer, m, base)
    call = call_repr("zerO", branch_layers=m)
    needs = defining_role(api, call, "last layer of each branch (zero)", layers[-1:], _RESNET_FIX)
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
    api = RECIPES_PREFIX + "skipinit"
    gates = check_patterns(api, "gates", gates)
    fix = "`gates='*<your gate>'`"
    return Recipe(
        rules_for(gates, zeros), defining_role(api, "skipinit()", "gates (zero)", gates, fix)
    )


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
    api = RECIPES_PREFIX + "rezero"
    gates = check_patterns(api, "gates", gates)
    fix = "`gates='*<your gate>'`"
    return Recipe(
        rules_for(gates, zeros), defining_role(api, "rezero()", "gates (zero)", gates, fix)
    )
