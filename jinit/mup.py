"""µP (maximal-update parametrisation): width multipliers, µP initialisation rules, the matching
optax learning-rate scaling and the coordinate check: ``jinit.mup``.
"""

from jinit._src.mup import DEFAULT_SP_RULES as DEFAULT_SP_RULES
from jinit._src.mup import KINDS as KINDS
from jinit._src.mup import CoordCheckResult as CoordCheckResult
from jinit._src.mup import MupScaled as MupScaled
from jinit._src.mup import WidthInfo as WidthInfo
from jinit._src.mup import adam as adam
from jinit._src.mup import coord_check as coord_check
from jinit._src.mup import init as init
from jinit._src.mup import lr_multipliers as lr_multipliers
from jinit._src.mup import plot_coord_check as plot_coord_check
from jinit._src.mup import rules as rules
from jinit._src.mup import scale_by_mup as scale_by_mup
from jinit._src.mup import scaled as scaled
from jinit._src.mup import sgd as sgd
from jinit._src.mup import width_info as width_info

__all__ = [
    "CoordCheckResult",
    "DEFAULT_SP_RULES",
    "KINDS",
    "MupScaled",
    "WidthInfo",
    "adam",
    "coord_check",
    "init",
    "lr_multipliers",
    "plot_coord_check",
    "rules",
    "scale_by_mup",
    "scaled",
    "sgd",
    "width_info",
]
