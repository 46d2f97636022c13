"""The built-in CNN (:func:`cnn`): a stack of stride-1 2-D convolutions (NHWC, HWIO kernels) with
circular or zero padding."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from jinit._core._checks import check_choice, check_int
from jinit.sweeps._network_base import (
    Network,
    ParamSpec,
    TheoryInputs,
    activation_fn,
    check_activation,
    check_bool,
)

# ---------------------------------------------------------------------------------------------
# CNN
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CNN(Network):
    r"""2-D convolution stack, NHWC, kernels ``(k, k, c, c)`` (HWIO), stride 1.

    ``padding="circular"`` wraps the image around (every output pixel sees ``k²·c`` inputs, as
    in the mean-field theory of CNNs); ``"same"`` zero-pads, so border pixels see fewer inputs.
    """

    channels: int = 64
    depth: int = 10
    kernel_size: int = 3
    activation: str = "relu"
    padding: str = "circular"
    image_size: int = 16
    bias: bool = True

    kind: ClassVar[str] = "cnn"

    def param_specs(self):
        k, c = self.kernel_size, self.channels
        specs = [ParamSpec("kernel", (k, k, c, c), "weight")]
        if self.bias:
            specs.append(ParamSpec("bias", (c,), "bias"))
        return tuple(specs)

    def input_shape(self):
        return (self.image_size, self.image_size, self.channels)

    def default_batch(self):
        return 64

    def pre(self, p, x):
        # im2col + one matmul rather than `lax.conv`: identical to a stride-1 cross-correlation
        # (NHWC, HWIO), and under `vmap` over seeds it stays a batched matmul (a vmapped conv
        # with per-seed kernels becomes a grouped conv that XLA:CPU compiles and runs slowly).
        k = self.kernel_size
        lo, hi = (k - 1) // 2, k // 2
        mode = "wrap" if self.padding == "circular" else "constant"
        xp = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)), mode=mode)
        hgt, wid = x.shape[1], x.shape[2]
        patches = jnp.concatenate(
            [xp[:, dy : dy + hgt, dx : dx + wid, :] for dy in range(k) for dx in range(k)],
            axis=-1,
        )
        w = p["kernel"]
        h = patches @ w.reshape(k * k * w.shape[2], w.shape[3])
        if self.bias:
            h = h + p["bias"]
        return h, ()

    def post(self, p, h, x, aux):
        a = activation_fn(self.activation)(h)
        return a, a

    def describe(self):
        b = ", bias" if self.bias else ""
        return (
            f"CNN {self.channels} channels, depth {self.depth}, {self.kernel_size}x"
            f"{self.kernel_size} {self.padding}, {self.image_size}x{self.image_size}, "
            f"{self.activation}{b}"
        )

    def theory_inputs(self):
        # A circular conv is a dense map from k²·c inputs per output: equivalently a c×c matrix
        # of variance k²·Var(w) (same forward and backward second moments).
        return TheoryInputs(
            self.activation,
            (self.channels,) * (self.depth + 1),
            self.param_specs()[0],
            weight_multiplier=float(self.kernel_size**2),
            approximate=self.padding != "circular",
        )


def cnn(
    channels: int = 64,
    depth: int = 10,
    kernel_size: int = 3,
    activation: str = "relu",
    *,
    padding: str = "circular",
    image_size: int = 16,
    bias: bool = True,
) -> CNN:
    r"""A stack of ``depth`` stride-1 2-D convolutions with ``channels`` channels.

    Layer :math:`l` computes :math:`h^l = W^l * x^{l-1} + b^l` and :math:`x^l=\varphi(h^l)` on
    ``image_size × image_size`` NHWC images; kernels have the Flax layout ``(k, k, c, c)``, so
    ``fan_in = k²·c``.

    Args:
      channels: channels of every layer (also of the input).
      depth: number of layers.
      kernel_size: the spatial size ``k`` of the square kernels.
      activation: the name of φ.
      padding: ``"circular"`` (wrap-around, exact for the theory) or ``"same"`` (zeros).
      image_size: height and width of the input images.
      bias: whether layers have a bias.

    Returns:
      A :class:`CNN`.

    Raises:
      ValueError: a size < 1, an unknown padding or activation.

    Examples:
      >>> from jinit import cnn
      >>> [s.shape for s in cnn(16, 5, 3).param_specs()]
      [(3, 3, 16, 16), (16,)]
    """
    api = "cnn"
    return CNN(
        check_int(api, "channels", channels, minimum=1),
        check_int(api, "depth", depth, minimum=1),
        check_int(api, "kernel_size", kernel_size, minimum=1),
        check_activation(api, activation),
        check_choice(api, "padding", padding, ("circular", "same")),
        check_int(api, "image_size", image_size, minimum=1),
        check_bool(api, "bias", bias),
    )
