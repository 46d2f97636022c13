"""Mean-field signal-propagation theory (public module ``jinit.theory``).

Gaussian expectations of activations with kink-aware quadrature, exact gains, the q-map, c-map,
χ₁, depth scales, the ordered/chaotic phase, the edge of chaos, and whole-stack MLP predictions
with finite-width fluctuations. See :mod:`jinit.theory` for the math and references.
"""

from jinit.theory._activations import ACTIVATION_NAMES as ACTIVATION_NAMES
from jinit.theory._activations import Activation as Activation
from jinit.theory._activations import activation as activation
from jinit.theory._gaussian import gain as gain
from jinit.theory._gaussian import gaussian_cross_moment as gaussian_cross_moment
from jinit.theory._gaussian import (
    gaussian_derivative_second_moment as gaussian_derivative_second_moment,
)
from jinit.theory._gaussian import gaussian_expectation as gaussian_expectation
from jinit.theory._gaussian import gaussian_mean as gaussian_mean
from jinit.theory._gaussian import gaussian_second_moment as gaussian_second_moment
from jinit.theory._maps import CriticalPoint as CriticalPoint
from jinit.theory._maps import DepthScales as DepthScales
from jinit.theory._maps import c_map as c_map
from jinit.theory._maps import c_star as c_star
from jinit.theory._maps import chi1 as chi1
from jinit.theory._maps import critical_point as critical_point
from jinit.theory._maps import depth_scales as depth_scales
from jinit.theory._maps import phase as phase
from jinit.theory._maps import q_map as q_map
from jinit.theory._maps import q_star as q_star
from jinit.theory._predict import Prediction as Prediction
from jinit.theory._predict import predict_mlp as predict_mlp

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "CriticalPoint",
    "DepthScales",
    "Prediction",
    "activation",
    "c_map",
    "c_star",
    "chi1",
    "critical_point",
    "depth_scales",
    "gain",
    "gaussian_cross_moment",
    "gaussian_derivative_second_moment",
    "gaussian_expectation",
    "gaussian_mean",
    "gaussian_second_moment",
    "phase",
    "predict_mlp",
    "q_map",
    "q_star",
]

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit.theory")
