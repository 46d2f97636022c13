"""torch's layer defaults: ``nn.Linear`` and ``nn.ConvNd`` weights and biases (kaiming_uniform with
a = √5, bias U(±1/√fan_in)) and ``nn.Embedding`` N(0, 1)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import numpy as np

from jinit._core import _random
from jinit._core._checks import check_int
from jinit._core._factory import factory
from jinit._core._layout import Layout
from jinit._core._sampling import as_sampled
from jinit.laws import _laws as laws
from jinit.torch._base import (
    SQRT5,
    TORCH_PREFIX,
    TorchInitializer,
    check_layout,
    checked_gain,
    layout_text,
)
from jinit.torch._fan_scaled import FanScaled
from jinit.torch._simple import Normal

# ---------------------------------------------------------------------------------------------
# Layer defaults
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class LinearWeight(FanScaled):
    """torch's default Linear weight, ``U(±1/√fan_in)``; see :func:`linear_weight`."""

    api: ClassVar[str] = "torch.linear_weight"

    def _scale_mode_distribution(self):
        gain = checked_gain(self._label, "leaky_relu", SQRT5)  # kaiming_uniform_(w, a=math.sqrt(5))
        return gain**2, "fan_in", "uniform"

    def describe(self) -> str:
        return "U(±1/√fan_in), variance 1/(3·fan_in)" + layout_text(self.layout)


@dataclasses.dataclass(frozen=True, repr=False)
class ConvWeight(LinearWeight):
    """torch's default Conv weight, ``U(±1/√fan_in)``; see :func:`conv_weight`."""

    api: ClassVar[str] = "torch.conv_weight"


@factory
def linear_weight(*, layout: Layout | str | None = None) -> LinearWeight:
    r"""torch's default ``nn.Linear`` weight: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    torch runs ``kaiming_uniform_(w, a=math.sqrt(5))``: the leaky-ReLU gain
    :math:`\sqrt{2/(1+5)} = 1/\sqrt 3` makes the bound
    :math:`\sqrt 3 \cdot \frac{1}{\sqrt 3} / \sqrt{\mathrm{fan\_in}} = 1/\sqrt{\mathrm{fan\_in}}`,
    so the std is :math:`1/\sqrt{3\,\mathrm{fan\_in}}` — **not** the He value
    :math:`\sqrt{2/\mathrm{fan\_in}}`, and a third of LeCun's variance. Equal in law to
    ``jinit.variance_scaling(1/3, "fan_in", "uniform")`` and to
    ``kaiming_uniform(a=math.sqrt(5))``. Use it as the ``kernel_init`` of a Flax ``Dense``
    ``(in, out)``; pair it with :func:`linear_bias` and ``fan_in=in``. For a torch/equinox
    ``(out, in)`` weight pass ``layout="torch"``.

    Args:
      layout: ``"flax"`` (default, ``(in, out)``), ``"torch"`` (``(out, in)``), a
        :class:`jinit.Layout` or an einsum equation: which axes are input and output.

    Returns:
      An initializer for weights of rank >= 2.

    Examples:
      >>> import jax, jinit
      >>> import jinit.torch
      >>> w = jinit.torch.linear_weight()(jax.random.key(0), (100, 10))
      >>> bool(abs(w).max() <= 0.1)
      True
    """
    return LinearWeight(layout=check_layout(TORCH_PREFIX + "linear_weight", layout))


@factory
def conv_weight(*, layout: Layout | str | None = None) -> ConvWeight:
    r"""torch's default ``nn.Conv{1,2,3}d`` weight: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    The same rule as :func:`linear_weight` with torch's conv fan
    :math:`\mathrm{fan\_in} = (\mathrm{in}/\mathrm{groups})\prod k`, which on the Flax kernel
    ``(*k, in/groups, out)`` is ``jinit.fans(shape).fan_in``. Pair it with :func:`conv_bias`
    and the same ``fan_in``. For ``ConvTranspose`` (torch's weight is ``(in, out/groups, *k)``,
    whose "fan_in" is ``(out/groups)·prod(k)``), use ``kaiming_uniform(a=math.sqrt(5),
    mode="fan_out")`` on a Flax ``(*k, in, out)`` kernel and ``conv_bias(out * prod(k))``.
    For a torch/equinox ``(out, in/groups, *k)`` weight pass ``layout="torch"`` (fan_in
    ``shape[1]·prod(k)``, torch's own computation).

    Args:
      layout: ``"flax"`` (default, ``(*k, in/groups, out)``), ``"torch"``
        (``(out, in/groups, *k)``), a :class:`jinit.Layout` or an einsum equation.

    Returns:
      An initializer for weights of rank >= 2.

    Examples:
      >>> import jinit
      >>> import jinit.torch
      >>> # fan_in = 4 * 3 * 3 = 36, so the bound is 1/6
      >>> round(jinit.law(jinit.torch.conv_weight(), (3, 3, 4, 32)).support[1] * 6, 6)
      1.0
      >>> # the same torch Conv2d(4, 32, 3) in torch's (and equinox's) layout (32, 4, 3, 3)
      >>> init = jinit.torch.conv_weight(layout="torch")
      >>> round(jinit.law(init, (32, 4, 3, 3)).support[1] * 6, 6)
      1.0
    """
    return ConvWeight(layout=check_layout(TORCH_PREFIX + "conv_weight", layout))


