"""The built-in transformer (:func:`transformer`): pre-LN blocks of bidirectional softmax
attention and an MLP on a residual stream."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp

from jinit._core._checks import check_int
from jinit.sweeps._network_base import (
    Network,
    ParamSpec,
    activation_fn,
    check_activation,
    layer_norm,
)

# ---------------------------------------------------------------------------------------------
# Transformer
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Transformer(Network):
    r"""Pre-LN transformer blocks on sequences of ``seq_len`` tokens of ``d_model`` features.

    .. math::
        x' = x + \mathrm{Attn}(\mathrm{LN}_1(x))\,W_o + b_o,\quad
        h = \mathrm{LN}_2(x')W_1 + b_1,\quad x_{out} = x' + \varphi(h)W_2 + b_2.

    ``h`` (the MLP hidden pre-activation) is the layer's pre-activation; the residual stream
    ``x_out`` is its output. Attention is bidirectional, softmax scaled by
    :math:`1/\sqrt{d_{head}}`; ``W_q, W_k, W_v, W_o`` are ``(d, d)``, ``W_1`` is
    ``(d, r·d)``, ``W_2`` is ``(r·d, d)``.

    Sweeps judge the residual stream ``x_out`` (``output.*``; LayerNorm keeps ``h`` and
    :math:`\varphi(h)` flat for any initialisation) and put the probe loss on the network
    output, :math:`\mathcal L = \langle v, x^L_{out}\rangle`, so the judged gradient
    ``grad_output.second_moment`` is :math:`\mathbb E[(\partial\mathcal L/\partial
    x^l_{out})^2]`, exactly 1 per unit after the last block.
    """

    d_model: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    seq_len: int = 32
    activation: str = "gelu"

    kind: ClassVar[str] = "transformer"
    loss_on_output: ClassVar[bool] = True

    def judged(self):
        return {
            "forward": "output.second_moment",
            "backward": "grad_output.second_moment",
            "std": "output.std",
            "what": "residual stream",
        }

    def param_specs(self):
        d, f = self.d_model, self.d_model * self.mlp_ratio
        return (
            ParamSpec("ln1_scale", (d,), "ones"),
            ParamSpec("ln1_bias", (d,), "zeros"),
            ParamSpec("query", (d, d), "weight"),
            ParamSpec("key", (d, d), "weight"),
            ParamSpec("value", (d, d), "weight"),
            ParamSpec("out", (d, d), "weight"),
            ParamSpec("out_bias", (d,), "bias"),
            ParamSpec("ln2_scale", (d,), "ones"),
            ParamSpec("ln2_bias", (d,), "zeros"),
            ParamSpec("mlp_in", (d, f), "weight"),
            ParamSpec("mlp_in_bias", (f,), "bias"),
            ParamSpec("mlp_out", (f, d), "weight"),
            ParamSpec("mlp_out_bias", (d,), "bias"),
        )

    def input_shape(self):
        return (self.seq_len, self.d_model)

    def default_batch(self):
        return 16

    def pre(self, p, x):
        b, t, d = x.shape
        hd = d // self.heads
        z = layer_norm(x, p["ln1_scale"], p["ln1_bias"])
        q = (z @ p["query"]).reshape(b, t, self.heads, hd)
        k = (z @ p["key"]).reshape(b, t, self.heads, hd)
        v = (z @ p["value"]).reshape(b, t, self.heads, hd)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.asarray(math.sqrt(hd), x.dtype)
        w = jax.nn.softmax(logits, axis=-1)
        att = jnp.einsum("bhqk,bkhd->bqhd", w, v).reshape(b, t, d)
        mid = x + att @ p["out"] + p["out_bias"]
        h = layer_norm(mid, p["ln2_scale"], p["ln2_bias"]) @ p["mlp_in"] + p["mlp_in_bias"]
        return h, mid

    def post(self, p, h, x, aux):
        a = activation_fn(self.activation)(h)
        return aux + a @ p["mlp_out"] + p["mlp_out_bias"], a

    def describe(self):
        return (
            f"pre-LN transformer d_model {self.d_model}, depth {self.depth}, {self.heads} heads, "
            f"MLP ×{self.mlp_ratio}, {self.seq_len} tokens, {self.activation}"
        )


def transformer(
    d_model: int = 128,
    depth: int = 4,
    heads: int = 4,
    *,
    mlp_ratio: int = 4,
    seq_len: int = 32,
    activation: str = "gelu",
) -> Transformer:
    r"""A stack of ``depth`` pre-LN transformer blocks for propagation sweeps.

    Every kernel (query, key, value, output and both MLP matrices) is drawn by the initialiser
    under test, biases by the sweep's ``bias_init``; LayerNorm scales are ones, offsets zeros.
    Sweeps of this stack carry the traced theory's predictions (the layers traced as the sweep
    runs them; softmax attention integrated over joint draws of queries, keys and values with
    their covariance across tokens). Verdicts judge the residual stream after each block (see
    :class:`Transformer`).

    Args:
      d_model: features per token (must be divisible by ``heads``).
      depth: number of blocks.
      heads: attention heads.
      mlp_ratio: hidden width of the MLP as a multiple of ``d_model``.
      seq_len: tokens per sequence.
      activation: the name of φ in the MLP.

    Returns:
      A :class:`Transformer`.

    Raises:
      ValueError: a size < 1, ``d_model`` not divisible by ``heads``, an unknown activation.

    Examples:
      >>> from jinit import transformer
      >>> transformer(64, 2, 4).input_shape()
      (32, 64)
    """
    api = "transformer"
    d_model = check_int(api, "d_model", d_model, minimum=1)
    heads = check_int(api, "heads", heads, minimum=1)
    if d_model % heads:
        raise ValueError(
            f"`{api}` needs `d_model` divisible by `heads`; got d_model={d_model}, "
            f"heads={heads}. Pick heads among {[h for h in range(1, 17) if d_model % h == 0]}."
        )
    return Transformer(
        d_model,
        check_int(api, "depth", depth, minimum=1),
        heads,
        check_int(api, "mlp_ratio", mlp_ratio, minimum=1),
        check_int(api, "seq_len", seq_len, minimum=1),
        check_activation(api, activation),
    )
