r"""µP (maximal-update parametrisation): width-aware initialisation and learning rates.

A learning rate tuned on a narrow model transfers to a wide one when every parameter's
initialisation and learning rate scale with width as in Yang & Hu (2021), *Tensor Programs IV:
Feature Learning in Infinite-Width Neural Networks*, and Yang et al. (2022), *Tensor Programs V:
Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer* (µTransfer, arXiv
2203.03466, Table 3). The model is described by two parameter trees of the same structure: the
model at its real width (``params``) and at a **base** width (``base_params``, e.g. from
``jax.eval_shape``), where µP coincides with the standard parametrisation (SP) the user tuned.

**Width multipliers.** For a leaf with fans :math:`n_{in}, n_{out}` (:func:`jinit.fans` of its
shape, Flax layout by default) and base fans :math:`\bar n_{in}, \bar n_{out}`,
:math:`m_{in} = n_{in}/\bar n_{in}` and :math:`m_{out} = n_{out}/\bar n_{out}`. A dimension is
*infinite* when it differs from the base — or, given a third tree ``delta_params``, when the
delta differs from the base, which keeps the kinds at base width (the ``mup`` package's
``set_base_shapes(model, base, delta=...)`` rule). This classifies each leaf:

======  ===================  =====================  ==================  =================
kind    infinite dims        init variance          Adam lr multiplier  SGD lr multiplier
======  ===================  =====================  ==================  =================
input   fan_out only         SP(base)               1                   m_out
hidden  fan_in and fan_out   SP(base) / m_in        1 / m_in            m_out / m_in
output  fan_in only          0 or SP(base) / m_in²  1 / m_in            1 / m_in
vector  its one axis (bias)  SP(base)               1                   m (its axis)
finite  none                 SP(base)               1                   1
======  ===================  =====================  ==================  =================

"SP(base)" is the variance the user's SP initialiser gives at the *base* shape, so at base width
(all multipliers 1) µP is exactly SP. With a fan-in initialiser (``lecun_normal``, ``he_normal``)
the hidden variance :math:`\sigma^2/n_{in}` is already SP's and only the readout changes; a
constant-std initialiser (``normal(0.02)``) gets its std divided by :math:`\sqrt{m_{in}}` on
hidden weights, as ``mup.init.normal_`` does. The columns are Table 3 of Tensor Programs V with
every ``fan_in`` replaced by its ratio to the base (so the readout's
:math:`1/\mathrm{fan\_in}^2` variance becomes :math:`\mathrm{SP}/m_{in}^2`); the SGD column for
unequal :math:`m_{in} \ne m_{out}` and for vectors follows ``mup.optim.MuSGD``
(``fanin_fanout_mult_ratio``). The readout has no forward multiplier: Table 3 is equivalent to
the paper's formulations with an output multiplier, such as ``MuReadout``'s
``output_mult / width_mult`` (readout init and Adam lr scaled by the multiplier instead).

:func:`rules` returns the initialisation as jinit rules (``(glob pattern, initialiser)`` over
``'/'``-joined paths) and :func:`init` applies them directly; :func:`lr_multipliers`,
:func:`scale_by_mup`, :func:`adam` and :func:`sgd` give the optax side; :func:`coord_check`
and :func:`plot_coord_check` run the coordinate check of the paper (activation scale after a few
steps against width, flat under µP, growing under SP).

This package (``jinit.mup``) holds the width multipliers, the µP initialisation rules, the
matching optax learning-rate scaling and the coordinate check.
"""

from jinit.mup._coord_check import CoordCheckResult as CoordCheckResult
from jinit.mup._coord_check import coord_check as coord_check
from jinit.mup._coord_check import plot_coord_check as plot_coord_check
from jinit.mup._mup_init import MupScaled as MupScaled
from jinit.mup._mup_init import init as init
from jinit.mup._mup_init import rules as rules
from jinit.mup._mup_init import scaled as scaled
from jinit.mup._optim import adam as adam
from jinit.mup._optim import lr_multipliers as lr_multipliers
from jinit.mup._optim import scale_by_mup as scale_by_mup
from jinit.mup._optim import sgd as sgd
from jinit.mup._widths import DEFAULT_SP_RULES as DEFAULT_SP_RULES
from jinit.mup._widths import KINDS as KINDS
from jinit.mup._widths import WidthInfo as WidthInfo
from jinit.mup._widths import width_info as width_info

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