@dataclasses.dataclass(frozen=True, repr=False)
class LinearBias(TorchInitializer):
    """``U(±1/√fan_in)`` (0 if fan_in is 0); see :func:`linear_bias`."""

    fan_in: int

    api: ClassVar[str] = "torch.linear_bias"

    @property
    def bound(self) -> float:
        """torch's ``1 / math.sqrt(fan_in) if fan_in > 0 else 0``."""
        return 1 / math.sqrt(self.fan_in) if self.fan_in > 0 else 0.0

    def _draw(self, key, shape, dtype):
        return _random.uniform(key, shape, dtype, -self.bound, self.bound)

    def _law(self, shape, dtype):
        b = as_sampled(self.bound, dtype)
        return laws.Uniform(-b, b, dtype=dtype)

    def describe(self) -> str:
        return f"U(±1/√{self.fan_in})"


@dataclasses.dataclass(frozen=True, repr=False)
class ConvBias(LinearBias):
    """torch's default conv bias, ``U(±1/√fan_in)``; see :func:`conv_bias`."""

    api: ClassVar[str] = "torch.conv_bias"


def _fan_in(api: str, fan_in: Any) -> int:
    if isinstance(fan_in, (float, np.floating)) and float(fan_in).is_integer():
        fan_in = int(fan_in)  # e.g. jinit.fans(shape).fan_in, a float
    if isinstance(fan_in, (bool, np.bool_)) or not isinstance(fan_in, (numbers.Integral)):
        raise TypeError(
            f"`{api}` needs `fan_in` to be a whole number (the weight's fan-in, e.g. "
            f"`jinit.fans(kernel_shape).fan_in`); got {fan_in!r}."
        )
    return check_int(api, "fan_in", int(fan_in), minimum=0)


@factory
def linear_bias(fan_in: int) -> LinearBias:
    r"""torch's default ``nn.Linear`` bias: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    The bound comes from the *weight's* fan-in (``in_features``), which the bias shape
    ``(out,)`` does not carry, so it is given here; torch uses bound 0 (all zeros) when
    ``fan_in == 0``. Variance :math:`1/(3\,\mathrm{fan\_in})`. Any shape.

    Args:
      fan_in: the weight's fan-in (``in_features``), an int >= 0 (an integral float such as
        ``jinit.fans(shape).fan_in`` is accepted).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit.torch
      >>> b = jinit.torch.linear_bias(fan_in=100)(jax.random.key(0), (10,))
      >>> b.shape, bool(abs(b).max() <= 0.1)
      ((10,), True)
      >>> float(abs(jinit.torch.linear_bias(0)(jax.random.key(0), (4,))).max())
      0.0
    """
    return LinearBias(_fan_in(TORCH_PREFIX + "linear_bias", fan_in))


@factory
def conv_bias(fan_in: int) -> ConvBias:
    r"""torch's default ``nn.Conv{1,2,3}d`` bias: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    ``fan_in`` is the conv weight's, :math:`(\mathrm{in}/\mathrm{groups})\prod k`, i.e.
    ``jinit.fans(kernel_shape).fan_in`` for the Flax kernel ``(*k, in/groups, out)``; 0 gives
    zeros, as in torch.

    Args:
      fan_in: the weight's fan-in, an int >= 0 (or an integral float).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> import jinit.torch
      >>> init = jinit.torch.conv_bias(int(jinit.fans((3, 3, 16, 32)).fan_in))
      >>> init
      jinit.torch.conv_bias(fan_in=144)
    """
    return ConvBias(_fan_in(TORCH_PREFIX + "conv_bias", fan_in))


@dataclasses.dataclass(frozen=True, repr=False)
class Embedding(Normal):
    """torch's default Embedding table, ``N(0, 1)``; see :func:`embedding`."""

    api: ClassVar[str] = "torch.embedding"


@factory
def embedding() -> Embedding:
    r"""torch's default ``nn.Embedding`` weight: :math:`\mathcal N(0, 1)`.

    Same ``(vocab, features)`` layout in torch and Flax, std 1 whatever the shape (Flax's own
    ``Embed`` default is :math:`1/\sqrt{\mathrm{features}}`). torch also zeroes row
    ``padding_idx`` when one is given; do that with ``w.at[padding_idx].set(0)``. Complex dtypes
    give a circular complex normal with :math:`E|z|^2 = 1`.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit.torch
      >>> jinit.torch.embedding()(jax.random.key(0), (1000, 64)).shape
      (1000, 64)
    """
    return Embedding()
