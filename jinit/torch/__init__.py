r"""PyTorch initialisation semantics in Flax layouts: ``jinit.torch``.

Each function mirrors one of ``torch.nn.init`` (without the trailing underscore) or a torch
layer default; torch itself is not needed. Each initialiser takes the **Flax** layout of a
weight and gives the distribution torch gives for the corresponding **torch** layout, so that
transposing a torch sample gives the same law:

===================  =========================  ==========================
layer                Flax layout                torch layout
===================  =========================  ==========================
Dense / Linear       ``(in, out)``              ``(out, in)``
Conv (N-d)           ``(*k, in/groups, out)``   ``(out, in/groups, *k)``
Embed / Embedding    ``(vocab, features)``      ``(vocab, features)``
===================  =========================  ==========================

Fans are torch's, :math:`\mathrm{fan\_in} = \mathrm{in}\prod k` and
:math:`\mathrm{fan\_out} = \mathrm{out}\prod k`, which for the Flax layouts is
:func:`jinit.fans` with its defaults (``in_axis=-2``, ``out_axis=-1``).

The draws are jax's, not torch's: the same law, not the same numbers.
"""

from jinit.torch._base import calculate_gain as calculate_gain
from jinit.torch._defaults import conv_bias as conv_bias
from jinit.torch._defaults import conv_weight as conv_weight
from jinit.torch._defaults import embedding as embedding
from jinit.torch._defaults import linear_bias as linear_bias
from jinit.torch._defaults import linear_weight as linear_weight
from jinit.torch._fan_scaled import kaiming_normal as kaiming_normal
from jinit.torch._fan_scaled import kaiming_uniform as kaiming_uniform
from jinit.torch._fan_scaled import xavier_normal as xavier_normal
from jinit.torch._fan_scaled import xavier_uniform as xavier_uniform
from jinit.torch._port import init_like_torch as init_like_torch
from jinit.torch._simple import normal as normal
from jinit.torch._simple import trunc_normal as trunc_normal
from jinit.torch._simple import uniform as uniform
from jinit.torch._structured import dirac as dirac
from jinit.torch._structured import eye as eye
from jinit.torch._structured import orthogonal as orthogonal
from jinit.torch._structured import sparse as sparse

__all__ = [
    "calculate_gain",
    "conv_bias",
    "conv_weight",
    "dirac",
    "embedding",
    "eye",
    "init_like_torch",
    "kaiming_normal",
    "kaiming_uniform",
    "linear_bias",
    "linear_weight",
    "normal",
    "orthogonal",
    "sparse",
    "trunc_normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
]

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit.torch")
