r"""Initialisation recipes from the literature: ``jinit.recipes``.

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

**Recipes never silently miss.** Each whole-model recipe returns a :class:`Recipe`: its rules,
plus the *defining* roles that make it this recipe (GPT-2's residual projections, Fixup's zero
last layers and scaled branch layers, T5's query, a prior's bias, ...). :func:`jinit.reinit`
raises a ValueError naming the recipe, each defining role whose patterns matched no parameter
path, a sample of the paths it saw and the fix (a naming option or preset), instead of letting a
fallback rule draw those layers with the wrong law. Recipes stay recipes under ``+`` (with a list
of rules on either side, or another recipe).

Patterns are :func:`jinit.reinit` globs (``*`` spans '/'), with defaults for Flax naming:
``flax.linen.MultiHeadDotProductAttention`` and ``nnx.MultiHeadAttention`` call their kernels
``query``, ``key``, ``value`` and ``out`` (``DenseGeneral`` kernels ``(d, heads, head_dim)`` and
``(heads, head_dim, d)``, whose fans the fan-based recipes compute correctly), ``nn.Embed`` its
table ``embedding``, ``LayerNorm``/``RMSNorm`` their gain ``scale``. The feed-forward layers are
recognised under the names of Flax's own example models as well as fairseq's: ``fc1``/``fc2``
(fairseq, torchscale), ``linear1``/``linear2`` (Flax lm1b, nnx) and ``MlpBlock_0/Dense_0``/
``Dense_1`` (Flax lm1b/wmt linen, google-research ViT); blocks as ``block_{i}``, ``blocks/{i}``,
``layers/{i}``, ``Block_{i}``, ``encoderblock_{i}`` and ``encoderdecoderblock_{i}``, 0-based; see
:class:`TransformerNames` to rename any of them. Residual-network recipes (:func:`fixup`,
:func:`zerO`) take ``preset="flax_resnet"`` for Flax's ImageNet ResNet (``ResNetBlock_i/Conv_j``).
"""

from jinit.recipes._deepnorm import DeepNormConstants as DeepNormConstants
from jinit.recipes._deepnorm import deepnorm as deepnorm
from jinit.recipes._deepnorm import deepnorm_constants as deepnorm_constants
from jinit.recipes._deepnorm import tfixup as tfixup
from jinit.recipes._fan_scaled import FanScaled as FanScaled
from jinit.recipes._fan_scaled import fan_scaled as fan_scaled
from jinit.recipes._gpt import gpt2 as gpt2
from jinit.recipes._gpt import olmo as olmo
from jinit.recipes._gpt import t5 as t5
from jinit.recipes._names import TransformerNames as TransformerNames
from jinit.recipes._recipe import Recipe as Recipe
from jinit.recipes._recurrent import ChronoBias as ChronoBias
from jinit.recipes._recurrent import LSTMBias as LSTMBias
from jinit.recipes._recurrent import chrono as chrono
from jinit.recipes._recurrent import chrono_bias as chrono_bias
from jinit.recipes._recurrent import irnn as irnn
from jinit.recipes._recurrent import lstm as lstm
from jinit.recipes._recurrent import lstm_bias as lstm_bias
from jinit.recipes._residual import RESNET_PRESETS as RESNET_PRESETS
from jinit.recipes._residual import fixup as fixup
from jinit.recipes._residual import rezero as rezero
from jinit.recipes._residual import skipinit as skipinit
from jinit.recipes._residual import zerO as zerO
from jinit.recipes._retinanet import retinanet as retinanet

__all__ = [
    "chrono",
    "chrono_bias",
    "ChronoBias",
    "deepnorm",
    "deepnorm_constants",
    "DeepNormConstants",
    "fan_scaled",
    "FanScaled",
    "fixup",
    "gpt2",
    "irnn",
    "lstm",
    "lstm_bias",
    "LSTMBias",
    "olmo",
    "Recipe",
    "RESNET_PRESETS",
    "retinanet",
    "rezero",
    "skipinit",
    "t5",
    "tfixup",
    "TransformerNames",
    "zerO",
]

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit.recipes")
