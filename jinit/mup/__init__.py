"""µP (maximal-update parametrisation): width multipliers, µP initialisation rules, the matching
optax learning-rate scaling and the coordinate check: ``jinit.mup``.
"""

from jinit.mup._mup import DEFAULT_SP_RULES as DEFAULT_SP_RULES
from jinit.mup._mup import KINDS as KINDS
from jinit.mup._mup import CoordCheckResult as CoordCheckResult
from jinit.mup._mup import MupScaled as MupScaled
from jinit.mup._mup import WidthInfo as WidthInfo
from jinit.mup._mup import adam as adam
from jinit.mup._mup import coord_check as coord_check
from jinit.mup._mup import init as init
from jinit.mup._mup import lr_multipliers as lr_multipliers
from jinit.mup._mup import plot_coord_check as plot_coord_check
from jinit.mup._mup import rules as rules
from jinit.mup._mup import scale_by_mup as scale_by_mup
from jinit.mup._mup import scaled as scaled
from jinit.mup._mup import sgd as sgd
from jinit.mup._mup import width_info as width_info

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

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit.mup")
