"""PyTorch initialisation semantics in Flax layouts: ``jinit.torch``.

Each function mirrors one of ``torch.nn.init`` (without the trailing underscore) or a torch
layer default, takes the Flax layout of the weight (Dense ``(in, out)``, Conv
``(*k, in/groups, out)``, Embed ``(vocab, features)``) and gives the law torch gives for the
corresponding torch layout. torch itself is not needed.
"""

from jinit.torch._init import calculate_gain as calculate_gain
from jinit.torch._init import conv_bias as conv_bias
from jinit.torch._init import conv_weight as conv_weight
from jinit.torch._init import dirac as dirac
from jinit.torch._init import embedding as embedding
from jinit.torch._init import eye as eye
from jinit.torch._init import kaiming_normal as kaiming_normal
from jinit.torch._init import kaiming_uniform as kaiming_uniform
from jinit.torch._init import linear_bias as linear_bias
from jinit.torch._init import linear_weight as linear_weight
from jinit.torch._init import normal as normal
from jinit.torch._init import orthogonal as orthogonal
from jinit.torch._init import sparse as sparse
from jinit.torch._init import trunc_normal as trunc_normal
from jinit.torch._init import uniform as uniform
from jinit.torch._init import xavier_normal as xavier_normal
from jinit.torch._init import xavier_uniform as xavier_uniform
from jinit.torch._port import init_like_torch as init_like_torch

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
