"""Initialisation recipes from the literature: ``jinit.recipes``.

Each function returns rules for :func:`jinit.reinit` (a :class:`Recipe`: an ordered list of
``(pattern, initialiser)`` pairs; the first matching rule wins, so rule lists combine by
concatenation) or initialisers. Patterns default to Flax names, including those of Flax's own
example models, and are arguments of each recipe. A recipe whose defining rules match no
parameter makes ``reinit`` raise (naming the rules, the paths seen and the fix), never fall back
silently.
"""

from jinit.recipes._recipes import RESNET_PRESETS as RESNET_PRESETS
from jinit.recipes._recipes import ChronoBias as ChronoBias
from jinit.recipes._recipes import DeepNormConstants as DeepNormConstants
from jinit.recipes._recipes import FanScaled as FanScaled
from jinit.recipes._recipes import LSTMBias as LSTMBias
from jinit.recipes._recipes import Recipe as Recipe
from jinit.recipes._recipes import TransformerNames as TransformerNames
from jinit.recipes._recipes import chrono as chrono
from jinit.recipes._recipes import chrono_bias as chrono_bias
from jinit.recipes._recipes import deepnorm as deepnorm
from jinit.recipes._recipes import deepnorm_constants as deepnorm_constants
from jinit.recipes._recipes import fan_scaled as fan_scaled
from jinit.recipes._recipes import fixup as fixup
from jinit.recipes._recipes import gpt2 as gpt2
from jinit.recipes._recipes import irnn as irnn
from jinit.recipes._recipes import lstm as lstm
from jinit.recipes._recipes import lstm_bias as lstm_bias
from jinit.recipes._recipes import olmo as olmo
from jinit.recipes._recipes import retinanet as retinanet
from jinit.recipes._recipes import rezero as rezero
from jinit.recipes._recipes import skipinit as skipinit
from jinit.recipes._recipes import t5 as t5
from jinit.recipes._recipes import tfixup as tfixup
from jinit.recipes._recipes import zerO as zerO

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
