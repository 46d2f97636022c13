"""The built-in MLP (:func:`mlp`): a stack of ``width × width`` dense layers, with optional
residual connections and LayerNorm (pre-LN residual MLP when both)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from jinit._core._checks import check_int
from jinit.sweeps._network_base import (
    Network,
    ParamSpec,
    TheoryInputs,
    activation_fn,
    check_activation,
    check_bool,
    layer_norm,
)

# ---------------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MLP(Network):
    r"""Fully-connected stack in the convention of :func:`jinit.theory.predict_mlp`.

    .. math::
        h^l = x^{l-1} W^l + b^l\ [+\ h^{l-1}\ \text{if residual},\ l \ge 2],\qquad
        x^l = \varphi(\tilde h^l),

    with :math:`\tilde h^l = \mathrm{LN}(h^l)` (LayerNorm over units, no affine parameters) when
    ``layernorm`` and :math:`\tilde h^l = h^l` otherwise. With ``residual`` the pre-activations
    form the residual stream (the first layer has no skip), so ``layernorm`` + ``residual`` is a
    pre-LN residual MLP.
    """

    width: int = 512
    depth: int = 10
    activation: str = "relu"
    bias: bool = True
    layernorm: bool = False
    residual: bool = False

    kind: ClassVar[str] = "mlp"

    def param_specs(self):
        specs = [ParamSpec("kernel", (self.width, self.width), "weight")]
        if self.bias:
            specs.append(ParamSpec("bias", (self.width,), "bias"))
        return tuple(specs)

    def input_shape(self):
        return (self.width,)

    def default_batch(self):
        return 1000

    def initial_carry(self, x0):
        # residual: carry (stream h^{l-1}, activation x^{l-1}); the stream starts at 0 so the
        # first layer has no skip.
        return (jnp.zeros_like(x0), x0) if self.residual else x0

    def pre(self, p, carry):
        x = carry[1] if self.residual else carry
        h = x @ p["kernel"]
        if self.bias:
            h = h + p["bias"]
        if self.residual:
            h = h + carry[0]
        return h, ()

    def post(self, p, h, carry, aux):
        a = activation_fn(self.activation)(layer_norm(h) if self.layernorm else h)
        return ((h, a) if self.residual else a), a

    def judged(self):
        if not self.residual:
            return super().judged()
        # the pre-activations are the stream: h^l = h^{l-1} + x^{l-1} W^l + b^l
        return {
            "forward": "output.second_moment",
            "backward": "grad.second_moment",
            "std": "output.std",
            "what": "residual stream",
        }

    def describe(self):
        extras = [self.activation] + ["bias"] * self.bias
        extras += ["LayerNorm"] * self.layernorm + ["residual"] * self.residual
        return f"MLP width {self.width}, depth {self.depth}, {', '.join(extras)}"

    def theory_inputs(self):
        return TheoryInputs(
            self.activation,
            (self.width,) * (self.depth + 1),
            self.param_specs()[0],
            residual=self.residual,
            layernorm=self.layernorm,
        )


def mlp(
    width: int = 512,
    depth: int = 10,
    activation: str = "relu",
    *,
    bias: bool = True,
    layernorm: bool = False,
    residual: bool = False,
) -> MLP:
    r"""A fully-connected stack of ``depth`` layers of ``width`` units for propagation sweeps.

    Layer :math:`l` computes :math:`h^l = x^{l-1}W^l + b^l` and :math:`x^l=\varphi(h^l)`; with
    ``layernorm``, :math:`x^l = \varphi(\mathrm{LN}(h^l))`; with ``residual``,
    :math:`h^l = h^{l-1} + x^{l-1}W^l + b^l` for :math:`l\ge 2` (the pre-activations are the
    residual stream). This is the network :func:`jinit.theory.predict_mlp` describes. The
    input has ``width`` features.

    Args:
      width: units per layer (also the input dimension).
      depth: number of layers.
      activation: the name of φ (``relu``, ``tanh``, ``gelu``, ``selu``, ``silu``, ``linear``, ...).
      bias: whether layers have a bias (drawn by the sweep's ``bias_init``, zeros by default).
      layernorm: LayerNorm (no affine parameters) of each pre-activation before φ.
      residual: identity skip connection on the pre-activation stream.

    Returns:
      An :class:`MLP` (hashable; pass it to :func:`jinit.sweep`).

    Raises:
      ValueError: a width or depth < 1, or an unknown activation.

    Examples:
      >>> from jinit import mlp
      >>> mlp(256, 4, "tanh").describe()
      'MLP width 256, depth 4, tanh, bias'
    """
    api = "mlp"
    return MLP(
        check_int(api, "width", width, minimum=1),
        check_int(api, "depth", depth, minimum=1),
        check_activation(api, activation),
        check_bool(api, "bias", bias),
        check_bool(api, "layernorm", layernorm),
        check_bool(api, "residual", residual),
    )
